/**
 * Issue 9, item 11: a controller started with a malformed `carried` state (the UI's "start like
 * this one" with an edited input, a controller started by hand) fails at once with
 * InvalidWorkflowInput naming the field, and does nothing: no lookup, no operation. Before, the
 * state was cast and used as it was: the controller ran with an epoch that is text. A well-formed
 * one (the state the ownership query shows) is taken, with keys the schema does not know kept.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { clusterTaskQueue, controllerWorkflowId, ERROR_TYPES, ownershipQuery } from '../../workflows/shared.js';
import { WorkflowCluster, twoNodeWeb } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { closeTemporal } from '../support/temporal.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close();
  await closeTemporal();
});

test('a controller started with a malformed carried state fails at once naming the field, and does nothing; a well-formed one is taken', { timeout: 180_000 }, async () => {
  cluster = await WorkflowCluster.start('carried', twoNodeWeb({ lease: '{ ttl: 2000ms, margin: 50ms }' }));
  const id = controllerWorkflowId(cluster.name);
  const state = await cluster.client.workflow.getHandle(id).query(ownershipQuery);
  await cluster.client.workflow.getHandle(id).terminate('test: started again by hand');

  const bad = structuredClone(state) as unknown as { groups: { web: Record<string, unknown> } };
  bad.groups.web.epoch = `${state.groups.web!.epoch}`;
  const handle = await cluster.client.workflow.start('controller', { workflowId: id, taskQueue: clusterTaskQueue(cluster.name), args: [{ cluster: cluster.name, carried: bad }] });
  const outcome = await Promise.race([
    handle.result().then(() => 'completed', (err: unknown) => err),
    waitFor('the controller failed', async () => ((await handle.describe()).status.name === 'RUNNING' ? undefined : true), 30_000, 100)
      .then(() => handle.result().then(() => 'completed', (err: unknown) => err), async () => `still running after 30 s: its view of web ${JSON.stringify((await handle.query(ownershipQuery)).groups.web)}`),
  ]);
  assert.ok(outcome instanceof WorkflowFailedError, `failed (got ${String(outcome)})`);
  assert.ok(outcome.cause instanceof ApplicationFailure);
  assert.equal(outcome.cause.type, ERROR_TYPES.InvalidWorkflowInput);
  assert.match(outcome.cause.message, /carried\.groups\.web\.epoch: /);
  const { events } = await handle.fetchHistory();
  const done = (events ?? []).filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_local_activity' || e.startChildWorkflowExecutionInitiatedEventAttributes || e.activityTaskScheduledEventAttributes);
  assert.deepEqual(done, [], 'nothing was done: no lookup, no operation');

  // The state as the query shows it, with a newer controller's field: taken, the field kept.
  const good = structuredClone(state) as unknown as { groups: { web: Record<string, unknown> } };
  good.groups.web.highestSeenEpoch = state.groups.web!.epoch;
  const again = await cluster.client.workflow.start('controller', { workflowId: id, taskQueue: clusterTaskQueue(cluster.name), args: [{ cluster: cluster.name, carried: good }] });
  const web = await waitFor('the controller answers', () => again.query(ownershipQuery).then((o) => o.groups.web, () => undefined), 60_000, 100);
  assert.equal(web.epoch, state.groups.web!.epoch);
  assert.equal(web.owner, state.groups.web!.owner);
  assert.equal((web as unknown as Record<string, unknown>).highestSeenEpoch, state.groups.web!.epoch);
});
