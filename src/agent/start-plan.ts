/**
 * What a starting agent does with what an earlier agent of this node left running, and what it
 * tells the controller (docs/failover.md, "After a power cut"). Pure: the caller asks the
 * controller, the lease guard and the resources' drivers, and applies the plan.
 *
 * - A group is kept (adopted, nothing restarts) only when the controller's answer names this
 *   node its owner with renewals allowed (no operation is moving it), the lease guard has not
 *   released it under that epoch, and every resource of it still runs. The answer confirms the
 *   lease as of when the question was sent, as a renewal does.
 * - Everything else is stopped.
 * - A group the controller has here under epoch E and that is stopped is reported LOST at E
 *   (the `groupLost` signal, one per group): the controller starts it again (a `recover`), or,
 *   while an operation holds it, looks at it when the operation ends. Per group, so that a
 *   group adopted beside it is left alone.
 * - When no answer came (Temporal unreachable, no workflow worker, a worker too slow), the
 *   node cannot know what it owned, adopts nothing and holds nothing: its "up" edge says it
 *   RESTARTED, and the controller starts again every group it had on it. Without that word, a
 *   controller that had the group running here kept it so for ever, while nothing ran it
 *   (issue 9 item 6). A node that owned nothing is unaffected by it: the controller acts on
 *   it only for the groups it has on that node.
 */
import type { GroupOwnership } from '../../workflows/shared.js';

export interface StartGroupFacts {
  name: string;
  /** The lease guard's record of the group from an earlier agent (absent: none, or no guard). */
  guarded?: { epoch: number; status: 'held' | 'released' | 'failed' };
  /** Every resource of the group reports running now. */
  allRunning: boolean;
}

export interface StartFacts {
  node: string;
  /** The controller's answer to the start-up question; undefined: none came. */
  answer: { groups: Record<string, Pick<GroupOwnership, 'owner' | 'epoch' | 'renewable'>> } | undefined;
  /** The groups this node may run. */
  groups: readonly StartGroupFacts[];
}

export interface StartPlan {
  /** Groups adopted as they run, with their epoch. */
  keep: Map<string, number>;
  /** Whether the "up" edge says the node restarted: no answer came, it holds nothing. */
  restarted: boolean;
  /** Groups the controller has here that are stopped: each reported lost at its epoch, with why. */
  dropped: { group: string; epoch: number; why: string }[];
}

/** The start-up plan. Pure. */
export function startPlan(f: StartFacts): StartPlan {
  const keep = new Map<string, number>();
  const dropped: StartPlan['dropped'] = [];
  for (const g of f.groups) {
    const truth = f.answer?.groups[g.name];
    if (truth?.owner !== f.node) continue;
    if (!truth.renewable) {
      // An operation may be moving it: its lease is not being renewed.
      dropped.push({ group: g.name, epoch: truth.epoch, why: `an operation may be moving it (renewals blocked at epoch ${truth.epoch})` });
      continue;
    }
    const released = g.guarded !== undefined && g.guarded.epoch === truth.epoch && g.guarded.status !== 'held';
    if (released) dropped.push({ group: g.name, epoch: truth.epoch, why: `the lease guard ${g.guarded!.status === 'failed' ? 'failed to release' : 'released'} it at epoch ${truth.epoch}` });
    else if (!g.allRunning) dropped.push({ group: g.name, epoch: truth.epoch, why: 'not every resource of it runs' });
    else keep.set(g.name, truth.epoch);
  }
  return { keep, restarted: f.answer === undefined, dropped };
}
