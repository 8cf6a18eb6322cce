/**
 * Reading haoscar.yaml: YAML → schema → normalise → rules. Every problem is collected and
 * reported at once, each with its path (and line, when the file has one), and nothing is
 * acted on until the whole file is valid.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isMap, isNode, isScalar, isSeq, visit, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, type RawConfig } from './schema.js';
import type { CheckSpec, CheckTiming, Config, HealingPolicy, Resource } from './types.js';
import { DEFAULT_MAX_SYNC_LAG } from './types.js';
import { checkRules } from './rules.js';

export interface ConfigIssue {
  /** Dotted path with indices, e.g. `groups[0].resources[1].check.port`; empty for the whole file. */
  path: string;
  message: string;
  line?: number;
}

/** Thrown when a configuration file cannot be used; `issues` holds every problem found. */
export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly issues: ConfigIssue[],
  ) {
    super(`${source}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n${formatIssues(issues)}`);
    this.name = 'ConfigError';
  }
}

export function formatIssues(issues: ConfigIssue[]): string {
  return issues
    .map((i) => `  ${i.path || '(file)'}${i.line !== undefined ? ` (line ${i.line})` : ''}: ${i.message}`)
    .join('\n');
}

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out;
}

export const CHECK_DEFAULTS: CheckTiming = { intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3 };
export const HEALING_DEFAULTS: HealingPolicy = {
  maxRestarts: 3,
  windowMs: 10 * 60_000,
  backoff: { initialMs: 1000, maxMs: 30_000, multiplier: 2 },
  startTimeoutMs: 30_000,
};

/** Parses and validates configuration text. @throws ConfigError listing every problem. */
export function parseConfig(text: string, source = 'haoscar.yaml'): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      // With prettyErrors off, `linePos` is not filled in: the line comes from the error's offset.
      doc.errors.map((e) => ({ path: '', message: `YAML syntax: ${e.message.split('\n')[0]}`, line: lineCounter.linePos(e.pos[0]).line })),
    );
  }
  // An empty key (`agent:` with every line under it commented out) means the same as leaving it out.
  const data: unknown = withoutNulls(toData(doc, lineCounter, source)) ?? {};
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    const issues = parsed.error.issues.flatMap((i) => toIssues(i, data, doc, lineCounter));
    // In file order (zod reports nested problems first), so the report reads top to bottom.
    issues.sort((a, b) => (a.line ?? Infinity) - (b.line ?? Infinity));
    throw new ConfigError(source, issues);
  }
  const config = normalise(parsed.data);
  const problems = checkRules(config, parsed.data);
  if (problems.length > 0) {
    throw new ConfigError(
      source,
      problems.map((p) => ({ ...p, line: lineOf(doc, lineCounter, p.pathParts) })).map(({ pathParts: _, ...rest }) => rest),
    );
  }
  return config;
}

/** A configuration never needs more aliases than this; more is an alias bomb (exponential expansion). */
const MAX_ALIASES = 100;

/**
 * The document as plain data. The YAML library resolves aliases only here, and reports an alias
 * with no anchor before it, or too many aliases, by throwing: a config error, at the alias's line.
 */
function toData(doc: Document, lc: LineCounter, source: string): unknown {
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIASES });
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    const aliases: { source: string; offset: number }[] = [];
    const anchored = new Set<string>();
    visit(doc, {
      Alias: (_, node) => void aliases.push({ source: node.source, offset: node.range?.[0] ?? 0 }),
      Node: (_, node) => void (node.anchor !== undefined && anchored.add(node.anchor)),
    });
    const unresolved = /Unresolved alias/.test(err.message) ? aliases.find((a) => !anchored.has(a.source)) ?? aliases.find((a) => err.message.endsWith(`: ${a.source}`)) : undefined;
    const issue: ConfigIssue = unresolved
      ? { path: '', message: `YAML: alias *${unresolved.source} has no anchor &${unresolved.source} before it`, line: lc.linePos(unresolved.offset).line }
      : { path: '', message: `YAML: too many aliases (more than ${MAX_ALIASES}: an alias bomb?); a configuration does not need them`, ...(aliases[0] ? { line: lc.linePos(aliases[0].offset).line } : {}) };
    throw new ConfigError(source, [issue]);
  }
}

/** Reads and validates a configuration file. @throws ConfigError (also for an unreadable file). */
export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(file, [{ path: '', message: `cannot read the file (${code ?? String(err)})` }]);
  }
  return parseConfig(text, file);
}

