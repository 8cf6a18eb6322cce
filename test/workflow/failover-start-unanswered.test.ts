/**
 * A candidate's agent takes a start order and never finishes it: it died or hung mid-start
 * (chaos seed 778 #69: an agent killed 200 ms into starting the VIP).
 *
 * Two defects, both seen failing here before the fix:
 * - The failover waited for the order's schedule-to-close timeout (the resource's startTimeout
 *   + 30 s, 60 s by default) before it gave up on the node: the group stayed down for a minute
 *   though the agent was back after 5 s. Node activities now heartbeat, and the failover gives up
 *   on a silent one after NODE_HEARTBEAT_TIMEOUT_MS.
 * - What a start that timed out did on the node is unknown (the VIP may be up there, and a hung
 *   agent may wake up and keep it until its lease runs out), yet the next candidate was started
 *   at once. Such a candidate is now treated as a silent old owner: the group is claimed for
 *   nobody (its lease is no longer renewed), and the lease is waited out (or the node fenced)
 *   before the next candidate starts.
 *
 * The scene: a switchover of `web` from n1 to n2, whose first start order is taken by an agent
 * that never answers; the failover puts the group back on n1 (its way back).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Context } from '@temporalio/activity';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster, type ExtraActivities } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { recordHistory } from '../support/record.js';
import { failoverWorkflowId, nodeTaskQueue, switchoverWorkflowId, clusterTaskQueue } from '../../workflows/shared.js';
import { NODE_HEARTBEAT_TIMEOUT_MS } from '../../workflows/failover.js';

const LEASE = { ttlMs: 2000, marginMs: 500 };

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

/** Event time in ms since the epoch. */
function at(e: { eventTime?: { seconds?: unknown; nanos?: number | null } | null }): number {
  return Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6);
}

test('a start order that is never answered: given up after the heartbeat timeout, and the next node starts only after that node\'s lease', async (t) => {
  let unanswered = 0;
  const c = await WorkflowCluster.start('start-unanswered', twoNodeWeb({ lease: `{ ttl: ${LEASE.ttlMs}ms, margin: ${LEASE.marginMs}ms }`, verifyTimeout: '1s' }), {
    extra: (node): ReturnType<ExtraActivities> => (node.name !== 'n2' ? {} : {
      // The agent that took the order is gone: no answer, no heartbeat. (Ended by the worker's
      // shutdown at the end of the test, or after a minute.)
      startResource: async () => {
        unanswered += 1;
        node.startOrders.push(Date.now());
        const signal = Context.current().cancellationSignal;
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 60_000);
          signal.addEventListener('abort', () => { clearTimeout(t); resolve(); });
        });
        throw new Error('never answered');
      },
    }),
  });
  cluster = c;
  const before = await c.web();
  const startedAt = Date.now();
  await c.client.workflow.start('switchover', {
    workflowId: switchoverWorkflowId(c.name, 'web'),
    taskQueue: clusterTaskQueue(c.name),
    args: [{ cluster: c.name, group: 'web', to: 'n2', trigger: 'operator', reason: 'test: switchover whose start is never answered' }],
  });
  await waitFor('n2 takes the start order', () => unanswered > 0, 30_000, 20);
  // Well below the old 31 s (startTimeout 1 s + 30 s): the heartbeat timeout, the lease, a loaded machine.
  const bound = NODE_HEARTBEAT_TIMEOUT_MS + LEASE.ttlMs + LEASE.marginMs + 12_000;
  const g = await c.settled('n1', bound).catch(async (err: Error) => assert.fail(`${err.message}; the group: ${JSON.stringify(await c.web())}`));
  const tookMs = Date.now() - startedAt;
  assert.equal(unanswered, 1, 'n2 was given one start order');
  assert.ok(g.epoch > before.epoch);

  // From the failover's history: when n2's start was given up, and when n1's start was ordered.
  const history = await c.client.workflow.getHandle(failoverWorkflowId(c.name, 'web')).fetchHistory();
  const events = history.events ?? [];
  const scheduled = new Map<string, { queue: string; type: string }>();
  let timedOutAt: number | undefined;
  let n1StartAt: number | undefined;
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) {
      scheduled.set(String(e.eventId), { queue: s.taskQueue?.name ?? '', type: s.activityType?.name ?? '' });
      if (s.activityType?.name === 'startResource' && s.taskQueue?.name === nodeTaskQueue(c.name, 'n1') && timedOutAt !== undefined) n1StartAt ??= at(e);
    }
    const to = e.activityTaskTimedOutEventAttributes;
    if (to) {
      const what = scheduled.get(String(to.scheduledEventId));
      if (what?.type === 'startResource' && what.queue === nodeTaskQueue(c.name, 'n2')) timedOutAt = at(e);
    }
  }
  assert.ok(timedOutAt !== undefined, "n2's start timed out in the failover's history");
  assert.ok(n1StartAt !== undefined, "n1's start was ordered after n2's timed out");
  const waitedMs = n1StartAt - timedOutAt;
  assert.ok(waitedMs >= LEASE.ttlMs + LEASE.marginMs, `n1 was ordered to start ${waitedMs} ms after n2's start timed out: n2's lease (${LEASE.ttlMs} + ${LEASE.marginMs} ms) was not waited out`);
  await recordHistory(failoverWorkflowId(c.name, 'web'), 'failover-unanswered-start');
  t.diagnostic(`group back on n1 ${tookMs} ms after the switchover began; n2's start given up ${timedOutAt - c.node('n2').startOrders[0]!} ms after it was taken; n1 ordered ${waitedMs} ms after that`);
});
