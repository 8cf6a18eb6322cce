/**
 * The controller and the failover saga against a real Temporal dev server, real workers and
 * the real activities, with two "nodes" in this process (each its own GroupRuntime and task
 * queue). The resources are scripted (test/support/scripted-service.ts) so that a start can
 * be made to fail; the lab tests (test/lab) do the same with real processes and addresses.
 */
import { test, after, before } from 'node:test';
import { recordHistory } from '../support/record.js';
import assert from 'node:assert/strict';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { ServiceRegistry } from '../../src/agent/services.js';
import { GroupRuntime } from '../../src/agent/groups.js';
import type { ControllerLink } from '../../src/agent/controller-link.js';
import { ResourceMonitor } from '../../src/monitor/monitor.js';
import { createServiceActivities } from '../../activities/service.js';
import { signedHealGaveUp, signedUpdate, TEST_KEY, testAuthActivities, testLink } from '../support/cluster-key.js';
import { createOwnershipActivities } from '../../activities/ownership.js';
import { createClusterActivities } from '../../activities/cluster.js';
import { createControllerActivities } from '../../activities/controller.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import {
  clusterTaskQueue,
  controllerWorkflowId,
  ERROR_TYPES,
  failoverWorkflowId,
  healGaveUpSignal,
  nodeTaskQueue,
  ownershipQuery,
  switchoverWorkflowId,
  type FailoverResult,
  type Ownership,
  type SwitchoverResult,
} from '../../workflows/shared.js';
import { ScriptedService } from '../support/scripted-service.js';
import { waitFor } from '../support/wait.js';
import { closeTemporal, testClient, testWorkerConnection, testWorkflowBundle, uniqueName } from '../support/temporal.js';

/**
 * Timings sized for a loaded 2-core machine. The verification of a suspect owner is a race
 * between its answer (an activity on its own queue) and a pause of VERIFY_TIMEOUT_MS: at the
 * product's 300 ms, a false alarm became a failover whenever a round trip through Temporal took
 * longer. The lease is longer than the verification so that waiting it out takes time of its
 * own after the verification, which the test of a dead owner can then see.
 */
const VERIFY_TIMEOUT_MS = 4000;
const LEASE = { ttlMs: 8000, marginMs: 50 };
/** For conditions that take a few round trips through Temporal, or a verification and a lease. */
const WAIT_MS = 60_000;

const cluster = uniqueName('fo');
const config: Config = parseConfig(`
cluster: ${cluster}
lease: { ttl: ${LEASE.ttlMs}ms, margin: ${LEASE.marginMs}ms }
failover: { verifyTimeout: ${VERIFY_TIMEOUT_MS}ms }
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
      - { type: command, name: second, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`);

interface TestNode {
  name: string;
  groups: GroupRuntime;
  services: Map<string, ScriptedService>;
  worker?: Worker;
  running?: Promise<void>;
}

const nodes = new Map<string, TestNode>();
let client: Client;
let link: ControllerLink;
const workers: Worker[] = [];
const runs: Promise<void>[] = [];

async function startNodeWorker(node: TestNode): Promise<void> {
  const worker = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: nodeTaskQueue(cluster, node.name),
    activities: {
      ...createServiceActivities({ node: node.name, services: registries.get(node.name)!, logger: silentLogger, recoveryPollMs: 20, whileHolding: (g, fn) => node.groups.whileHolding(g, fn) }),
      ...createOwnershipActivities({ node: node.name, config, groups: node.groups, services: registries.get(node.name)!, exec: createExec(silentLogger), logger: silentLogger, key: TEST_KEY }),
    },
  });
  node.worker = worker;
  node.running = worker.run();
}

const registries = new Map<string, ServiceRegistry>();
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
  registries.set(name, registry);
  const groups = new GroupRuntime({ node: name, config, services: registry, logger: silentLogger, monitorOf: (s) => monitors.get(s)!, claimWaitMs: 1000 });
  nodes.set(name, { name, groups, services });
}

