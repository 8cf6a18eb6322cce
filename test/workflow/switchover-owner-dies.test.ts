/**
 * Issue 9 item 7: the owner dies during a switchover (or a fail-back), or a slow stop makes the
 * target refuse to start (PeerStillClaims: the old owner's heartbeats still claim the group). The
 * failover then leaves the group `down` (a StaleEpoch ends its attempts: another node would meet
 * the same). A healthy target is there: the group must end up running, without waiting for a
 * later "up" edge of some node.
 *
 * Fixed by the controller's retry of a `down` group (6a2c12e, patch `controller-retry-down`): on
 * the commit before it, this test fails (the group stays down, state `down` 45 s later).
 *
 * The scene: web runs on n1; a switchover to n2; n1 stops the group, then dies (its worker shut
 * down, n2 reports it suspect); n2's first start is refused as the real node refuses it when a
 * peer still claims the group (the activity's typed StaleEpoch). Nothing reports "up" afterwards.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster, type ExtraActivities } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { clusterTaskQueue, ERROR_TYPES, switchoverWorkflowId } from '../../workflows/shared.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

test('the owner dies during a switchover and the target first refuses (a peer still claims the group): the group ends up running on the target', async (t) => {
  let refused = 0;
  /** Set once the cluster runs (the order below only comes during the switchover). */
  const lab: { c?: WorkflowCluster } = {};
  const extra: ExtraActivities = (node): ReturnType<ExtraActivities> => (node.name !== 'n2' ? {} : {
    startResource: async (req: { group: string; resource: string; epoch: number; verifyTimeoutMs?: number }) => {
      node.startOrders.push(Date.now());
      if (refused === 0) {
        refused += 1;
        // n1 is gone right after its stop; n2 still hears its last heartbeats claiming the group.
        await lab.c!.kill('n1');
        await lab.c!.report('n1', 'suspect', 'n2', 'every link silent');
        throw ApplicationFailure.create({ type: ERROR_TYPES.StaleEpoch, nonRetryable: true, message: `peer n1 still claims group ${req.group} (test)` });
      }
      return node.groups.startResource(req.group, req.resource, req.epoch).then(() => ({}));
    },
  });
  const c = await WorkflowCluster.start('switchover-owner-dies', twoNodeWeb({ lease: '{ ttl: 1000ms, margin: 100ms }', verifyTimeout: '1s' }), { extra });
  cluster = c;
  lab.c = c;
  const before = await c.web();
  const begun = Date.now();
  const handle = await c.client.workflow.start('switchover', {
    workflowId: switchoverWorkflowId(c.name, 'web'),
    taskQueue: clusterTaskQueue(c.name),
    args: [{ cluster: c.name, group: 'web', to: 'n2', trigger: 'operator', reason: 'test: owner dies during the switchover' }],
  });
  const outcome = await handle.result().then(() => 'moved', (err: Error) => (err.cause instanceof Error ? err.cause.message : err.message));
  t.diagnostic(`switchover: ${outcome}`);
  assert.equal(refused, 1, "n2 refused the switchover's start");
  const down = await c.web();
  t.diagnostic(`after the switchover: ${down.state} on ${down.owner ?? 'nobody'} at epoch ${down.epoch}`);
  // The controller's own retry of a down group (5 s, doubling), not an "up" edge: none comes.
  const g = await c.settled('n2', 45_000).catch(async (err: Error) => assert.fail(`${err.message}; the group: ${JSON.stringify(await c.web())}`));
  assert.ok(g.epoch > before.epoch);
  await waitFor('n2 runs the resource', () => c.node('n2').services.get('first')!.running || undefined, 5_000);
  t.diagnostic(`running on n2 ${Date.now() - begun} ms after the switchover began (epoch ${g.epoch})`);
});
