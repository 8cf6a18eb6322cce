/**
 * failover: move a group to another node, as a saga. Started by the controller (an owner went
 * silent, a heal gave up, a group runs nowhere), by `haoscar failover`, or from the UI.
 *
 * 1. Ask the controller for the group (one operation per group; the owner's lease stops
 *    being renewed from then on, if it was not already).
 * 2. The old owner: when it is suspect, ask it through its own task queue whether it is
 *    there (for `failover.verifyTimeout`, timed in a worker); if it answers holding the group,
 *    that is a false alarm: record it and stop (answering without it: nothing to wait for).
 *    Otherwise (operator, heal gave up, switchover) ask it to stop the group in reverse order;
 *    a switchover then pulls the group's file sets to the target one last time (the owner
 *    has stopped writing), and tries the target first, then the old owner.
 * 3. If it neither answered nor stopped: fence it when a fence agent is configured.
 *    If its stop FAILED (`StopFailed`), or it answered holding the group in state 'failed', it
 *    still holds the group and its lease does not make it safe (old-owner-plan.ts): nothing is
 *    started on top of it (not even on it), and the failover is BLOCKED until a fence succeeds,
 *    an armed watchdog's timeout has passed on top of the lease, or an operator confirms the
 *    node down (`confirmDown` on the controller, which signals `confirmedDown` here).
 * 4. For each candidate node (preference order, or `to`): epoch+1 with that node as owner;
 *    wait out the old owner's lease unless it stopped or was fenced; start the resources in
 *    order, each verified by its check; on any error stop what was started, in reverse, and
 *    try the next node (not after a StaleEpoch: a newer epoch or a peer's claim is in the way,
 *    and the group is left down rather than run twice).
 *
 * Every activity that touches a node's resources carries the epoch; the node refuses an
 * epoch older than one it has seen.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  workflowInfo,
} from '@temporalio/workflow';
import type { ClusterActivities } from '../activities/cluster.js';
import type { ControllerActivities } from '../activities/controller.js';
import type { OwnershipActivities } from '../activities/ownership.js';
import type { MonotonicMark } from '../src/monotonic-mark.js';
import { confirmedDownSchema, describeIssues, failoverInputSchema, failoverKindRefusal, parseWorkflowInput } from './inputs.js';
import { groupOf, tagIfUntagged } from './layout.js';
import { describeBlock, leaseToWaitOut, oldOwnerStep, type OldOwnerFacts, type OldOwnerReport } from './old-owner-plan.js';
import { syncOn } from './resync.js';
import { authenticAnswer, pingNonce, signed } from './auth.js';
import { describeRefusals, planSyncCandidates } from './sync-lag-plan.js';
import { PATCH_STORY, says, shortDuration, tellOutcome, tellTrigger } from './story.js';
import type { SyncActivities } from '../activities/sync.js';
import {
  confirmedDownSignal,
  controllerWorkflowId,
  DEFAULT_MAX_SYNC_LAG,
  ERROR_TYPES,
  failoverStatusQuery,
  nodeTaskQueue,
  switchoverWorkflowId,
  type BlockedOn,
  type CandidateSyncState,
  type ConfirmedDown,
  type EndOperation,
  type FailoverResult,
  type FailoverStatus,
  type LeaseTiming,
} from './shared.js';

/**
 * Recorded histories from before "a failed stop is not a stop" replay without it: a StopFailed
 * (or a 'failed' answer) then was handled as any failed stop (a lease wait, or the way back).
 */
export const PATCH_FAILED_STOP = 'failover-failed-stop-blocks';
/** Past this many events a blocked failover stops retrying its fence agent (it still waits for the rest). */
const MAX_BLOCKED_HISTORY_EVENTS = 5000;

const local = proxyLocalActivities<ClusterActivities & ControllerActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '100ms', maximumInterval: '2 seconds', maximumAttempts: 20, nonRetryableErrorTypes: [ERROR_TYPES.OperationInProgress, ERROR_TYPES.StaleEpoch, ERROR_TYPES.UnknownGroup, ERROR_TYPES.WrongCluster] },
});

/** Timing measured in a worker's process, on the cluster's queue (any workflow worker). */
const timers = proxyActivities<ClusterActivities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 3 } });

/** What the activities of a node look like to this workflow: its own queue, no retries (the saga decides). */
function onNode(cluster: string, node: string, scheduleToCloseMs: number, opts: { heartbeat?: boolean } = {}) {
  return proxyActivities<OwnershipActivities>({
    taskQueue: nodeTaskQueue(cluster, node),
    scheduleToCloseTimeout: scheduleToCloseMs,
    ...(opts.heartbeat ? { heartbeatTimeout: NODE_HEARTBEAT_TIMEOUT_MS } : {}),
    retry: { maximumAttempts: 1 },
  });
}

const STOP_TIMEOUT_MS = 60_000;
/**
 * A candidate that did not answer its start order (or the undoing of it) is treated as a silent
 * old owner: claimed for nobody, its lease waited out (or it is fenced) before the next candidate
 * starts. Before, the next one was started at once, though the silent one might run part of the
 * group until its lease ran out.
 */
export const PATCH_UNANSWERED_START = 'failover-unanswered-start-waits';
/**
 * A failover that ends early (cancelled, or failed half-way) after it changed something undoes
 * what it started on a candidate, claims the group for nobody, waits out the lease and ends it
 * `down` (earlyEnd()). Before, it ended `unchanged`: the group stayed `moving` on a candidate
 * that ran part of it.
 */
const PATCH_EARLY_END = 'failover-early-end-compensates';
/**
 * The old lease is waited out as ttl + margin counted on one worker process's monotonic clock
 * from when the block was committed (src/monotonic-mark.ts), not until `blockedSince + ttl +
 * margin`, which compared the controller's clock with the failover's (issue 9 item 1).
 */
export const PATCH_MONOTONIC_LEASE_WAIT = 'failover-monotonic-lease-wait';
/**
 * The lease waited out is the largest of this worker's configured one, the controller's answer
 * (its worker's, and every one the group's nodes announced they enforce) and the one a node's ping
 * answer announced (issue 9 item 2): a rolling change of `lease` does not shorten the wait below
 * what a holder really enforces. Before, this worker's configuration alone.
 */
