/**
 * The controller's `auto-failback` patch marker must be recorded in its FIRST workflow task,
 * whatever happens around that task: the chaos suite found a controller whose marker landed in
 * the second task (asked for after the describeCluster local activity), and whose history then no
 * longer replayed (test/histories/defects/controller-patch-after-late-first-task.json, see
 * controller-replay-split-first-task.test.ts): a restarted worker failed its every task.
 *
 * Here the conditions of that run: the controller is started by an agent's report before any
 * workflow worker polls, a second report queues meanwhile, and the first task starts late; the
 * describeCluster local activity is slow. The history must carry the patch marker among the
 * first task's commands, and replay. Since the fix the marker is asked for before the first
 * await, so it is among the first activation's commands by construction; this test keeps it so.
 * It is not a reproducer of the split itself: the code before the fix passes it too (tried), since
 * what split that run's first task was not found (see the defect's test).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { parseConfig } from '../../src/config/load.js';
import { createClusterActivities } from '../../activities/cluster.js';
import { createControllerActivities } from '../../activities/controller.js';
import { TEST_KEY, testAuthActivities, testLink } from '../support/cluster-key.js';
import { clusterTaskQueue, controllerWorkflowId } from '../../workflows/shared.js';
import { workflowsPath } from '../../workers/workflow-bundle.js';
import { closeTemporal, testClient, testWorkerConnection, testWorkflowBundle, uniqueName } from '../support/temporal.js';
import { waitFor } from '../support/wait.js';

after(closeTemporal);

type HistoryEvent = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>[number];
/** temporal.api.enums.v1.EventType: WORKFLOW_TASK_COMPLETED, WORKFLOW_TASK_SCHEDULED. */
const COMPLETED = 7;
const SCHEDULED = 5;

/** A patch marker's id: its payload is JSON ({"id": …}), as bytes or (decoded from JSON) base64. */
function patchId(data: Uint8Array | string | null | undefined): string {
  if (!data) return '?';
  const text = typeof data === 'string' ? Buffer.from(data, 'base64').toString() : Buffer.from(data).toString();
  return (JSON.parse(text) as { id?: string }).id ?? '?';
}

/** The markers recorded by the first workflow task (between its completion and the next task). */
function firstTaskMarkers(events: HistoryEvent[]): string[] {
  const first = events.findIndex((e) => e.eventType === COMPLETED);
  const out: string[] = [];
  for (const e of events.slice(first + 1)) {
    if (e.eventType === SCHEDULED || e.eventType === COMPLETED) break;
    const m = e.markerRecordedEventAttributes;
    if (m) out.push(m.markerName === 'core_patch' ? `patch ${patchId(m.details?.['patch-data']?.payloads?.[0]?.data)}` : m.markerName ?? '?');
  }
  return out;
}

test('the controller records its auto-failback patch in its first workflow task, even when that task starts late behind queued signals and a slow local activity', { timeout: 120_000 }, async () => {
  const name = uniqueName('first-task');
  const config = parseConfig(`cluster: ${name}
nodes:
  - { name: n1, addresses: [127.0.0.1] }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: app, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`);
  const client = await testClient();
  const link = testLink(client, name);
  // Started by the first report, before any worker polls; the second queues behind it.
  await link.report({ node: 'n1', to: 'up', reporter: 'n1', at: Date.now(), detail: 'agent started' });
  await link.report({ node: 'n2', to: 'up', reporter: 'n2', at: Date.now(), detail: 'agent started' });
  await new Promise((r) => setTimeout(r, 3000));
  const cluster = createClusterActivities({ config });
  const worker = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: clusterTaskQueue(name),
    workflowBundle: await testWorkflowBundle(),
    activities: {
      ...cluster,
      ...createControllerActivities({ client, key: TEST_KEY }),
      ...testAuthActivities(config),
      // A loaded machine: the first local activity takes its time.
      describeCluster: async (req: Parameters<typeof cluster.describeCluster>[0]) => {
        await new Promise((r) => setTimeout(r, 3000));
        return cluster.describeCluster(req);
      },
    },
  });
  const handle = client.workflow.getHandle(controllerWorkflowId(name));
  let events: HistoryEvent[] = [];
  const running = worker.run();
  try {
    await waitFor('the controller has completed two workflow tasks', async () => {
      events = (await handle.fetchHistory()).events ?? [];
      return events.filter((e) => e.eventType === COMPLETED).length >= 2 ? true : undefined;
    }, 60_000, 200);
  } finally {
    link.close();
    await handle.terminate('test over').catch(() => undefined);
    worker.shutdown();
    await running;
  }
  const markers = firstTaskMarkers(events);
  assert.ok(markers.includes('patch auto-failback'), `the first task recorded ${JSON.stringify(markers)}`);
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, { events }, name);
});
