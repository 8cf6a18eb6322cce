/**
 * Reading haoscar.yaml: YAML → schema → normalise → rules. Every problem is collected and
 * reported at once, each with its path (and line, when the file has one), and nothing is
 * acted on until the whole file is valid.
 */
import { readFile } from 'node:fs/promises';
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { configSchema, type RawConfig } from './schema.js';
import type { CheckSpec, CheckTiming, Config, HealingPolicy, Resource } from './types.js';
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
      doc.errors.map((e) => ({ path: '', message: `YAML syntax: ${e.message.split('\n')[0]}`, line: e.linePos?.[0]?.line })),
    );
  }
  const data: unknown = doc.toJS() ?? {};
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    throw new ConfigError(source, parsed.error.issues.map((i) => toIssue(i, doc, lineCounter)));
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

function toIssue(issue: z.core.$ZodIssue, doc: Document, lc: LineCounter): ConfigIssue {
  let path = [...issue.path];
  let message = issue.message;
  if (issue.code === 'unrecognized_keys') {
    message = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `'${k}'`).join(', ')}`;
    if (issue.keys.length === 1) path = [...path, issue.keys[0]!];
  } else if (issue.code === 'invalid_type' && issue.input === undefined) {
    message = `required: ${message}`;
  }
  return { path: formatPath(path), message, line: lineOf(doc, lc, path) };
}

function lineOf(doc: Document, lc: LineCounter, path: readonly PropertyKey[]): number | undefined {
  // Walk up to the nearest part of the path that exists in the file (a missing key has no line).
  for (let n = path.length; n >= 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
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
  const byPriority = [...raw.nodes].sort((a, b) => b.priority - a.priority || a.name.localeCompare(b.name)).map((n) => n.name);
  return {
    cluster: raw.cluster,
    temporal: raw.temporal,
    agent: raw.agent,
    nodes: raw.nodes,
    groups: raw.groups.map((g) => {
      const groupHealing = mergeHealing(clusterHealing, g.healing);
      return {
        name: g.name,
        nodes: g.nodes ?? byPriority,
        resources: g.resources.map((r): Resource => {
          const { check, healing, ...rest } = r;
          const common = { check: normaliseCheck(check, checkDefaults), healing: mergeHealing(groupHealing, healing) };
          if (rest.driver === 'process') {
            const { stopTimeout, ...p } = rest;
            return { ...p, ...common, stopTimeoutMs: stopTimeout };
          }
          return { ...rest, ...common };
        }),
      };
    }),
  };
}

type RawCheck = NonNullable<RawConfig['groups'][number]['resources'][number]['check']>;

function normaliseCheck(check: RawCheck | undefined, d: CheckTiming): CheckSpec {
  // Without a check, a service is judged by whether its process (or unit) is running.
  const { interval, timeout, rise, fall, ...spec } = check ?? { type: 'process' as const };
  return {
    ...spec,
    intervalMs: interval ?? d.intervalMs,
    timeoutMs: timeout ?? d.timeoutMs,
    rise: rise ?? d.rise,
    fall: fall ?? d.fall,
  } as CheckSpec;
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