export const PATCH_ANNOUNCED_LEASE = 'failover-announced-lease';
/** The internal kinds (recover, node-lost, place, heal-gave-up, switchover) are refused from outside (failoverKindRefusal). */
const PATCH_KIND_STARTER = 'failover-kind-starter';
/**
 * How long a node's agent may go without a heartbeat in a start or stop order before the
 * failover gives up on it (its activities heartbeat every second): an agent that died or hung
 * mid-order is noticed in seconds, not at the order's schedule-to-close timeout (a minute).
 */
export const NODE_HEARTBEAT_TIMEOUT_MS = 10_000;
/**
 * A node-lost verification decides on everything its workflow task holds: an answer that arrived
 * counts, even with the pause over in the same activation (verify()). Without it, a retried task
 * could decide "gone" after the first try had ended the operation as a false alarm.
 */
export const PATCH_VERIFY_ANSWER_WINS = 'failover-verify-answer-wins';
/**
 * Authenticated messages (docs/security.md, issue 9 item 9): a node-lost verification sends a
 * fresh nonce with its ping and counts an answer only if the node's MAC over it verifies; every
 * order to a node carries the worker's MAC (workflows/auth.ts). Histories from before it replay
 * with unauthenticated pings and orders.
 */
export const PATCH_AUTHENTICATED_MESSAGES = 'failover-authenticated-messages';
/** The longest pause a local activity (10 s startToClose) runs with room to spare under load. */
const LOCAL_PAUSE_MAX_MS = 5_000;
/** A lease wait longer than LOCAL_PAUSE_MAX_MS runs as a regular activity (longPause). */
const PATCH_LONG_LEASE_WAIT = 'failover-long-lease-wait';
/** An old owner's lease to wait out after the next claim: `until` (old histories) or `ms` from `since` (patch failover-monotonic-lease-wait). */
interface LeaseWait {
  until: number;
  ms: number;
  since?: MonotonicMark;
}

/**
 * The data policy of unplanned failovers (issue 9 item 8): the candidates are asked how far their
 * copy of the group's file sets is behind (dataGate()), and one further behind than the group's
 * failover.maxSyncLag is not started unless the operator accepted the loss. Before, candidates
 * were tried whatever their copy, and the old owner's next pull discarded what the new one lacked.
 */
export const PATCH_SYNC_LAG = 'failover-sync-lag-policy';
/** How long a candidate has to tell its sync state (it answers from memory, in milliseconds). */
const SYNC_STATE_TIMEOUT_MS = 10_000;

/**
 * Each node's sync state, asked on its own queue, all at once. @returns per node its answer, or
 * why there was none (an agent that is down, or too old to know the question).
 */
async function askSyncState(cluster: string, nodes: readonly string[], group: string, authenticated: boolean): Promise<Record<string, CandidateSyncState | string>> {
  const answers = await Promise.all(nodes.map(async (node): Promise<[string, CandidateSyncState | string]> => {
    try {
      // Answered over a fresh nonce and checked like a ping's answer (docs/security.md): an
      // impostor polling the node's queue must not make a stale copy look up to date.
      const nonce = authenticated ? await pingNonce() : undefined;
      const ask = proxyActivities<SyncActivities>({ taskQueue: nodeTaskQueue(cluster, node), scheduleToCloseTimeout: SYNC_STATE_TIMEOUT_MS, retry: { maximumAttempts: 1 } });
      const answer = await ask.syncState.executeWithOptions(says(`ask ${node} how far its copy of ${group}'s file sets is behind`), [{ group, ...(nonce !== undefined ? { nonce } : {}) }]);
      const authentic = nonce !== undefined ? await authenticAnswer(cluster, node, nonce, answer) : answer;
      return [node, authentic ?? 'its answer is not authenticated with the cluster secret'];
    } catch (err) {
      if (isCancellation(err)) throw err;
      return [node, errorText(err)];
    }
  }));
  return Object.fromEntries(answers);
}

/** A pause measured in a worker's process that may be long (an armed watchdog's wait, up to minutes). */
function longPause(ms: number, since?: MonotonicMark, summary = `pause ${shortDuration(ms)}`): Promise<void> {
  return proxyActivities<ClusterActivities>({ startToCloseTimeout: Math.max(0, ms) + 60_000, retry: { maximumAttempts: 3 }, summary }).pause({ ms, ...(since ? { since } : {}) });
}

/** Waits `ms` counted from `since` (a monotonic mark) in a worker's process; long waits as a regular activity. */
function monotonicPause(ms: number, since: MonotonicMark | undefined, summary = `pause ${shortDuration(ms)}`): Promise<void> {
  return ms > LOCAL_PAUSE_MAX_MS ? longPause(ms, since, summary) : local.pause.executeWithOptions(says(summary), [{ ms, ...(since ? { since } : {}) }]);
}

