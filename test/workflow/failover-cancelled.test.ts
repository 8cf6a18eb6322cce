/**
 * Issue 9 item 3: a cancelled failover skipped its compensation. Cancelled while a candidate was
 * starting the group (the UI's "cancel", `temporal workflow cancel`), it gave the group back
 * with outcome `unchanged`: the controller kept it `moving` on the candidate, which ran half of
 * it under a lease it could still renew, and nothing ever started or stopped the rest.
 *
 * Now a failover that ends early after it changed something (stopped the owner, claimed the
 * group) undoes what it started on the candidate, claims the group for nobody, waits out the
 * lease (no node can hold it by then), and ends it `down`; the controller places it again.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Context } from '@temporalio/activity';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster, type ExtraActivities } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { recordHistory } from '../support/record.js';
import { clusterTaskQueue, failoverWorkflowId } from '../../workflows/shared.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

test('a failover cancelled while the candidate starts the group: what it started there is undone, and the group ends up running on one node, whole', async (t) => {
  let secondOrders = 0;
  const extra: ExtraActivities = (node): ReturnType<ExtraActivities> => (node.name !== 'n2' ? {} : {
    // n2 starts `first` for real; its start of `second` is slow (it heartbeats) until cancelled.
    startResource: async (req: { group: string; resource: string; epoch: number; verifyTimeoutMs?: number }) => {
      node.startOrders.push(Date.now());
      if (req.resource === 'second' && secondOrders++ === 0) {
        const ctx = Context.current();
        await new Promise<void>((resolve) => {
          const beat = setInterval(() => ctx.heartbeat(), 500);
          const stop = () => { clearInterval(beat); resolve(); };
          const cap = setTimeout(stop, 60_000);
          ctx.cancellationSignal.addEventListener('abort', () => { clearTimeout(cap); stop(); });
        });
        throw new Error('cancelled while starting');
      }
      await node.groups.startResource(req.group, req.resource, req.epoch);
      return {};
    },
  });
  const c = await WorkflowCluster.start('failover-cancelled', twoNodeWeb({ lease: '{ ttl: 1000ms, margin: 100ms }', verifyTimeout: '1s', resources: ['first', 'second'] }), { extra });
  cluster = c;
  // The placement's failover (same workflow ID) may still be closing: started once it has.
  const handle = await waitFor('the failover started', () => c.client.workflow.start('failover', {
    workflowId: failoverWorkflowId(c.name, 'web'),
    taskQueue: clusterTaskQueue(c.name),
    args: [{ cluster: c.name, group: 'web', to: 'n2', reason: 'test: cancelled half-way' }],
  }).catch((err: unknown) => {
    if (err instanceof WorkflowExecutionAlreadyStartedError) return undefined;
    throw err;
  }), 30_000, 100);
  await waitFor("n2 is starting 'second'", () => secondOrders > 0 || undefined, 30_000, 20);
  assert.equal(c.node('n2').services.get('first')!.running, true, "n2 started 'first'");
  await handle.cancel();
  const end = await handle.result().then(() => 'completed', (err: Error) => err.cause?.constructor.name ?? err.message);
  t.diagnostic(`the failover ended: ${end}`);

  // Whole on one node, nothing on the other, and the controller says so.
  const running = (n: string) => [...c.node(n).services.values()].filter((s) => s.running).length;
  const g = await waitFor('web running whole on one node, nothing on the other, no operation', async () => {
    const w = await c.web().catch(() => undefined);
    if (w?.state !== 'running' || w.operation !== undefined || w.owner === null) return undefined;
    const other = w.owner === 'n1' ? 'n2' : 'n1';
    return running(w.owner) === 2 && running(other) === 0 ? w : undefined;
  }, 30_000, 50).catch(async (err: Error) => assert.fail(`${err.message}; the group: ${JSON.stringify(await c.web())}; running on n1: ${running('n1')}, on n2: ${running('n2')}`));
  await recordHistory(failoverWorkflowId(c.name, 'web'), 'failover-cancelled', handle.firstExecutionRunId);
  t.diagnostic(`then running on ${g.owner} at epoch ${g.epoch}`);
});
