/**
 * Found by the chaos suite (seed 1, `--kinds node-death,agent-kill,guard-kill,node-freeze`: a
 * whole-node freeze of the owner, then any fault): a failover that has started the group on the
 * new owner ends its operation with the controller (`endOperation`, a local activity) and
 * completes. If the verification `ping` it cancelled is answered at that moment (the frozen old
 * owner thawed), the workflow task that ran the local activity fails with UNHANDLED_COMMAND
 * (a new event arrived before the completion), its local-activity marker is lost, and the next
 * workflow task runs `endOperation` AGAIN. The controller applied the first one (the group is
 * `running` on the new owner) and refuses the second ("does not hold group 'web' (no operation is
 * running)", OperationInProgress); the failover takes that for a failed start, stops the group on
 * the new owner (compensation) and fails. The controller keeps saying "running on n2" while
 * nothing runs anywhere, and nothing corrects it: the group stays down until another fault.
 * (In the lab: 76 s without service, ended by the next fault of the schedule.)
 *
 * Deterministic here: the old owner's `ping` is completed asynchronously by the test, from
 * inside the first `endOperation`, just before the real update is sent — what the thaw did.
 * DESIGN: "Retried or replayed updates apply once".
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { CompleteAsyncError, Context } from '@temporalio/activity';
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
const cluster = uniqueName('replayed-end');
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

/** The frozen old owner's pending `ping`: answered when the test says (its thaw). */
let pendingPing: { taskToken: Uint8Array } | undefined;
/** Called once, from inside the failover's first endOperation, before the real update is sent. */
let onFirstEnd: (() => Promise<void>) | undefined;
let endCalls = 0;

const ownership = (): Promise<Ownership> => client.workflow.getHandle(controllerWorkflowId(cluster)).query(ownershipQuery);

before(async () => {
  client = await testClient();
  link = testLink(client, cluster);
  const controller = createControllerActivities({ client, key: TEST_KEY });
  const wf = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: clusterTaskQueue(cluster),
    workflowBundle: await testWorkflowBundle(),
    activities: {
      ...createClusterActivities({ config }),
      ...testAuthActivities(config),
      ...controller,
      async endOperation(req: Parameters<typeof controller.endOperation>[0]) {
        endCalls++;
        const hook = onFirstEnd;
        onFirstEnd = undefined;
        if (hook) await hook();
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

test('a failover whose endOperation runs twice (its workflow task failed after the update was applied) still leaves the group running where the controller says', async () => {
  const n1 = nodes.get('n1')!;
  const n2 = nodes.get('n2')!;
  await link.report({ node: 'n1', to: 'up', reporter: 'n1', at: Date.now(), detail: 'agent started' });
  await link.report({ node: 'n2', to: 'up', reporter: 'n2', at: Date.now(), detail: 'agent started' });
  await waitFor('web running on n1', async () => {
    const g = (await ownership()).groups.web;
    return g?.state === 'running' && g.owner === 'n1' && g.operation === undefined ? g : undefined;
  }, WAIT_MS, 50);

  // n1 freezes: its agent's worker no longer takes tasks; a "frozen" worker on its queue holds
  // the verification's ping without answering (as a stopped process holds a polled task).
  n1.worker!.shutdown();
  await n1.running;
  const frozen = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: nodeTaskQueue(cluster, 'n1'),
    activities: {
      async ping(): Promise<never> {
        pendingPing = { taskToken: Context.current().info.taskToken };
        throw new CompleteAsyncError();
      },
    },
  });
  workers.push(frozen);
  runs.push(frozen.run());
  // n1 thaws while the failover ends its operation: its (cancelled) ping is answered then.
  onFirstEnd = async () => {
    assert.ok(pendingPing, 'the frozen n1 holds the verification ping');
    await client.activity.complete(pendingPing.taskToken, { node: 'n1', at: Date.now(), holds: { epoch: 1, state: 'running' } });
  };

  const placed = (await client.workflow.getHandle(failoverWorkflowId(cluster, 'web')).describe()).runId;
  await link.report({ node: 'n1', to: 'suspect', reporter: 'n2', at: Date.now(), detail: 'test: every link silent' });
  const runId = await waitFor('the node-lost failover started', async () => {
    const d = await client.workflow.getHandle(failoverWorkflowId(cluster, 'web')).describe().catch(() => undefined);
    return d && d.runId !== placed ? d.runId : undefined;
  }, WAIT_MS, 50);
  const handle = client.workflow.getHandle(failoverWorkflowId(cluster, 'web'), runId);
  const outcome = await handle.result().then(
    (r: { outcome: string; to: string | null }) => `${r.outcome} to ${r.to}`,
    (e: Error) => `failed: ${(e.cause as Error | undefined)?.message ?? e.message}`,
  );
  const g = (await ownership()).groups.web!;
  const history = await handle.fetchHistory();
  const failedTasks = history.events?.filter((e) => e.workflowTaskFailedEventAttributes).length ?? 0;
  const view = `failover: ${outcome}; endOperation ran ${endCalls}× (placement included), ${failedTasks} workflow task(s) of the failover failed; the controller: ${g.state} on ${g.owner} at epoch ${g.epoch}; n2 holds ${JSON.stringify(n2.groups.holding('web'))}, its resource running: ${n2.services.get('first')!.running}`;
  assert.equal(outcome, 'moved to n2', view);
  assert.deepEqual({ owner: g.owner, state: g.state }, { owner: 'n2', state: 'running' }, view);
  assert.deepEqual(n2.groups.holding('web'), { epoch: g.epoch, state: 'running' }, `the node the controller names holds the group: ${view}`);
  assert.equal(n2.services.get('first')!.running, true, view);
});