export async function failover(rawInput: unknown): Promise<FailoverResult> {
  const input = parseWorkflowInput(failoverInputSchema, rawInput, 'failover');
  const { workflowId } = workflowInfo();
  // A confirm-down counts only for the block it was recorded for: this node, this epoch.
  let status: FailoverStatus = { phase: 'old-owner' };
  let blockedOn: { node: string; epoch: number } | undefined;
  let confirmation: ConfirmedDown | undefined;
  setHandler(failoverStatusQuery, () => status);
  setHandler(confirmedDownSignal, (raw: unknown) => {
    const parsed = confirmedDownSchema.safeParse(raw);
    if (!parsed.success) return log.warn('ignored a malformed confirmedDown signal', { problems: describeIssues(parsed.error, '(signal)') });
    const c = parsed.data;
    if (!blockedOn || c.node !== blockedOn.node || c.epoch !== blockedOn.epoch) {
      return log.warn('ignored a confirm-down that is not for this block', { node: c.node, epoch: c.epoch, blockedOn });
    }
    confirmation ??= c;
  });
  // Asked here, in the first activation and before the first await, though only a node-lost
  // verification uses it: a patch asked for after an awaited local activity (verify() runs right
  // after beginOperation) lands its marker in whichever workflow task that activity completes in,
  // and replays as unpatched when that is not the task that recorded the marker (see the
  // controller's `auto-failback`). Histories from before it replay with the old race.
  const answerWins = patched(PATCH_VERIFY_ANSWER_WINS);
  // Asked here for the same reason (used only after a start order that got no answer).
  const unansweredWaits = patched(PATCH_UNANSWERED_START);
  const earlyEndCompensates = patched(PATCH_EARLY_END);
  const monotonicLeaseWait = patched(PATCH_MONOTONIC_LEASE_WAIT);
  const authenticated = patched(PATCH_AUTHENTICATED_MESSAGES);
  // HaTrigger now, HaOutcome when the operation ends (story.ts).
  const story = patched(PATCH_STORY);
  tellTrigger(story, input.kind);
  /** `order` signed for `node` (as it is in histories from before the patch). */
  const sign = <T extends Record<string, unknown>>(node: string, action: Parameters<typeof signed>[3], order: T) => signed(authenticated, input.cluster, node, action, order);
  const announcedLease = patched(PATCH_ANNOUNCED_LEASE);
  const syncLagPolicy = patched(PATCH_SYNC_LAG);
  if (patched(PATCH_KIND_STARTER)) {
    const refusal = failoverKindRefusal(input.kind, workflowInfo().parent?.workflowId, {
      controller: controllerWorkflowId(input.cluster),
      switchover: switchoverWorkflowId(input.cluster, input.group),
    });
    if (refusal !== undefined) {
      throw ApplicationFailure.create({ type: ERROR_TYPES.InvalidWorkflowInput, nonRetryable: true, message: `invalid input for failover: ${refusal}` });
    }
  }
  const started = Date.now();
  tagIfUntagged({ cluster: input.cluster, group: input.group, operation: 'failover' });

  const layout = await local.describeCluster.executeWithOptions(says(`look up group ${input.group} in the configuration`), [{ cluster: input.cluster }]);
  const group = groupOf(layout, input.group, input.to);

  const begun = await local.beginOperation.executeWithOptions(says(`ask the controller for group ${group.name} (${input.kind}${input.reason ? `: ${input.reason}` : ''})`.slice(0, 200)), [{ cluster: input.cluster, group: group.name, workflowId, kind: input.kind }]);
  /** The lease to wait out (old-owner-plan.ts leaseToWaitOut); raised by a ping answer that announces a longer one. */
  let lease: LeaseTiming = announcedLease ? leaseToWaitOut(layout.lease, [begun.lease]) : layout.lease;
  const heardLease = (announced: LeaseTiming | undefined) => {
    if (!announcedLease || announced === undefined) return;
    const before = lease;
    lease = leaseToWaitOut(lease, [announced]);
    if (lease !== before && lease.ttlMs + lease.marginMs !== before.ttlMs + before.marginMs) log.warn('a node announced a longer lease than this worker knew: waiting for it', { lease, configured: layout.lease });
  };
  if (announcedLease && (lease.ttlMs !== layout.lease.ttlMs || lease.marginMs !== layout.lease.marginMs)) {
    log.warn('a node of the group announced a lease longer than this worker\'s configuration: the failover waits for the longest', { lease, configured: layout.lease });
  }
  const phases: FailoverResult['phases'] = { totalMs: 0 };
  const attempts: FailoverResult['attempts'] = [];
  const from = begun.owner;
  let epoch = begun.epoch;
  let ended = false;
  /** The old owner stopped the group for this failover. */
  let ownerStopped = false;
  /** The candidate being started, what it has started, and what it is starting (not yet undone). */
  let candidateRun: { node: string; started: string[]; starting?: string } | undefined;
  const end = async (outcome: EndOperation['outcome'], detail: string, node?: string) => {
    ended = true;
    tellOutcome(story, outcome === 'running' ? 'moved' : outcome);
    await local.endOperation.executeWithOptions(says(`tell the controller: ${outcome}${node ? ` (${node})` : ''}`), [{ cluster: input.cluster, group: group.name, workflowId, outcome, detail, ...(node ? { node } : {}) }]);
  };
  /**
   * The failover ends early after it changed something (stopped the owner, claimed the group):
   * what it started on a candidate is undone (the resource being started too), the group is
   * claimed for nobody (no node's lease is renewed from then on), the lease is waited out so that
   * no node can still hold the group, and it ends `down`: the controller places it again.
   */
  const earlyEnd = async (why: string): Promise<void> => {
    const run = candidateRun;
    if (run) {
      const undo = run.starting !== undefined && !run.started.includes(run.starting) ? [...run.started, run.starting] : run.started;
      for (const name of [...undo].reverse()) {
        await sign(run.node, 'stopResource', { group: group.name, resource: name, epoch })
          .then((order) => onNode(input.cluster, run.node, STOP_TIMEOUT_MS, { heartbeat: true }).stopResource.executeWithOptions(says(`undo: stop ${name} on ${run.node} (epoch ${epoch})`), [order]))
          .catch((e: unknown) => log.error('could not stop a resource while undoing an early end', { node: run.node, resource: name, err: errorText(e) }));
      }
    }
    try {
      const claimed = await local.claimGroup.executeWithOptions(says(`claim ${group.name} for nobody (epoch ${epoch + 1})`), [{ cluster: input.cluster, group: group.name, workflowId, expectEpoch: epoch, owner: null }]);
      epoch = claimed.epoch;
      await monotonicPause(lease.ttlMs + lease.marginMs, claimed.mark, `wait out the lease (${shortDuration(lease.ttlMs + lease.marginMs)}) before the group is down`);
    } catch (err) {
      // Not claimed (a newer epoch, the controller gone): the group is given back as it is.
      log.error('could not claim the group for nobody while ending early', { err: errorText(err) });
      return end('unchanged', why);
    }
    log.warn(`${why}: undone, the group is down until the controller places it again`, { group: group.name, undone: run?.node });
    await end('down', `${why}${run ? `; what it had started on ${run.node} was stopped` : ''}; the group is down until the controller places it again`);
  };
  const result = (outcome: FailoverResult['outcome'], to: string | null): FailoverResult => {
    phases.totalMs = Date.now() - started;
    return { outcome, group: group.name, from, to, epoch, phases, attempts };
  };

  try {
    // Nodes whose agents are up, in the group's preference order; not the one that failed.
    const up = new Set(begun.up);
    // A switchover that cannot start on its target puts the group back on its owner.
    const candidates = input.kind === 'switchover'
      ? [input.to!, ...(from !== null && from !== input.to ? [from] : [])]
      : input.to !== undefined
        ? [input.to]
        : group.nodes.filter((n) => up.has(n) && !(n === from && (input.kind === 'node-lost' || input.kind === 'heal-gave-up')));
    if (input.to === undefined && (input.kind === 'operator') && from !== null) {
      // An operator's failover without a target means "away from the owner".
      const i = candidates.indexOf(from);
      if (i >= 0) candidates.splice(i, 1);
    }

    // Nobody can take the group over: leave it where it is (taking it from an owner that may
    // well be serving would only turn a suspicion into an outage). Checked after a suspect
    // owner has been asked, so that a false alarm is still recorded as one.
    /** The group is claimed for nobody (epoch + 1, state down), and the failover fails saying why. */
    const down = async (why: string): Promise<never> => {
      ({ epoch } = await local.claimGroup.executeWithOptions(says(`claim ${group.name} for nobody (epoch ${epoch + 1})`), [{ cluster: input.cluster, group: group.name, workflowId, expectEpoch: epoch, owner: null }]));
      await end('down', why);
      throw ApplicationFailure.create({ type: ERROR_TYPES.NoNodeCouldRunGroup, nonRetryable: true, message: `${why}; the group is down`, details: [result('down', null)] });
    };
    const nobodyCanTakeIt = async () => {
      const why = `no node may take group '${group.name}' now (its nodes: ${group.nodes.join(', ')}; up: ${[...up].join(', ') || 'none'})`;
      // Its owner said it stopped it: it runs nowhere, and the controller should know.
      if (input.kind === 'recover' && from !== null) await down(why);
      await end('unchanged', `${why}; nothing was changed`);
      throw ApplicationFailure.create({ type: ERROR_TYPES.NoNodeCouldRunGroup, nonRetryable: true, message: `${why}; nothing was changed`, details: [result('unchanged', from)] });
    };

    /**
     * The data policy (sync-lag-plan.ts), for every kind but a switchover (whose final pass
     * brings its target fully up to date): the candidates whose copy of the group's file sets is
     * further behind than failover.maxSyncLag, or behind by an unknown amount, are left out,
     * saying so. With none left, the group is not started anywhere: left where it is while its
     * owner still runs it (nothing was stopped yet), else claimed for nobody and `down`, with the
     * reason; `acceptDataLoss` (the operator's) takes the least behind instead. Asked only for a
     * group with file sets, only when a failover needs it (no history is written per pull).
     */
    const dataGate = async (): Promise<void> => {
      const sets = group.fileSets ?? [];
      if (!syncLagPolicy || input.kind === 'switchover' || sets.length === 0 || candidates.length === 0) return;
      const maxSyncLag = group.failover?.maxSyncLag ?? DEFAULT_MAX_SYNC_LAG;
      const t = Date.now();
      const answers = await askSyncState(input.cluster, candidates.filter((n) => n !== from), group.name, authenticated);
      phases.syncCheckMs = Date.now() - t;
      const plan = planSyncCandidates({ candidates, sets, from, fromEpoch: begun.epoch, answers, maxSyncLag, acceptDataLoss: input.acceptDataLoss ?? false });
      log.info('candidates\' copies of the file sets', { group: group.name, maxSyncLag, lags: plan.lags.map((c) => ({ node: c.node, lag: c.lag ?? 'unknown', detail: c.detail })) });
      for (const c of plan.refused) attempts.push({ node: c.node, outcome: 'refused', detail: `not started: its copy of the file sets ${c.lag === undefined ? 'is behind by an unknown amount' : `is ${c.lag} generation(s) behind`}, more than failover.maxSyncLag ${maxSyncLag} (${c.detail})` });
      if (plan.acceptedBehind.length > 0) log.warn('the operator accepted losing data: candidates further behind than maxSyncLag are tried, the least behind first', { group: group.name, maxSyncLag, behind: plan.acceptedBehind });
      if (plan.allowed.length > 0) {
        if (plan.refused.length > 0) log.warn(`refused for their data: ${describeRefusals(group.name, maxSyncLag, plan.refused)}`);
        candidates.splice(0, candidates.length, ...plan.allowed);
        return;
      }
      const why = `no node may take group '${group.name}' without losing data: ${describeRefusals(group.name, maxSyncLag, plan.refused)}; wait for a node with the data (the old owner) to come back, or accept the loss: haoscar failover ${group.name} --accept-data-loss`;
      log.warn(why);
      const ownerRuns = from !== null && (input.kind === 'operator' || input.kind === 'heal-gave-up') && !ownerStopped;
      if (ownerRuns) {
        await end('unchanged', `${why}; nothing was changed`);
        throw ApplicationFailure.create({ type: ERROR_TYPES.StandbyBehind, nonRetryable: true, message: `${why}; nothing was changed`, details: [result('unchanged', from)] });
      }
      ({ epoch } = await local.claimGroup.executeWithOptions(says(`claim ${group.name} for nobody (epoch ${epoch + 1})`), [{ cluster: input.cluster, group: group.name, workflowId, expectEpoch: epoch, owner: null }]));
      await end('down', why);
      throw ApplicationFailure.create({ type: ERROR_TYPES.StandbyBehind, nonRetryable: true, message: `${why}; the group is down`, details: [result('down', null)] });
    };

    // ---------------------------------------------------------------- the old owner
    if (!(input.kind === 'node-lost' && from !== null)) await dataGate();
    let oldOwnerSafe = from === null; // stopped, fenced, or there was none: no lease to wait out
    /** Why the old owner still holds the group (a failed stop): set, it is blocked, not silent. */
    let stopFailed: string | undefined;
    /** It answered without the group, or stopped it: up, it may fence a failed candidate. */
    let oldOwnerAnswered = false;
    if (from !== null && input.kind === 'node-lost') {
      const t = Date.now();
      const answer = await verify(input.cluster, from, group.name, layout.failover.verifyTimeoutMs, answerWins, authenticated);
      phases.verifyMs = Date.now() - t;
      heardLease(answer?.holds?.lease);
      if (answer && !answer.holds) {
        // Up, but not running the group (it lost its lease, or restarted): nothing to wait for.
        oldOwnerSafe = true;
        oldOwnerAnswered = true;
        log.info('old owner answered but does not hold the group: moving it', { node: from });
      } else if (answer?.holds?.state === 'failed' && patched(PATCH_FAILED_STOP)) {
        // Not a false alarm: it cannot serve the group, and it cannot let go of it either.
        stopFailed = `it answered holding the group in state 'failed' at epoch ${answer.holds.epoch}: ${answer.holds.failure ?? "a stop or its guard's release failed there"}`;
        log.warn('the old owner holds the group in state failed: it is not safe to move it yet', { node: from, epoch: answer.holds.epoch });
      } else if (answer) {
        const detail = `node ${from} answered through its task queue (holds ${group.name}: ${answer.holds ? `epoch ${answer.holds.epoch}` : 'no'}): its peers lost its heartbeats, Temporal did not; no failover`;
        log.warn('false alarm', { group: group.name, node: from, reason: input.reason });
        await end('false-alarm', detail, from);
        return result('false-alarm', from);
      }
      else log.info('old owner did not answer: treating it as gone', { node: from, verifyTimeoutMs: layout.failover.verifyTimeoutMs });
      // Gone: its standbys' copies are what is left (asked after the false-alarm check).
      await dataGate();
      if (candidates.length === 0) await nobodyCanTakeIt();
    } else if (candidates.length === 0) {
      await nobodyCanTakeIt();
    } else if (from !== null && input.kind !== 'recover') {
      const t = Date.now();
      try {
        await onNode(input.cluster, from, STOP_TIMEOUT_MS, { heartbeat: true }).stopGroup.executeWithOptions(says(`stop ${group.name} on the old owner ${from}, in reverse order (epoch ${epoch})`), [await sign(from, 'stopGroup', { group: group.name, epoch, reason: input.reason ?? `${input.kind} failover` })]);
        ownerStopped = true;
        oldOwnerSafe = true;
        oldOwnerAnswered = true;
      } catch (err) {
        if (isCancellation(err)) throw err;
        if (failureType(err) === ERROR_TYPES.StopFailed && patched(PATCH_FAILED_STOP)) {
          // It still holds the group (in state 'failed'): nothing is started on top of a failed
          // stop, not even on it (a switchover's way back), and no final sync runs from it.
          stopFailed = `its stop failed: ${errorText(err)}`;
          log.warn('the old owner could not stop the group: it still holds it', { node: from, err: errorText(err) });
          const i = candidates.indexOf(from);
          if (i >= 0) candidates.splice(i, 1);
        } else if (input.kind === 'switchover') {
          // A planned move does not take a group from an owner that cannot hand it over
          // cleanly (its data may not be final). What it did stop is started again there,
          // under a new epoch (orders of the old one are refused from then on).
          const detail = `could not stop the group for the switchover: ${errorText(err)}`;
          attempts.push({ node: from, outcome: 'failed', detail });
          log.warn('the owner could not stop the group: starting it there again', { node: from, detail });
          candidates.splice(0, candidates.length, from);
          oldOwnerSafe = true;
        } else {
          log.warn('the old owner did not stop the group: waiting out its lease', { node: from, err: errorText(err) });
        }
      }
      phases.stopMs = Date.now() - t;
      if (input.kind === 'switchover' && stopFailed === undefined && candidates[0] === input.to && from !== input.to && (group.fileSets?.length ?? 0) > 0) {
        // The owner has stopped writing: a last, short pass brings the target fully up to date.
        const ts = Date.now();
        try {
          await syncOn(input.cluster, input.to!).resyncGroup.executeWithOptions(says(`final sync: ${input.to} pulls ${group.name}'s file sets from ${from}`), [await sign(input.to!, 'resyncGroup', { group: group.name, source: from, epoch, final: true })]);
        } catch (err) {
          if (isCancellation(err)) throw err;
          const detail = `final sync from ${from} failed: ${errorText(err)}`;
          attempts.push({ node: input.to!, outcome: 'failed', detail });
          log.warn('the final sync failed: putting the group back on its owner', { node: input.to, detail });
          candidates.splice(candidates.indexOf(input.to!), 1);
        }
        phases.syncMs = Date.now() - ts;
      }
    } else if (from !== null && authenticated) {
      // 'recover': the owner's agent restarted or stopped the group itself, it says; but that
      // report is a signal anyone with Temporal access can send (docs/security.md). Only the
      // owner's own (authenticated) answer that it holds nothing makes it safe at once; otherwise
      // it is treated as a silent owner (its lease, no longer renewed, is waited out).
      const t = Date.now();
      const answer = await verify(input.cluster, from, group.name, layout.failover.verifyTimeoutMs, answerWins, true);
      phases.verifyMs = Date.now() - t;
      if (answer && !answer.holds) {
        oldOwnerSafe = true;
        oldOwnerAnswered = true;
      } else if (answer?.holds?.state === 'failed' && patched(PATCH_FAILED_STOP)) {
        stopFailed = `it answered holding the group in state 'failed' at epoch ${answer.holds.epoch}: ${answer.holds.failure ?? "a stop or its guard's release failed there"}`;
        // Nothing is started on top of a failed stop, not even on it.
        const i = candidates.indexOf(from);
        if (i >= 0) candidates.splice(i, 1);
      } else {
        log.warn(`the recover's old owner ${answer ? `answers holding the group (epoch ${answer.holds!.epoch}, ${answer.holds!.state})` : 'did not answer'}: waiting out its lease (a report that it let go is not proof: docs/security.md)`, { node: from });
      }
    } else if (from !== null) {
      // 'recover' (histories from before PATCH_AUTHENTICATED_MESSAGES): the owner's agent
      // restarted (it stops everything at start) or stopped the group itself: it holds nothing.
      oldOwnerSafe = true;
    }

    if (stopFailed !== undefined && candidates.length === 0) {
      // Restarting it in place (`to` its owner) would start it on top of the failed stop.
      const why = `node ${from} could not stop group '${group.name}' (${stopFailed}) and no other node may take it: it still holds it, in state 'failed'; nothing was started`;
      await end('unchanged', why);
      throw ApplicationFailure.create({ type: ERROR_TYPES.StopFailed, nonRetryable: true, message: why, details: [result('unchanged', from)] });
    }

    /**
     * Until `who.node` can no longer run the group (old-owner-plan.ts): fences it (from
     * `who.fencer`), or has the lease waited out after the claim, or stays BLOCKED on it until a
     * fence succeeds, its watchdog's timeout has passed, or an operator confirms it down.
     * @returns the end of a lease to wait out after the claim (a silent node); undefined: safe now.
     */
    const untilSafe = async (who: { node: string; report: OldOwnerReport; detail?: string; blockedSince: number; since?: MonotonicMark; fencer?: string }): Promise<LeaseWait | undefined> => {
      const victim = layout.nodes.find((n) => n.name === who.node);
      const facts: OldOwnerFacts = {
        report: who.report,
        ...(victim?.fenced && who.fencer !== undefined ? { fence: { attempts: 0, succeeded: false } } : {}),
        fenceRetries: true,
        ...(layout.guard?.watchdogTimeoutMs !== undefined ? { watchdogTimeoutMs: layout.guard.watchdogTimeoutMs } : {}),
        lease,
        blockedSince: who.blockedSince,
        confirmed: false,
        now: Date.now(),
      };
      // A confirmation counts for one block only.
      confirmation = undefined;
      blockedOn = undefined;
      let fenceDetail: string | undefined;
      let blockedAt: number | undefined;
      let reported = '';
      for (;;) {
        facts.now = Date.now();
        facts.fenceRetries = workflowInfo().historyLength < MAX_BLOCKED_HISTORY_EVENTS;
        facts.confirmed = confirmation !== undefined;
        const step = oldOwnerStep(facts);
        if (step.step === 'go') {
          if (blockedAt !== undefined) {
            phases.blockedMs = (phases.blockedMs ?? 0) + Date.now() - blockedAt;
            const how = step.why === 'confirmed-down' ? `was confirmed down by ${confirmation!.operator}${confirmation!.detail ? ` (${confirmation!.detail})` : ''}`
              : step.why === 'watchdog' ? "has reset: its watchdog's timeout has passed on top of its lease"
              : step.why === 'fenced' ? 'was fenced' : step.why;
            log.warn(`unblocked: node ${who.node} ${how}; moving the group`, { node: who.node, why: step.why, blockedMs: phases.blockedMs });
            setCurrentDetails(`unblocked: node ${who.node} ${how}; moving the group`);
            status = { phase: 'starting' };
            blockedOn = undefined;
          }
          return undefined;
        }
        if (step.step === 'wait-lease') return { until: step.until, ms: step.ms, ...(who.since ? { since: who.since } : {}) };
        if (step.step === 'fence') {
          const t = Date.now();
          const fence = facts.fence!;
          const giveUp = who.report === 'stop-failed' ? 'still blocked' : 'waiting out the lease instead';
          try {
            const fenced = await onNode(input.cluster, who.fencer!, (victim!.fenceTimeoutMs ?? 60_000) + 30_000).fence.executeWithOptions(says(`fence ${victim!.name} (from ${who.fencer})`), [await sign(who.fencer!, 'fence', { victim: victim!.name })]);
            fence.succeeded = fenced.fenced;
            fenceDetail = fenced.detail;
            log.info(fenced.fenced ? 'old owner fenced' : `fencing failed: ${giveUp}`, { node: who.node, detail: fenced.detail });
          } catch (err) {
            if (isCancellation(err)) throw err;
            fenceDetail = errorText(err);
            log.warn(`fencing failed: ${giveUp}`, { node: who.node, err: fenceDetail });
          }
          fence.attempts += 1;
          fence.lastAt = Date.now();
          phases.fenceMs = (phases.fenceMs ?? 0) + Date.now() - t;
          continue;
        }
        // ---------------------------------------------------------- blocked on the node
        blockedAt ??= Date.now();
        blockedOn = { node: who.node, epoch };
        const block: BlockedOn = {
          node: who.node,
          epoch,
          since: blockedAt,
          detail: `${who.detail}; ${facts.fence ? `fencing failed: ${fenceDetail ?? 'no answer'}` : 'no fence agent is configured for it'}`,
          waitingFor: step.waitingFor,
          ...(step.until !== undefined ? { until: step.until } : {}),
        };
        const key = JSON.stringify([block.waitingFor, block.until]);
        if (key !== reported) {
          reported = key;
          status = { phase: 'blocked', blocked: block };
          const line = describeBlock(group.name, block, Date.now());
          setCurrentDetails(`blocked: ${line}`);
          log.warn(`blocked: ${line}`, { node: who.node, epoch, waitingFor: block.waitingFor, until: block.until });
          await local.operationBlocked.executeWithOptions(says(`tell the controller: blocked on ${block.node}`), [{ cluster: input.cluster, group: group.name, workflowId, node: block.node, epoch, detail: block.detail, waitingFor: block.waitingFor, ...(block.until !== undefined ? { until: block.until } : {}) }]);
        }
        await waitWhileBlocked(
          () => confirmation !== undefined,
          step.until !== undefined ? step.until - Date.now() : undefined,
          step.fenceAt !== undefined ? step.fenceAt - Date.now() : undefined,
        );
      }
    };

    /** Set when the old lease is to be waited out after the claim (a silent old owner). */
    let leaseUntil: LeaseWait | undefined;
    if (from !== null) {
      leaseUntil = await untilSafe({
        node: from,
        report: oldOwnerSafe ? 'let-go' : stopFailed !== undefined ? 'stop-failed' : 'silent',
        ...(stopFailed !== undefined ? { detail: stopFailed } : {}),
        blockedSince: begun.blockedSince,
        // The owner's renewals were blocked when beginOperation returned, at the latest.
        ...(begun.mark ? { since: begun.mark } : {}),
        ...(candidates.length > 0 ? { fencer: candidates[0] } : {}),
      });
    }
    status = { phase: 'starting' };

    // ---------------------------------------------------------------- the new owner
    for (const node of candidates) {
      ({ epoch } = await local.claimGroup.executeWithOptions(says(`claim ${group.name} for ${node} (epoch ${epoch + 1})`), [{ cluster: input.cluster, group: group.name, workflowId, expectEpoch: epoch, owner: node }]));
      if (leaseUntil !== undefined) {
        // Measured in a worker's process: a server timer can fire up to a second late.
        const t = Date.now();
        if (monotonicLeaseWait) {
          // ttl + margin from the block's mark, on one process's monotonic clock (whole in any other).
          await monotonicPause(leaseUntil.ms, leaseUntil.since, `wait out the old owner's lease (${shortDuration(leaseUntil.ms)}) before ${node} starts ${group.name}`);
        } else {
          const waitMs = leaseUntil.until - t;
          // A local activity is cut off after 10 s (and retried from zero): a longer wait never
          // ended. Long waits run as a regular activity sized to them.
          const summary = `wait out the old owner's lease (${shortDuration(waitMs)}) before ${node} starts ${group.name}`;
          if (waitMs > LOCAL_PAUSE_MAX_MS && patched(PATCH_LONG_LEASE_WAIT)) await longPause(waitMs, undefined, summary);
          else if (waitMs > 0) await local.pause.executeWithOptions(says(summary), [{ ms: waitMs }]);
        }
        phases.leaseWaitMs = Date.now() - t;
        leaseUntil = undefined;
      }
      const t = Date.now();
      const started: string[] = [];
      // `starting`: the resource being started; if its order gets no answer, what it did there is unknown.
      const run: NonNullable<typeof candidateRun> = { node, started };
      candidateRun = run;
      try {
        for (const r of group.resources) {
          // Started and verified in one activity (one round trip per resource); if it fails, it
          // has undone its own start, so only the resources before it are compensated.
          run.starting = r.name;
          await onNode(input.cluster, node, r.startTimeoutMs + 30_000, { heartbeat: true }).startResource.executeWithOptions(says(`start ${r.name} on ${node} and verify it (epoch ${epoch})`), [await sign(node, 'startResource', { group: group.name, resource: r.name, epoch, verifyTimeoutMs: r.startTimeoutMs })]);
          started.push(r.name);
        }
        phases.startMs = Date.now() - t;
        attempts.push({ node, outcome: 'started', detail: `${started.join(', ')} started and healthy` });
        await end('running', `running on ${node} at epoch ${epoch}`);
        if (from === node) tellOutcome(story, 'already-there');
        log.info('group moved', { group: group.name, from, to: node, epoch });
        return result(from === node ? 'already-there' : 'moved', node);
      } catch (err) {
        if (isCancellation(err)) throw err;
        const detail = errorText(err);
        attempts.push({ node, outcome: 'failed', detail });
        // The node has seen a newer epoch, or a peer still claims the group: another node would
        // meet the same; the group is left down rather than risk running it twice.
        const stale = failureType(err) === ERROR_TYPES.StaleEpoch;
        // Its own undoing of the failed start failed: it may run part of the group, and holds it as failed.
        let undoFailed = failureType(err) === ERROR_TYPES.StopFailed ? detail : undefined;
        // No answer (the order timed out: the agent died or hung mid-start): the node may run the
        // resource it was starting, so that one is undone too.
        const unanswered = unansweredWaits && failureType(err) === undefined;
        /** An order of the undoing got no answer either. */
        let undoUnanswered: string | undefined;
        log.warn('could not start the group: undoing and trying the next node', { node, detail });
        // Compensate in reverse; the node's own lease keeping stops anything left over.
        const undo = unanswered && run.starting !== undefined && !started.includes(run.starting) ? [...started, run.starting] : started;
        for (const name of [...undo].reverse()) {
          try {
            await onNode(input.cluster, node, STOP_TIMEOUT_MS, unansweredWaits ? { heartbeat: true } : {}).stopResource.executeWithOptions(says(`undo: stop ${name} on ${node} (epoch ${epoch})`), [await sign(node, 'stopResource', { group: group.name, resource: name, epoch })]);
          } catch (e) {
            if (isCancellation(e)) throw e;
            if (failureType(e) === ERROR_TYPES.StopFailed) undoFailed ??= errorText(e);
            else if (unansweredWaits && failureType(e) === undefined) undoUnanswered ??= errorText(e);
            log.error('could not stop a resource while undoing', { node, resource: name, err: errorText(e) });
          }
        }
        candidateRun = undefined; // undone (as far as it answered)
        if (stale) break;
        if (undoFailed !== undefined && patched(PATCH_FAILED_STOP)) {
          // A failed stop is not a stop, on a candidate too: no other node starts the group until
          // this one is safe. Claimed for nobody first, so that its lease is no longer renewed.
          ({ epoch } = await local.claimGroup.executeWithOptions(says(`claim ${group.name} for nobody (epoch ${epoch + 1})`), [{ cluster: input.cluster, group: group.name, workflowId, expectEpoch: epoch, owner: null }]));
          const rest = candidates.slice(candidates.indexOf(node) + 1);
          const fencer = rest[0] ?? (from !== null && from !== node && oldOwnerAnswered ? from : undefined);
          await untilSafe({ node, report: 'stop-failed', detail: `it could not undo its start: ${undoFailed}`, blockedSince: Date.now(), ...(fencer !== undefined ? { fencer } : {}) });
        } else if (unanswered || undoUnanswered !== undefined) {
          // Silent: what the order did there is unknown. An agent that answers the undoing has
          // stopped what it ran (a group's starts and stops run in order), but a hung one may
          // still finish the start afterwards, and keep it until its lease runs out (its agent
          // and its guard let go then). Claimed for nobody, so that the lease is no longer
          // renewed; the lease is waited out after the next candidate's claim. A node that did
          // not answer the undoing either is fenced first, when it can be, as a silent owner is.
          log.warn('the node did not answer: waiting out its lease before another node starts the group', { node, detail: undoUnanswered ?? detail });
          const claimed = await local.claimGroup.executeWithOptions(says(`claim ${group.name} for nobody (epoch ${epoch + 1}): ${node} did not answer`), [{ cluster: input.cluster, group: group.name, workflowId, expectEpoch: epoch, owner: null }]);
          epoch = claimed.epoch;
          const rest = candidates.slice(candidates.indexOf(node) + 1);
          const fencer = undoUnanswered === undefined ? undefined : rest[0] ?? (from !== null && from !== node && oldOwnerAnswered ? from : undefined);
          leaseUntil = await untilSafe({ node, report: 'silent', blockedSince: Date.now(), ...(claimed.mark ? { since: claimed.mark } : {}), ...(fencer !== undefined ? { fencer } : {}) });
        }
      }
    }
    return await down(`no node could start group '${group.name}': ${attempts.map((a) => `${a.node}: ${a.detail}`).join('; ')}`);
  } finally {
    status = { ...status, phase: 'done' };
    if (!ended) {
      // Failed or cancelled half-way: give the group back (its state is what the epochs say).
      const blocked = status.blocked !== undefined && blockedOn !== undefined;
      const why = blocked ? `the operation ended early, blocked: node ${blockedOn!.node} still holds the group (${status.blocked!.detail})` : 'the operation ended early';
      const changed = ownerStopped || epoch !== begun.epoch;
      await CancellationScope.nonCancellable(() => (earlyEndCompensates && changed && !blocked ? earlyEnd(why) : end('unchanged', why)))
        .catch((e: unknown) => log.error('could not end the operation', { err: errorText(e) }));
    }
  }
}

