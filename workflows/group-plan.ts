/**
 * What the controller does about a group that no operation holds, as pure functions: nothing,
 * start it again on the word of the owner that let go of it (`recover`), or place it (`place`).
 *
 * - A `groupLost` report that came while an operation held the group is kept on the group
 *   (`lost`) and looked at when the operation ends: if the node still owns the group under the
 *   epoch it reported, the operation has not handled it (a false alarm ends without touching the
 *   group), and the group is started again (`recover`). Any claim since raised the epoch: the
 *   report is then stale (lostIsCurrent), the operation has moved the group on.
 * - A group that runs nowhere yet (`unplaced`) is placed on its preferred node (the first of its
 *   nodes that is not suspect) once it is up, or on any node that is up once the controller has
 *   given the preferred one `graceMs` from its start.
 * - A group left `down` (no node could start it) is tried again at once when a node of it comes
 *   up after it went down, and otherwise, while a node of it is up, when its `retry` is due: the
 *   delay doubles with each operation that leaves it down (downRetryDelay), so that a group that
 *   cannot start anywhere is not started in a loop. None is set when the operation ended blocked
 *   on a node that failed to stop the group (retryAfter): that node still holds it.
 * - A request whose start met a workflow of the group's failover ID still running (most likely the
 *   operation that has just given the group back, its run still closing: it will not begin again)
 *   is kept on the group (`deferred`, with the owner and epoch it was made for) and tried again
 *   after START_CONFLICT_FIRST_MS, doubling (startConflictStep, deferStart); it is stale once the
 *   group has another owner or epoch (an operation moved it meanwhile). A `place` is decided again
 *   from what is known when its retry is due.
 *
 * Never two owners: a `recover` trusts the node's own report that it stopped the group at that
 * epoch (as a `groupLost` with no operation does), and only while that epoch is current; the
 * placement of a down group starts from an owner of null (the claim for nobody ended every lease
 * of the group: none is renewed), and its retry is never due before that claim's lease and margin
 * have run out (`minMs`).
 */
import type { GroupOwnership, NodeLiveness, OperationKind } from './shared.js';

/** The first retry of a group left down; each next one waits twice as long, up to the maximum. */
export const DOWN_RETRY_FIRST_MS = 5000;
export const DOWN_RETRY_MAX_MS = 300_000;
/**
 * A request (a `recover`, a `node-lost`…) whose start met a workflow of the same ID (most likely the
 * operation that has just given the group back, still closing) is tried again after this, doubling
 * up to the maximum.
 */
export const START_CONFLICT_FIRST_MS = 1000;
export const START_CONFLICT_MAX_MS = 30_000;

/** The kinds of operation the controller starts by itself (an operator starts the others). */
export type ControllerKind = Extract<OperationKind, 'node-lost' | 'heal-gave-up' | 'place' | 'recover'>;

/**
 * A request the controller could not start because a workflow of the group's failover ID was
 * still running and no workflow began the group meanwhile: tried again at `at` (`delayMs` after the
 * conflict, doubling with each one) while the group has the `owner` and `epoch` it was made for.
 */
export interface DeferredStart {
  kind: ControllerKind;
  reason: string;
  owner: string | null;
  epoch: number;
  at: number;
  delayMs: number;
}

/**
 * A group as the controller keeps it (the carried state, the ownership query's answer).
 * `deferred` belongs in shared.ts GroupOwnership; kept here while that file is being changed.
 */
export type ControllerGroup = GroupOwnership & { deferred?: DeferredStart };

type Group = Pick<ControllerGroup, 'owner' | 'epoch' | 'state' | 'since' | 'lost' | 'retry' | 'deferred'>;

export interface GroupFacts {
  group: Group;
  /** An operation holds the group, or one was asked for and has not started yet. */
  busy: boolean;
  /**
   * The group is in maintenance (maintenance-plan.ts): nothing is started for it by itself; its
   * `lost` report or `deferred` request is looked at once maintenance ends. Absent: not.
   */
  maintenance?: boolean;
  /** The group's nodes in preference order, with what the controller knows of each (none: not in its state). */
  nodes: { name: string; liveness?: Pick<NodeLiveness, 'state' | 'since'> }[];
  /** Workflow time this controller run started (a cold start's grace for the preferred node counts from it). */
  startedAt: number;
  graceMs: number;
  /** Workflow time now. */
  now: number;
}

