/**
 * A heal that gave up on the owner while no other node of the group is up (a one-node cluster, or
 * the standby down): nothing can take the group over, so no failover is started for it.
 *
 * Before, the controller started a `heal-gave-up` failover anyway. Its beginOperation blocked the
 * owner's lease renewals, and it ended "nothing was changed" only after the owner's lease (600 ms
 * by default) had run out on a loaded machine: the owner stopped the group ("lease lost: the
 * controller is moving the group"), reported it lost, and the controller's `recover` started it
 * again, with a fresh heal budget: the restart loop the heal's maxRestarts is there to prevent
 * (test/e2e/agent-heal.test.ts "no restart loop" failed so, now and then).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { controllerWorkflowId, healGaveUpSignal } from '../../workflows/shared.js';
import { signedHealGaveUp } from '../support/cluster-key.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

test('a heal gave up on the owner and no other node of the group is up: no failover, the lease keeps being renewed', async () => {
  const c = await WorkflowCluster.start('heal-gave-up-alone', twoNodeWeb({ lease: '{ ttl: 600ms, margin: 100ms }' }));
  cluster = c;
  await c.kill('n2');
  await c.report('n2', 'suspect', 'n1', 'every link silent');
  await waitFor('n2 suspect at the controller', async () => ((await c.ownership()).nodes.n2?.state === 'suspect' ? true : undefined), 30_000, 50);
  const before = await c.web();
  const signalledAt = Date.now();
  await c.client.workflow.getHandle(controllerWorkflowId(c.name)).signal(healGaveUpSignal, ...signedHealGaveUp(c.name, {
    group: 'web', resource: 'first', node: 'n1', at: Date.now(), detail: 'test: gave up after 2 restarts',
  }));
  // Long enough for the failover it used to start to have begun (and blocked renewals).
  for (let i = 0; i < 30; i++) {
    const g = await c.web();
    assert.equal(g.operation, undefined, `no operation holds the group (${JSON.stringify(g.operation)})`);
    assert.equal(g.renewable, true, "the owner's lease is still renewed");
    await new Promise((r) => setTimeout(r, 100));
  }
  const after = await c.web();
  assert.deepEqual({ owner: after.owner, state: after.state, epoch: after.epoch }, { owner: 'n1', state: 'running', epoch: before.epoch });
  const failovers = (await c.childrenStarted('failover')).filter((f) => f.at >= signalledAt);
  assert.deepEqual(failovers, [], `no failover was started (signalled at ${signalledAt})`);
});