/**
 * The blocked failover's wait: until a confirm-down arrives, or `watchdogMs` has passed
 * (measured in a worker's process, as the lease wait is: the watchdog's reset is what makes the
 * node safe), or `fenceInMs` (a workflow timer: when to try the fence agent again; its being
 * late only delays). Durable: a signal and at most two pending waits, no polling.
 */
async function waitWhileBlocked(confirmed: () => boolean, watchdogMs: number | undefined, fenceInMs: number | undefined): Promise<void> {
  const scope = new CancellationScope();
  let settled = false;
  const quietly = (p: Promise<unknown>) => p.catch((err: unknown) => {
    if (settled && isCancellation(err)) return; // ours, after the first of them
    if (isCancellation(err)) throw err; // the failover itself is cancelled
    log.warn('a wait of the blocked failover failed: planning again', { err: errorText(err) });
  });
  const waits = [quietly(scope.run(() => condition(confirmed)))];
  if (watchdogMs !== undefined) waits.push(quietly(scope.run(() => longPause(watchdogMs, undefined, `blocked: wait ${shortDuration(watchdogMs)} for the node's watchdog to reset it`))));
  if (fenceInMs !== undefined) waits.push(quietly(scope.run(() => sleep(Math.max(1, fenceInMs), { summary: `blocked: try the fence agent again in ${shortDuration(fenceInMs)}` }))));
  try {
    await Promise.race(waits);
  } finally {
    settled = true;
    scope.cancel();
  }
}

