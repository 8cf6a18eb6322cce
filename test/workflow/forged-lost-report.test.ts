/**
 * Issue 9 item 9 (security): a `groupLost` report is a signal anyone with Temporal access can send.
 * The controller answers one (for the owner, at its epoch) with a `recover` failover, which trusted
 * that the owner holds nothing: it started the group on the first candidate at once, without
 * waiting out the owner's lease. With the owner not the preferred node, a forged report made two
 * nodes run the group until the owner's lease ran out.
 *
 * Now a recover asks the owner itself, with an authenticated ping (failover-impostor.test.ts): only
 * its signed answer "I hold nothing" makes it safe at once; an owner that answers holding the group
 * (or does not answer) has its lease waited out first, as a silent one.
 *
 * The test cluster's nodes keep no lease (test/support/workflow-cluster.ts), so what is checked is
 * the failover's decision: the recover waited out n2's lease before ordering n1 to start. Seen
 * failing before the fix: n1's start order came right after the forged report, with no lease wait.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { clusterTaskQueue, failoverWorkflowId, type FailoverResult } from '../../workflows/shared.js';

const LEASE = { ttlMs: 3000, marginMs: 500 };

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

test('a forged groupLost for a running owner does not start the group elsewhere before the owner\'s lease is waited out', async (t) => {
  const c = await WorkflowCluster.start('forged-lost', twoNodeWeb({ lease: `{ ttl: ${LEASE.ttlMs}ms, margin: ${LEASE.marginMs}ms }`, verifyTimeout: '3s' }));
  cluster = c;
  // The group on n2 (not the preferred node), as after an earlier failover (once the placement's run, same ID, has closed).
  await c.client.workflow.getHandle(failoverWorkflowId(c.name, 'web')).result().catch(() => undefined);
  const moved = await c.client.workflow.start('failover', { workflowId: failoverWorkflowId(c.name, 'web'), taskQueue: clusterTaskQueue(c.name), args: [{ cluster: c.name, group: 'web', to: 'n2', reason: 'test: put it on n2' }] });
  assert.equal(((await moved.result()) as FailoverResult).outcome, 'moved');
  const onN2 = await c.settled('n2');
  assert.ok(c.node('n2').services.get('first')!.running, 'n2 runs web');
  const n1Orders = c.node('n1').startOrders.length;

  // Someone with Temporal access, not n2: "n2 stopped web by itself" (it did not).
  const forgedAt = Date.now();
  await c.link.reportLost({ group: 'web', node: 'n2', epoch: onN2.epoch, at: forgedAt, detail: 'forged: lease lost' });
  await waitFor('n1 is ordered to start web', () => c.node('n1').startOrders.length > n1Orders, 60_000, 20);
  const orderedAfterMs = c.node('n1').startOrders[n1Orders]! - forgedAt;
  await c.settled();
  const result = await c.failoverResult();
  t.diagnostic(`n1 ordered to start ${orderedAfterMs} ms after the forged report; the recover: ${JSON.stringify(result.phases)}`);
  assert.notEqual(result.phases.leaseWaitMs, undefined, 'the recover waited out n2\'s lease');
  // n2's renewals were blocked when the recover began (after the report): its lease ran from then.
  assert.ok(orderedAfterMs >= LEASE.ttlMs + LEASE.marginMs - 200, `n1 started ${orderedAfterMs} ms after the report, not before n2's lease (${LEASE.ttlMs} + ${LEASE.marginMs} ms) could have run out`);
});
