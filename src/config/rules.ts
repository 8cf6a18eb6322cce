/**
 * Cross-field rules: what the schema cannot say about one field alone. All problems are
 * collected so that `haoscar validate` reports them together.
 */
import { posix } from 'node:path';
import type { RawConfig } from './schema.js';
import type { Config } from './types.js';
import { formatPath } from './load.js';
import { formatDuration } from './duration.js';

/** The least lease margin with the guard: its time to act, measured 20-40 ms under load, with room. */
export const GUARD_MIN_MARGIN_MS = 50;

export interface RuleProblem {
  path: string;
  pathParts: PropertyKey[];
  message: string;
}

export function checkRules(config: Config, raw: RawConfig): RuleProblem[] {
  const problems: RuleProblem[] = [];
  const add = (pathParts: PropertyKey[], message: string) => problems.push({ path: formatPath(pathParts), pathParts, message });

  duplicates(raw.nodes.map((n) => n.name)).forEach((i) => add(['nodes', i, 'name'], `duplicate node name '${raw.nodes[i]!.name}'`));
  duplicates(raw.groups.map((g) => g.name)).forEach((i) => add(['groups', i, 'name'], `duplicate group name '${raw.groups[i]!.name}'`));
  duplicates(raw.alerts.map((a) => a.name)).forEach((i) => add(['alerts', i, 'name'], `duplicate alert name '${raw.alerts[i]!.name}'`));

  const nodeNames = new Set(raw.nodes.map((n) => n.name));
  raw.groups.forEach((g, gi) => {
    (g.nodes ?? []).forEach((n, ni) => {
      if (!nodeNames.has(n)) add(['groups', gi, 'nodes', ni], `unknown node '${n}' (known: ${[...nodeNames].join(', ')})`);
    });
    duplicates(g.nodes ?? []).forEach((ni) => add(['groups', gi, 'nodes', ni], `node '${g.nodes![ni]}' is listed twice`));
    duplicates(g.resources.map((r) => r.name)).forEach((ri) =>
      add(['groups', gi, 'resources', ri, 'name'], `duplicate resource name '${g.resources[ri]!.name}' in group '${g.name}'`),
    );
  });

  // File sets: a directory replicated by two sets (or inside another's) would be written by
  // two pulls from possibly different owners; the agent's own state must never be replaced.
  const setDirs: { dir: string; at: PropertyKey[] }[] = [];
  raw.groups.forEach((g, gi) => {
    duplicates(g.fileSets.map((f) => f.name)).forEach((fi) => add(['groups', gi, 'fileSets', fi, 'name'], `duplicate file set name '${g.fileSets[fi]!.name}' in group '${g.name}'`));
    g.fileSets.forEach((f, fi) => f.paths.forEach((p, pi) => setDirs.push({ dir: normalDir(p), at: ['groups', gi, 'fileSets', fi, 'paths', pi] })));
    // A file set under a filesystem resource would be read while it is unmounted (a switchover
    // stops the group before its last pass) and look empty: the standby's copy would be wiped.
    const mounts = g.resources.filter((r) => r.type === 'filesystem').map((r) => normalDir((r as { mountpoint: string }).mountpoint));
    g.fileSets.forEach((f, fi) => f.paths.forEach((p, pi) => {
      const dir = normalDir(p);
      const m = mounts.find((mp) => dir === mp || dir.startsWith(mp === '/' ? '/' : `${mp}/`));
      if (m) add(['groups', gi, 'fileSets', fi, 'paths', pi], `'${dir}' is on the group's filesystem resource mounted at ${m}: replicate that device (DRBD) instead; a file set there would be read while it is unmounted`);
    }));
    if (g.failover.maxSyncLag !== undefined && g.fileSets.length === 0) {
      add(['groups', gi, 'failover', 'maxSyncLag'], `maxSyncLag counts how far a standby's copy of the group's file sets is behind, and group '${g.name}' has no fileSets: remove it (for a drbd resource, DRBD itself refuses an outdated standby)`);
    }
    const nodes = config.groups[gi]!.nodes;
    if (g.failback.policy === 'auto' && nodes.length < 2) add(['groups', gi, 'failback', 'policy'], `automatic fail-back needs a group with at least two nodes (group '${g.name}' has ${nodes.join(', ')})`);
  });
  const inside = (a: string, b: string) => a === b || a.startsWith(b === '/' ? '/' : `${b}/`);
  setDirs.forEach((a, i) => {
    const other = setDirs.find((b, j) => j !== i && (inside(a.dir, b.dir) && (a.dir !== b.dir || j < i)));
    if (other) add(a.at, `'${a.dir}' is ${a.dir === other.dir ? 'also' : 'inside'} ${formatPath(other.at)} ('${other.dir}'): each directory may belong to one file set only`);
    const state = normalDir(config.agent.stateDir);
    if (inside(state, a.dir)) add(a.at, `'${a.dir}' holds the agent's state directory (${state}): a pull would replace it; replicate a directory beside it`);
  });

  if (config.heartbeat.deadtimeMs < 2 * config.heartbeat.intervalMs) {
    add(['heartbeat', 'deadtime'],
      `deadtime (${formatDuration(config.heartbeat.deadtimeMs)}) must be at least twice the interval (${formatDuration(config.heartbeat.intervalMs)}): one lost packet must not make a peer suspect`);
  }
  // The guard lets go at the lease deadline; the margin is the time it has to act before
  // another node may start the group (docs/guard.md: 20-40 ms measured on a loaded 2-core machine).
  if (config.lease.marginMs <= 0) {
    // Another node may start the group at ttl + margin: the margin is all that covers the old
    // owner's late timer, its stop, and the difference in rate between two machines' clocks.
    add(['lease', 'margin'], `margin (${formatDuration(config.lease.marginMs)}) must be more than 0: another node may start the group once the old owner's lease (ttl) and the margin have passed, and the margin is all that covers the old owner noticing late and stopping, and the two machines' clocks running at slightly different rates`);
  } else if (config.guard.enabled && config.nodes.length > 1 && config.lease.marginMs < GUARD_MIN_MARGIN_MS) {
    add(['lease', 'margin'], `margin (${formatDuration(config.lease.marginMs)}) must be at least ${formatDuration(GUARD_MIN_MARGIN_MS)}: it is the time the lease guard has to delete the VIPs and kill the group's processes after the deadline, before another node may start the group (docs/guard.md)`);
  }
  if (raw.guard.watchdog && !config.guard.enabled) {
    add(['guard', 'watchdog'], 'the watchdog is fed by the lease guard: enable the guard (guard.enabled: true) or remove the watchdog');
  }
  raw.nodes.forEach((n, ni) =>
    duplicates(n.addresses).forEach((ai) => add(['nodes', ni, 'addresses', ai], `address '${n.addresses[ai]}' is listed twice`)),
  );
  const t = raw.temporal;
  const ip = t.server.ip;
  if (!/^(127\.\d+\.\d+\.\d+|0\.0\.0\.0|::1?|localhost)$/.test(ip)) {
    // Temporal CLI 1.5.1's dev server bound elsewhere starts, answers, and then fails every
    // workflow start after a timeout: its services dial each other on 127.0.0.1.
    add(['temporal', 'server', 'ip'], `the embedded dev server only works bound to a loopback address or 0.0.0.0 (got '${ip}'); use 0.0.0.0 with a firewall, or run a real Temporal cluster (docs/temporal.md)`);
  }
  if (t.apiKeyFile !== undefined && t.tls === false) {
    add(['temporal', 'tls'], "an API key is only ever sent over TLS: remove 'tls: false' when 'apiKeyFile' is set");
  }
  if (typeof t.tls === 'object' && (t.tls.certFile === undefined) !== (t.tls.keyFile === undefined)) {
    const missing = t.tls.certFile === undefined ? 'certFile' : 'keyFile';
    add(['temporal', 'tls', missing], "mTLS needs both 'certFile' (the client certificate) and 'keyFile' (its private key)");
  }

  // Timing rules are checked on the effective values of each resource, but reported once, at the
  // most specific setting that takes part (a conflict inherited from `defaults` is reported there).
  const reported = new Set<string>();
  const blame = (candidates: [set: unknown, parts: PropertyKey[]][], message: string) => {
    const culprit = candidates.find(([set]) => set !== undefined);
    if (!culprit) return; // only built-in defaults take part, and those agree
    const key = formatPath(culprit[1]);
    if (reported.has(key)) return;
    reported.add(key);
    add(culprit[1], message);
  };
  const dc = raw.defaults.check;
  const dh = raw.defaults.healing;

  config.groups.forEach((g, gi) =>
    g.resources.forEach((r, ri) => {
      const at = ['groups', gi, 'resources', ri];
      const rawGroup = raw.groups[gi]!;
      const rawRes = rawGroup.resources[ri]!;
      const rc = rawRes.check;
      const check = r.check;
      if (check.timeoutMs > check.intervalMs) {
        blame(
          [
            [rc?.timeout, [...at, 'check', 'timeout']],
            [rc?.interval, [...at, 'check', 'interval']],
            [dc.timeout, ['defaults', 'check', 'timeout']],
            [dc.interval, ['defaults', 'check', 'interval']],
          ],
          `the check timeout (${formatDuration(check.timeoutMs)}) is longer than its interval (${formatDuration(check.intervalMs)}); expected timeout <= interval`,
        );
      }
      if (rc?.type === 'process' && (r.type !== 'service' || r.driver !== 'process') && !rc.name && !rc.pidFile) {
        // Only 'process' services are supervised (and so watched) by the agent itself.
        add(
          [...at, 'check'],
          r.type === 'service'
            ? `a process check of a '${r.driver}' service needs 'name' or 'pidFile' (the process to look for); leave out 'check' to use the ${r.driver === 'systemd' ? 'unit' : 'init script'}'s own status`
            : `a process check of a ${r.type} resource needs 'name' or 'pidFile' (the process to look for); leave out 'check' to use the resource's own status`,
        );
      }
      if ((rc?.type === 'memory' || rc?.type === 'cpu') && (r.type !== 'service' || r.driver !== 'process') && !rc.pidFile) {
        // Only a 'process' service's own process is known to the agent (its driver's pid).
        add(
          [...at, 'check'],
          `a ${rc.type} check of ${r.type === 'service' ? `a '${r.driver}' service` : `a ${r.type} resource`} needs 'pidFile' (the process to measure); only a 'process' service's own process is found without one`,
        );
      }
      if (rc?.type === 'file' && rc.minSize !== undefined && rc.maxSize !== undefined && rc.minSize > rc.maxSize) {
        add([...at, 'check', 'minSize'], `minSize is larger than maxSize: no file could pass`);
      }
      if (check.type === 'process' && check.name && check.pidFile) {
        add([...at, 'check'], "a process check takes 'name' or 'pidFile', not both");
      }
      const b = r.healing.backoff;
      if (b.maxMs < b.initialMs) {
        const gb = rawGroup.healing?.backoff;
        const rb = rawRes.healing?.backoff;
        blame(
          [
            [rb?.max, [...at, 'healing', 'backoff', 'max']],
            [rb?.initial, [...at, 'healing', 'backoff', 'initial']],
            [gb?.max, ['groups', gi, 'healing', 'backoff', 'max']],
            [gb?.initial, ['groups', gi, 'healing', 'backoff', 'initial']],
            [dh.backoff?.max, ['defaults', 'healing', 'backoff', 'max']],
            [dh.backoff?.initial, ['defaults', 'healing', 'backoff', 'initial']],
          ],
          `the backoff maximum (${formatDuration(b.maxMs)}) is shorter than its initial delay (${formatDuration(b.initialMs)}); expected max >= initial`,
        );
      }
      // The first check may run at once, so `rise` passes in a row take at least (rise - 1) intervals.
      const needed = (check.rise - 1) * check.intervalMs;
      if (r.healing.startTimeoutMs < needed) {
        blame(
          [
            [rawRes.healing?.startTimeout, [...at, 'healing', 'startTimeout']],
            [rc?.interval, [...at, 'check', 'interval']],
            [rc?.rise, [...at, 'check', 'rise']],
            [rawGroup.healing?.startTimeout, ['groups', gi, 'healing', 'startTimeout']],
            [dh.startTimeout, ['defaults', 'healing', 'startTimeout']],
            [dc.interval, ['defaults', 'check', 'interval']],
            [dc.rise, ['defaults', 'check', 'rise']],
          ],
          `a restarted service could never count as started: passing its check ${check.rise} times in a row (rise) every ${formatDuration(check.intervalMs)} (interval) takes at least ${formatDuration(needed)}, but startTimeout is ${formatDuration(r.healing.startTimeoutMs)}; expected startTimeout >= ${formatDuration(needed)}`,
        );
      }
    }),
  );
  return problems;
}

/** Indices of the second and later occurrences of each repeated value. */
function duplicates(values: readonly string[]): number[] {
  const seen = new Set<string>();
  const out: number[] = [];
  values.forEach((v, i) => (seen.has(v) ? out.push(i) : seen.add(v)));
  return out;
}

/**
 * An absolute directory as the rules compare it: `..`, `.`, `//` resolved, no trailing slash
 * (`/var/lib/haoscar/..` is `/var/lib`, which holds the state directory).
 */
function normalDir(dir: string): string {
  return posix.normalize(dir).replace(/\/+$/, '') || '/';
}