function toIssues(issue: z.core.$ZodIssue, data: unknown, doc: Document, lc: LineCounter): ConfigIssue[] {
  const at = (path: PropertyKey[], message: string): ConfigIssue => ({ path: formatPath(path), message, line: lineOf(doc, lc, path) });
  if (issue.code === 'unrecognized_keys') {
    // One issue per key, each on its own line, so the administrator sees every misspelling.
    return issue.keys.map((k) => at([...issue.path, k], `unknown key '${k}'`));
  }
  // zod does not keep the input in issues, so "missing" is decided by looking at the data.
  const missing = issue.code === 'invalid_type' && !hasPath(data, issue.path);
  return [at([...issue.path], missing ? `required: ${issue.message}` : issue.message)];
}

function hasPath(data: unknown, path: readonly PropertyKey[]): boolean {
  let cur = data;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, key)) return false;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return true;
}

/** Drops null values from mappings (not from lists, where a null item is a real mistake). */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([, v]) => v !== null)
      .map(([k, v]) => [k, withoutNulls(v)]),
  );
}

/**
 * The line of a path in configuration text (or of its nearest part that is in the file), for
 * checks made after loading (e.g. an OCF agent's parameters against its meta-data).
 */
export function lineFinder(text: string): (path: readonly PropertyKey[]) => number | undefined {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  return (path) => lineOf(doc, lineCounter, path);
}

function lineOf(doc: Document, lc: LineCounter, path: readonly PropertyKey[]): number | undefined {
  // Walk up to the nearest part of the path that exists in the file (a missing key has no line).
  for (let n = path.length; n >= 0; n--) {
    const offset = offsetOf(doc, path.slice(0, n));
    if (offset !== undefined) return lc.linePos(offset).line;
  }
  return undefined;
}

/** Where the path starts in the file: a mapping entry's key (not its value, which may be on a later line), or a list item. */
function offsetOf(doc: Document, path: readonly PropertyKey[]): number | undefined {
  if (path.length === 0) return isNode(doc.contents) ? doc.contents.range?.[0] : undefined;
  const parent = path.length === 1 ? doc.contents : doc.getIn(path.slice(0, -1) as unknown[], true);
  const last = path[path.length - 1]!;
  if (isMap(parent)) {
    const pair = parent.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(last));
    return isNode(pair?.key) ? pair.key.range?.[0] : undefined;
  }
  if (isSeq(parent) && typeof last === 'number') {
    const item = parent.items[last];
    return isNode(item) ? item.range?.[0] : undefined;
  }
  return undefined;
}

