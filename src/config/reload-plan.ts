/**
 * What a running agent may take from a changed configuration (`haoscar reload`, SIGHUP;
 * docs/reload.md), as a pure planner: `planReload(running, next)` lists every setting that
 * differs, each either applied live or refused with why it needs a restart.
 *
 * The rule is all or nothing: a reload with any refused change changes nothing. Only settings
 * that every part of the agent reads afresh each time it uses them are applied live (the check
 * timing, the heal policy, the local-heal delay, the log level, and the secret files of a
 * rotation step, which the agent checks against its peers itself); anything set up at start —
 * sockets, timers, leases, the guard, the resources a group runs, the Temporal connection —
 * is refused, and so is a setting this table does not know (a new field is refused
 * until someone decides it is safe: refusing costs a restart, applying half costs an outage).
 */
import type { Config } from './types.js';

/** A setting applied live: its path (named list items by name, e.g. `groups[web].resources[httpd].check.intervalMs`). */
export interface ReloadChange {
  path: string;
  from: unknown;
  to: unknown;
}

/** A setting that needs a restart, and why. Values are not given: some settings are secrets (fence passwords, environments). */
export interface ReloadRefusal {
  path: string;
  why: string;
}

export interface ReloadPlan {
  apply: ReloadChange[];
  refuse: ReloadRefusal[];
}

/** Settings applied live, as path patterns (`*` stands for one list item's name). */
const LIVE: readonly { pattern: string; what: string }[] = [
  { pattern: 'agent.logLevel', what: "the agent's log level" },
  // The files are read again at every reload, changed or not; what their contents change is
  // checked against the peers first (auth/secret-rotation.ts).
  { pattern: 'heartbeat.secretFile', what: 'the secret the agent signs with (a step of a secret rotation, checked against every live peer)' },
  { pattern: 'heartbeat.acceptSecretFiles', what: 'the secrets the agent also accepts (a step of a secret rotation, checked against every live peer)' },
  { pattern: 'agent.localHealAfterMs', what: 'how long a failure report waits for Temporal before the agent heals locally' },
  ...['intervalMs', 'timeoutMs', 'rise', 'fall'].map((f) => ({ pattern: `groups[*].resources[*].check.${f}`, what: 'the check timing (each check run reads it)' })),
  ...['maxRestarts', 'windowMs', 'backoff.initialMs', 'backoff.maxMs', 'backoff.multiplier'].map((f) => ({
    pattern: `groups[*].resources[*].healing.${f}`,
    what: 'the heal policy (each heal reads it when it starts; a heal under way keeps the policy it started with)',
  })),
];

/**
 * Why a setting needs a restart, by the first pattern that matches (a prefix of the path, `*` for
 * one list item's name). The last entry catches every other setting.
 */
const RESTART: readonly { prefix: string; why: string }[] = [
  { prefix: 'cluster', why: "the cluster's name is in every task queue, workflow ID and signed message" },
  { prefix: 'nodes', why: "the nodes, their addresses and fence agents are the heartbeat links and the controller's members, set up at start" },
  { prefix: 'heartbeat', why: 'the heartbeat sockets and timers are set up at start, and every node must use the same port, interval and deadtime' },
  { prefix: 'lease', why: 'the lease ttl and margin are announced to the controller and held by the guard: a holder and the controller must agree on them' },
  { prefix: 'guard', why: 'the lease guard and its watchdog are attached at start' },
  { prefix: 'failover', why: 'the controller reads the failover settings into its layout of the cluster' },
  { prefix: 'temporal', why: 'the connection to Temporal is made at start' },
  { prefix: 'sync', why: 'the rsync daemon and the sync transport are set up at start' },
  { prefix: 'clone', why: "the clone activities (haoscar clone) are given clone: when the agent's workers start" },
  { prefix: 'agent', why: 'the agent sets this up at start (its state directory, workflow cache, whether it runs workflows)' },
  { prefix: 'groups[*].resources[*].healing.startTimeoutMs', why: "the controller reads a resource's start timeout into its layout for failovers" },
  { prefix: 'groups[*].resources[*].check', why: 'what a check probes (its type, address, command) is built when the resource is set up' },
  { prefix: 'groups[*].resources', why: "a group's resources are started, stopped and guarded under its lease: changing them live could leave running what the new configuration no longer names" },
  { prefix: 'groups[*].fileSets', why: 'file sets are watched and served by the sync daemon set up at start' },
  { prefix: 'groups[*].nodes', why: 'where a group may run is placed by the controller and held under leases' },
  { prefix: 'groups[*].failback', why: 'the controller reads the fail-back policy into its layout of the cluster' },
  { prefix: 'groups[*].failover', why: 'the controller reads the data policy into its layout of the cluster' },
  { prefix: 'groups', why: "the groups (their names and order) are the controller's and the leases' units" },
  { prefix: '', why: 'not known to be safe to change in a running agent' },
];

/**
 * Every setting that differs between the running configuration and `next`, applied live or
 * refused (see the module comment). Pure: compares the normalised configurations (defaults
 * resolved, durations in ms), so `interval: 1s` → `interval: 1000ms` is no change.
 */
export function planReload(running: Config, next: Config): ReloadPlan {
  const plan: ReloadPlan = { apply: [], refuse: [] };
  for (const change of differences(running, next)) {
    const generic = generalise(change.path);
    if (LIVE.some((l) => l.pattern === generic)) plan.apply.push(change);
    else plan.refuse.push({ path: change.path, why: RESTART.find((r) => matchesPrefix(generic, r.prefix))!.why });
  }
  return plan;
}

/** What the planner applies live, for docs and `haoscar reload --help`: each pattern and what it is. */
export function liveSettings(): readonly { pattern: string; what: string }[] {
  return LIVE;
}

/**
 * The changed leaves of two configurations. A list of named items (nodes, groups, resources,
 * file sets) is compared by name: a name added, removed or moved is one change of the list
 * itself; otherwise each item is compared by its name. Other lists (addresses, commands,
 * options) are compared whole.
 */
export function differences(a: unknown, b: unknown, path = ''): ReloadChange[] {
  if (Array.isArray(a) && Array.isArray(b) && isNamedList(a) && isNamedList(b)) {
    const names = (l: { name: string }[]) => l.map((i) => i.name);
    if (JSON.stringify(names(a)) !== JSON.stringify(names(b))) return [{ path, from: names(a), to: names(b) }];
    return a.flatMap((item, i) => differences(item, b[i], `${path}[${item.name}]`));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => differences(a[k], b[k], path === '' ? k : `${path}.${k}`));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [{ path, from: a, to: b }];
}

function isNamedList(list: unknown[]): list is { name: string }[] {
  return list.length > 0 && list.every((i) => isPlainObject(i) && typeof i.name === 'string');
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `groups[web].resources[httpd].check.rise` → `groups[*].resources[*].check.rise`. */
function generalise(path: string): string {
  return path.replace(/\[[^\]]*\]/g, '[*]');
}

function matchesPrefix(path: string, prefix: string): boolean {
  return prefix === '' || path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`);
}
