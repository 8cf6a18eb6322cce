/**
 * The failover's conversation with the controller: Temporal updates sent by the workflow
 * worker (workflows cannot send updates themselves). Each returns only once the controller
 * has accepted the change, so an epoch raised here is what every later lease query sees.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import type { Payload, UpdateDefinition } from '@temporalio/common';
import {
  beginOperationUpdate,
  claimGroupUpdate,
  clusterTaskQueue,
  controllerWorkflowId,
  endOperationUpdate,
  ERROR_TYPES,
  isRefusalOf,
  operationBlockedUpdate,
  ownershipQuery,
  type BeginOperation,
  type ClaimGroup,
  type ControllerUpdateName,
  type EndOperation,
  type OperationBegun,
  type OperationBlocked,
  type UpdateAuth,
} from '../workflows/shared.js';

import { markNow, type MonotonicMark } from '../src/monotonic-mark.js';
import { leaseMemoGroupEntry } from '../src/auth/ownership-answer.js';
import type { LeaseGroupView } from '../workflows/lease-memo.js';
import { controllerUpdateMac, orderMac, type MessageKey } from '../src/auth/messages.js';

type WithCluster<T> = T & { cluster: string };

/** A group's owner and epoch as the controller has them (groupOwner). */
export interface GroupOwner {
  owner: string | null;
  epoch: number;
  state: string;
  operation?: string;
}

/**
 * One update ID for every execution of the same (local) activity: its retries, and a run again
 * after its workflow task failed (UNHANDLED_COMMAND when an event arrives meanwhile: the marker
 * of a local activity that completed is then lost, and the next task runs it again). Temporal
 * applies an update ID once and answers a repeat with the first outcome, so a replayed
 * `endOperation` is not refused as "no operation is running" after it was applied (and the
 * failover does not undo a start that succeeded). Undefined outside an activity (tests).
 */
function withUpdateId(what: string): { updateId?: string } {
  const id = updateIdOf(what);
  return id === undefined ? {} : { updateId: id };
}

function updateIdOf(what: string): string | undefined {
  let info;
  try {
    info = Context.current().info;
  } catch {
    return undefined;
  }
  const run = info.workflowExecution;
  return run ? `${run.workflowId}/${run.runId}/${info.activityId}/${what}` : undefined;
}

export interface ControllerActivityDeps {
  client: Client;
  /**
   * The cluster's message key (deriveMessageKey of the cluster secret), with which the updates
   * that can move ownership are signed; undefined in a one-node cluster (no secret: nothing is
   * signed, and its controller checks nothing).
   */
  key: MessageKey | undefined;
}

/**
 * `req` with its MAC for `update` to the controller of `cluster`, under `updateId`, from the
 * workflow run that runs this activity (docs/security.md). Signed only for a LOCAL activity of a
 * workflow on this worker, whose workflow is the one the request names: anyone with Temporal
 * access can schedule `claimGroup` as a regular activity on the cluster's queue, and must not get
 * a claim signed for an operation of their own. @throws Unauthenticated (not retryable) otherwise.
 */
function signUpdate<T extends { workflowId: string }>(key: MessageKey | undefined, cluster: string, update: ControllerUpdateName, updateId: string | undefined, req: T): T & { auth?: UpdateAuth } {
  if (key === undefined) return req;
  const info = Context.current().info;
  const run = info.workflowExecution;
  const why = !info.isLocal || run === undefined ? `it was scheduled as a regular activity${run ? ` by workflow ${run.workflowId}` : ''}, not as a local activity of a workflow on this worker`
    : run.workflowId !== req.workflowId ? `workflow ${run.workflowId} sends it for workflow ${req.workflowId}`
    : updateId === undefined ? 'it has no update ID'
    : undefined;
  if (why !== undefined || updateId === undefined || run === undefined) {
    throw ApplicationFailure.create({ type: ERROR_TYPES.Unauthenticated, nonRetryable: true, message: `${update} is not signed: ${why}; nothing was sent (docs/security.md)` });
  }
  const mac = controllerUpdateMac(key, { cluster, controllerId: controllerWorkflowId(cluster), update, updateId, runId: run.runId, request: req });
  return { ...req, auth: { runId: run.runId, mac } };
}