const ownership = (): Promise<Ownership> => client.workflow.getHandle(controllerWorkflowId(cluster)).query(ownershipQuery);
const web = async () => (await ownership()).groups.web!;
/** The group runs and no operation is under way (one left over from a slow test would refuse the next). */
const settled = () => waitFor('web running with no operation under way', async () => {
  const g = await web();
  return g.state === 'running' && g.operation === undefined ? g : undefined;
}, WAIT_MS, 50);

before(async () => {
  client = await testClient();
  link = testLink(client, cluster);
  const connection = await testWorkerConnection();
  const wf = await Worker.create({
    connection,
    taskQueue: clusterTaskQueue(cluster),
    workflowBundle: await testWorkflowBundle(),
    activities: { ...createClusterActivities({ config }), ...createControllerActivities({ client, key: TEST_KEY }), ...testAuthActivities(config) },
  });
  workers.push(wf);
  runs.push(wf.run());
  for (const node of nodes.values()) await startNodeWorker(node);
});

after(async () => {
  // The last failover of these tests is the switchover's (kind switchover, the way back).
  await recordHistory(controllerWorkflowId(cluster), 'controller');
  await recordHistory(failoverWorkflowId(cluster, 'web'), 'failover-switchover');
  link.close();
  await client.workflow.getHandle(controllerWorkflowId(cluster)).terminate('test over').catch(() => undefined);
  for (const node of nodes.values()) if (node.worker?.getState() === 'RUNNING') node.worker.shutdown();
  for (const w of workers) w.shutdown();
  await Promise.all([...runs, ...[...nodes.values()].map((n) => n.running)]);
  for (const node of nodes.values()) await node.groups.close();
  await closeTemporal();
});

const failoverResult = (workflowId = failoverWorkflowId(cluster, 'web')) => client.workflow.getHandle<() => Promise<FailoverResult>>(workflowId).result();

test('the first agent up starts the controller, which places the group on the preferred node that is up', async () => {
  await link.report({ node: 'n2', to: 'up', reporter: 'n2', at: Date.now(), detail: 'agent started' });
  await link.report({ node: 'n1', to: 'up', reporter: 'n1', at: Date.now(), detail: 'agent started' });
  await waitFor('web running', async () => (await web()).state === 'running', WAIT_MS, 50);
  const g = await web();
  // n2 came up first, so the group may have been placed there before n1 was up: either way
  // it runs on exactly one node, at epoch 1, and that node holds it under that epoch.
  assert.equal(g.epoch, 1);
  const holder = nodes.get(g.owner!)!;
  assert.deepEqual(holder.groups.holding('web'), { epoch: 1, state: 'running' });
  const other = nodes.get(g.owner === 'n1' ? 'n2' : 'n1')!;
  assert.equal(other.groups.holding('web'), undefined);
  assert.equal(holder.services.get('first')!.running && holder.services.get('second')!.running, true);
});

test('an operator failover stops the group on its owner in reverse order and starts it on the other node, epoch+1', async () => {
  const before = await web();
  const from = nodes.get(before.owner!)!;
  const to = nodes.get(before.owner === 'n1' ? 'n2' : 'n1')!;
  const handle = await client.workflow.start('failover', { workflowId: failoverWorkflowId(cluster, 'web'), taskQueue: clusterTaskQueue(cluster), args: [{ cluster, group: 'web', to: to.name }] });
  const result: FailoverResult = await handle.result();
  assert.equal(result.outcome, 'moved');
  assert.equal(result.from, from.name);
  assert.equal(result.to, to.name);
  assert.equal(result.epoch, before.epoch + 1);
  assert.ok(result.phases.stopMs !== undefined, 'the old owner was asked to stop');
  assert.equal(result.phases.leaseWaitMs, undefined, 'a clean stop needs no lease wait');
  assert.equal(from.groups.holding('web'), undefined);
  assert.equal(from.services.get('first')!.running || from.services.get('second')!.running, false);
  assert.deepEqual(to.groups.holding('web'), { epoch: before.epoch + 1, state: 'running' });
  const after = await web();
  assert.equal(after.owner, to.name);
  assert.equal(after.state, 'running');
  assert.equal(after.renewable, true);
});

