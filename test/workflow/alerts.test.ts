/**
 * Alerts (issue 11 item 5, docs/alerts.md) on the real controller and failover workflows and a
 * real dev server: a node's death and its failover run Debian's own Pacemaker alert agent
 * (pacemaker-common's alert_file.sh.sample, unchanged) and a webhook; an alert that hangs and one
 * that fails every attempt delay and fail nothing: the failover ends while the hanging one still
 * runs, and the failing one is reported in its alert workflow's result and history.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage } from 'node:http';
import { mkdtemp, readFile, rm, writeFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { Worker } from '@temporalio/worker';
import { recordHistory } from '../support/record.js';
import { workflowsPath } from '../../workers/workflow-bundle.js';
import { controllerWorkflowId } from '../../workflows/shared.js';
import { alertWorkflowId } from '../../workflows/alert-event.js';
import type { AlertResult } from '../../workflows/alert.js';

const SAMPLE = '/usr/share/pacemaker/alerts/alert_file.sh.sample';

let cluster: WorkflowCluster | undefined;
const dir = await mkdtemp(join(tmpdir(), 'haoscar-alerts-'));
const bodies: Record<string, string>[] = [];
const server = createServer((req: IncomingMessage, res) => {
  let text = '';
  req.on('data', (c: Buffer) => (text += c.toString()));
  req.on('end', () => {
    bodies.push(JSON.parse(text) as Record<string, string>);
    res.writeHead(204).end();
  });
});
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
  server.close();
  await rm(dir, { recursive: true, force: true });
});

test('a failover runs the Pacemaker sample agent and the webhook; a hanging and a failing alert delay and fail nothing', { timeout: 300_000, skip: existsSync(SAMPLE) ? false : `${SAMPLE} is missing: apt-get install pacemaker-common` }, async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const log = join(dir, 'alerts.log');
  const hang = join(dir, 'hang.sh');
  await writeFile(hang, '#!/bin/sh\nexec sleep 120\n');
  const broken = join(dir, 'broken.sh');
  await writeFile(broken, '#!/bin/sh\necho "no route to the pager" >&2\nexit 3\n');
  await chmod(hang, 0o755);
  await chmod(broken, 0o755);
  const body = twoNodeWeb({ lease: '{ ttl: 1500ms, margin: 100ms }', verifyTimeout: '500ms' }) + [
    'alerts:',
    `  - { name: file, path: ${SAMPLE}, recipients: [${log}], timestampFormat: '%Y-%m-%d %H:%M:%S.%06N', env: { debug_exec_order: "false" } }`,
    `  - { name: hook, webhook: 'http://127.0.0.1:${port}/alert', events: [failover-started, failover-ended] }`,
    `  - { name: hang, path: ${hang}, timeout: 60s, attempts: 1, events: [failover-started] }`,
    `  - { name: broken, path: ${broken}, attempts: 2, events: [failover-ended] }`,
    '',
  ].join('\n');
  const c = await WorkflowCluster.start('alerts', body);
  cluster = c;

  // n1 dies; n2 reports it: the failover moves web to n2.
  const t0 = Date.now();
  await c.kill('n1');
  await c.report('n1', 'suspect', 'n2', 'every link silent (n1 died)');
  const moved = await c.settled('n2', 60_000);
  const failoverMs = Date.now() - t0;

  // The sample agent wrote Pacemaker's lines for the node and the failover's begin and end.
  const lines = await waitFor('the sample agent logged the failover\'s end', async () => {
    const text = await readFile(log, 'utf8').catch(() => '');
    return /Resource operation 'failover' for 'web' on 'n2': ok/.test(text) ? text.trim().split('\n') : undefined;
  }, 30_000, 100);
  const ts = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}: `;
  assert.ok(lines.some((l) => new RegExp(`^${ts}Node 'n1' is now 'lost'$`).test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => new RegExp(`^${ts}Resource operation 'failover' for 'web' on 'n1': pending$`).test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => new RegExp(`^${ts}Resource operation 'failover' for 'web' on 'n2': ok$`).test(l)), lines.join('\n'));

  // The webhook got both, as JSON with the same fields.
  // (The first begin and end are web's placement on n1 when the cluster started.)
  const end = await waitFor('the webhook got the failover\'s end', async () => bodies.find((b) => b.haoscar_event === 'failover-ended' && b.node === 'n2'), 30_000, 100);
  assert.ok(bodies.some((b) => b.haoscar_event === 'failover-started' && b.node === 'n1' && b.desc === 'pending'), JSON.stringify(bodies));
  assert.equal(end.kind, 'resource');
  assert.equal(end.rsc, 'web');
  assert.equal(end.node, 'n2');
  assert.equal(end.task, 'failover');
  assert.equal(end.rc, '0');
  assert.equal(end.desc, 'ok');
  assert.equal(end.recipient, '');
  assert.equal((end as unknown as { event: { outcome: string } }).event.outcome, 'running');

  // The hanging alert (60 s) still runs: the failover did not wait for it.
  const runs = await c.client.workflow.list({ query: `WorkflowType = 'alert' AND HaCluster = '${c.name}'` });
  const alerts: { id: string; status: string }[] = [];
  for await (const w of runs) alerts.push({ id: w.workflowId, status: w.status.name });
  const bySequence = (event: string) => alerts.filter((a) => a.id.endsWith(`/${event}`)).sort((a, b) => Number(a.id.split('/').at(-2)) - Number(b.id.split('/').at(-2)));
  const started = bySequence('failover-started').at(-1);
  assert.ok(started, JSON.stringify(alerts));
  assert.equal((await c.client.workflow.getHandle(started.id).describe()).status.name, 'RUNNING', 'the hanging alert should still run');
  assert.ok(failoverMs < 30_000, `the failover took ${failoverMs}ms`);

  // The failing alert: tried twice, reported in the result, the alert workflow itself completed.
  const endedId = bySequence('failover-ended').at(-1)!.id;
  const result = (await c.client.workflow.getHandle(endedId).result()) as AlertResult;
  assert.deepEqual(result.failed.map((f) => f.alert), ['broken']);
  assert.match(result.failed[0]!.error, /exited with 3: no route to the pager/);
  assert.deepEqual(result.sent.map((s) => s.alert).sort(), ['file', 'hook']);
  const history = await c.client.workflow.getHandle(endedId).fetchHistory();
  const failedAttempt = history.events?.find((e) => e.activityTaskStartedEventAttributes?.attempt === 2);
  assert.ok(failedAttempt, 'the failing alert was tried a second time');
  assert.ok(alertWorkflowId(c.name, { source: 'controller', sequence: 1, event: 'node-suspect' }).startsWith(`alert/${c.name}/controller/`));
  // The controller's alert sequences (in the alert workflows' IDs) count from its run's start
  // time, one by one, whatever the clock of the workflow task that raised them (an update
  // handler's may replay differently: PATCH_ALERT_SEQUENCE). Before, they were that clock.
  const sequences = alerts.filter((a) => a.id.startsWith(`alert/${c.name}/controller/`)).map((a) => Number(a.id.split('/').at(-2))).sort((a, b) => a - b);
  assert.ok(sequences.length >= 4, JSON.stringify(alerts));
  assert.deepEqual(sequences, sequences.map((_, i) => sequences[0]! + i), `consecutive from the run's start: ${sequences.join(', ')}`);
  const runStart = Number((await c.client.workflow.getHandle(controllerWorkflowId(c.name)).describe()).startTime.getTime());
  assert.ok(Math.abs(sequences[0]! - runStart) < 5_000, `the first sequence ${sequences[0]} is the run's start time ${runStart}`);
  assert.equal(moved.owner, 'n2');

  // The controller's history with its alert starts, and the alert workflow's with a failed delivery, replay.
  const controller = c.client.workflow.getHandle(controllerWorkflowId(c.name));
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, await controller.fetchHistory(), 'controller-alerts');
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, history, 'alert-failed-delivery');
  await recordHistory(controllerWorkflowId(c.name), 'controller-alerts');
  await recordHistory(endedId, 'alert-failed-delivery');
});