export type GroupStep =
  /** An operation holds the group (or is about to): it decides; a `lost` report waits for its end. */
  | { step: 'busy' }
  /** Nothing to do now; look again at `wakeAt` (a retry that is due then). */
  | { step: 'none'; wakeAt?: number }
  /** Start a failover of this kind. */
  | { step: 'start'; kind: ControllerKind; reason: string };

/** The group's `lost` report still stands: the node it names owns the group under the epoch it reported. Pure. */
export function lostIsCurrent(g: Pick<GroupOwnership, 'owner' | 'epoch' | 'lost'>): boolean {
  return g.lost !== undefined && g.owner === g.lost.node && g.epoch === g.lost.epoch;
}

/** The group's `deferred` request still stands: the group has the owner and epoch it was made for. Pure. */
export function deferredIsCurrent(g: Pick<ControllerGroup, 'owner' | 'epoch' | 'deferred'>): boolean {
  return g.deferred !== undefined && g.owner === g.deferred.owner && g.epoch === g.deferred.epoch;
}

/** What the controller does about the group now. Pure. */
export function groupStep(f: GroupFacts): GroupStep {
  const g = f.group;
  if (f.busy) return { step: 'busy' };
  if (f.maintenance) return { step: 'none' };
  if (g.lost && lostIsCurrent(g)) {
    if (g.lost.retryAt !== undefined && f.now < g.lost.retryAt) return { step: 'none', wakeAt: g.lost.retryAt };
    return { step: 'start', kind: 'recover', reason: `${g.lost.node} stopped the group at epoch ${g.lost.epoch} while an operation held it: ${g.lost.detail}` };
  }
  const d = g.deferred;
  if (d && deferredIsCurrent(g)) {
    if (f.now < d.at) return { step: 'none', wakeAt: d.at };
    // A placement is decided again below, from what is known now.
    if (d.kind !== 'place') return { step: 'start', kind: d.kind, reason: d.reason };
  }
  if (g.owner !== null && g.state !== 'down') return { step: 'none' };
  const up = f.nodes.filter((n) => n.liveness?.state === 'up');
  if (g.state === 'down') {
    // As before the retries (the reason is in recorded histories' failover inputs).
    if (up.some((n) => n.liveness!.since > g.since)) return { step: 'start', kind: 'place', reason: 'a node of the group is up again' };
    if (!g.retry || up.length === 0) return { step: 'none' };
    if (f.now < g.retry.at) return { step: 'none', wakeAt: g.retry.at };
    return { step: 'start', kind: 'place', reason: `the group is down with ${up.map((n) => n.name).join(', ')} up: trying again (${Math.round(g.retry.delayMs / 1000)}s after the last try)` };
  }
  const first = f.nodes.find((n) => n.liveness?.state !== 'suspect');
  if (first === undefined) return { step: 'none' };
  const runsNowhere = { step: 'start', kind: 'place', reason: 'the group runs nowhere yet' } as const;
  if (first.liveness?.state === 'up') return runsNowhere;
  // At a cold start the agents come up one by one: give the preferred node a moment, so that a
  // group does not land on its second choice just because that agent was quicker.
  return f.now - f.startedAt >= f.graceMs && up.length > 0 ? runsNowhere : { step: 'none' };
}

/**
 * The delay before a group left down is tried again, given the delay before the last try (none:
 * it has just gone down): DOWN_RETRY_FIRST_MS, doubling up to DOWN_RETRY_MAX_MS, never less than
 * `minMs` (the lease and its margin). Pure.
 */
export function downRetryDelay(previousMs: number | undefined, minMs: number): number {
  const delay = previousMs === undefined ? DOWN_RETRY_FIRST_MS : Math.min(previousMs * 2, DOWN_RETRY_MAX_MS);
  return Math.max(delay, minMs);
}