/**
 * "Are you there?" on the node's own queue. The answer is awaited for `timeoutMs` measured in
 * this worker (a server-side schedule-to-close timer can fire up to a second late), then the
 * question is withdrawn. @returns the answer, or undefined when there was none in time (or the
 * ping failed). @throws when the pause failed with no answer, or on cancellation.
 *
 * The race: when the ping's result and the pause's arrive in ONE activation (a retried workflow
 * task, a replay, a worker that was busy), a plain Promise.race picks whichever promise chain
 * settles first, and the ping's is longer (scope.run() is async): the pause won, whatever the
 * order of the events. So a false alarm decided and acted on in a workflow task that the server
 * refused (UNHANDLED_COMMAND: the pause completed meanwhile) became "gone" in the retried task,
 * after the first decision's endOperation had been applied. With `answerWins`, the decision waits
 * for a condition(), which is only evaluated once the activation's results have all been applied
 * and their promise chains have run; then an answer that arrived counts, whatever arrived with it.
 */
async function verify(cluster: string, node: string, group: string, timeoutMs: number, answerWins: boolean, authenticated: boolean) {
  const scope = new CancellationScope();
  // Chosen here (by the worker), unpredictable: an answer bound to it cannot have been recorded before.
  const nonce = authenticated ? await pingNonce() : undefined;
  const answer = scope.run(() => onNode(cluster, node, timeoutMs + 5000).ping.executeWithOptions(says(`ping ${node} through its task queue: is it there, does it hold ${group}?`), [{ group, ...(nonce !== undefined ? { nonce } : {}) }])).catch((err: unknown) => {
    if (isCancellation(err) && scope.consideredCancelled) return undefined;
    if (isCancellation(err)) throw err;
    return undefined;
  });
  // A regular activity, not a local one: a local activity holds back the commands of its
  // workflow task (the ping would only be sent once the pause was over).
  const timeout = timers.pause.executeWithOptions(says(`give ${node} ${shortDuration(timeoutMs)} to answer (failover.verifyTimeout)`), [{ ms: timeoutMs }]).then(() => 'timeout' as const);
  if (!answerWins) {
    // Histories from before PATCH_VERIFY_ANSWER_WINS: the first chain to settle decides.
    const first = await Promise.race([answer, timeout]);
    if (first !== 'timeout') return first;
    scope.cancel();
    return undefined;
  }
  type Settled<T> = { ok: true; value: T } | { ok: false; err: unknown };
  let pinged: Settled<Awaited<typeof answer>> | undefined;
  let paused: Settled<void> | undefined;
  const settle = <T>(p: Promise<T>, set: (s: Settled<T>) => void): Promise<void> =>
    p.then((value) => set({ ok: true, value }), (err: unknown) => set({ ok: false, err }));
  // Both outcomes are recorded (their promises never reject from here on); the condition below
  // is what is awaited. A workflow cancellation rejects the condition itself.
  void settle(answer, (s) => (pinged = s));
  void settle(timeout.then(() => undefined), (s) => (paused = s));
  await condition(() => pinged !== undefined || paused !== undefined);
  if (pinged) {
    // An answer, or a failed ping (no answer): the pause, if it is over too, changes nothing.
    if (!pinged.ok) throw pinged.err;
    // An answer that is not the node's own counts as none (an impostor polling its queue).
    return nonce !== undefined ? await authenticAnswer(cluster, node, nonce, pinged.value) : pinged.value;
  }
  scope.cancel();
  if (!paused!.ok) throw paused!.err;
  return undefined;
}

function failureType(err: unknown): string | undefined {
  const cause = err instanceof Error ? err.cause : undefined;
  return cause instanceof ApplicationFailure ? cause.type ?? undefined : undefined;
}

function errorText(err: unknown): string {
  if (err instanceof Error && err.cause instanceof Error) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}
