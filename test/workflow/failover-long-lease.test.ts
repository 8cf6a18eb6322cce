/**
 * A silent owner whose lease is longer than 10 s (lease.ttl may be up to 10 min): the failover
 * waits out the lease and then starts the group on the other node.
 *
 * A defect found while writing the fencing tests (issue 8 §5): workflows/failover.ts waited out the
 * old lease with `local.pause`, a LOCAL activity under a 10 s startToCloseTimeout. When more than
 * 10 s of the lease remained, every attempt was cut off and retried from zero, the group stayed
 * `moving` with nothing started, and the failover failed. This test failed (as a todo) until the
 * wait became a regular activity sized to it (patch `failover-long-lease-wait`).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeTemporal } from '../support/temporal.js';
import { WorkflowCluster } from '../support/workflow-cluster.js';

const LEASE = { ttlMs: 15_000, marginMs: 100 };
const VERIFY_TIMEOUT_MS = 2000;

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

test('a silent owner with a 15 s lease: the lease is waited out, then the group starts on the other node', async (t) => {
  const c = await WorkflowCluster.start('long-lease', `
lease: { ttl: ${LEASE.ttlMs}ms, margin: ${LEASE.marginMs}ms }
failover: { verifyTimeout: ${VERIFY_TIMEOUT_MS}ms }
defaults:
  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }
nodes:
  - { name: n1, addresses: [127.0.0.1], priority: 10 }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`);
  cluster = c;
  const before = await c.web();
  await c.kill('n1');
  const reportedAt = Date.now();
  await c.report('n1', 'suspect', 'n2', 'every link silent');
  // ttl + margin, and 20 s for the verification, the claim and the start on a loaded machine.
  const g = await c.settled('n2', LEASE.ttlMs + LEASE.marginMs + 20_000).catch(async (err: Error) => {
    assert.fail(`${err.message}; the group: ${JSON.stringify(await c.web())}`);
  });
  assert.equal(g.epoch, before.epoch + 1);
  const firstStart = c.node('n2').startOrders[0]!;
  assert.ok(firstStart >= reportedAt + LEASE.ttlMs + LEASE.marginMs, `nothing started before the old lease ended (${firstStart - reportedAt} ms)`);
  t.diagnostic(`n2 started ${firstStart - reportedAt} ms after the suspicion`);
});