export interface EndedOperation {
  /** The group's state once the operation has ended. */
  state: GroupOwnership['state'];
  /**
   * It ended (cancelled) while blocked on a node that failed to stop the group: that node still
   * holds it (docs/failover.md, a failed stop is not a stop), and nothing is placed on top of it
   * by itself. An operator moves it (`haoscar failover`) once the node is dealt with.
   */
  endedBlocked: boolean;
  /** The group's retry before (its delay doubles). */
  previous: GroupOwnership['retry'];
  now: number;
  /** The lease and its margin. */
  minMs: number;
}

/**
 * The group's retry after an operation ended: a group left down is tried again downRetryDelay
 * after `now`, unless the operation ended blocked; any other state has none. Pure.
 */
export function retryAfter(e: EndedOperation): GroupOwnership['retry'] {
  if (e.state !== 'down' || e.endedBlocked) return undefined;
  const delayMs = downRetryDelay(e.previous?.delayMs, e.minMs);
  return { at: e.now + delayMs, delayMs };
}

/** The delay before a request whose start conflicted is tried again, given the last one (none: the first conflict). Pure. */
export function startConflictDelay(previousMs: number | undefined): number {
  return previousMs === undefined ? START_CONFLICT_FIRST_MS : Math.min(previousMs * 2, START_CONFLICT_MAX_MS);
}

export interface StartConflict {
  kind: ControllerKind;
  /** The group has a `lost` report that still stands (lostIsCurrent). */
  lostCurrent: boolean;
  /** A workflow began the group (beginOperation) after the request was made, before its start was sent. */
  begunBefore: boolean;
  /** A workflow began the group while the start was under way. */
  begunDuring: boolean;
  /** workflows/controller.ts PATCH_START_CONFLICT; false when a recorded history is replayed. */
  patched: boolean;
}

/**
 * What the controller does when the start of a failover met a workflow of the same ID
 * (WorkflowExecutionAlreadyStarted). Pure.
 * - `keep-lock`: a workflow of the group began: it holds the group (the lock just taken) and gives
 *   it back when it ends. Recorded histories (not `patched`) did so for every kind but the next.
 * - `retry-lost`: a `recover` of a lost report that stands: unlocked, tried again at `lost.retryAt`.
 * - `defer`: no workflow began, so the one running (most likely the operation that has just given
 *   the group back, still closing) will not use the lock: unlocked, the request kept (deferStart)
 *   and tried again. An operator's failover that has not begun yet takes the group with its
 *   beginOperation, and the deferred request is then looked at when it ends.
 */
export function startConflictStep(c: StartConflict): 'keep-lock' | 'retry-lost' | 'defer' {
  if (!c.patched) return c.kind === 'recover' && c.lostCurrent && !c.begunDuring ? 'retry-lost' : 'keep-lock';
  if (c.begunBefore || c.begunDuring) return 'keep-lock';
  return c.kind === 'recover' && c.lostCurrent ? 'retry-lost' : 'defer';
}

/**
 * The request kept after its start conflicted: for the group's owner and epoch now, tried again
 * startConflictDelay after `now` (doubling on the delay of one deferred before that still stands). Pure.
 */
export function deferStart(g: Pick<ControllerGroup, 'owner' | 'epoch' | 'deferred'>, request: { kind: ControllerKind; reason: string }, now: number): DeferredStart {
  const delayMs = startConflictDelay(deferredIsCurrent(g) ? g.deferred!.delayMs : undefined);
  return { kind: request.kind, reason: request.reason, owner: g.owner, epoch: g.epoch, at: now + delayMs, delayMs };
}

/**
 * The nodes that could take a group over from `owner` after its heal gave up: the group's other
 * nodes whose agents are up. None: a `heal-gave-up` failover could change nothing, and would only
 * block the owner's renewals while it ran (the owner then lost its lease, and a `recover` started
 * the group again with a fresh heal budget: a restart loop). Pure.
 */
export function healGaveUpTakers(groupNodes: readonly string[], liveness: Readonly<Record<string, Pick<NodeLiveness, 'state'> | undefined>>, owner: string): string[] {
  return groupNodes.filter((n) => n !== owner && liveness[n]?.state === 'up');
}

