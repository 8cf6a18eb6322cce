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
 * 4. For each candidate node (preference order, or `to`): epoch+1 with that node as owner;
 *    wait out the old owner's lease unless it stopped or was fenced; start the resources in
 *    order, each verified by its check; on any error stop what was started, in reverse, and
 *    try the next node (not after a StaleEpoch: a newer epoch or a peer's claim is in the way,
 *    and the group is left down rather than run twice).
 *
 * Every activity that touches a node's resources carries the epoch; the node refuses an
 * epoch older than one it has seen.
 */
import { ApplicationFailure, isCancellation, log, proxyActivities, proxyLocalActivities, workflowInfo, CancellationScope } from '@temporalio/workflow';
import type { ClusterActivities } from '../activities/cluster.js';
import type { ControllerActivities } from '../activities/controller.js';
import type { OwnershipActivities } from '../activities/ownership.js';
import { failoverInputSchema, parseWorkflowInput } from './inputs.js';
import { groupOf, tagIfUntagged } from './layout.js';
import { syncOn } from './resync.js';
import { ERROR_TYPES, nodeTaskQueue, type EndOperation, type FailoverResult } from './shared.js';

const local = proxyLocalActivities<ClusterActivities & ControllerActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '100ms', maximumInterval: '2 seconds', maximumAttempts: 20, nonRetryableErrorTypes: [ERROR_TYPES.OperationInProgress, ERROR_TYPES.StaleEpoch, ERROR_TYPES.UnknownGroup, ERROR_TYPES.WrongCluster] },
});

/** Timing measured in a worker's process, on the cluster's queue (any workflow worker). */
const timers = proxyActivities<ClusterActivities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 3 } });

/** What the activities of a node look like to this workflow: its own queue, no retries (the saga decides). */
function onNode(cluster: string, node: string, scheduleToCloseMs: number) {
  return proxyActivities<OwnershipActivities>({
    taskQueue: nodeTaskQueue(cluster, node),
    scheduleToCloseTimeout: scheduleToCloseMs,
    retry: { maximumAttempts: 1 },
  });
}

const STOP_TIMEOUT_MS = 60_000;

