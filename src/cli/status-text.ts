/**
 * `haoscar status`'s text: pure, so that it can be tested without a controller. Every string in
 * the controller's state can come from outside (node names and details reported by agents,
 * operators' notes, workflow IDs), so each line is made printable before it reaches a terminal:
 * an escape sequence in a detail must not clear the screen or rewrite what the operator reads.
 */
import type { GroupOwnership, Ownership } from '../../workflows/shared.js';
import { describeBlock } from '../../workflows/old-owner-plan.js';
import { DOWN_RETRY_MAX_MS, type ControllerGroup } from '../../workflows/group-plan.js';
import { describeLeaseMismatch, leaseMismatches } from '../../workflows/announce-plan.js';
import type { LocalStatus } from '../agent/local-status.js';
import type { RunningHeal } from './running-heals.js';
import { formatDuration } from '../config/duration.js';

/**
 * What the operator must fix, each as one sentence: today, nodes that announced lease settings
 * other than the workflow worker's (a rolling change not finished, or a haoscar.yaml that differs).
 * Printed first by `haoscar status`, and in its JSON output as `warnings`.
 */
export function statusWarnings(state: Ownership): string[] {
  const leases = state.leases;
  if (!leases) return [];
  const mismatches = leaseMismatches(leases.worker, leases.nodes);
  return mismatches.length > 0 ? [describeLeaseMismatch(leases.worker, mismatches)] : [];
}

/**
 * Control characters (C0 but tab, DEL, C1) and the bidirectional-text controls that reorder what
 * a terminal shows, written as visible escapes (\x1b, \u202e).
 */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/**
 * Why a group the controller has as running may not be served now, or undefined: its owner is
 * not up as the controller last heard (its peers suspect it, or nobody has reported it since the
 * controller started), or its renewals are blocked for an operation about to start. The
 * controller's "running" is what it decided, not what it sees: the owner serves the group only
 * while its lease holds, and it confirms its lease with the controller. Pure.
 */
export function runningCaveat(g: GroupOwnership, nodes: Ownership['nodes'], now: number): string | undefined {
  if (g.state !== 'running' || g.owner === null) return undefined;
  const ago = (t: number) => `${Math.max(0, Math.round((now - t) / 1000))}s ago`;
  const n = nodes[g.owner];
  if (n?.state !== 'up') {
    const seen = n ? `${n.state} since ${ago(n.since)} (${n.reportedBy})` : 'not known to the controller';
    return `NOT CONFIRMED: its owner ${g.owner} is ${seen}; it serves the group only while its lease holds`;
  }
  if (!g.renewable && !g.operation) return `its owner's lease is not renewed since ${ago(g.blockedSince ?? g.since)}: an operation is about to move it`;
  return undefined;
}