export function createControllerActivities(deps: ControllerActivityDeps) {
  const { client, key } = deps;
  const controller = (cluster: string) => client.workflow.getHandle(controllerWorkflowId(cluster));
  /** The update sent signed, under the ID of this activity execution (withUpdateId). */
  const executeSigned = <R, T extends { workflowId: string }>(cluster: string, def: UpdateDefinition<R, [T]>, name: ControllerUpdateName, req: T): Promise<R> => {
    const { updateId } = withUpdateId(name);
    const signed = signUpdate(key, cluster, name, updateId, req);
    return controller(cluster).executeUpdate(def, { args: [signed], ...(updateId !== undefined ? { updateId } : {}) });
  };

  /**
   * A refusal by the controller's validator cannot be fixed by retrying: non-retryable, with the
   * type the controller gave it (one of `update`'s refusals, shared.ts CONTROLLER_REFUSALS),
   * never one read from its words.
   */
  async function send<T>(cluster: string, what: string, call: () => Promise<T>, update?: ControllerUpdateName): Promise<T> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        const cause = err.cause;
        const reason = cause?.message ?? err.message;
        if (notRegisteredYet(cause)) {
          throw new Error(`the controller of cluster '${cluster}' has not registered its handlers yet (it has just started): ${what} is tried again`, { cause: err });
        }
        const type = cause instanceof ApplicationFailure ? cause.type : undefined;
        if (update !== undefined && isRefusalOf(update, type)) {
          throw ApplicationFailure.create({ type, nonRetryable: true, message: `the controller of cluster '${cluster}' refused ${what}: ${reason}` });
        }
        // Outside the contract (a controller of another version, a bug): still final, its type kept, and said so.
        throw ApplicationFailure.create({
          type: type || ERROR_TYPES.InvalidWorkflowInput,
          nonRetryable: true,
          message: `the controller of cluster '${cluster}' refused ${what} (${type ? `type '${type}'` : 'no type'}, not one of ${update ?? 'its'} refusals): ${reason}`,
        });
      }
      if (err instanceof WorkflowNotFoundError) {
        throw ApplicationFailure.create({
          type: ERROR_TYPES.ControllerNotRunning,
          nonRetryable: true,
          message: `the controller of cluster '${cluster}' (workflow ${controllerWorkflowId(cluster)}) is not running: start an agent (it starts the controller) and try again`,
        });
      }
      throw err;
    }
  }

  const groupOwner = async ({ cluster, group }: { cluster: string; group: string }): Promise<GroupOwner> => {
    const state = await send(cluster, `to tell the owner of group '${group}'`, () => controller(cluster).query(ownershipQuery));
    const g = state.groups[group];
    if (!g) throw ApplicationFailure.create({ type: ERROR_TYPES.UnknownGroup, nonRetryable: true, message: `the controller of cluster '${cluster}' knows no group '${group}'` });
    return { owner: g.owner, epoch: g.epoch, state: g.state, ...(g.operation ? { operation: g.operation.workflowId } : {}) };
  };

  return {
    /** Whether a workflow still runs (an operation holding a group may have been terminated). */
    async workflowRunning({ workflowId }: { workflowId: string }): Promise<boolean> {
      try {
        return (await client.workflow.getHandle(workflowId).describe()).status.name === 'RUNNING';
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return false;
        throw err;
      }
    },

    /**
     * `mark`: this process's monotonic now, taken once the controller has committed the
     * operation (and blocked the owner's renewals): what a lease wait counts from.
     */
    async beginOperation({ cluster, ...req }: WithCluster<BeginOperation>): Promise<OperationBegun & { mark: MonotonicMark }> {
      const begun = await send(cluster, `to begin an operation on group '${req.group}'`, () =>
        controller(cluster).executeUpdate(beginOperationUpdate, { args: [req], ...withUpdateId('beginOperation') }), 'beginOperation');
      // The lease wait counts from when an owner's read of the memo sees the block, not only from the commit.
      await leaseMemoShows(client, cluster, req.group, `the block of group '${req.group}' (epoch ${begun.epoch})`, (g) => !g.renewable || g.epoch > begun.epoch);
      return { ...begun, mark: markNow() };
    },
    /** `mark`: as beginOperation's, once the claim is committed (no node renews an older epoch from then on). */
    async claimGroup({ cluster, ...req }: WithCluster<ClaimGroup>): Promise<{ epoch: number; mark: MonotonicMark }> {
      const claimed = await send(cluster, `to raise the epoch of group '${req.group}'`, () =>
        executeSigned(cluster, claimGroupUpdate, 'claimGroup', req), 'claimGroup');
      await leaseMemoShows(client, cluster, req.group, `epoch ${claimed.epoch} of group '${req.group}'`, (g) => g.epoch >= claimed.epoch);
      return { ...claimed, mark: markNow() };
    },
    /** The group's owner and epoch as the controller has them now (a query: no history written). */
    groupOwner,
    /**
     * The resync workflow's owner look-up and its resyncGroup order for `node`, signed as the
     * auth activities' signOrder signs it (bound to this node, the action and the workflow run),
     * in one local activity: a second one after the owner is known is another workflow
     * activation and local-activity round on the worker, which every resync waited for before
     * its data moved (issue 14 item 4). Signed only when the order would be sent: the group has
     * an owner and it is not `node` (the workflow refuses the other cases, and checks the rest).
     * Only as a LOCAL activity of a workflow on this worker (as signOrder): scheduled as a regular
     * one, anyone with Temporal access would get orders signed. @throws Unauthenticated then.
     */
    async resyncOrder({ cluster, group, node }: { cluster: string; group: string; node: string }): Promise<{ owner: GroupOwner; order?: { group: string; source: string; epoch: number; mac?: string } }> {
      const info = Context.current().info;
      const run = info.workflowExecution;
      if (!info.isLocal || run === undefined) {
        throw ApplicationFailure.create({ type: ERROR_TYPES.Unauthenticated, nonRetryable: true, message: `resyncOrder runs only as a local activity of a workflow on this worker; it was scheduled as a regular activity${run ? ` by workflow ${run.workflowId}` : ''} and is refused (docs/security.md)` });
      }
      // As signOrder's checkCluster: this worker signs for its own cluster only, whose queue it serves.
      if (info.taskQueue !== clusterTaskQueue(cluster)) {
        throw ApplicationFailure.create({ type: ERROR_TYPES.WrongCluster, nonRetryable: true, message: `resyncOrder for cluster '${cluster}' from a workflow on task queue ${info.taskQueue}, not that cluster's ${clusterTaskQueue(cluster)}; nothing was signed` });
      }
      const owner = await groupOwner({ cluster, group });
      if (owner.owner === null || owner.owner === node) return { owner };
      const order = { group, source: owner.owner, epoch: owner.epoch };
      if (key === undefined) return { owner, order };
      return { owner, order: { ...order, mac: orderMac(key, { cluster, node, action: 'resyncGroup', workflowId: run.workflowId, runId: run.runId, order }) } };
    },
    /** The failover is blocked on its old owner (a failed stop): recorded for `haoscar status` and confirm-down. */
    async operationBlocked({ cluster, ...req }: WithCluster<OperationBlocked>): Promise<void> {
      await send(cluster, `to record that the operation on group '${req.group}' is blocked`, () =>
        executeSigned(cluster, operationBlockedUpdate, 'operationBlocked', req), 'operationBlocked');
    },
    async endOperation({ cluster, ...req }: WithCluster<EndOperation>): Promise<void> {
      await send(cluster, `to end the operation on group '${req.group}'`, () =>
        executeSigned(cluster, endOperationUpdate, 'endOperation', req), 'endOperation');
    },
  };
}