test('a suspect owner that still answers through its task queue is a false alarm: nothing moves', async () => {
  const before = await settled();
  await link.report({ node: before.owner!, to: 'suspect', reporter: before.owner === 'n1' ? 'n2' : 'n1', at: Date.now(), detail: 'test: heartbeats lost' });
  await waitFor('false alarm recorded', async () => (await ownership()).falseAlarms.length > 0, WAIT_MS, 50);
  const result = await failoverResult();
  assert.equal(result.outcome, 'false-alarm');
  assert.ok(result.phases.verifyMs !== undefined && result.phases.verifyMs < VERIFY_TIMEOUT_MS, `answered before the verification timed out (${result.phases.verifyMs} ms)`);
  const after = await web();
  assert.equal(after.owner, before.owner);
  assert.equal(after.epoch, before.epoch);
  assert.equal(after.renewable, true);
  // Its peers still do not hear it: it is verified again later (so its death is not missed).
  const s = await ownership();
  assert.equal(s.nodes[before.owner!]!.state, 'suspect');
  const alarm = s.falseAlarms.at(-1)!;
  assert.ok(s.reverify[before.owner!]!.at > alarm.at, `a verification is due after the false alarm (${JSON.stringify({ reverify: s.reverify, alarm })})`);
  // The partition heals: its peer hears it again, and says so.
  await link.report({ node: before.owner!, to: 'up', reporter: before.owner === 'n1' ? 'n2' : 'n1', at: Date.now(), detail: 'test: heard again' });
  await waitFor('reverification cancelled', async () => ((await ownership()).reverify[before.owner!] === undefined ? true : undefined), WAIT_MS, 50);
});

test('a node that does not answer is treated as gone: its lease is waited out, the group starts on the other node', async () => {
  const before = await settled();
  const dead = nodes.get(before.owner!)!;
  const survivor = nodes.get(before.owner === 'n1' ? 'n2' : 'n1')!;
  // When the survivor starts the group's first resource (the new owner's first act).
  const first = survivor.services.get('first')!;
  const start = first.driver.start;
  let startedAt: number | undefined;
  first.driver.start = () => {
    startedAt ??= Date.now();
    return start();
  };
  dead.worker!.shutdown();
  await dead.running;
  // The controller stops renewing the owner's lease when it takes this report, not before.
  const reportedAt = Date.now();
  try {
    try {
      await link.report({ node: dead.name, to: 'suspect', reporter: survivor.name, at: Date.now(), detail: 'test: every link silent' });
      await waitFor('moved', async () => (await web()).owner === survivor.name && (await web()).state === 'running', WAIT_MS, 50);
    } finally {
      first.driver.start = start;
    }
    const result = await failoverResult();
    assert.equal(result.outcome, 'moved');
    assert.ok(result.phases.verifyMs! >= VERIFY_TIMEOUT_MS - 50, `verification waited for the answer (${result.phases.verifyMs} ms)`);
    // Not only a phase that was entered: nothing started on the survivor before the old lease
    // (ttl + margin from the report) was over, though the verification ended well before it.
    assert.ok(result.phases.leaseWaitMs !== undefined && result.phases.leaseWaitMs > 0, `the old lease was waited out (${result.phases.leaseWaitMs} ms)`);
    assert.ok(startedAt !== undefined && startedAt >= reportedAt + LEASE.ttlMs + LEASE.marginMs, `started ${startedAt === undefined ? 'never' : `${startedAt - reportedAt} ms`} after the report; the lease ends ${LEASE.ttlMs + LEASE.marginMs} ms after it`);
    assert.equal((await web()).epoch, before.epoch + 1);
    // The dead node comes back: it holds a stale epoch, and an order carrying it is refused.
    await assert.rejects(dead.groups.startResource('web', 'first', before.epoch - 1), /stale/);
  } finally {
    // Back from the dead, whatever failed above (the next tests need both nodes).
    await dead.groups.stopGroup('web', 'test: back from the dead, lease lost').catch(() => undefined);
    if (dead.worker?.getState() !== 'RUNNING') await startNodeWorker(dead);
    await link.report({ node: dead.name, to: 'up', reporter: survivor.name, at: Date.now(), detail: 'test: heard again' });
  }
});