/** The status report, one printable line per entry, ending with a newline. */
export function formatStatus(state: Ownership, now: number): string {
  const ago = (t: number) => `${Math.max(0, Math.round((now - t) / 1000))}s ago`;
  const inS = (t: number) => `in ${Math.max(0, Math.round((t - now) / 1000))}s`;
  const lines: string[] = [`cluster ${state.cluster}`, ...statusWarnings(state).map((w) => `  WARNING: ${w}`), '  nodes:'];
  const m = state.maintenance;
  const markText = (k: { at: number; operator: string; reason?: string }) => `by ${k.operator} ${ago(k.at)}${k.reason ? `: ${k.reason}` : ''}`;
  for (const [name, n] of Object.entries(state.nodes)) {
    lines.push(`    ${name.padEnd(16)} ${n.state.padEnd(8)} since ${ago(n.since)} (${n.reportedBy})`);
    const standby = m?.nodes[name];
    if (standby) lines.push(`      STANDBY (maintenance ${markText(standby)}): its groups move away, nothing is placed on it`);
  }
  lines.push('  groups:');
  for (const [name, g] of Object.entries(state.groups)) {
    const op = g.operation ? `, ${g.operation.kind} operation ${g.operation.workflowId} running` : '';
    lines.push(`    ${name.padEnd(16)} ${g.state.padEnd(8)} on ${(g.owner ?? '-').padEnd(12)} epoch ${g.epoch} since ${ago(g.since)}${op}`);
    const unmanaged = m?.groups[name];
    const deferred = (g as ControllerGroup).deferred;
    if (unmanaged) lines.push(`      MAINTENANCE (${markText(unmanaged)}): unmanaged — no heals, no automatic failover${deferred ? `; asked for meanwhile: ${deferred.kind} (${deferred.reason})` : ''}`);
    const caveat = runningCaveat(g, state.nodes, now);
    if (caveat) lines.push(`      ${caveat}`);
    // A failed stop is not a stop: the operation waits, and says for what.
    const blocked = g.operation?.blocked;
    if (blocked) lines.push(`      BLOCKED since ${ago(blocked.since)}: ${describeBlock(name, blocked, now)}`);
    if (g.lost) lines.push(`      lost by ${g.lost.node} at epoch ${g.lost.epoch} ${ago(g.lost.at)} (${g.lost.detail}): started again when the operation ends`);
    if (g.retry) lines.push(`      down: tried again ${inS(g.retry.at)} while a node of it is up (${Math.round(g.retry.delayMs / 1000)}s after the last try, doubling up to ${DOWN_RETRY_MAX_MS / 60_000} min)`);
  }
  for (const f of state.falseAlarms.slice(-5)) lines.push(`  false alarm: ${f.group} on ${f.node} ${ago(f.at)}: ${f.detail}`);
  for (const c of (state.confirmedDown ?? []).slice(-5)) {
    const groups = c.unblocked.map((u) => u.group).join(', ') || 'nothing';
    lines.push(`  confirmed down: ${c.node} by ${c.operator} ${ago(c.at)}${c.detail ? ` (${c.detail})` : ''}; unblocked ${groups}`);
  }
  // Agents' reports the controller refused (no MAC, a wrong one, or a replay): nothing changed by them.
  const reports = state.reports;
  if (reports && reports.refused > 0) {
    lines.push(`  refused reports: ${reports.refused} (unsigned, signed with another secret, or replayed; they changed nothing: docs/security.md)`);
    for (const r of reports.lastRefused.slice(-3)) lines.push(`    ${r.signal} from ${r.sender} ${ago(r.at)}: ${r.why}`);
  }
  return lines.map(printable).join('\n') + '\n';
}

/** Milliseconds as the status shows them: 850ms, 12s, 5m, 3h. */
function span(msValue: number): string {
  const abs = Math.abs(msValue);
  if (abs < 1000) return `${Math.round(msValue)}ms`;
  if (abs < 120_000) return `${Math.round(msValue / 1000)}s`;
  if (abs < 2 * 3600_000) return `${Math.round(msValue / 60_000)}m`;
  return `${Math.round(msValue / 3600_000)}h`;
}

/**
 * What the node knows by itself (its agent's local status: heartbeats, leases, guard, checks, file
 * sets), one printable line per entry, ending with a newline. Pure.
 */
