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

function refusing(message: string) {
  const client = { workflow: { getHandle: () => ({ executeUpdate: async () => { throw new WorkflowUpdateFailedError('Workflow Update failed', new Error(message)); } }) } };
  return createControllerActivities({ client: client as unknown as Client });
}

test('a controller run that has not registered its update handlers yet: the refusal is retryable, not invalid input', async () => {
  const activities = refusing('No registered handler for update: beginOperation');
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
    const err = await refusing(reason).beginOperation({ cluster: 'c1', group: 'web', workflowId: 'w', kind: 'operator' }).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof ApplicationFailure, reason);
    assert.equal(err.type, type, reason);
    assert.equal(err.nonRetryable, true, reason);
  }
});