test('a start that fails half-way is undone in reverse and the next node is tried', async () => {
  const before = await web();
  const from = nodes.get(before.owner!)!;
  const target = nodes.get(before.owner === 'n1' ? 'n2' : 'n1')!;
  target.services.get('second')!.behaviour = { startError: 'scripted: cannot start' };
  const stopsBefore = target.services.get('first')!.stops;
  try {
    // No target given: away from the owner, so the target is the only candidate; it fails → the group is down.
    const handle = await client.workflow.start('failover', { workflowId: failoverWorkflowId(cluster, 'web'), taskQueue: clusterTaskQueue(cluster), args: [{ cluster, group: 'web' }] });
    const err = await handle.result().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure && err.cause.type === ERROR_TYPES.NoNodeCouldRunGroup, String(err.cause));
    assert.match(err.cause.message, /cannot start/);
    assert.equal(target.services.get('first')!.stops, stopsBefore + 1, 'the first resource was stopped again');
    assert.equal(target.groups.holding('web'), undefined);
    assert.equal(from.groups.holding('web'), undefined, 'the old owner stopped it');
    const g = await web();
    assert.equal(g.state, 'down');
    assert.equal(g.owner, null);
  } finally {
    target.services.get('second')!.behaviour = {};
  }
  // The controller places a group that is down again when a node of it is (re)reported up.
  await link.report({ node: from.name, to: 'up', reporter: from.name, at: Date.now(), detail: 'test: up' });
  await waitFor('placed again', async () => (await web()).state === 'running', WAIT_MS, 50);
});

test('a heal that gave up makes the controller fail the group over', async () => {
  const before = await web();
  await client.workflow.getHandle(controllerWorkflowId(cluster)).signal(healGaveUpSignal, ...signedHealGaveUp(cluster, { group: 'web', resource: 'first', node: before.owner!, at: Date.now(), detail: 'test: gave up' }));
  await waitFor('moved away', async () => (await web()).owner !== before.owner && (await web()).state === 'running', WAIT_MS, 50);
  assert.equal((await web()).epoch, before.epoch + 1);
});

test('bad failover input from the UI fails at once with a readable message and changes nothing', async () => {
  const before = await web();
  for (const [input, pattern] of [
    [{ cluster, group: 'Web!' }, /group/],
    [{ cluster, group: 'web', to: 'n9' }, /n9/],
    [{ cluster, group: 'web', extra: 1 }, /unknown key/],
    ['web', /input/],
    // "Start like this one" on a failover the controller started copies its kind: the internal
    // kinds skip safety steps (a recover does not stop or wait for the owner), so only the
    // controller (or, for a switchover, the switchover workflow) may start them.
    [{ cluster, group: 'web', kind: 'recover' }, /kind 'recover' is started only by the controller/],
    [{ cluster, group: 'web', kind: 'node-lost' }, /kind 'node-lost' is started only by the controller/],
    [{ cluster, group: 'web', kind: 'place' }, /kind 'place' is started only by the controller/],
    [{ cluster, group: 'web', kind: 'heal-gave-up' }, /kind 'heal-gave-up' is started only by the controller/],
    [{ cluster, group: 'web', kind: 'switchover', to: 'n2' }, /kind 'switchover' is started only by the switchover workflow/],
  ] as const) {
    const handle = await client.workflow.start('failover', { workflowId: uniqueName('bad'), taskQueue: clusterTaskQueue(cluster), args: [input] });
    const err = await handle.result().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError, `rejected: ${JSON.stringify(input)}`);
    assert.match(err.cause?.message ?? '', pattern);
  }
  const after = await web();
  assert.equal(after.epoch, before.epoch);
  assert.equal(after.owner, before.owner);
  assert.equal(after.operation, undefined);
});

