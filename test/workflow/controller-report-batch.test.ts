/**
 * Issue 14 item 6 (cost growth): when k of N nodes die, each of the N-k survivors reports each of
 * them, and the controller checked every report's MAC in an activity of its own, one after the
 * other: k(N-k) activities, each a round trip through Temporal, before the last node's first
 * report was even looked at (bench/scale.ts: the events of one failover grew with N). Now the
 * reports that queued up while one was checked are checked together, in one activity
 * (PATCH_BATCHED_REPORT_CHECKS), and applied one after the other as before.
 *
 * Here the check is made slow (300 ms), ten signed reports are sent while it runs, and the
 * controller's history must hold few check activities for them, every report applied in order.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { controllerWorkflowId } from '../../workflows/shared.js';
import { WorkflowCluster, twoNodeWeb } from '../support/workflow-cluster.js';
import { closeTemporal } from '../support/temporal.js';
import { waitFor } from '../support/wait.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close();
  await closeTemporal();
});

const CHECK_DELAY_MS = 300;
const REPORTS = 10;

/** The check activities the controller scheduled so far, by type. */
async function checksScheduled(c: WorkflowCluster): Promise<string[]> {
  const history = await c.client.workflow.getHandle(controllerWorkflowId(c.name)).fetchHistory();
  return (history.events ?? []).map((e) => e.activityTaskScheduledEventAttributes?.activityType?.name).filter((n): n is string => n === 'checkControllerReport' || n === 'checkControllerReports');
}

test('reports that come while one is checked are checked together, and all applied in order', async () => {
  cluster = await WorkflowCluster.start('ctl-batch', twoNodeWeb({ lease: '{ ttl: 20s, margin: 50ms }' }), {
    workflowActivities: (real) => ({
      checkControllerReport: async (...args: Parameters<typeof real.checkControllerReport>) => {
        await sleep(CHECK_DELAY_MS);
        return real.checkControllerReport(...args);
      },
      checkControllerReports: async (...args: Parameters<typeof real.checkControllerReports>) => {
        await sleep(CHECK_DELAY_MS);
        return real.checkControllerReports(...args);
      },
    }),
  });
  const c = cluster;
  const before = (await checksScheduled(c)).length;
  const counterBefore = (await c.ownership()).reports?.nodes.n2?.counter ?? 0;
  // n2's agent reports n1 heard again, REPORTS times (nothing moves: n1 is up and owns web).
  await Promise.all(Array.from({ length: REPORTS }, (_, i) => c.report('n1', 'up', 'n2', `heard again ${i + 1}`)));
  const applied = await waitFor('every report applied', async () => {
    const o = await c.ownership();
    return (o.reports?.nodes.n2?.counter ?? 0) >= counterBefore + REPORTS ? o : undefined;
  }, 30_000, 50);
  const checks = (await checksScheduled(c)).slice(before);
  assert.ok(checks.length <= 3, `${REPORTS} reports sent during a ${CHECK_DELAY_MS} ms check should take at most 3 check activities, took ${checks.length}: ${checks.join(', ')}`);
  assert.ok(checks.includes('checkControllerReports'), `checked together: ${checks.join(', ')}`);
  // Applied in order: the last one is the node's record, nothing was refused.
  assert.equal(applied.nodes.n1?.state, 'up');
  assert.equal(applied.reports?.refused ?? 0, 0);
  assert.equal(applied.reports?.nodes.n2?.counter, counterBefore + REPORTS);
  assert.equal(applied.groups.web?.owner, 'n1');
});
