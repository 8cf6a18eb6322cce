/**
 * An agent's signed report and an update, close together, replay (issue 9 item 9). The controller
 * checks a report's MAC in an activity from the signal's handler and applies it after; an update
 * can come in the workflow task right after. When that check was a local activity, a replay
 * resolved its result at another point of the task than the run had: the main loop's reaction to
 * the report came before the update's acceptance, "Timer machine does not handle this event:
 * WorkflowExecutionUpdateAccepted", and the controller's workflow task failed from then on (no
 * lease renewals: found by the chaos suite, after which the signed reports were reverted).
 *
 * Here: reports and maintenance updates sent together, many times with varying gaps, then the
 * whole history replayed by the worker's code.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from '@temporalio/worker';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { signedUpdate, testLink } from '../support/cluster-key.js';
import { recordHistory } from '../support/record.js';
import { waitFor } from '../support/wait.js';
import { workflowsPath } from '../../workers/workflow-bundle.js';
import { controllerWorkflowId, ownershipQuery, setMaintenanceUpdate } from '../../workflows/shared.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

test('signed reports interleaved with updates: the controller applies them all, and its history replays', { timeout: 300_000 }, async () => {
  const c = await WorkflowCluster.start('report-replay', twoNodeWeb({ lease: '{ ttl: 20s, margin: 50ms }', verifyTimeout: '3s' }));
  cluster = c;
  const handle = c.client.workflow.getHandle(controllerWorkflowId(c.name));
  await c.settled('n1');
  const rounds = 40;
  // n1's agent, restarted (a new incarnation): its counter goes 1, 2, ... rounds.
  const link = testLink(c.client, c.name);
  after(() => link.close());
  for (let i = 0; i < rounds; i++) {
    // The update after the report by 0, 1, 2, ... ms: it lands before the report's workflow task,
    // in it, while its check runs (what the chaos run met), or after it.
    const report = link.report({ node: 'n2', to: 'up', reporter: 'n1', at: Date.now(), detail: `test: heard again, round ${i}` });
    await new Promise((resolve) => setTimeout(resolve, i));
    const updateId = `report-replay/${i}`;
    const update = handle.executeUpdate(setMaintenanceUpdate, {
      args: [signedUpdate(c.name, 'setMaintenance', updateId, undefined, { operator: 'test', group: 'web', on: i % 2 === 0, reason: `round ${i}` })],
      updateId,
    });
    await Promise.all([update, report]);
  }
  // Every report was checked and applied, in order: n1's newest is the last one.
  await waitFor(`n1's report ${rounds} applied`, async () => ((await handle.query(ownershipQuery)).reports?.nodes.n1?.counter === rounds ? true : undefined), 30_000, 50);
  const o = await handle.query(ownershipQuery);
  assert.equal(o.reports?.refused ?? 0, 0, 'no genuine report refused');
  assert.equal(o.maintenance?.groups.web, undefined, 'the last update (off) applied');

  await recordHistory(controllerWorkflowId(c.name), 'controller-report-and-update');
  const history = await handle.fetchHistory();
  const accepted = (history.events ?? []).filter((e) => e.workflowExecutionUpdateAcceptedEventAttributes).length;
  assert.ok(accepted >= rounds, `${accepted} updates accepted`);
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, history, 'report-and-update');
});