test('a second operation on a busy group is refused', async () => {
  const ctl = client.workflow.getHandle(controllerWorkflowId(cluster));
  await ctl.executeUpdate('beginOperation', { args: [{ group: 'web', workflowId: 'someone-else', kind: 'operator' }] });
  try {
    const handle = await client.workflow.start('failover', { workflowId: uniqueName('second'), taskQueue: clusterTaskQueue(cluster), args: [{ cluster, group: 'web' }] });
    const err = await handle.result().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure && err.cause.type === ERROR_TYPES.OperationInProgress, String(err.cause));
    assert.match(err.cause.message, /busy.*someone-else/);
  } finally {
    // Signed, as a failover's local activity signs it (the controller checks the MAC: docs/security.md).
    await ctl.executeUpdate('endOperation', { args: [signedUpdate(cluster, 'endOperation', 'someone-else/end', 'run-1', { group: 'web', workflowId: 'someone-else', outcome: 'unchanged', detail: 'test' })], updateId: 'someone-else/end' });
  }
});

test('a heal asked of a node that does not hold the group is refused there, and nothing is restarted', async () => {
  const owner = (await web()).owner!;
  const other = owner === 'n1' ? 'n2' : 'n1';
  const starts = nodes.get(other)!.services.get('first')!.starts;
  const handle = await client.workflow.start('healService', { taskQueue: clusterTaskQueue(cluster), workflowId: uniqueName('heal'), args: [{ cluster, node: other, group: 'web', resource: 'first' }] });
  const err = await handle.result().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof WorkflowFailedError);
  const cause = err.cause?.cause ?? err.cause;
  assert.ok(cause instanceof ApplicationFailure && cause.type === ERROR_TYPES.NodeNotInGroup, String(cause));
  assert.match(cause.message, new RegExp(`node ${other} does not hold group 'web'`));
  assert.equal(nodes.get(other)!.services.get('first')!.starts, starts);
});

test('a suspect owner that does not answer, with no other node up: nothing is changed (the group is not taken from it)', async () => {
  const before = await web();
  const owner = nodes.get(before.owner!)!;
  const other = owner.name === 'n1' ? 'n2' : 'n1';
  owner.worker!.shutdown();
  await owner.running;
  try {
    await link.report({ node: other, to: 'suspect', reporter: owner.name, at: Date.now(), detail: 'test: silent' });
    await link.report({ node: owner.name, to: 'suspect', reporter: other, at: Date.now(), detail: 'test: silent' });
    const err = await waitFor('the failover ends', async () => {
      const d = await client.workflow.getHandle(failoverWorkflowId(cluster, 'web')).describe();
      return d.status.name === 'RUNNING' ? undefined : failoverResult().then(() => undefined, (e: unknown) => e);
    }, WAIT_MS, 50);
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure && err.cause.type === ERROR_TYPES.NoNodeCouldRunGroup, String(err));
    assert.match(err.cause.message, /nothing was changed/);
    const after = await web();
    assert.equal(after.owner, owner.name);
    assert.equal(after.epoch, before.epoch);
    assert.equal(after.operation, undefined);
    assert.deepEqual(owner.groups.holding('web'), { epoch: before.epoch, state: 'running' });
  } finally {
    await startNodeWorker(owner);
    await link.report({ node: owner.name, to: 'up', reporter: other, at: Date.now(), detail: 'test: heard again' });
    await link.report({ node: other, to: 'up', reporter: owner.name, at: Date.now(), detail: 'test: heard again' });
  }
});

