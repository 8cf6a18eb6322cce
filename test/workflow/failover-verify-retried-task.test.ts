/**
 * Found by the chaos suite (`npm run chaos -- --seed 777`, fault #42, partition-oneway): a
 * node-lost failover verifies the suspect owner by racing its `ping` against a `pause` of
 * verifyTimeout. The owner answered (holding the group): false alarm, `endOperation` (a local
 * activity) ended the operation on the controller. But the pause completed while that workflow
 * task was still open, so the server refused its completion (UNHANDLED_COMMAND) and the task ran
 * again — now with BOTH results in one activation, where the pause wins the race: "the owner did
 * not answer", so the failover went on to `claimGroup`, which the controller refused (the first
 * attempt had ended the operation), and the failover failed. The same verification decided two
 * ways, after the first decision's side effect was applied. (With the owner then losing its
 * lease during the verification, its groupLost was dropped too: the group stayed "running" on a
 * node that held nothing; see controller-lost-during-operation.test.ts.)
 *
 * Deterministic here: the ping is answered at once; the pause is held until the false alarm's
 * endOperation runs, and completes before that endOperation returns.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
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
import { ScriptedService } from '../support/scripted-service.js';
import { waitFor } from '../support/wait.js';
import { closeTemporal, testClient, testWorkerConnection, testWorkflowBundle, uniqueName } from '../support/temporal.js';

const WAIT_MS = 60_000;
const cluster = uniqueName('verify-retried');
const config: Config = parseConfig(`
cluster: ${cluster}
lease: { ttl: 4000ms, margin: 50ms }
failover: { verifyTimeout: 3000ms }
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

/** Armed by the test: the verification's pause is held until the false alarm's endOperation. */
let holdPause = false;
let releasePause: (() => void) | undefined;
let pauseDone: Promise<void> | undefined;
let endCalls = 0;

before(async () => {
  client = await testClient();
  link = testLink(client, cluster);
  const clusterActivities = createClusterActivities({ config });
  const controller = createControllerActivities({ client, key: TEST_KEY });
  const wf = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: clusterTaskQueue(cluster),
    workflowBundle: await testWorkflowBundle(),
    activities: {
      ...clusterActivities,
      ...testAuthActivities(config),
      ...controller,
      async pause(req: Parameters<typeof clusterActivities.pause>[0]) {
        if (!holdPause) return clusterActivities.pause(req);
        holdPause = false;
        let done!: () => void;
        pauseDone = new Promise((res) => (done = res));
        await new Promise<void>((res) => (releasePause = res));
        done();
      },
      async endOperation(req: Parameters<typeof controller.endOperation>[0]) {
        endCalls++;
        const release = releasePause;
        releasePause = undefined;
        if (release) {
          // The pause completes (and its completion reaches the server) while this task is open.
          release();
          await pauseDone;
          await sleep(500);
        }
        return controller.endOperation(req);
      },
    },
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

test('a false alarm stays a false alarm when its workflow task is retried with the verification\'s pause completed too', { timeout: 180_000 }, async () => {
  await link.report({ node: 'n1', to: 'up', reporter: 'n1', at: Date.now(), detail: 'agent started' });
  await link.report({ node: 'n2', to: 'up', reporter: 'n2', at: Date.now(), detail: 'agent started' });
  const placedGroup = await waitFor('web running on n1', async () => {
    const g = (await ownership()).groups.web;
    return g?.state === 'running' && g.owner === 'n1' && g.operation === undefined ? g : undefined;
  }, WAIT_MS, 50);
  const placed = (await client.workflow.getHandle(failoverWorkflowId(cluster, 'web')).describe()).runId;
  holdPause = true;
  // A partition: n2 no longer hears n1, which still answers through Temporal.
  await link.report({ node: 'n1', to: 'suspect', reporter: 'n2', at: Date.now(), detail: 'test: every link silent' });
  const runId = await waitFor('the node-lost failover started', async () => {
    const d = await client.workflow.getHandle(failoverWorkflowId(cluster, 'web')).describe().catch(() => undefined);
    return d && d.runId !== placed ? d.runId : undefined;
  }, WAIT_MS, 50);
  const handle = client.workflow.getHandle(failoverWorkflowId(cluster, 'web'), runId);
  const outcome = await handle.result().then(
    (r: { outcome: string }) => r.outcome,
    (e: Error) => `failed: ${(e.cause as Error | undefined)?.message ?? e.message}`,
  );
  const history = (await handle.fetchHistory()).events ?? [];
  const failedTasks = history.filter((e) => e.workflowTaskFailedEventAttributes).length;
  const g = (await ownership()).groups.web!;
  const view = `the failover: ${outcome} (${failedTasks} workflow task(s) failed, endOperation called ${endCalls}× in all); the controller: ${g.state} on ${g.owner} at epoch ${g.epoch} (was ${placedGroup.epoch})`;
  assert.equal(outcome, 'false-alarm', view);
  assert.deepEqual({ owner: g.owner, epoch: g.epoch, state: g.state }, { owner: 'n1', epoch: placedGroup.epoch, state: 'running' }, view);
});
