/**
 * Issue 9 item 9 (security): orders to nodes are executed by whoever polls the node's queue, and
 * anyone who reaches Temporal can schedule them: a workflow of their own, on a worker of their
 * own (test/fixtures/attacker-workflows), can schedule `startResource` on a standby's queue and
 * have it start a group its owner still runs. Orders now carry the workflow worker's MAC over
 * (action, node, content with the epoch, workflow ID, run ID), and a node refuses one that does
 * not verify (`Unauthenticated`, not retryable) before doing anything; the signing activity runs
 * only as a local activity of a workflow on that worker (else it would sign anyone's orders).
 *
 * Seen failing before the fix (node-side check disabled): the forged start order was executed,
 * and n2 ran `web` beside its owner n1.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { closeTemporal, testWorkerConnection, uniqueName } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { clusterTaskQueue, ERROR_TYPES, failoverWorkflowId, nodeTaskQueue } from '../../workflows/shared.js';

let cluster: WorkflowCluster | undefined;
const attackers: { worker: Worker; running: Promise<void> }[] = [];
after(async () => {
  for (const a of attackers) if (a.worker.getState() === 'RUNNING') a.worker.shutdown();
  await Promise.all(attackers.map((a) => a.running.catch(() => undefined)));
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

/** The failure type an attacker's `forge` workflow ended with (undefined: the activity succeeded). */
async function forgeOutcome(c: WorkflowCluster, queue: string, taskQueue: string, activity: string, input: unknown): Promise<{ type?: string; message?: string; result?: unknown }> {
  try {
    const result = await c.client.workflow.execute('forge', { taskQueue: queue, workflowId: uniqueName('forge'), args: [{ taskQueue, activity, input }] });
    return { result };
  } catch (err) {
    assert.ok(err instanceof WorkflowFailedError, String(err));
    const activityFailure = err.cause;
    assert.ok(activityFailure instanceof ActivityFailure, `an activity failure: ${String(activityFailure)}`);
    const app = activityFailure.cause;
    assert.ok(app instanceof ApplicationFailure, `an application failure: ${String(app)}`);
    return { type: app.type ?? undefined, message: app.message };
  }
}

/** The inputs of the `type` activities a workflow's latest run scheduled, decoded. */
async function scheduledInputs(c: WorkflowCluster, workflowId: string, type: string): Promise<{ queue: string; input: Record<string, unknown> }[]> {
  const history = await c.client.workflow.getHandle(workflowId).fetchHistory();
  const out: { queue: string; input: Record<string, unknown> }[] = [];
  for (const e of history.events ?? []) {
    const a = e.activityTaskScheduledEventAttributes;
    if (!a || a.activityType?.name !== type) continue;
    const data = a.input?.payloads?.[0]?.data;
    assert.ok(data, 'a recorded input');
    out.push({ queue: a.taskQueue?.name ?? '?', input: JSON.parse(Buffer.from(data).toString('utf8')) as Record<string, unknown> });
  }
  return out;
}

