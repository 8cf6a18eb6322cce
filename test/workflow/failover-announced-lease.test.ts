/**
 * Issue 9 item 2: the lease wait covers the lease the holder announced, not only the worker's.
 *
 * A rolling change of the lease settings: the workflow worker runs with `lease: 600 ms + 100 ms`,
 * the owner's agent (n1) still enforces `3 s + 500 ms` and says so in its edge to the controller
 * (`announce.lease`). n1 goes silent: before the fix the failover waited out 700 ms (the worker's
 * configuration) and started the group on n2 while n1 could still serve it for seconds; now it
 * waits for the largest announced lease of the group's nodes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { formatStatus } from '../../src/cli/status-text.js';

const WORKER_LEASE = { ttlMs: 600, marginMs: 100 };
const ANNOUNCED = { ttlMs: 3000, marginMs: 500 };

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

test('a silent owner that announced a longer lease than the worker\'s: the failover waits out the announced one', async (t) => {
  const c = await WorkflowCluster.start('ann-lease', twoNodeWeb({ lease: `{ ttl: ${WORKER_LEASE.ttlMs}ms, margin: ${WORKER_LEASE.marginMs}ms }`, verifyTimeout: '1s' }));
  cluster = c;
  // n1's agent (an older configuration) announces what it enforces.
  await c.link.report({ node: 'n1', to: 'up', reporter: 'n1', at: Date.now(), detail: 'test: agent started', announce: { lease: ANNOUNCED } });
  await waitFor('the controller recorded n1\'s announced lease', async () => (await c.ownership()).leases?.nodes.n1?.ttlMs === ANNOUNCED.ttlMs, 30_000, 50);
  // `haoscar status` says so loudly.
  assert.match(formatStatus(await c.ownership(), Date.now()), /WARNING: lease settings differ: the workflow worker has ttl 600ms, margin 100ms; n1 enforces ttl 3000ms, margin 500ms/);
  const before = await c.settled('n1');
  await c.kill('n1');
  const reportedAt = Date.now();
  await c.report('n1', 'suspect', 'n2', 'every link silent');
  const g = await c.settled('n2', 60_000);
  assert.equal(g.epoch, before.epoch + 1);
  const firstStart = c.node('n2').startOrders[0]!;
  t.diagnostic(`n2 started ${firstStart - reportedAt} ms after the suspicion (worker lease ${WORKER_LEASE.ttlMs + WORKER_LEASE.marginMs} ms, announced ${ANNOUNCED.ttlMs + ANNOUNCED.marginMs} ms)`);
  assert.ok(firstStart >= reportedAt + ANNOUNCED.ttlMs + ANNOUNCED.marginMs,
    `n2 started ${firstStart - reportedAt} ms after the suspicion, before n1's announced lease (${ANNOUNCED.ttlMs + ANNOUNCED.marginMs} ms) had run out`);
  // The wait counts from the block of renewals, so it overlaps the verification.
  const result = await c.failoverResult();
  t.diagnostic(`verification ${result.phases.verifyMs} ms, lease wait after the claim ${result.phases.leaseWaitMs} ms`);
});
