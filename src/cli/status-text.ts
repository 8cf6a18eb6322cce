/**
 * `haoscar status`'s text: pure, so that it can be tested without a controller. Every string in
 * the controller's state can come from outside (node names and details reported by agents,
 * operators' notes, workflow IDs), so each line is made printable before it reaches a terminal:
 * an escape sequence in a detail must not clear the screen or rewrite what the operator reads.
 */
import type { GroupOwnership, Ownership } from '../../workflows/shared.js';
import { describeBlock } from '../../workflows/old-owner-plan.js';
import { DOWN_RETRY_MAX_MS } from '../../workflows/group-plan.js';
import { describeLeaseMismatch, leaseMismatches } from '../../workflows/announce-plan.js';

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
  for (const [name, n] of Object.entries(state.nodes)) lines.push(`    ${name.padEnd(16)} ${n.state.padEnd(8)} since ${ago(n.since)} (${n.reportedBy})`);
  lines.push('  groups:');
  for (const [name, g] of Object.entries(state.groups)) {
    const op = g.operation ? `, ${g.operation.kind} operation ${g.operation.workflowId} running` : '';
    lines.push(`    ${name.padEnd(16)} ${g.state.padEnd(8)} on ${(g.owner ?? '-').padEnd(12)} epoch ${g.epoch} since ${ago(g.since)}${op}`);
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
  return lines.map(printable).join('\n') + '\n';
}