test('orders that the workflow worker did not sign for this node and this run are refused before anything is done', async (t) => {
  const c = await WorkflowCluster.start('forged', twoNodeWeb({ lease: '{ ttl: 1500ms, margin: 300ms }' }));
  cluster = c;
  const web = await c.web();
  assert.equal(web.owner, 'n1');
  const attackerQueue = `attacker-${c.name}`;
  const worker = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: attackerQueue,
    workflowBundle: await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('../fixtures/attacker-workflows/index.ts', import.meta.url)), logger: new DefaultLogger('WARN') }),
  });
  attackers.push({ worker, running: worker.run() });
  const n2 = c.node('n2');

  // 1. A start order for the standby, under the current epoch, with no MAC.
  const unsigned = await forgeOutcome(c, attackerQueue, nodeTaskQueue(c.name, 'n2'), 'startResource', { group: 'web', resource: 'first', epoch: web.epoch });
  t.diagnostic(`unsigned start order on n2: ${JSON.stringify(unsigned)}`);
  assert.equal(n2.groups.holding('web'), undefined, 'n2 does not hold web');
  assert.equal(n2.services.get('first')!.running, false, 'n2 does not run web/first beside its owner n1');
  assert.equal(unsigned.type, ERROR_TYPES.Unauthenticated);

  // 2. A signed order read from a history (the placement's start of web on n1), replayed as it
  //    was recorded, to the same node: bound to the placement's run, it is refused.
  const recorded = (await scheduledInputs(c, failoverWorkflowId(c.name, 'web'), 'startResource')).find((s) => s.queue === nodeTaskQueue(c.name, 'n1'));
  assert.ok(recorded, 'the placement ordered n1 to start web');
  assert.equal(typeof recorded.input.mac, 'string', 'recorded orders carry a MAC');
  const replayed = await forgeOutcome(c, attackerQueue, nodeTaskQueue(c.name, 'n1'), 'startResource', recorded.input);
  assert.equal(replayed.type, ERROR_TYPES.Unauthenticated, `a replayed order: ${JSON.stringify(replayed)}`);
  //    ... and the same MAC on an order for the standby (another node) is refused too.
  const moved = await forgeOutcome(c, attackerQueue, nodeTaskQueue(c.name, 'n2'), 'startResource', recorded.input);
  assert.equal(moved.type, ERROR_TYPES.Unauthenticated);
  assert.equal(n2.services.get('first')!.running, false);

  // 3. A fence order (power off a peer) with no MAC.
  const fence = await forgeOutcome(c, attackerQueue, nodeTaskQueue(c.name, 'n2'), 'fence', { victim: 'n1' });
  assert.equal(fence.type, ERROR_TYPES.Unauthenticated, `an unsigned fence order: ${JSON.stringify(fence)}`);

  // 4. The signing activity, scheduled as a regular activity on the cluster's queue (where the
  //    real workflow worker polls): no signing oracle.
  const oracle = await forgeOutcome(c, attackerQueue, clusterTaskQueue(c.name), 'signOrder', { cluster: c.name, node: 'n2', action: 'startResource', order: { group: 'web', resource: 'first', epoch: web.epoch } });
  assert.equal(oracle.type, ERROR_TYPES.Unauthenticated, `signOrder as a regular activity: ${JSON.stringify(oracle)}`);
  // The resync's owner look-up signs its pull order too (activities/controller.ts resyncOrder).
  const resyncOracle = await forgeOutcome(c, attackerQueue, clusterTaskQueue(c.name), 'resyncOrder', { cluster: c.name, group: 'web', node: 'n2' });
  assert.equal(resyncOracle.type, ERROR_TYPES.Unauthenticated, `resyncOrder as a regular activity: ${JSON.stringify(resyncOracle)}`);
  const checker = await forgeOutcome(c, attackerQueue, clusterTaskQueue(c.name), 'pingNonce', {});
  assert.equal(checker.type, ERROR_TYPES.Unauthenticated);
  // 5. The failover's update activities (they sign what they send to the controller), scheduled as
  //    regular activities: no claim for nobody signed for the attacker's workflow; and the
  //    controller's check of a MAC answers only the controller's own handlers.
  const claim = await forgeOutcome(c, attackerQueue, clusterTaskQueue(c.name), 'claimGroup', { cluster: c.name, group: 'web', workflowId: 'intruder', expectEpoch: web.epoch, owner: null });
  assert.equal(claim.type, ERROR_TYPES.Unauthenticated, `claimGroup as a regular activity: ${JSON.stringify(claim)}`);
  const check = await forgeOutcome(c, attackerQueue, clusterTaskQueue(c.name), 'checkControllerUpdate', { cluster: c.name, update: 'claimGroup', updateId: 'x', request: {} });
  assert.equal(check.type, ERROR_TYPES.Unauthenticated, `checkControllerUpdate as a regular activity: ${JSON.stringify(check)}`);

  // Nothing moved: the group runs on n1 under the same epoch, and n2 never started it.
  const after = await c.web();
  assert.equal(after.owner, 'n1');
  assert.equal(after.epoch, web.epoch);
  assert.equal(n2.services.get('first')!.running, false);
  assert.ok(c.node('n1').services.get('first')!.running, 'n1 still runs web');
});
