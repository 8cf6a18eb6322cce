/**
 * Issue 9, item 9: "Access to Temporal alone does not take a group". The agents' reports to the
 * controller (`nodeEdge`, `groupLost`, `nodeAnnounce`) are signals anyone with Temporal access can
 * send. Before, the controller applied them as they came: a forged "n1 suspect" started a failover
 * of n1's group, a forged "n1 lost web at its epoch" a recover of a healthy group, and a forged
 * announcement "n2 holds web at epoch+1" made n2 the owner in the controller's record while n1
 * still served it.
 *
 * Now each report carries a MAC under the cluster's message key, bound to this controller, the
 * signal, the sending node, its heartbeat incarnation and a counter of that incarnation; the
 * controller checks it in a local activity, keeps the newest (incarnation, counter) of each node,
 * and refuses anything else (logged, counted in the ownership answer), changing nothing. Here: a
 * client without the key forges each report; a holder of the history replays a genuine signed one;
 * an agent that restarts (a new incarnation) is heard again, its previous incarnation no longer.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPayloadConverter } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import type { WorkflowHandle } from '@temporalio/client';
import { ControllerLink } from '../../src/agent/controller-link.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { createClusterActivities } from '../../activities/cluster.js';
import { createControllerActivities } from '../../activities/controller.js';
import { createAuthActivities } from '../../activities/auth.js';
import {
  clusterTaskQueue,
  controllerWorkflowId,
  groupLostSignal,
  nodeAnnounceSignal,
  nodeEdgeSignal,
  ownershipQuery,
  type NodeEdge,
  type Ownership,
} from '../../workflows/shared.js';
import { PATCH_AUTHENTICATED_REPORTS } from '../../workflows/controller.js';
import { workflowsPath } from '../../workers/workflow-bundle.js';
import { WorkflowCluster, twoNodeWeb } from '../support/workflow-cluster.js';
import { testLink } from '../support/cluster-key.js';
import { closeTemporal, testClient, testWorkerConnection, testWorkflowBundle, uniqueName } from '../support/temporal.js';
import { recordHistory } from '../support/record.js';
import { waitFor } from '../support/wait.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close();
  await closeTemporal();
});

async function theCluster(): Promise<{ c: WorkflowCluster; handle: WorkflowHandle }> {
  // A lease long enough that nothing expires while the test looks.
  cluster ??= await WorkflowCluster.start('ctl-reports', twoNodeWeb({ lease: '{ ttl: 20s, margin: 50ms }', verifyTimeout: '3s' }));
  return { c: cluster, handle: cluster.client.workflow.getHandle(controllerWorkflowId(cluster.name)) };
}

/** What a forged report could change: the group's record and the nodes' liveness. */
function viewOf(o: Ownership): unknown {
  const g = o.groups.web!;
  return {
    owner: g.owner, epoch: g.epoch, state: g.state, operation: g.operation?.workflowId ?? null, lost: g.lost ?? null,
    nodes: Object.fromEntries(Object.entries(o.nodes).map(([n, l]) => [n, l.state])),
  };
}

function refusedOf(o: Ownership): number {
  return o.reports?.refused ?? 0;
}

/**
 * Sends one report with `send`, then waits until the controller has either refused it (its count
 * went up) or changed its view. @returns undefined when refused with nothing changed, otherwise
 * what happened.
 */
async function forge(handle: WorkflowHandle, what: string, send: () => Promise<void>): Promise<string | undefined> {
  const before = await handle.query(ownershipQuery);
  await send();
  const after = await waitFor(`the controller refuses or applies the ${what}`, async () => {
    const now = await handle.query(ownershipQuery);
    return refusedOf(now) > refusedOf(before) || JSON.stringify(viewOf(now)) !== JSON.stringify(viewOf(before)) ? now : undefined;
  }, 30_000, 50);
  const changed = JSON.stringify(viewOf(after)) !== JSON.stringify(viewOf(before));
  if (changed) return `${what} was applied: ${JSON.stringify(viewOf(before))} became ${JSON.stringify(viewOf(after))}`;
  if (refusedOf(after) !== refusedOf(before) + 1) return `${what}: refused ${refusedOf(after) - refusedOf(before)} reports, not 1`;
  return undefined;
}

