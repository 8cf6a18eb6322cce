/**
 * Issue 9, item 3 (STYLE.md "one contract per message, typed refusals"): each controller update
 * refuses with the failure types of its contract (workflows/shared.ts CONTROLLER_REFUSALS), on the
 * real controller, and the activities that send the updates pass the type on as it is. Before,
 * the validators threw plain `Error`s and activities/controller.ts guessed the type from their
 * words with regexes, so a request whose words held one of the phrases was typed by them: an
 * `endOperation` with a stray key named "stale epoch" (a newer failover's field, a hand-sent
 * request) was refused as invalid input, and the failover got `StaleEpoch`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { createControllerActivities } from '../../activities/controller.js';
import {
  beginOperationUpdate,
  claimGroupUpdate,
  confirmDownUpdate,
  CONTROLLER_REFUSALS,
  controllerWorkflowId,
  endOperationUpdate,
  ERROR_TYPES,
  operationBlockedUpdate,
  ownershipQuery,
  setMaintenanceUpdate,
  type ControllerUpdateName,
  type EndOperation,
} from '../../workflows/shared.js';
import { WorkflowCluster, twoNodeWeb } from '../support/workflow-cluster.js';
import { closeTemporal } from '../support/temporal.js';
import { signedUpdate } from '../support/cluster-key.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close();
  await closeTemporal();
});

const UPDATES = {
  beginOperation: beginOperationUpdate,
  claimGroup: claimGroupUpdate,
  endOperation: endOperationUpdate,
  operationBlocked: operationBlockedUpdate,
  confirmDown: confirmDownUpdate,
  setMaintenance: setMaintenanceUpdate,
} as const;

/** The type the controller refused `update` with (its validator's failure, as the client gets it). */
async function refusal(handle: WorkflowHandle, update: ControllerUpdateName, req: unknown): Promise<string> {
  const err = await handle.executeUpdate(UPDATES[update] as typeof beginOperationUpdate, { args: [req as never] }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof WorkflowUpdateFailedError, `${update} ${JSON.stringify(req)} refused (got ${String(err)})`);
  assert.ok(err.cause instanceof ApplicationFailure, `${update}: an ApplicationFailure (got ${String(err.cause)})`);
  assert.equal(err.cause.nonRetryable, true, `${update}: non-retryable`);
  return err.cause.type ?? '(none)';
}

