/**
 * What the controller does with what a node announces about itself (NodeAnnouncement: the groups
 * it holds with their epochs, the highest epoch it has seen of each, the lease it enforces), as
 * pure functions. This is how a controller that lost Temporal's data (a deleted SQLite file, a
 * fresh database: every group `unplaced` at epoch 0) rebuilds ownership from the nodes, and how an
 * epoch a node has seen is never handed out again (docs/temporal.md, docs/failover.md).
 *
 * In normal operation none of this changes anything: epochs are only ever raised by the
 * controller, so a node never holds or has seen an epoch above the controller's, and the node
 * holding the group at the controller's epoch is its owner. Only a controller that is behind
 * (lost its data) meets the cases below:
 *
 * - `adopt`: the node holds the group, running, under an epoch above the controller's (or equal to
 *   it while the controller records no owner: an epoch raised by another node's `seen`): the group
 *   is owned by that node at that epoch, running. Of two nodes that hold it, the higher epoch wins
 *   (the lower one's next lease round finds another owner and stops it).
 * - `conflict`: the node holds the group, running, under the very epoch at which the controller
 *   records another owner. Two nodes under one epoch should not happen (one claim, one owner);
 *   neither is trusted: the group is claimed for nobody at epoch + 1 (both stop at their next lease
 *   round, or when their lease runs out), and it is placed again once the largest lease and margin
 *   have run out.
 * - `raise`: the node has seen (or holds, not running) an epoch above the controller's: the epoch
 *   is raised to it, so the next claim is above every epoch any node has seen. An owner recorded
 *   under the lower epoch is stale (another claim came after it): it is dropped, the group `down`.
 */
import type { GroupOwnership, LeaseTiming } from './shared.js';

export type AnnounceStep =
  | { step: 'none' }
  | { step: 'adopt'; owner: string; epoch: number }
  | { step: 'conflict'; epoch: number; holders: [string, string] }
  | { step: 'raise'; epoch: number; dropOwner: boolean };

export interface AnnouncedGroup {
  /** The announcing node. */
  node: string;
  /** The group as the node holds it, if it does. */
  holds?: { epoch: number; state: string };
  /** The highest epoch of the group the node has seen (persisted across its agent's restarts). */
  seen?: number;
}

/** What the controller does about one group given one node's announcement. Pure. */
export function announceStep(g: Pick<GroupOwnership, 'owner' | 'epoch'>, a: AnnouncedGroup): AnnounceStep {
  const held = a.holds;
  if (held && held.state === 'running') {
    if (held.epoch > g.epoch || (held.epoch === g.epoch && g.owner === null)) return { step: 'adopt', owner: a.node, epoch: held.epoch };
    if (held.epoch === g.epoch && g.owner !== a.node) return { step: 'conflict', epoch: g.epoch + 1, holders: [g.owner!, a.node] };
  }
  const floor = Math.max(a.seen ?? 0, held?.epoch ?? 0);
  if (floor > g.epoch) return { step: 'raise', epoch: floor, dropOwner: g.owner !== null };
  return { step: 'none' };
}

/** One node whose announced lease differs from the worker's configured one. */
export interface LeaseMismatch extends LeaseTiming {
  node: string;
}

/** The nodes whose announced lease differs from the worker's, in name order. Pure. */
export function leaseMismatches(worker: LeaseTiming, nodes: Readonly<Record<string, LeaseTiming>>): LeaseMismatch[] {
  return Object.entries(nodes)
    .filter(([, l]) => l.ttlMs !== worker.ttlMs || l.marginMs !== worker.marginMs)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([node, l]) => ({ node, ttlMs: l.ttlMs, marginMs: l.marginMs }));
}

/** "lease settings differ: the workflow worker has ttl 600ms, margin 100ms; n1 enforces ttl 3000ms, margin 500ms". Pure. */
export function describeLeaseMismatch(worker: LeaseTiming, mismatches: readonly LeaseMismatch[]): string {
  const nodes = mismatches.map((m) => `${m.node} enforces ttl ${m.ttlMs}ms, margin ${m.marginMs}ms`).join('; ');
  return `lease settings differ: the workflow worker has ttl ${worker.ttlMs}ms, margin ${worker.marginMs}ms; ${nodes}. Failovers wait out the largest; make every haoscar.yaml the same`;
}