export function formatLocalStatus(local: LocalStatus): string {
  const lines: string[] = [`this node ${local.node} (agent pid ${local.pid}, release ${local.release}): ${local.phase}`];
  // A refused reload leaves the file on disk different from what runs: a restart would apply it (docs/reload.md).
  const reload = local.reload?.last;
  if (reload) {
    const ago = span(local.at - reload.at);
    const loaded = local.config ? `; it runs the configuration loaded ${span(local.at - local.config.loadedAt)} ago` : '';
    if (reload.result === 'refused') lines.push(`  LAST RELOAD REFUSED ${ago} ago: ${reload.refused.map((r) => `${r.path} needs a restart`).join(', ')}${loaded}`);
    else if (reload.result === 'invalid') lines.push(`  LAST RELOAD REFUSED ${ago} ago: the file is invalid${loaded}`);
    else lines.push(`  last reload ${ago} ago: ${reload.result === 'applied' ? `applied ${reload.applied.map((c) => c.path).join(', ')}` : 'nothing to change'}`);
  }
  if (local.heartbeat) {
    const rejected = Object.entries(local.heartbeat.rejected).map(([why, n]) => `${why} ${n}`).join(', ');
    lines.push(`  heartbeats: ${local.heartbeat.sent} sent, ${local.heartbeat.accepted} accepted${rejected ? `, rejected: ${rejected}` : ', none rejected'}`);
    // Secrets are named only while a rotation is under way (docs/reload.md#rotating-the-cluster-secret).
    const keys = local.heartbeat.keys ?? [];
    const rotating = keys.length > 1 || local.heartbeat.peers.some((p) => (p.signsWith !== undefined && p.signsWith !== keys[0]) || (p.acceptsKeys?.length ?? 0) > 1);
    if (rotating) lines.push(`  cluster secret: SECRET ROTATION UNDER WAY: signs with ${keys[0] ?? '?'}${keys.length > 1 ? `, also accepts ${keys.slice(1).join(', ')}` : ', accepts no other'}`);
    for (const p of local.heartbeat.peers) {
      const heard = p.lastHeardAgoMs === undefined ? 'never heard' : `last heard ${span(p.lastHeardAgoMs)} ago`;
      const protocol = p.protocol === undefined ? '' : `, protocol ${p.protocol}${p.protocolProblem ? ` (${p.protocolProblem})` : ''}`;
      const config = p.configMatches === undefined ? '' : p.configMatches ? ', same configuration' : `, CONFIGURATION DIFFERS (digest ${p.configDigest}, this node ${local.heartbeat.configDigest})`;
      const secret = !rotating || p.signsWith === undefined ? '' : `, signs with ${p.signsWith}${p.acceptsKeys ? ` (accepts ${p.acceptsKeys.join(', ')})` : ''}`;
      lines.push(`    ${p.node.padEnd(16)} ${p.state.padEnd(8)} ${heard}${protocol}${config}${secret}`);
      for (const l of p.links) lines.push(`      link ${l.link} ${l.alive ? 'alive' : 'SILENT'}${l.lastHeardAgoMs === undefined ? '' : ` (last heard ${span(l.lastHeardAgoMs)} ago)`}`);
    }
  }
  if (local.held.length === 0) lines.push('  holds no group');
  for (const h of local.held) {
    const lease = h.lease ? (h.lease.failSafe ? `FAIL-SAFE: serving without a confirmed lease (Temporal unreachable, every peer heard)` : `lease runs ${h.lease.expiresInMs >= 0 ? `${span(h.lease.expiresInMs)} more` : `out (${span(-h.lease.expiresInMs)} ago)`}`) : 'no lease';
    lines.push(`  holds ${h.group} at epoch ${h.epoch}: ${h.state}; ${lease}${h.failure ? `; ${h.failure}` : ''}`);
  }
  for (const r of local.resources) {
    lines.push(`  resource ${r.group}/${r.resource}: ${r.status}${r.failures > 0 ? ` (${r.failures} failed check(s) in a row)` : ''}: ${r.detail}`);
  }
  if (local.guard) {
    const g = local.guard;
    lines.push(`  lease guard: ${g.ok ? `running (pid ${g.pid}, watchdog ${g.watchdog})` : `NOT RUNNING: ${g.why}`}`);
    for (const held of g.groups) {
      lines.push(`    ${held.group} epoch ${held.epoch}: ${held.status}${held.status === 'held' ? `, released in ${span(held.deadlineInMs)} unless renewed` : ''}${held.detail ? ` (${held.detail})` : ''}`);
    }
  }
  for (const f of local.fileSets) {
    const last = f.lastSuccessAt === undefined ? 'never synced' : `last synced ${span(local.at - f.lastSuccessAt)} ago`;
    const lag = f.lagMs === undefined ? '' : `, lag ${span(f.lagMs)}`;
    lines.push(`  file set ${f.group}/${f.set}: ${f.role}${f.source ? ` from ${f.source}` : ''}, generation ${f.generation}, ${last}${lag}${f.lastError ? `; LAST ERROR: ${f.lastError}` : ''}`);
  }
  return lines.map(printable).join('\n') + '\n';
}

/** Monitoring-plugin exit codes (Nagios, Icinga, Sensu, Checkmk). */
export const CHECK = { ok: 0, warning: 1, critical: 2, unknown: 3 } as const;
export type CheckCode = (typeof CHECK)[keyof typeof CHECK];

export interface CheckVerdict {
  code: CheckCode;
  /** One line, as monitoring plugins print it: `HAOSCAR OK - ...`. */
  line: string;
  problems: { level: 'critical' | 'warning'; what: string }[];
}

/**
 * `haoscar status --check`: CRITICAL when a group is down, unplaced, moving or failed on its node;
 * WARNING when the cluster is degraded (a node not up, a heartbeat link silent, a lease served under
 * the fail-safe, a file set whose last sync failed or lags more than `maxLagMs`, the guard not
 * running, lease settings that differ); UNKNOWN when the controller gives no answer (`unreachable`:
 * why). What the node knows by itself counts when it is known. Pure.
 */
