/**
 * Found by the chaos suite (CI schedule, seed 20261206, fault temporal-kill-mid-failover): the
 * owner n2 died; the failover's only candidate n1 started the group, but could not start it to
 * the end (there: Temporal was killed meanwhile, n1 could not confirm its lease with its only
 * peer dead, its guard released the group at the deadline, and the VIP check waited 30 s for an
 * address the guard had removed). The failover undid the start and, with no other candidate,
 * left the group `down` (NoNodeCouldRunGroup). The dead node had come back and reported `up`
 * WHILE the failover ran (and n1's `groupLost` came during the operation too, and was dropped):
 * a `down` group is placed again only when a node reports up AFTER it went down, so with both
 * nodes up and healthy the group stayed down — 65 s until the suite gave up, for ever in a quiet
 * cluster. docs/failover.md: "The controller tries again when a node of the group reports up."
 *
 * Deterministic here: n2's start is held until n1 is back and up, then fails.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { ServiceRegistry } from '../../src/agent/services.js';
import { GroupRuntime } from '../../src/agent/groups.js';
import type { ControllerLink } from '../../src/agent/controller-link.js';
import { ResourceMonitor } from '../../src/monitor/monitor.js';
import { createServiceActivities } from '../../activities/service.js';
import { TEST_KEY, testAuthActivities, testLink } from '../support/cluster-key.js';
import { createOwnershipActivities } from '../../activities/ownership.js';
import { createClusterActivities } from '../../activities/cluster.js';
import { createControllerActivities } from '../../activities/controller.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { clusterTaskQueue, controllerWorkflowId, failoverWorkflowId, nodeTaskQueue, ownershipQuery, type Ownership } from '../../workflows/shared.js';
import { workflowsPath } from '../../workers/workflow-bundle.js';
import { ScriptedService } from '../support/scripted-service.js';
import { waitFor } from '../support/wait.js';
import { closeTemporal, testClient, testWorkerConnection, testWorkflowBundle, uniqueName } from '../support/temporal.js';

const WAIT_MS = 60_000;
const cluster = uniqueName('down-after-return');
const config: Config = parseConfig(`
cluster: ${cluster}
lease: { ttl: 1000ms, margin: 50ms }
failover: { verifyTimeout: 1000ms }
defaults:
  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }
  healing: { startTimeout: 10s }
nodes:
  - { name: n1, addresses: [127.0.0.1], priority: 10 }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`);

interface TestNode {
  name: string;
  groups: GroupRuntime;
  registry: ServiceRegistry;
  services: Map<string, ScriptedService>;
  worker?: Worker;
  running?: Promise<void>;
}

const nodes = new Map<string, TestNode>();
for (const name of ['n1', 'n2']) {
  const registry = new ServiceRegistry();
  const services = new Map<string, ScriptedService>();
  const monitors = new Map<unknown, ResourceMonitor>();
  for (const group of config.groups) {
    for (const spec of group.resources) {
      const s = new ScriptedService();
      s.running = false;
      services.set(spec.name, s);
      const managed = { group, spec, driver: s.driver, check: s.check };
      registry.add(managed);
      monitors.set(managed, new ResourceMonitor({ name: spec.name, check: s.check, timing: spec.check, logger: silentLogger, onEdge: () => undefined }));
    }
  }
  const groups = new GroupRuntime({ node: name, config, services: registry, logger: silentLogger, monitorOf: (s) => monitors.get(s)!, claimWaitMs: 1000 });
  nodes.set(name, { name, groups, registry, services });
}

let client: Client;
let link: ControllerLink;
const workers: Worker[] = [];
const runs: Promise<void>[] = [];

async function startNodeWorker(node: TestNode): Promise<void> {
  const worker = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: nodeTaskQueue(cluster, node.name),
    activities: {
      ...createServiceActivities({ node: node.name, services: node.registry, logger: silentLogger, recoveryPollMs: 20, whileHolding: (g, fn) => node.groups.whileHolding(g, fn) }),
      ...createOwnershipActivities({ node: node.name, config, groups: node.groups, services: node.registry, exec: createExec(silentLogger), logger: silentLogger, key: TEST_KEY }),
    },
  });
  node.worker = worker;
  node.running = worker.run();
}

const ownership = (): Promise<Ownership> => client.workflow.getHandle(controllerWorkflowId(cluster)).query(ownershipQuery);

before(async () => {
  client = await testClient();
  link = testLink(client, cluster);
  const wf = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: clusterTaskQueue(cluster),
    workflowBundle: await testWorkflowBundle(),
    activities: { ...createClusterActivities({ config }), ...createControllerActivities({ client, key: TEST_KEY }), ...testAuthActivities(config) },
  });
  workers.push(wf);
  runs.push(wf.run());
  for (const node of nodes.values()) await startNodeWorker(node);
});

after(async () => {
  link.close();
  await client.workflow.getHandle(controllerWorkflowId(cluster)).terminate('test over').catch(() => undefined);
  for (const node of nodes.values()) if (node.worker?.getState() === 'RUNNING') node.worker.shutdown();
  for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
  await Promise.all([...runs, ...[...nodes.values()].map((n) => n.running)]);
  for (const node of nodes.values()) await node.groups.close();
  await closeTemporal();
});

test('a failover that leaves the group down while every node is up (one came back during it): the group is placed again', { timeout: 180_000 }, async () => {
  const n1 = nodes.get('n1')!;
  const n2 = nodes.get('n2')!;
  await link.report({ node: 'n1', to: 'up', reporter: 'n1', at: Date.now(), detail: 'agent started' });
  await link.report({ node: 'n2', to: 'up', reporter: 'n2', at: Date.now(), detail: 'agent started' });
  await waitFor('web running on n1', async () => {
    const g = (await ownership()).groups.web;
    return g?.state === 'running' && g.owner === 'n1' && g.operation === undefined ? g : undefined;
  }, WAIT_MS, 50);

  // n2's start is held, then fails (there: the guard released what the start was verifying).
  let fail!: () => void;
  const released = new Promise<void>((res) => (fail = res));
  const first = n2.services.get('first')!;
  const start = first.driver.start;
  let held = false;
  first.driver.start = async () => {
    held = true;
    await released;
    throw new Error('scripted: the start could not be completed');
  };
  try {
    // n1 dies: its worker stops taking tasks; its peer reports it.
    n1.worker!.shutdown();
    await n1.running;
    await link.report({ node: 'n1', to: 'suspect', reporter: 'n2', at: Date.now(), detail: 'test: every link silent' });
    await waitFor('n2 starting the group', () => held, WAIT_MS, 50);
    // n1 comes back while the failover runs (as after a reboot: holds nothing), and says so.
    await n1.groups.stopGroup('web', 'test: rebooted').catch(() => undefined);
    await startNodeWorker(n1);
    await link.report({ node: 'n1', to: 'up', reporter: 'n1', at: Date.now(), detail: 'agent started', restarted: true });
    await waitFor('the controller sees n1 up', async () => ((await ownership()).nodes.n1?.state === 'up' ? true : undefined), WAIT_MS, 50);
    fail();
    await waitFor('the failover left the group down', async () => {
      const g = (await ownership()).groups.web!;
      return g.state === 'down' && g.operation === undefined ? g : undefined;
    }, WAIT_MS, 50);
  } finally {
    first.driver.start = start;
  }
  // Both nodes are up and can run it: it must not stay down.
  const s = await ownership();
  assert.deepEqual(Object.fromEntries(Object.entries(s.nodes).map(([n, l]) => [n, l.state])), { n1: 'up', n2: 'up' });
  const placed = await waitFor('the group placed again', async () => {
    const g = (await ownership()).groups.web!;
    return g.state === 'running' ? g : undefined;
  }, 30_000, 200).catch(() => undefined);
  const g = (await ownership()).groups.web!;
  assert.ok(placed, `the group stays ${g.state} (owner ${g.owner}, epoch ${g.epoch}) with every node up: nothing places it again (last failover: ${failoverWorkflowId(cluster, 'web')})`);
  // The patch of the retries was asked for in endOperation's task: the history replays.
  const { events } = await client.workflow.getHandle(controllerWorkflowId(cluster)).fetchHistory();
  const patches = (events ?? []).filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((e) => (JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details?.['patch-data']?.payloads?.[0]?.data ?? []).toString() || '{}') as { id?: string }).id);
  assert.ok(patches.includes('controller-retry-down'), `the controller's history has the patch marker of workflows/controller.ts PATCH_RETRY_DOWN: ${JSON.stringify(patches)}`);
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, { events }, 'down-after-return');
});
