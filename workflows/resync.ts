/**
 * resync: brings a node up to date with the group's owner before it may become the owner
 * (started by a switchover, a fail-back, `haoscar resync`, or from the UI).
 *
 * Data only ever flows from the owner: the node pulls every file set from the owner's
 * read-only rsync daemon and waits for its DRBD resources to be UpToDate, in one activity on
 * the node's own queue. The activity heartbeats its progress (percent, bytes, ETA: what the
 * CLI draws as a progress bar); when its worker dies, the retry on the restarted worker reads
 * the last heartbeat and skips the steps already done, and rsync's partial directory keeps
 * the file that was being copied.
 *
 * Nothing here changes ownership, so it takes no lock on the group: a failover of the group
 * is never held up by a long resync. A switchover takes the lock afterwards and runs a short
 * final pass once the owner has stopped.
 */
import { ApplicationFailure, log, patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { SyncActivities } from '../activities/sync.js';
import { parseWorkflowInput, resyncInputSchema } from './inputs.js';
import { groupAndOwner, groupAndResyncOrder, tagIfUntagged } from './layout.js';
import { ERROR_TYPES, nodeTaskQueue, type ResyncResult } from './shared.js';
import { PATCH_STORY, says, tellOutcome, tellTrigger } from './story.js';
import { signed } from './auth.js';

/** The pull order carries the worker's MAC (docs/security.md); histories from before it replay unsigned. */
export const PATCH_SIGNED_RESYNC = 'resync-signed-order';

/**
 * The owner and the signed order come from one local activity (resyncOrder) beside the layout's,
 * not from groupOwner and then signOrder: one workflow activation and local-activity round less
 * before the pull (issue 14 item 4). Histories from before it replay the two rounds.
 */
export const PATCH_RESYNC_ONE_ROUND = 'resync-checks-one-round';

/** A dead worker is noticed within this (the heartbeat timeout), then the retry resumes. */
export const RESYNC_HEARTBEAT_TIMEOUT_MS = 5000;

/** The node's sync activities: long, heartbeating, retried (resuming) on transient failures. */
export function syncOn(cluster: string, node: string) {
  return proxyActivities<SyncActivities>({
    taskQueue: nodeTaskQueue(cluster, node),
    startToCloseTimeout: '24 hours',
    heartbeatTimeout: RESYNC_HEARTBEAT_TIMEOUT_MS,
    retry: {
      initialInterval: '1 second',
      maximumInterval: '10 seconds',
      maximumAttempts: 5,
      // Retrying does not free space, remount a filesystem or settle a split brain.
      nonRetryableErrorTypes: [ERROR_TYPES.SyncFailed, ERROR_TYPES.NodeOwnsGroup, ERROR_TYPES.DrbdSplitBrain, ERROR_TYPES.UnknownGroup, ERROR_TYPES.StaleEpoch],
    },
  });
}

export async function resync(rawInput: unknown): Promise<ResyncResult> {
  const input = parseWorkflowInput(resyncInputSchema, rawInput, 'resync');
  const authenticated = patched(PATCH_SIGNED_RESYNC);
  const oneRound = patched(PATCH_RESYNC_ONE_ROUND);
  // HaTrigger now, HaOutcome at the end (story.ts).
  const story = patched(PATCH_STORY);
  const parent = workflowInfo().parent?.workflowId;
  // Its parent is a switchover (an operator's, or the controller's fail-back), else a person.
  tellTrigger(story, parent === undefined ? 'operator' : 'switchover');
  try {
    const result = await pull(input, authenticated, oneRound);
    tellOutcome(story, 'synced');
    return result;
  } catch (err) {
    tellOutcome(story, 'failed');
    throw err;
  }
}

async function pull(input: ReturnType<typeof resyncInputSchema.parse>, authenticated: boolean, oneRound: boolean): Promise<ResyncResult> {
  tagIfUntagged({ cluster: input.cluster, group: input.group, node: input.node, operation: 'resync' });
  const { group, owner: truth, order: signedOrder } = authenticated && oneRound ? await groupAndResyncOrder(input.cluster, input.group, input.node) : { ...(await groupAndOwner(input.cluster, input.group, input.node)), order: undefined };
  if (truth.owner === null) {
    throw ApplicationFailure.create({ type: ERROR_TYPES.GroupRunsNowhere, nonRetryable: true, message: `group '${group.name}' runs nowhere (state ${truth.state}): there is no owner to resync ${input.node} from` });
  }
  if (truth.owner === input.node) {
    throw ApplicationFailure.create({ type: ERROR_TYPES.NodeOwnsGroup, nonRetryable: true, message: `node '${input.node}' owns group '${group.name}' (epoch ${truth.epoch}): data flows from the owner, never toward it; nothing was changed` });
  }
  log.info('resync', { group: group.name, node: input.node, from: truth.owner, epoch: truth.epoch, reason: input.reason });
  const order = authenticated && oneRound
    ? checkedOrder(signedOrder, { group: group.name, source: truth.owner, epoch: truth.epoch })
    : await signed(authenticated, input.cluster, input.node, 'resyncGroup', { group: group.name, source: truth.owner, epoch: truth.epoch });
  return await syncOn(input.cluster, input.node).resyncGroup.executeWithOptions(says(`${input.node} pulls ${group.name}'s data from ${truth.owner} (epoch ${truth.epoch})`), [order]);
}

/** The order resyncOrder signed, if it is the one these checks allow (it signs from the same answer: a defect otherwise). */
function checkedOrder(order: { group: string; source: string; epoch: number; mac?: string } | undefined, want: { group: string; source: string; epoch: number }) {
  if (order === undefined || order.group !== want.group || order.source !== want.source || order.epoch !== want.epoch) {
    throw ApplicationFailure.create({ type: ERROR_TYPES.SyncFailed, nonRetryable: true, message: `the signed resync order (${JSON.stringify(order ?? null)}) is not the one checked (${JSON.stringify(want)}); nothing was sent` });
  }
  return order;
}
