/**
 * Issue 14 item 2: an owner confirms its lease from the controller's memo, which Temporal answers
 * without running workflow code (workflows/lease-memo.ts, src/agent/controller-link.ts). Against a
 * real Temporal dev server, the real controller and failover workflows and the real worker codec
 * (test/support/workflow-cluster.ts), and the agent's ControllerLink with the cluster's key:
 *
 * - with the workflow worker stopped (nothing can answer a query), confirmations still come, in
 *   milliseconds, and still name the owner;
 * - confirmations of an idle cluster write no history and read none;
 * - a block is in the memo when the update that made it returns, so the failover's lease wait
 *   never starts before an owner's read sees it.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { testLink } from '../support/cluster-key.js';
import { waitFor } from '../support/wait.js';
import { queryOwnership } from '../../src/agent/controller-link.js';
import { controllerWorkflowId } from '../../workflows/shared.js';

const clusters: WorkflowCluster[] = [];
after(async () => {
  for (const c of clusters) await c.close().catch(() => undefined);
  await closeTemporal();
});

const historyLength = async (client: Client, name: string) => (await client.workflow.getHandle(controllerWorkflowId(name)).describe()).historyLength;

/** Counts the history reads a client makes (GetWorkflowExecutionHistoryReverse). */
function countHistoryReads(client: Client): () => number {
  let reads = 0;
  const service = client.workflowService;
  const original = service.getWorkflowExecutionHistoryReverse.bind(service);
  service.getWorkflowExecutionHistoryReverse = ((...args: Parameters<typeof original>) => {
    reads += 1;
    return original(...args);
  }) as typeof original;
  return () => reads;
}

test('lease confirmations come from the controller\'s memo: without the workflow worker, idle without history, a block seen at once', async (t) => {
  const c = await WorkflowCluster.start('lease-memo', twoNodeWeb({ lease: '{ ttl: 2s, margin: 200ms }', verifyTimeout: '1s' }));
  clusters.push(c);
  const web = await c.web();
  assert.equal(web.owner, 'n1');
  const link = testLink(c.client, c.name);
  t.after(() => link.close());
  const reads = countHistoryReads(c.client);

  const first = await link.ownership(5000);
  assert.deepEqual(first.groups.web, { owner: 'n1', epoch: web.epoch, state: 'running', renewable: true });
  assert.equal(first.leases?.worker.ttlMs, 2000, 'the cluster entry: the lease the worker waits out');
  assert.ok(reads() >= 1, 'the first confirmation reads the controller\'s history once');

  // Idle: once the cluster has settled, confirmations write nothing and read no history (the
  // history has not grown since the last one read it).
  let lengthBefore = await historyLength(c.client, c.name);
  await waitFor('the controller\'s history stays the same for a second', async () => {
    await new Promise((r) => setTimeout(r, 1000));
    const now = await historyLength(c.client, c.name);
    const stable = now === lengthBefore;
    lengthBefore = now;
    return stable;
  }, 60_000, 0);
  await link.ownership(5000);
  const readsBefore = reads();
  const idleMs: number[] = [];
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    const v = await link.ownership(5000);
    idleMs.push(performance.now() - t0);
    assert.equal(v.groups.web?.owner, 'n1');
  }
  assert.equal(await historyLength(c.client, c.name), lengthBefore, 'no history written by 20 confirmations');
  assert.equal(reads(), readsBefore, 'no history read while nothing happened');

  // The workflow worker stops: a query finds nobody to answer it; the memo still confirms.
  await c.stopWorkflowWorker();
  await assert.rejects(c.client.withDeadline(Date.now() + 1500, () => queryOwnership(c.client, c.name)), 'no query is answered without the workflow worker');
  const withoutWorkerMs: number[] = [];
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now();
    const v = await link.ownership(2000);
    withoutWorkerMs.push(performance.now() - t0);
    assert.deepEqual(v.groups.web, { owner: 'n1', epoch: web.epoch, state: 'running', renewable: true });
  }
  const max = (xs: number[]) => Math.round(Math.max(...xs));
  t.diagnostic(`confirmation from the memo: idle max ${max(idleMs)} ms, without the workflow worker max ${max(withoutWorkerMs)} ms`);
  assert.ok(max(withoutWorkerMs) < 1000, `confirmed without the workflow worker in under 1 s (max ${max(withoutWorkerMs)} ms)`);
});

test('a block is in the memo as soon as the controller has made it: the owner\'s next confirmation does not renew', async (t) => {
  const c = await WorkflowCluster.start('lease-memo-block', twoNodeWeb({ lease: '{ ttl: 30s, margin: 200ms }', verifyTimeout: '30s' }));
  clusters.push(c);
  const link = testLink(c.client, c.name);
  t.after(() => link.close());
  const e = (await c.web()).epoch;
  assert.equal((await link.ownership(5000)).groups.web?.renewable, true);
  // n1's peer suspects it: the controller blocks n1's renewals at once and starts a failover
  // whose verification waits (n1's node worker is gone, and the verification timeout is long).
  await c.kill('n1');
  await c.report('n1', 'suspect', 'n2', 'every link silent');
  const seen = await waitFor('the memo shows the block', async () => {
    const v = await link.ownership(5000);
    return v.groups.web?.renewable === false ? v.groups.web : undefined;
  }, 30_000, 20);
  assert.equal(seen.owner, 'n1');
  assert.equal(seen.epoch, e);
  // The query says the same: the memo is not behind the controller's state.
  assert.equal((await c.web()).renewable, false);
});