test('each controller update refuses with the types of its contract, changes nothing, and the activity passes the type on', { timeout: 180_000 }, async () => {
  cluster = await WorkflowCluster.start('refusals', twoNodeWeb({ lease: '{ ttl: 2000ms, margin: 50ms }' }));
  const handle = cluster.client.workflow.getHandle(controllerWorkflowId(cluster.name));
  // The operation holding the group: a workflow that runs for the whole test (the controller's check of it finds it running).
  const op = controllerWorkflowId(cluster.name);
  const { epoch } = await cluster.web();
  await handle.executeUpdate(beginOperationUpdate, { args: [{ group: 'web', workflowId: op, kind: 'operator' }] });
  const held = await handle.query(ownershipQuery);

  const hold = { group: 'web', workflowId: op };
  const other = { group: 'web', workflowId: 'failover/elsewhere/web' };
  const CASES: [ControllerUpdateName, string, unknown][] = [
    ['beginOperation', ERROR_TYPES.InvalidWorkflowInput, { ...hold, kind: 'bogus' }],
    ['beginOperation', ERROR_TYPES.UnknownGroup, { ...hold, group: 'db', kind: 'operator' }],
    ['beginOperation', ERROR_TYPES.OperationInProgress, { ...other, kind: 'operator' }],
    ['claimGroup', ERROR_TYPES.InvalidWorkflowInput, { ...hold, expectEpoch: -1, owner: 'n2' }],
    ['claimGroup', ERROR_TYPES.UnknownGroup, { ...hold, group: 'db', expectEpoch: epoch, owner: 'n2' }],
    ['claimGroup', ERROR_TYPES.OperationInProgress, { ...other, expectEpoch: epoch, owner: 'n2' }],
    ['claimGroup', ERROR_TYPES.StaleEpoch, { ...hold, expectEpoch: epoch + 7, owner: 'n2' }],
    ['claimGroup', ERROR_TYPES.UnknownNode, { ...hold, expectEpoch: epoch, owner: 'n9' }],
    ['endOperation', ERROR_TYPES.InvalidWorkflowInput, { ...hold, outcome: 'bogus', detail: '' }],
    ['endOperation', ERROR_TYPES.UnknownGroup, { ...hold, group: 'db', outcome: 'unchanged', detail: '' }],
    ['endOperation', ERROR_TYPES.OperationInProgress, { ...other, outcome: 'unchanged', detail: '' }],
    ['operationBlocked', ERROR_TYPES.InvalidWorkflowInput, { ...hold, node: 'n1', epoch, detail: '', waitingFor: [] }],
    ['operationBlocked', ERROR_TYPES.UnknownGroup, { ...hold, group: 'db', node: 'n1', epoch, detail: '', waitingFor: ['fencing'] }],
    ['operationBlocked', ERROR_TYPES.OperationInProgress, { ...other, node: 'n1', epoch, detail: '', waitingFor: ['fencing'] }],
    ['operationBlocked', ERROR_TYPES.UnknownNode, { ...hold, node: 'n9', epoch, detail: '', waitingFor: ['fencing'] }],
    ['operationBlocked', ERROR_TYPES.StaleEpoch, { ...hold, node: 'n1', epoch: epoch + 7, detail: '', waitingFor: ['fencing'] }],
    ['confirmDown', ERROR_TYPES.InvalidWorkflowInput, { node: 'N 1' }],
    ['confirmDown', ERROR_TYPES.UnknownNode, { node: 'n9' }],
    ['confirmDown', ERROR_TYPES.NothingToConfirm, { node: 'n2' }],
    ['setMaintenance', ERROR_TYPES.InvalidWorkflowInput, { on: true }],
    ['setMaintenance', ERROR_TYPES.UnknownGroup, { group: 'db', on: true }],
    ['setMaintenance', ERROR_TYPES.UnknownNode, { node: 'n9', on: true }],
    // Valid for the state, but not signed with the cluster's message key (docs/security.md).
    ['claimGroup', ERROR_TYPES.Unauthenticated, { ...hold, expectEpoch: epoch, owner: null }],
    ['endOperation', ERROR_TYPES.Unauthenticated, { ...hold, outcome: 'down', detail: 'unsigned' }],
    ['operationBlocked', ERROR_TYPES.Unauthenticated, { ...hold, node: 'n1', epoch, detail: 'unsigned', waitingFor: ['confirm-down'] }],
    ['setMaintenance', ERROR_TYPES.Unauthenticated, { group: 'web', on: true, operator: 'unsigned' }],
  ];
  const got: string[] = [];
  for (const [update, , req] of CASES) got.push(`${update} → ${await refusal(handle, update, req)}`);
  assert.deepEqual(got, CASES.map(([update, type]) => `${update} → ${type}`));
  assert.deepEqual(await handle.query(ownershipQuery), held, 'no refusal changed anything');
  // confirmDown's Unauthenticated needs an operation blocked on the node (a signed block), and changes nothing either.
  await handle.executeUpdate(operationBlockedUpdate, { args: [signedUpdate(cluster.name, 'operationBlocked', 'refusals/blocked', 'run-1', { ...hold, node: 'n1', epoch, detail: 'test', waitingFor: ['confirm-down' as const] })], updateId: 'refusals/blocked' });
  let blocked = await handle.query(ownershipQuery);
  assert.equal(await refusal(handle, 'confirmDown', { node: 'n1', operator: 'unsigned' }), ERROR_TYPES.Unauthenticated);
  got.push(`confirmDown → ${ERROR_TYPES.Unauthenticated}`);
  assert.deepEqual(await handle.query(ownershipQuery), blocked, 'the unsigned confirm-down changed nothing');
  // A standby that would leave web (on n1) nowhere to go: n2 suspect.
  await cluster.report('n2', 'suspect', 'n1', 'every link silent');
  for (let t = Date.now(); (await handle.query(ownershipQuery)).nodes.n2?.state !== 'suspect'; ) assert.ok(Date.now() - t < 30_000, 'n2 suspect');
  blocked = await handle.query(ownershipQuery);
  assert.equal(await refusal(handle, 'setMaintenance', signedUpdate(cluster.name, 'setMaintenance', 'refusals/standby', undefined, { node: 'n1', on: true })), ERROR_TYPES.NoStandbyTarget);
  got.push(`setMaintenance → ${ERROR_TYPES.NoStandbyTarget}`);
  assert.deepEqual(await handle.query(ownershipQuery), blocked, 'the refused standby changed nothing');
  // The table is the whole contract: every refusal of every update is given by some request.
  assert.deepEqual(
    Object.entries(CONTROLLER_REFUSALS).flatMap(([u, types]) => types.map((t) => `${u} → ${t}`)).sort(),
    [...new Set(got)].sort(),
  );

  // Through the activities the failover uses: the controller's type, whatever its words say.
  const activities = createControllerActivities({ client: cluster.client, key: undefined });
  const typeOf = (p: Promise<unknown>) => p.then(() => 'accepted', (e: unknown) => (e instanceof ApplicationFailure ? `${e.type} (non-retryable: ${e.nonRetryable})` : String(e)));
  const stray = { cluster: cluster.name, ...hold, outcome: 'unchanged', detail: '', 'stale epoch': 3 } as unknown as EndOperation & { cluster: string };
  assert.equal(await typeOf(activities.endOperation(stray)), `${ERROR_TYPES.InvalidWorkflowInput} (non-retryable: true)`, 'a stray key named "stale epoch" is invalid input, not a stale epoch');
  assert.equal(await typeOf(activities.claimGroup({ cluster: cluster.name, ...hold, expectEpoch: epoch + 7, owner: 'n2' })), `${ERROR_TYPES.StaleEpoch} (non-retryable: true)`);
  assert.equal(await typeOf(activities.beginOperation({ cluster: cluster.name, ...other, kind: 'operator' })), `${ERROR_TYPES.OperationInProgress} (non-retryable: true)`);
  assert.equal(await typeOf(activities.operationBlocked({ cluster: cluster.name, ...hold, node: 'n9', epoch, detail: '', waitingFor: ['fencing'] })), `${ERROR_TYPES.UnknownNode} (non-retryable: true)`);
  assert.deepEqual(await handle.query(ownershipQuery), blocked, 'no refusal changed anything');
  await handle.executeUpdate(endOperationUpdate, { args: [signedUpdate(cluster.name, 'endOperation', 'refusals/end', 'run-1', { ...hold, outcome: 'unchanged' as const, detail: 'test over' })], updateId: 'refusals/end' });
});