test('reports forged without the cluster secret (n1 suspect, web lost by n1, n2 holds web) are refused, counted, and change nothing', { timeout: 180_000 }, async () => {
  const { c, handle } = await theCluster();
  const before = await c.settled('n1');
  const applied: string[] = [];
  const edge = await forge(handle, 'forged nodeEdge "n1 suspect" from n2', () =>
    handle.signal(nodeEdgeSignal, { node: 'n1', to: 'suspect', reporter: 'n2', at: Date.now(), detail: 'forged: every link silent' }));
  if (edge) applied.push(edge);
  const lost = await forge(handle, `forged groupLost of web by n1 at epoch ${before.epoch}`, () =>
    handle.signal(groupLostSignal, { group: 'web', node: 'n1', epoch: before.epoch, at: Date.now(), detail: 'forged: lease lost' }));
  if (lost) applied.push(lost);
  const announce = await forge(handle, `forged nodeAnnounce "n2 holds web at epoch ${before.epoch + 1}"`, () =>
    handle.signal(nodeAnnounceSignal, { node: 'n2', at: Date.now(), announce: { holds: { web: { epoch: before.epoch + 1, state: 'running' } }, seen: { web: before.epoch + 1 } } }));
  if (announce) applied.push(announce);
  // An unsigned link (an agent without the secret, or older than the worker): its edge is refused too.
  const unsigned = new ControllerLink(c.client, c.name, silentLogger);
  const byLink = await forge(handle, 'unsigned nodeEdge "n2 suspect" from n1', () => unsigned.report({ node: 'n2', to: 'suspect', reporter: 'n1', at: Date.now(), detail: 'forged' }));
  unsigned.close();
  if (byLink) applied.push(byLink);
  assert.deepEqual(applied, [], 'every forged report refused, nothing changed');

  const o = await handle.query(ownershipQuery);
  assert.equal(o.reports?.refused, 4, 'four refused reports counted');
  assert.match(o.reports?.lastRefused?.at(-1)?.why ?? '', /no MAC/, 'the last refusal says why');
  assert.equal(c.node('n1').groups.holding('web')?.state, 'running', 'n1 still runs web');
  assert.equal(c.node('n2').groups.holding('web'), undefined, 'n2 runs nothing');
  const g = await c.settled('n1');
  assert.equal(g.epoch, before.epoch, 'the epoch did not move');
});