export async function failover(rawInput: unknown): Promise<FailoverResult> {
  const input = parseWorkflowInput(failoverInputSchema, rawInput, 'failover');
  const { workflowId } = workflowInfo();
  const started = Date.now();
  tagIfUntagged({ cluster: input.cluster, group: input.group, operation: 'failover' });

  const layout = await local.describeCluster({ cluster: input.cluster });
  const group = groupOf(layout, input.group, input.to);

  const begun = await local.beginOperation({ cluster: input.cluster, group: group.name, workflowId, kind: input.kind });
  const phases: FailoverResult['phases'] = { totalMs: 0 };
  const attempts: FailoverResult['attempts'] = [];
  const from = begun.owner;
  let epoch = begun.epoch;
  let ended = false;
  const end = async (outcome: EndOperation['outcome'], detail: string, node?: string) => {
    ended = true;
    await local.endOperation({ cluster: input.cluster, group: group.name, workflowId, outcome, detail, ...(node ? { node } : {}) });
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
      ({ epoch } = await local.claimGroup({ cluster: input.cluster, group: group.name, workflowId, expectEpoch: epoch, owner: null }));
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

    // ---------------------------------------------------------------- the old owner
    let oldOwnerSafe = from === null; // stopped, fenced, or there was none: no lease to wait out
    if (from !== null && input.kind === 'node-lost') {
      const t = Date.now();
      const answer = await verify(input.cluster, from, group.name, layout.failover.verifyTimeoutMs);
      phases.verifyMs = Date.now() - t;
      if (answer && !answer.holds) {
        // Up, but not running the group (it lost its lease, or restarted): nothing to wait for.
        oldOwnerSafe = true;
        log.info('old owner answered but does not hold the group: moving it', { node: from });
      } else if (answer) {
        const detail = `node ${from} answered through its task queue (holds ${group.name}: ${answer.holds ? `epoch ${answer.holds.epoch}` : 'no'}): its peers lost its heartbeats, Temporal did not; no failover`;
        log.warn('false alarm', { group: group.name, node: from, reason: input.reason });
        await end('false-alarm', detail, from);
        return result('false-alarm', from);
      }
      else log.info('old owner did not answer: treating it as gone', { node: from, verifyTimeoutMs: layout.failover.verifyTimeoutMs });
      if (candidates.length === 0) await nobodyCanTakeIt();
    } else if (candidates.length === 0) {
      await nobodyCanTakeIt();
    } else if (from !== null && input.kind !== 'recover') {
      const t = Date.now();
      try {
        await onNode(input.cluster, from, STOP_TIMEOUT_MS).stopGroup({ group: group.name, epoch, reason: input.reason ?? `${input.kind} failover` });
        oldOwnerSafe = true;
      } catch (err) {
        if (isCancellation(err)) throw err;
        if (input.kind === 'switchover') {
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
      if (input.kind === 'switchover' && candidates[0] === input.to && from !== input.to && (group.fileSets?.length ?? 0) > 0) {
        // The owner has stopped writing: a last, short pass brings the target fully up to date.
        const ts = Date.now();
        try {
          await syncOn(input.cluster, input.to!).resyncGroup({ group: group.name, source: from, epoch, final: true });
        } catch (err) {
          if (isCancellation(err)) throw err;
          const detail = `final sync from ${from} failed: ${errorText(err)}`;
          attempts.push({ node: input.to!, outcome: 'failed', detail });
          log.warn('the final sync failed: putting the group back on its owner', { node: input.to, detail });
          candidates.splice(candidates.indexOf(input.to!), 1);
        }
        phases.syncMs = Date.now() - ts;
      }
    } else if (from !== null) {
      // 'recover': the owner's agent restarted (it stops everything at start) or stopped the
      // group itself when it lost its lease: it holds nothing.
      oldOwnerSafe = true;
    }

    const victim = layout.nodes.find((n) => n.name === from);
    if (!oldOwnerSafe && victim?.fenced && candidates.length > 0) {
      const t = Date.now();
      try {
        const fenced = await onNode(input.cluster, candidates[0]!, (victim.fenceTimeoutMs ?? 60_000) + 30_000).fence({ victim: victim.name });
        oldOwnerSafe = fenced.fenced;
        log.info(fenced.fenced ? 'old owner fenced' : 'fencing failed: waiting out the lease instead', { node: from, detail: fenced.detail });
      } catch (err) {
        if (isCancellation(err)) throw err;
        log.warn('fencing failed: waiting out the lease instead', { node: from, err: errorText(err) });
      }
      phases.fenceMs = Date.now() - t;
    }

    // ---------------------------------------------------------------- the new owner
    for (const node of candidates) {
      ({ epoch } = await local.claimGroup({ cluster: input.cluster, group: group.name, workflowId, expectEpoch: epoch, owner: node }));
      if (!oldOwnerSafe) {
        // Measured in this worker's process: a server timer can fire up to a second late.
        const t = Date.now();
        const waitMs = begun.blockedSince + layout.lease.ttlMs + layout.lease.marginMs - t;
        if (waitMs > 0) await local.pause({ ms: waitMs });
        phases.leaseWaitMs = Date.now() - t;
        oldOwnerSafe = true;
      }
      const t = Date.now();
      const started: string[] = [];
      try {
        for (const r of group.resources) {
          // Started and verified in one activity (one round trip per resource); if it fails, it
          // has undone its own start, so only the resources before it are compensated.
          await onNode(input.cluster, node, r.startTimeoutMs + 30_000).startResource({ group: group.name, resource: r.name, epoch, verifyTimeoutMs: r.startTimeoutMs });
          started.push(r.name);
        }
        phases.startMs = Date.now() - t;
        attempts.push({ node, outcome: 'started', detail: `${started.join(', ')} started and healthy` });
        await end('running', `running on ${node} at epoch ${epoch}`);
        log.info('group moved', { group: group.name, from, to: node, epoch });
        return result(from === node ? 'already-there' : 'moved', node);
      } catch (err) {
        if (isCancellation(err)) throw err;
        const detail = errorText(err);
        attempts.push({ node, outcome: 'failed', detail });
        // The node has seen a newer epoch, or a peer still claims the group: another node would
        // meet the same; the group is left down rather than risk running it twice.
        const stale = failureType(err) === ERROR_TYPES.StaleEpoch;
        log.warn('could not start the group: undoing and trying the next node', { node, detail });
        // Compensate in reverse; the node's own lease keeping stops anything left over.
        for (const name of [...started].reverse()) {
          await onNode(input.cluster, node, STOP_TIMEOUT_MS).stopResource({ group: group.name, resource: name, epoch }).catch((e: unknown) =>
            log.error('could not stop a resource while undoing', { node, resource: name, err: errorText(e) }),
          );
        }
        if (stale) break;
      }
    }
    return await down(`no node could start group '${group.name}': ${attempts.map((a) => `${a.node}: ${a.detail}`).join('; ')}`);
  } finally {
    if (!ended) {
      // Failed or cancelled half-way: give the group back (its state is what the epochs say).
      await CancellationScope.nonCancellable(() => end('unchanged', 'the operation ended early')).catch((e: unknown) => log.error('could not end the operation', { err: errorText(e) }));
    }
  }
}

/**
 * "Are you there?" on the node's own queue. The answer is awaited for `timeoutMs` measured in
 * this worker (a server-side schedule-to-close timer can fire up to a second late), then the
 * question is withdrawn. @returns the answer, or undefined when there was none in time.
 */
async function verify(cluster: string, node: string, group: string, timeoutMs: number) {
  const scope = new CancellationScope();
  const answer = scope.run(() => onNode(cluster, node, timeoutMs + 5000).ping({ group })).catch((err: unknown) => {
    if (isCancellation(err) && scope.consideredCancelled) return undefined;
    if (isCancellation(err)) throw err;
    return undefined;
  });
  // A regular activity, not a local one: a local activity holds back the commands of its
  // workflow task (the ping would only be sent once the pause was over).
  const timeout = timers.pause({ ms: timeoutMs }).then(() => 'timeout' as const);
  const first = await Promise.race([answer, timeout]);
  if (first !== 'timeout') return first;
  scope.cancel();
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