const switchoverTo = async (to: string) => {
  const handle = await client.workflow.start('switchover', { workflowId: switchoverWorkflowId(cluster, 'web'), taskQueue: clusterTaskQueue(cluster), args: [{ cluster, group: 'web', to }] });
  return handle.result() as Promise<SwitchoverResult>;
};

test('a switchover moves the group to the target (stop in reverse, epoch+1, start); to the owner it does nothing', async () => {
  const before = await settled();
  const from = nodes.get(before.owner!)!;
  const to = nodes.get(before.owner === 'n1' ? 'n2' : 'n1')!;
  const r = await switchoverTo(to.name);
  assert.equal(r.outcome, 'moved');
  assert.equal(r.from, from.name);
  assert.equal(r.to, to.name);
  assert.equal(r.resync, undefined, 'no file sets, no DRBD: nothing to resync');
  assert.equal(r.failover?.epoch, before.epoch + 1);
  assert.equal(from.groups.holding('web'), undefined);
  assert.deepEqual(to.groups.holding('web'), { epoch: before.epoch + 1, state: 'running' });
  const again = await switchoverTo(to.name);
  assert.equal(again.outcome, 'already-there');
  assert.equal((await web()).epoch, before.epoch + 1);
});

test('a switchover whose target cannot start the group puts it back on its owner and fails saying so', async () => {
  const before = await web();
  const from = nodes.get(before.owner!)!;
  const target = nodes.get(before.owner === 'n1' ? 'n2' : 'n1')!;
  target.services.get('second')!.behaviour = { startError: 'scripted: cannot start' };
  try {
    const err = await switchoverTo(target.name).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ApplicationFailure && err.cause.type === ERROR_TYPES.SwitchoverFailed, String(err.cause));
    assert.match(err.cause.message, new RegExp(`cannot start.*runs on ${from.name} again`));
    assert.equal(target.groups.holding('web'), undefined);
    assert.equal(target.services.get('first')!.running, false, 'what was started on the target was undone');
    const g = await web();
    assert.equal(g.owner, from.name);
    assert.equal(g.state, 'running');
    assert.equal(g.epoch, before.epoch + 2, 'one epoch for the target, one for the way back');
    assert.deepEqual(from.groups.holding('web'), { epoch: before.epoch + 2, state: 'running' });
  } finally {
    target.services.get('second')!.behaviour = {};
  }
});

// A switchover whose owner cannot stop the group: a failed stop is not a stop, so the group is
// neither started on the target nor started again on its owner; the switchover is blocked until
// a fence, the watchdog rule or a confirm-down (test/workflow/failed-stop.test.ts).

test('bad switchover and resync input from the UI fails at once and changes nothing; a resync toward the owner is refused', async () => {
  const before = await web();
  for (const [type, input, pattern] of [
    ['switchover', { cluster, group: 'web' }, /to/],
    ['switchover', { cluster, group: 'web', to: 'n9' }, /n9/],
    ['switchover', { cluster, group: 'web', to: 'n1', trigger: 'cron' }, /trigger/],
    ['failover', { cluster, group: 'web', kind: 'switchover' }, /needs 'to'/],
    ['resync', { cluster, group: 'web' }, /node/],
    ['resync', { cluster, group: 'web', node: before.owner }, /owns group 'web'.*never toward it/],
  ] as const) {
    const handle = await client.workflow.start(type, { workflowId: uniqueName('bad'), taskQueue: clusterTaskQueue(cluster), args: [input] });
    const err = await handle.result().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError, `rejected: ${type} ${JSON.stringify(input)}`);
    assert.match(err.cause?.message ?? '', pattern);
  }
  const after = await web();
  assert.equal(after.epoch, before.epoch);
  assert.equal(after.owner, before.owner);
});