test('a genuine signed report replayed from the history is refused; an agent restarted (a new incarnation) is heard, its old incarnation no longer', { timeout: 180_000 }, async () => {
  const { c, handle } = await theCluster();
  await c.settled('n1');
  const n2State = async () => (await handle.query(ownershipQuery)).nodes.n2!.state;
  // n1's agent sees n2 go silent and come back.
  const first = testLink(c.client, c.name);
  await first.report({ node: 'n2', to: 'suspect', reporter: 'n1', at: Date.now(), detail: 'test: silent' });
  await waitFor('n2 suspect', async () => (await n2State()) === 'suspect', 30_000, 50);
  await first.report({ node: 'n2', to: 'up', reporter: 'n1', at: Date.now(), detail: 'test: heard again' });
  await waitFor('n2 up', async () => (await n2State()) === 'up', 30_000, 50);
  const accepted = (await handle.query(ownershipQuery)).reports?.nodes?.n1;
  assert.ok(accepted && accepted.counter >= 2, `n1's newest report recorded: ${JSON.stringify(accepted)}`);

  // Someone who reads the controller's history sends the "n2 suspect" signal again, MAC and all.
  const { events } = await handle.fetchHistory();
  const recorded = (events ?? []).map((e) => e.workflowExecutionSignaledEventAttributes).filter((a) => {
    if (a?.signalName !== 'nodeEdge') return false;
    const edge = defaultPayloadConverter.fromPayload<NodeEdge>(a.input!.payloads![0]!);
    return edge.node === 'n2' && edge.to === 'suspect' && edge.detail === 'test: silent';
  });
  assert.equal(recorded.length, 1, 'the genuine report is in the history');
  const args = recorded[0]!.input!.payloads!.map((p) => defaultPayloadConverter.fromPayload(p));
  assert.equal(args.length, 2, 'the report and its MAC');
  const replayed = await forge(handle, 'replayed signed nodeEdge "n2 suspect" from n1', () => handle.signal('nodeEdge', ...args));
  assert.equal(replayed, undefined, replayed);
  assert.match((await handle.query(ownershipQuery)).reports?.lastRefused?.at(-1)?.why ?? '', /not newer/);

  // n1's agent restarts: a new incarnation, its counter from 1 again.
  const restarted = testLink(c.client, c.name);
  await restarted.report({ node: 'n2', to: 'suspect', reporter: 'n1', at: Date.now(), detail: 'test: silent after the restart' });
  await waitFor('n2 suspect, reported by the restarted agent', async () => (await n2State()) === 'suspect', 30_000, 50);
  await restarted.report({ node: 'n2', to: 'up', reporter: 'n1', at: Date.now(), detail: 'test: heard again' });
  await waitFor('n2 up', async () => (await n2State()) === 'up', 30_000, 50);
  // The previous incarnation's link (a recording of it, or a process left behind) is not heard any more.
  const stale = await forge(handle, 'a report of n1\'s previous incarnation', () => first.report({ node: 'n2', to: 'suspect', reporter: 'n1', at: Date.now(), detail: 'test: stale' }));
  assert.equal(stale, undefined, stale);
  first.close();
  restarted.close();
  await c.settled('n1');

  // The controller's history (refused and applied reports, their checks, the patch marker) replays.
  await recordHistory(controllerWorkflowId(c.name), 'controller-authenticated-reports');
  const history = await handle.fetchHistory();
  const patches = (history.events ?? []).filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((e) => (JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details?.['patch-data']?.payloads?.[0]?.data ?? []).toString() || '{}') as { id?: string }).id);
  assert.ok(patches.includes(PATCH_AUTHENTICATED_REPORTS), `the history has the marker of ${PATCH_AUTHENTICATED_REPORTS}: ${JSON.stringify(patches)}`);
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, history, 'authenticated-reports');
});

test('a one-node cluster without a secret: its agent\'s unsigned reports are applied as before', { timeout: 120_000 }, async () => {
  const name = uniqueName('one-node');
  const config = parseConfig([
    `cluster: ${name}`,
    'nodes:',
    '  - { name: solo, addresses: [127.0.0.1] }',
    'groups:',
    '  - name: web',
    '    resources:',
    '      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }',
    '',
  ].join('\n'));
  const client = await testClient();
  const worker = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: clusterTaskQueue(name),
    workflowBundle: await testWorkflowBundle(),
    activities: { ...createClusterActivities({ config }), ...createControllerActivities({ client, key: undefined }), ...createAuthActivities({ config, key: undefined }) },
  });
  const running = worker.run();
  const handle = client.workflow.getHandle(controllerWorkflowId(name));
  const link = new ControllerLink(client, name, silentLogger);
  try {
    await link.report({ node: 'solo', to: 'suspect', reporter: 'solo', at: Date.now(), detail: 'test: stopping' });
    await link.report({ node: 'solo', to: 'up', reporter: 'solo', at: Date.now(), detail: 'test: agent started' });
    const o = await waitFor('solo up', async () => {
      const got = await handle.query(ownershipQuery).catch(() => undefined);
      return got?.nodes.solo?.state === 'up' && got.nodes.solo.reportedBy === 'solo' ? got : undefined;
    }, 60_000, 50);
    assert.equal(o.reports?.refused ?? 0, 0, 'nothing refused');
  } finally {
    link.close();
    await handle.terminate('test over').catch(() => undefined);
    worker.shutdown();
    await running;
  }
});
