/**
 * Issue 9 item 9 (security): anyone who reaches Temporal can poll a node's task queue. An
 * impostor that polls the queue of a dead owner and answers its "are you there?" pings (holding
 * the group, running) kept the group on the dead node for ever: every verification was a
 * "false alarm". Answers now carry a MAC under the cluster secret, over the node, a fresh nonce
 * the failover chose, its workflow ID and the answer's content (src/auth/messages.ts); an answer
 * that fails verification counts as no answer, and the failover proceeds (waiting out the lease,
 * as for a silent owner).
 *
 * Against a real Temporal dev server, the real controller and failover workflows and two nodes in
 * this process (test/support/workflow-cluster.ts). Seen failing before the fix: the failover
 * ended `false-alarm` and the group stayed on n1.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from '@temporalio/worker';
import { closeTemporal, testWorkerConnection } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { recordHistory } from '../support/record.js';
import { failoverWorkflowId, nodeTaskQueue } from '../../workflows/shared.js';

const LEASE = { ttlMs: 1500, marginMs: 300 };

let cluster: WorkflowCluster | undefined;
const impostors: { worker: Worker; running: Promise<void> }[] = [];
after(async () => {
  for (const i of impostors) if (i.worker.getState() === 'RUNNING') i.worker.shutdown();
  await Promise.all(impostors.map((i) => i.running.catch(() => undefined)));
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

test('an impostor polling a dead owner\'s queue and answering its pings does not keep the group there: the failover proceeds', async (t) => {
  const c = await WorkflowCluster.start('impostor', twoNodeWeb({ lease: `{ ttl: ${LEASE.ttlMs}ms, margin: ${LEASE.marginMs}ms }`, verifyTimeout: '3s' }));
  cluster = c;
  const before = await c.web();
  assert.equal(before.owner, 'n1');
  await c.kill('n1');

  // The impostor: a process with Temporal access polling n1's queue, answering as n1 would
  // (it has read n1's answers in earlier histories), holding the group under the current epoch.
  let pings = 0;
  const worker = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: nodeTaskQueue(c.name, 'n1'),
    activities: {
      ping: async (req: { group?: string; nonce?: string }) => {
        pings += 1;
        return { node: 'n1', at: Date.now(), holds: { epoch: before.epoch, state: 'running' }, ...(req.nonce ? { mac: 'A'.repeat(43) } : {}) };
      },
    },
  });
  impostors.push({ worker, running: worker.run() });

  const t0 = Date.now();
  await c.report('n1', 'suspect', 'n2', 'every link silent');
  await waitFor('the impostor answers a ping', () => pings > 0, 30_000, 20);
  const result = await waitFor('the failover of web ends', async () => {
    const g = await c.web();
    return g.operation === undefined && (g.owner !== 'n1' || g.epoch !== before.epoch || (await c.ownership()).falseAlarms.length > 0) ? g : undefined;
  }, 60_000, 50);
  const failover = await c.failoverResult();
  t.diagnostic(`pings answered by the impostor: ${pings}; failover outcome ${failover.outcome} after ${Date.now() - t0} ms`);
  assert.notEqual(failover.outcome, 'false-alarm', 'an unauthenticated answer is not a false alarm');
  assert.equal(failover.outcome, 'moved');
  assert.equal(result.owner, 'n2');
  assert.ok(result.epoch > before.epoch);
  // Treated as a silent owner: its lease was waited out before n2 started the group.
  assert.notEqual(failover.phases.leaseWaitMs, undefined, 'the old owner\'s lease was waited out');
  const settled = await c.settled('n2');
  assert.equal(settled.state, 'running');
  // A failover with authenticated pings and signed orders, for the replay test.
  await recordHistory(failoverWorkflowId(c.name, 'web'), 'failover-authenticated');
});
