/**
 * What reaches the controller, and what comes back, while no workflow worker runs (issue 9 item 6;
 * docs/failover.md "After a power cut"): Temporal takes signals (an agent's edges are kept in
 * the history, in order, and handled once a worker runs), but a query needs a worker to answer.
 *
 * - an agent's link made before Temporal was reached queues its edges and sends them, in order,
 *   once attached; its query fails at once meanwhile (it must not hang a lease round);
 * - `haoscar status` with no worker: a clear message within its --timeout, exit 4, instead of
 *   a hang of 30 s and a raw gRPC error (or, worse, the controller's last view as if current).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { defaultPayloadConverter } from '@temporalio/common';
import { ControllerLink, NotConnectedError } from '../../src/agent/controller-link.js';
import { silentLogger } from '../../src/log.js';
import { controllerWorkflowId, type NodeEdge } from '../../workflows/shared.js';
import { closeTemporal, temporalAddress, testClient, uniqueName } from '../support/temporal.js';
import { twoNodeWeb } from '../support/workflow-cluster.js';

after(closeTemporal);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'haoscar-no-worker-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a link made before Temporal was reached: edges wait and go out in order once attached; the query fails at once meanwhile', async () => {
  const client = await testClient();
  const cluster = uniqueName('detached');
  const link = new ControllerLink(undefined, cluster, silentLogger);
  after(() => link.close());
  const edges: NodeEdge[] = [
    { node: 'n2', to: 'suspect', reporter: 'n1', at: 1, detail: 'silent' },
    { node: 'n2', to: 'up', reporter: 'n1', at: 2, detail: 'heard again' },
    { node: 'n1', to: 'up', reporter: 'n1', at: 3, detail: 'agent started', restarted: true },
  ];
  const sent = edges.map((e) => link.report(e));
  const t = performance.now();
  await assert.rejects(link.ownership(5000), NotConnectedError);
  assert.ok(performance.now() - t < 1000, 'the query fails at once');
  link.attach(client);
  await Promise.all(sent);
  const handle = client.workflow.getHandle(controllerWorkflowId(cluster));
  after(() => handle.terminate('test over').catch(() => undefined));
  const history = await handle.fetchHistory();
  const signalled = (history.events ?? [])
    .filter((e) => e.workflowExecutionSignaledEventAttributes?.signalName === 'nodeEdge')
    .map((e) => defaultPayloadConverter.fromPayload<NodeEdge>(e.workflowExecutionSignaledEventAttributes!.input!.payloads![0]!));
  // The first edge went in with the start (signalWithStart): its signal event is in the history too.
  assert.deepEqual(signalled, edges);
});

test('`haoscar status` with no workflow worker: says so within its --timeout, exit 4', async () => {
  const client = await testClient();
  const cluster = uniqueName('noworker');
  const configFile = join(dir, `${cluster}.yaml`);
  // A state directory of its own: no agent's socket there (this machine's /var/lib/haoscar may have one).
  writeFileSync(configFile, `cluster: ${cluster}\ntemporal: { address: "${await temporalAddress()}" }\nagent: { stateDir: ${join(dir, 'state')} }\n${twoNodeWeb({ lease: '{ ttl: 600ms, margin: 100ms }' })}`);
  // The controller exists (an agent's edge started it), but nothing runs its workflow tasks.
  const link = new ControllerLink(client, cluster, silentLogger);
  after(() => link.close());
  await link.report({ node: 'n1', to: 'up', reporter: 'n1', at: Date.now(), detail: 'agent started' });
  after(() => client.workflow.getHandle(controllerWorkflowId(cluster)).terminate('test over').catch(() => undefined));
  const r = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'status', '--timeout', '1500ms', '--config', configFile], { reject: false, cwd: ROOT, timeout: 120_000 });
  assert.equal(r.exitCode, 4, `${r.stderr}\n${r.stdout}`);
  assert.match(r.stderr, /the workflow worker does not answer: is `haoscar worker` \(or an agent with workflows\) running\? \(the controller of cluster '[^']+' gave no answer within 1500ms/, `${r.stderr}\n${r.stdout}`);
  assert.equal(r.stdout, '', `nothing printed as if it were the state:\n${r.stdout}\n${r.stderr}`);

  const bad = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'status', '--timeout', 'soon', '--config', configFile], { reject: false, cwd: ROOT, timeout: 120_000 });
  assert.equal(bad.exitCode, 2, bad.stderr);
  assert.match(bad.stderr, /expected a duration of at least 100ms/);
});