export function statusCheck(controller: Ownership | undefined, local: LocalStatus | undefined, opts: { unreachable?: string; maxLagMs: number }): CheckVerdict {
  const problems: CheckVerdict['problems'] = [];
  const critical = (what: string) => problems.push({ level: 'critical', what });
  const warning = (what: string) => problems.push({ level: 'warning', what });
  if (controller) {
    for (const [name, g] of Object.entries(controller.groups)) {
      if (g.state !== 'running' || g.owner === null) critical(`group ${name} is ${g.state}${g.owner ? ` (owner ${g.owner})` : ''}`);
      else if (controller.nodes[g.owner]?.state !== 'up') critical(`group ${name}: its owner ${g.owner} is not up`);
    }
    for (const [name, n] of Object.entries(controller.nodes)) if (n.state !== 'up') warning(`node ${name} is ${n.state}`);
    // Unmanaged or in standby: nothing fails over by itself until `maintenance off`.
    for (const name of Object.keys(controller.maintenance?.groups ?? {})) warning(`group ${name} is in maintenance (unmanaged)`);
    for (const name of Object.keys(controller.maintenance?.nodes ?? {})) warning(`node ${name} is in standby (maintenance)`);
    for (const w of statusWarnings(controller)) warning(w);
  }
  if (local) {
    const held = new Set(local.held.map((h) => h.group));
    for (const r of local.resources) if (held.has(r.group) && r.status === 'failing') critical(`resource ${r.group}/${r.resource} fails on ${local.node}: ${r.detail}`);
    for (const h of local.held) {
      if (h.state === 'failed') critical(`group ${h.group} failed on ${local.node}${h.failure ? `: ${h.failure}` : ''}`);
      if (h.lease?.failSafe) warning(`${local.node} serves ${h.group} under the fail-safe (no confirmed lease)`);
    }
    for (const p of local.heartbeat?.peers ?? []) {
      if (p.configMatches === false) warning(`${p.node}'s configuration differs from ${local.node}'s (heartbeat digests)`);
      if (p.state !== 'alive') warning(`${local.node} does not hear ${p.node}`);
      else for (const l of p.links) if (!l.alive) warning(`heartbeat link ${l.link} is silent`);
    }
    if (local.guard && !local.guard.ok) warning(`the lease guard of ${local.node} is not running: ${local.guard.why}`);
    for (const f of local.fileSets) {
      if (f.role !== 'standby') continue;
      if (f.lastError) warning(`file set ${f.group}/${f.set} on ${local.node}: the last sync failed: ${f.lastError}`);
      else if (f.lagMs !== undefined && f.lagMs > opts.maxLagMs) warning(`file set ${f.group}/${f.set} on ${local.node} lags ${span(f.lagMs)}`);
    }
  }
  const crit = problems.filter((p) => p.level === 'critical');
  const warn = problems.filter((p) => p.level === 'warning');
  if (crit.length > 0) return { code: CHECK.critical, line: printable(`HAOSCAR CRITICAL - ${[...crit, ...warn].map((p) => p.what).join('; ')}`), problems };
  if (!controller) return { code: CHECK.unknown, line: printable(`HAOSCAR UNKNOWN - ${opts.unreachable ?? 'the controller gave no answer'}${warn.length ? `; ${warn.map((p) => p.what).join('; ')}` : ''}`), problems };
  if (warn.length > 0) return { code: CHECK.warning, line: printable(`HAOSCAR WARNING - ${warn.map((p) => p.what).join('; ')}`), problems };
  const groups = Object.entries(controller.groups).map(([name, g]) => `${name} on ${g.owner}`).join(', ');
  return { code: CHECK.ok, line: printable(`HAOSCAR OK - ${groups || 'no groups'}; ${Object.keys(controller.nodes).length} node(s) up`), problems };
}

/**
 * The heals running now, one line each, with how much of the healing budget they used
 * ("2 of 3 restarts in the 1m window"); nothing when none runs. Pure.
 */
export function formatHeals(heals: RunningHeal[], now: number): string {
  if (heals.length === 0) return '';
  const lines = ['  heals running:'];
  for (const h of heals) {
    const budget = h.restartsInWindow === undefined ? '' : `, ${h.restartsInWindow}${h.maxRestarts !== undefined ? ` of ${h.maxRestarts}` : ''} restart(s) in the${h.windowMs !== undefined ? ` ${formatDuration(h.windowMs)}` : ''} window`;
    const last = h.lastAttempt ? `; last attempt ${span(now - h.lastAttempt.at)} ago: ${h.lastAttempt.outcome} (${h.lastAttempt.detail})` : '';
    const state = h.phase ?? `state unknown: ${h.error ?? 'no answer'}`;
    lines.push(`    ${h.group}/${h.resource} on ${h.node}: ${state}${budget}, for ${span(now - h.since)}${last} [${h.workflowId}]`);
  }
  return `${lines.map(printable).join('\n')}\n`;
}