function normalise(raw: RawConfig): Config {
  const checkDefaults: CheckTiming = {
    intervalMs: raw.defaults.check.interval ?? CHECK_DEFAULTS.intervalMs,
    timeoutMs: raw.defaults.check.timeout ?? CHECK_DEFAULTS.timeoutMs,
    rise: raw.defaults.check.rise ?? CHECK_DEFAULTS.rise,
    fall: raw.defaults.check.fall ?? CHECK_DEFAULTS.fall,
  };
  const clusterHealing = mergeHealing(HEALING_DEFAULTS, raw.defaults.healing);
  // Code-point order for ties, not localeCompare: the preference must not depend on the machine's locale.
  const byPriority = [...raw.nodes]
    .sort((a, b) => b.priority - a.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((n) => n.name);
  const { tls, address: frontends, ...temporal } = raw.temporal;
  return {
    cluster: raw.cluster,
    // An API key is only ever sent over TLS, so `apiKeyFile` turns TLS on unless `tls` says otherwise (a rule rejects `tls: false`).
    temporal: { ...temporal, address: frontends[0]!, frontends, tls: tls ?? temporal.apiKeyFile !== undefined },
    agent: (({ localHealAfter, ...rest }) => ({ ...rest, localHealAfterMs: localHealAfter }))(raw.agent),
    heartbeat: (({ interval, deadtime, ...rest }) => ({ ...rest, intervalMs: interval, deadtimeMs: deadtime }))(raw.heartbeat),
    lease: { ttlMs: raw.lease.ttl, marginMs: raw.lease.margin },
    guard: { enabled: raw.guard.enabled, ...(raw.guard.watchdog ? { watchdog: { device: raw.guard.watchdog.device, timeoutMs: raw.guard.watchdog.timeout } } : {}) },
    failover: { verifyTimeoutMs: raw.failover.verifyTimeout },
    sync: raw.sync,
    clone: raw.clone,
    nodes: raw.nodes.map(({ fence, ...n }) => (fence ? { ...n, fence: (({ timeout, ...f }) => ({ ...f, timeoutMs: timeout }))(fence) } : n)),
    groups: raw.groups.map((g) => {
      const groupHealing = mergeHealing(clusterHealing, g.healing);
      return {
        name: g.name,
        nodes: g.nodes ?? byPriority,
        resources: g.resources.map((r): Resource => {
          const { check, healing, ...rest } = r;
          // A service without a check is judged by its process (or unit); other resources by their own status.
          const common = { check: normaliseCheck(check ?? (r.type === 'service' ? { type: 'process' } : { type: 'status' }), checkDefaults), healing: mergeHealing(groupHealing, healing) };
          if (rest.type === 'command' || rest.type === 'drbd' || rest.type === 'filesystem') {
            const { timeout, ...c } = rest;
            return { ...c, ...common, timeoutMs: timeout };
          }
          if (rest.type === 'vip' || rest.type === 'ocf') return { ...rest, ...common };
          if (rest.type === 'postgresql') {
            const { timeout, rejoinTimeout, rejoinInterval, ...pg } = rest;
            return { ...pg, ...common, timeoutMs: timeout, rejoinTimeoutMs: rejoinTimeout, rejoinIntervalMs: rejoinInterval };
          }
          if (rest.driver === 'process') {
            const { stopTimeout, ...p } = rest;
            return { ...p, ...common, stopTimeoutMs: stopTimeout };
          }
          return { ...rest, ...common };
        }),
        fileSets: g.fileSets.map(({ batch, verifyEvery, ioTimeout, ...f }) => ({ ...f, batchMs: batch, verifyEveryMs: verifyEvery, ioTimeoutMs: ioTimeout })),
        failback: { policy: g.failback.policy, stableForMs: g.failback.stableFor, stickinessMs: g.failback.stickiness },
        failover: { maxSyncLag: g.failover.maxSyncLag ?? DEFAULT_MAX_SYNC_LAG },
      };
    }),
    alerts: raw.alerts.map(({ path, webhook, timeout, events, ...a }) => ({
      ...a,
      target: path !== undefined ? { type: 'command' as const, path } : { type: 'webhook' as const, url: webhook! },
      timeoutMs: timeout,
      ...(events ? { events } : {}),
    })),
  };
}

type RawCheck = NonNullable<RawConfig['groups'][number]['resources'][number]['check']>;

function normaliseCheck(check: RawCheck, d: CheckTiming): CheckSpec {
  const { interval, timeout, rise, fall, ...spec } = check;
  return {
    ...normaliseProbe(check, spec),
    intervalMs: interval ?? d.intervalMs,
    timeoutMs: timeout ?? d.timeoutMs,
    rise: rise ?? d.rise,
    fall: fall ?? d.fall,
  } as CheckSpec;
}

/** The resource checks' thresholds, named with their unit (the schema has parsed them already). */
function normaliseProbe(spec: RawCheck, withoutTiming: object) {
  const defined = <T extends object>(o: T) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  switch (spec.type) {
    case 'disk':
      return defined({ type: spec.type, path: spec.path, maxUsedPercent: spec.maxUsed, minFreeBytes: spec.minFree, maxInodesUsedPercent: spec.maxInodesUsed });
    case 'memory':
      return defined({ type: spec.type, maxBytes: spec.max, pidFile: spec.pidFile, children: spec.children });
    case 'cpu':
      return defined({ type: spec.type, maxPercent: spec.max, pidFile: spec.pidFile });
    case 'file':
      return defined({ type: spec.type, path: spec.path, sha256: spec.sha256?.toLowerCase(), maxSizeBytes: spec.maxSize, minSizeBytes: spec.minSize, maxAgeMs: spec.maxAge });
    default:
      return withoutTiming;
  }
}

type RawHealing = NonNullable<RawConfig['defaults']['healing']>;

function mergeHealing(base: HealingPolicy, over: RawHealing | undefined): HealingPolicy {
  if (!over) return base;
  return {
    maxRestarts: over.maxRestarts ?? base.maxRestarts,
    windowMs: over.window ?? base.windowMs,
    startTimeoutMs: over.startTimeout ?? base.startTimeoutMs,
    backoff: {
      initialMs: over.backoff?.initial ?? base.backoff.initialMs,
      maxMs: over.backoff?.max ?? base.backoff.maxMs,
      multiplier: over.backoff?.multiplier ?? base.backoff.multiplier,
    },
  };
}
