/**
 * The controller activities' reading of the controller's refusals (activities/controller.ts).
 * Found by the chaos suite (seed 777, fault #182): a failover's `beginOperation` reached a
 * controller run that had just started (continue-as-new) and had not registered its update
 * handlers yet; the SDK refused it ("No registered handler for update: beginOperation"), the
 * activity took that for invalid input (non-retryable), the failover failed, the controller kept
 * the group locked for two minutes and dropped the restarted agent's report meanwhile: the group
 * stayed "running" on a node that held nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { createControllerActivities } from '../../activities/controller.js';
import { ERROR_TYPES } from '../../workflows/shared.js';

/** Activities whose controller refuses every update with `cause` (what the client decodes from the validator's failure). */
function refusing(cause: Error) {
  const client = { workflow: { getHandle: () => ({ executeUpdate: async () => { throw new WorkflowUpdateFailedError('Workflow Update failed', cause); } }) } };
  return createControllerActivities({ client: client as unknown as Client, key: undefined });
}
const typed = (type: string, message: string) => ApplicationFailure.create({ type, nonRetryable: true, message });

test('a controller run that has not registered its update handlers yet: the refusal is retryable, not invalid input', async () => {
  // As the SDK refuses it (@temporalio/workflow rejectBufferedUpdates): no type.
  const activities = refusing(ApplicationFailure.nonRetryable('No registered handler for update: beginOperation'));
  const err = await activities.beginOperation({ cluster: 'c1', group: 'web', workflowId: 'failover/c1/web', kind: 'node-lost' }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof Error, 'refused');
  assert.ok(!(err instanceof ApplicationFailure && err.nonRetryable), `retryable: ${String(err)}`);
  assert.match(err.message, /has not registered .* yet|No registered handler/);
});

test('the controller\'s own refusals stay typed and final', async () => {
  const cases: [string, string][] = [
    ["group 'web' is busy: node-lost operation failover/c1/web is running; wait for it to end", ERROR_TYPES.OperationInProgress],
    ["unknown group 'db' (known: web)", ERROR_TYPES.UnknownGroup],
    ['invalid beginOperation request: kind: expected one of …', ERROR_TYPES.InvalidWorkflowInput],
  ];
  for (const [reason, type] of cases) {
    const err = await refusing(typed(type, reason)).beginOperation({ cluster: 'c1', group: 'web', workflowId: 'w', kind: 'operator' }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ApplicationFailure, reason);
    assert.equal(err.type, type, reason);
    assert.equal(err.nonRetryable, true, reason);
  }
});

/**
 * Before, the type was read from the refusal's words with regexes (/is busy|does not hold/,
 * /stale epoch/, /unknown group/, /unknown node/, else InvalidWorkflowInput): words that hold
 * one of the phrases took its type, and words that hold none became invalid input.
 */
test('the type of a refusal is the controller\'s, whatever its words', async () => {
  const cases: [string, string, string][] = [
    // The failover needs these: StaleEpoch and OperationInProgress end its attempts differently.
    ['claimGroup', ERROR_TYPES.StaleEpoch, "group 'web' has moved on to epoch 4 (the claim expected 3)"],
    ['endOperation', ERROR_TYPES.OperationInProgress, "failover/c1/web is not the operation on 'web' (none is running)"],
    // Words that hold a phrase of another type.
    ['endOperation', ERROR_TYPES.InvalidWorkflowInput, 'invalid endOperation request: (request): unknown key stale epoch'],
    ['claimGroup', ERROR_TYPES.UnknownNode, "unknown node 'n9' (the group is busy elsewhere? no: the node is not configured)"],
  ];
  for (const [update, type, reason] of cases) {
    const activities = refusing(typed(type, reason));
    const req = { cluster: 'c1', group: 'web', workflowId: 'failover/c1/web' };
    const call = update === 'claimGroup'
      ? activities.claimGroup({ ...req, expectEpoch: 3, owner: 'n2' })
      : activities.endOperation({ ...req, outcome: 'running', detail: 'started' });
    const err = await call.then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ApplicationFailure, `${update}: ${reason}`);
    assert.equal(err.type, type, `${update}: ${reason}`);
    assert.equal(err.nonRetryable, true);
  }
});

test('a refusal outside the update\'s contract is final, keeps its type and says so', async () => {
  // An older controller's validator threw a plain Error: the client decodes it with type 'Error'.
  const err = await refusing(typed('Error', "stale epoch 3 for group 'web': the current epoch is 4")).claimGroup({ cluster: 'c1', group: 'web', workflowId: 'w', expectEpoch: 3, owner: 'n2' }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ApplicationFailure);
  assert.equal(err.type, 'Error');
  assert.equal(err.nonRetryable, true);
  assert.match(err.message, /not one of claimGroup refusals/);
});