export type ControllerActivities = ReturnType<typeof createControllerActivities>;

/**
 * The SDK's own refusal of an update that reaches a controller run before it has registered its
 * handlers: a run that has just started (continue-as-new, a restart) registers them after its
 * first local activity, and the SDK then refuses what came before with this message and its
 * default type 'Error' (@temporalio/workflow internals.js rejectBufferedUpdates). Not a refusal
 * of the request: retried (found by the chaos suite). The one refusal recognised by its words:
 * the SDK gives it no type of its own, and the controller's validators never use 'Error'.
 */
function notRegisteredYet(cause: Error | undefined): boolean {
  return cause instanceof ApplicationFailure && (!cause.type || cause.type === 'Error') && /^No registered handler for update\b/.test(cause.message);
}

/** How long a committed change may take to show in the controller's memo as an owner reads it, and how often it is read meanwhile. */
const MEMO_SHOWS_WITHIN_MS = 10_000;
const MEMO_POLL_MS = 20;

/**
 * Waits until the controller's lease memo, read as an owner reads it to confirm its lease
 * (DescribeWorkflowExecution through this worker's client), shows what the update just committed:
 * a lease wait must count from a moment after which no owner's read can still confirm the old
 * state (issue 14 item 2). A Temporal history host that has lost the controller's shard without
 * knowing it yet could serve the state from before the commit; the wait then begins once every
 * read through this client shows the change. Nothing to wait for when no owner can use the memo:
 * none (a controller older than it), or the group's entry is from another run than the running
 * one (owners refuse it).
 * @throws Error (retried with the activity) when the memo still shows the old state after MEMO_SHOWS_WITHIN_MS.
 */
async function leaseMemoShows(client: Client, cluster: string, group: string, what: string, shows: (g: LeaseGroupView) => boolean): Promise<void> {
  const until = performance.now() + MEMO_SHOWS_WITHIN_MS;
  for (;;) {
    const described = await client.workflow.getHandle(controllerWorkflowId(cluster)).describe();
    const fields = described.raw.workflowExecutionInfo?.memo?.fields as Record<string, Payload> | null | undefined;
    const entry = leaseMemoGroupEntry(fields, group);
    if (described.status.name !== 'RUNNING' || entry === undefined || entry.runId !== described.runId || shows(entry.content)) return;
    if (performance.now() >= until) {
      throw new Error(`the controller's lease memo does not show ${what} ${MEMO_SHOWS_WITHIN_MS / 1000} s after it was committed (a Temporal history host serving an old state?): tried again`);
    }
    await sleep(MEMO_POLL_MS);
  }
}
