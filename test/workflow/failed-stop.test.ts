/**
 * A failed stop is not a stop (issue 8, section 2), against a real Temporal dev server, real
 * workers and the real controller, failover and cluster activities. Each cluster here has two
 * "nodes" in this process (each its own GroupRuntime, the real node activities on its task
 * queue, scripted resources), as in failover.test.ts. A failed stop is a resource whose stop
 * throws: the node's `stopGroup` then fails with `StopFailed` and keeps the group held in state
 * 'failed', which its `ping` answers; a guard's failed release is `markFailed` on the node.
 *
 * Cases: no fencing → blocked until a confirm-down; a fence that succeeds → moved; a fence that
 * fails → still blocked; an armed watchdog → moved after lease + margin + its timeout; a
 * node-lost verification answered with state 'failed' → blocked, not a false alarm; a
 * switchover → not started again on top of the failed stop; confirmDown refused (unknown node,
 * nothing blocked) with nothing changed; `haoscar confirm-down` refusing without --yes.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { ServiceRegistry } from '../../src/agent/services.js';
import { GroupRuntime } from '../../src/agent/groups.js';
import type { ControllerLink } from '../../src/agent/controller-link.js';
import { ResourceMonitor } from '../../src/monitor/monitor.js';
import { createServiceActivities } from '../../activities/service.js';
import { signedUpdate, TEST_KEY, testAuthActivities, testLink, writeTestSecret } from '../support/cluster-key.js';
import { randomUUID } from 'node:crypto';
import { createOwnershipActivities } from '../../activities/ownership.js';
import { createClusterActivities } from '../../activities/cluster.js';
import { createControllerActivities } from '../../activities/controller.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import {
  clusterTaskQueue,
  confirmDownUpdate,
  controllerWorkflowId,
  ERROR_TYPES,
  failoverStatusQuery,
  failoverWorkflowId,
  nodeTaskQueue,
  ownershipQuery,
  switchoverWorkflowId,
  type FailoverResult,
  type GroupOwnership,
  type Ownership,
  type SwitchoverResult,
} from '../../workflows/shared.js';
import { ScriptedService } from '../support/scripted-service.js';
import { waitFor } from '../support/wait.js';
import { recordHistory } from '../support/record.js';
import { closeTemporal, temporalAddress, testClient, testWorkerConnection, testWorkflowBundle, uniqueName } from '../support/temporal.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Long enough for a lease (300 ms + 50 ms) to have run out several times over, on a loaded machine. */
const STAYS_BLOCKED_MS = 2500;

interface TestNode {
  name: string;
  groups: GroupRuntime;
  services: Map<string, ScriptedService>;
  /** When each startResource order arrived here (ms since the epoch). */
  startOrders: number[];
  worker?: Worker;
  running?: Promise<void>;
}

class TestCluster {
  readonly nodes = new Map<string, TestNode>();
  readonly link: ControllerLink;
  private readonly workers: Worker[] = [];
  private readonly runs: Promise<void>[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'haoscar-failed-stop-'));
  /** A haoscar.yaml for the CLI: this cluster on the test's Temporal server. */
  readonly configFile: string;

  private constructor(
    readonly name: string,
    readonly yaml: string,
    readonly config: Config,
    readonly client: Client,
    address: string,
  ) {
    this.link = testLink(client, name);
    this.configFile = join(this.dir, 'haoscar.yaml');
    // The cluster secret the CLI signs a confirm-down with (the workflow worker's TEST_KEY).
    writeFileSync(this.configFile, `${yaml}\ntemporal: { address: "${address}" }\nheartbeat: { secretFile: ${writeTestSecret(this.dir)} }\n`);
  }

  /** A cluster of n1 (preferred) and n2, one group `web` of two resources; `nodeExtra` is added to each node's line. */
  static async start(prefix: string, opts: { nodeExtra?: string; top?: string } = {}): Promise<TestCluster> {
    const name = uniqueName(prefix);
    const yaml = `
cluster: ${name}
lease: { ttl: 300ms, margin: 50ms }
failover: { verifyTimeout: 300ms }
${opts.top ?? ''}
defaults:
  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }
  healing: { startTimeout: 1s }
nodes:
  - { name: n1, addresses: [127.0.0.1], priority: 10${opts.nodeExtra ? `, ${opts.nodeExtra}` : ''} }
  - { name: n2, addresses: [127.0.0.2]${opts.nodeExtra ? `, ${opts.nodeExtra}` : ''} }
groups:
  - name: web
    resources:
      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
      - { type: command, name: second, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`;
    const cluster = new TestCluster(name, yaml, parseConfig(yaml), await testClient(), await temporalAddress());
    clusters.push(cluster);
    await cluster.startWorkers();
    // n1 first: it is the preferred node, so the controller places the group there.
    await cluster.link.report({ node: 'n1', to: 'up', reporter: 'n1', at: Date.now(), detail: 'agent started' });
    await cluster.link.report({ node: 'n2', to: 'up', reporter: 'n2', at: Date.now(), detail: 'agent started' });
    await waitFor('web placed on n1', async () => {
      const g = await cluster.web().catch(() => undefined);
      return g?.state === 'running' && g.owner === 'n1' && g.operation === undefined;
    }, 30_000, 50);
    return cluster;
  }

  private async startWorkers(): Promise<void> {
    const { config, name } = this;
    const wf = await Worker.create({
      connection: await testWorkerConnection(),
      taskQueue: clusterTaskQueue(name),
      workflowBundle: await testWorkflowBundle(),
      activities: { ...createClusterActivities({ config }), ...createControllerActivities({ client: this.client, key: TEST_KEY }), ...testAuthActivities(config) },
    });
    this.workers.push(wf);
    this.runs.push(wf.run());
    for (const nodeName of ['n1', 'n2']) {
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
      const groups = new GroupRuntime({ node: nodeName, config, services: registry, logger: silentLogger, monitorOf: (s) => monitors.get(s)!, claimWaitMs: 1000 });
      const node: TestNode = { name: nodeName, groups, services, startOrders: [] };
      this.nodes.set(nodeName, node);
      const real = createOwnershipActivities({ node: nodeName, config, groups, services: registry, exec: createExec(silentLogger), logger: silentLogger, key: TEST_KEY });
      const worker = await Worker.create({
        connection: await testWorkerConnection(),
        taskQueue: nodeTaskQueue(name, nodeName),
        activities: {
          ...createServiceActivities({ node: nodeName, services: registry, logger: silentLogger, recoveryPollMs: 20, whileHolding: (g, fn) => groups.whileHolding(g, fn) }),
          ...real,
          // Observed only: when the start orders arrived.
          startResource: async (req: Parameters<typeof real.startResource>[0]) => {
            node.startOrders.push(Date.now());
            return real.startResource(req);
          },
        },
      });
      node.worker = worker;
      node.running = worker.run();
    }
  }

  node(name: string): TestNode {
    return this.nodes.get(name)!;
  }
  /** The node's resource `first` will not stop (its stop throws, the service keeps running). */
  failStop(name: string, why: string): void {
    this.node(name).services.get('first')!.behaviour = { stopError: why };
  }
  ownership(): Promise<Ownership> {
    return this.client.workflow.getHandle(controllerWorkflowId(this.name)).query(ownershipQuery);
  }
  async web(): Promise<GroupOwnership> {
    return (await this.ownership()).groups.web!;
  }
  /** An operator's confirm-down, signed as `haoscar confirm-down` signs it (a fresh update ID each). */
  confirmDown(req: unknown) {
    const updateId = `confirm-down/${randomUUID()}`;
    const signed = typeof req === 'object' && req !== null ? signedUpdate(this.name, 'confirmDown', updateId, undefined, req) : req;
    return this.client.workflow.getHandle(controllerWorkflowId(this.name)).executeUpdate(confirmDownUpdate, { args: [signed as { node: string }], updateId });
  }
  failover(args: Record<string, unknown> = {}) {
    return this.client.workflow.start('failover', { workflowId: failoverWorkflowId(this.name, 'web'), taskQueue: clusterTaskQueue(this.name), args: [{ cluster: this.name, group: 'web', ...args }] });
  }
  /** The failover's result; a failover still blocked after `ms` fails the test instead of hanging it. */
  failoverResult(ms = 60_000): Promise<FailoverResult> {
    return within(this.client.workflow.getHandle(failoverWorkflowId(this.name, 'web')).result() as Promise<FailoverResult>, ms, 'the failover to end');
  }
  async failoverRunning(): Promise<boolean> {
    return (await this.client.workflow.getHandle(failoverWorkflowId(this.name, 'web')).describe()).status.name === 'RUNNING';
  }
  /** Waits until the operation on web (begun after `since`, ms since the epoch) is blocked on `node`, and returns the block. */
  async blockedOn(node: string, since: number) {
    return waitFor(`the operation on web blocked on ${node}`, async () => {
      const b = (await this.web()).operation?.blocked;
      if (b?.node === node) return b;
      // Fail at once, saying what happened instead, when that failover ended without blocking.
      const d = await this.client.workflow.getHandle(failoverWorkflowId(this.name, 'web')).describe();
      if (d.startTime.getTime() >= since && d.status.name !== 'RUNNING') {
        const outcome = await this.failoverResult().then((r) => `${r.outcome} to ${r.to}`, (e: unknown) => String(e));
        assert.fail(`the failover ended (${outcome}) instead of blocking on ${node}`);
      }
      return undefined;
    }, 30_000, 50);
  }
  /** The node that failed its stop was confirmed down: it comes back holding nothing (as a reset node would). */
  async resetNode(name: string): Promise<void> {
    const node = this.node(name);
    for (const s of node.services.values()) s.behaviour = {};
    if (node.groups.holding('web')) await node.groups.stopGroup('web', 'test: the node was confirmed down');
    assert.equal(node.groups.holding('web'), undefined);
  }
  /** `haoscar …` through its entry point, stdin not a terminal. */
  haoscar(args: string[]) {
    return execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), ...args, '--config', this.configFile], { reject: false, cwd: ROOT, timeout: 120_000 });
  }

  async close(): Promise<void> {
    this.link.close();
    await this.client.workflow.getHandle(failoverWorkflowId(this.name, 'web')).terminate('test over').catch(() => undefined);
    await this.client.workflow.getHandle(controllerWorkflowId(this.name)).terminate('test over').catch(() => undefined);
    for (const node of this.nodes.values()) if (node.worker?.getState() === 'RUNNING') node.worker.shutdown();
    for (const w of this.workers) w.shutdown();
    await Promise.all([...this.runs, ...[...this.nodes.values()].map((n) => n.running)]);
    for (const node of this.nodes.values()) await node.groups.close();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

const clusters: TestCluster[] = [];
after(async () => {
  for (const c of clusters) await c.close().catch(() => undefined);
  await closeTemporal();
});

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms}ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls `check` for `ms`, failing at once if it ever throws: a condition that must keep holding. */
async function holdsFor(ms: number, check: () => Promise<void>): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await check();
    await new Promise((r) => setTimeout(r, 100));
  }
  await check();
}

/** Nothing moved: `owner` still owns web at `epoch` and holds it as failed; `other` holds nothing and was ordered to start nothing. */
async function nothingMoved(c: TestCluster, owner: string, other: string, epoch: number, startOrders: number): Promise<void> {
  const g = await c.web();
  assert.equal(g.owner, owner);
  assert.equal(g.epoch, epoch, 'no claim: the epoch is unchanged');
  assert.equal(c.node(owner).groups.holding('web')?.state, 'failed');
  assert.ok(g.operation?.blocked, 'still blocked');
  assert.equal(c.node(other).groups.holding('web'), undefined);
  assert.equal(c.node(other).startOrders.length, startOrders, `nothing was started on ${other}`);
  assert.equal(await c.failoverRunning(), true);
}

// ------------------------------------------------------------------ no fencing, no watchdog

let plain: TestCluster;

test('a stop that fails (StopFailed) with no fencing and no watchdog: the group does not move, the failover is blocked and says what it waits for', async () => {
  plain = await TestCluster.start('fs');
  const c = plain;
  const before = await c.web();
  c.failStop('n1', 'scripted: db will not stop');
  const since = Date.now();
  await c.failover();
  const block = await c.blockedOn('n1', since);
  assert.equal(block.epoch, before.epoch);
  assert.deepEqual(block.waitingFor, ['confirm-down']);
  assert.equal(block.until, undefined);
  assert.match(block.detail, /will not stop.*no fence agent is configured/);
  // Its lease runs out many times over: that does not make a failed stop safe.
  await holdsFor(STAYS_BLOCKED_MS, () => nothingMoved(c, 'n1', 'n2', before.epoch, 0));
  const status = await c.client.workflow.getHandle(failoverWorkflowId(c.name, 'web')).query(failoverStatusQuery);
  assert.equal(status.phase, 'blocked');
  assert.equal(status.blocked?.node, 'n1');
  // `haoscar status` says what is blocked and what unblocks it.
  const shown = await c.haoscar(['status']);
  assert.equal(shown.exitCode, 0, shown.stderr);
  assert.match(shown.stdout, /BLOCKED since \d+s ago: node n1 failed to stop group web \(its stop failed: .*will not stop.*\); waiting for `haoscar confirm-down n1`/);
});

test('haoscar confirm-down without --yes (stdin not a terminal) says what it means, refuses, and sends nothing', async () => {
  const c = plain;
  const r = await c.haoscar(['confirm-down', 'n1']);
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /You confirm that node n1 is powered off/);
  assert.match(r.stderr, /If n1 is NOT down, those groups will run twice/);
  assert.match(r.stderr, /--yes/);
  const g = await c.web();
  assert.equal(g.operation?.blocked?.confirmed, undefined, 'nothing was recorded');
  assert.equal((await c.ownership()).confirmedDown?.length ?? 0, 0);
  await nothingMoved(c, 'n1', 'n2', g.epoch, 0);
});

test('haoscar confirm-down --yes when the controller is not running: a clear error (exit 4), nothing sent', async () => {
  const c = plain;
  const other = join(mkdtempSync(join(tmpdir(), 'haoscar-no-controller-')), 'haoscar.yaml');
  try {
    writeFileSync(other, `${c.yaml.replace(`cluster: ${c.name}`, `cluster: ${uniqueName('none')}`)}\ntemporal: { address: "${await temporalAddress()}" }\nheartbeat: { secretFile: ${writeTestSecret(dirname(other))} }\n`);
    const r = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'confirm-down', 'n1', '--yes', '--config', other], { reject: false, cwd: ROOT, timeout: 120_000 });
    assert.equal(r.exitCode, 4, r.stderr);
    assert.match(r.stderr, /the controller of cluster 'none-[^']+' is not running: start the agents/);
  } finally {
    rmSync(join(other, '..'), { recursive: true, force: true });
  }
});

test('confirmDown is refused with a typed error and nothing changes: an unknown node, a node nothing is blocked on, a malformed request', async () => {
  const c = plain;
  const before = await c.ownership();
  for (const [req, type, pattern] of [
    [{ node: 'n9', operator: 'test' }, ERROR_TYPES.UnknownNode, /unknown node 'n9' \(known: n1, n2\)/],
    [{ node: 'n2', operator: 'test' }, ERROR_TYPES.NothingToConfirm, /no operation is blocked on node 'n2'/],
    [{ node: 'N1!' }, ERROR_TYPES.InvalidWorkflowInput, /node/],
    [{ node: 'n1', extra: true }, ERROR_TYPES.InvalidWorkflowInput, /unknown key extra/],
  ] as const) {
    const err = await c.confirmDown(req).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof WorkflowUpdateFailedError, `refused: ${JSON.stringify(req)}`);
    assert.ok(err.cause instanceof ApplicationFailure && err.cause.type === type, `${JSON.stringify(req)}: ${String(err.cause)}`);
    assert.match(err.cause.message, pattern);
  }
  const afterwards = await c.ownership();
  assert.deepEqual(afterwards.groups, before.groups);
  assert.deepEqual(afterwards.confirmedDown, before.confirmedDown);
  await nothingMoved(c, 'n1', 'n2', before.groups.web!.epoch, 0);
});

test('haoscar confirm-down --yes: the blocked failover moves the group to the other node (epoch + 1), and the confirmation is recorded', async () => {
  const c = plain;
  const before = await c.web();
  const r = await c.haoscar(['confirm-down', 'n1', '--yes', '--json', '--reason', 'powered off at the PDU']);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stderr, /blocked: node n1 failed to stop group web/);
  const answer = JSON.parse(r.stdout) as { node: string; unblocked: { group: string; workflowId: string; epoch: number }[] };
  assert.deepEqual(answer, { node: 'n1', unblocked: [{ group: 'web', workflowId: failoverWorkflowId(c.name, 'web'), epoch: before.epoch }] });
  const result = await c.failoverResult();
  assert.equal(result.outcome, 'moved');
  assert.equal(result.from, 'n1');
  assert.equal(result.to, 'n2');
  assert.equal(result.epoch, before.epoch + 1);
  assert.ok(result.phases.blockedMs !== undefined && result.phases.blockedMs >= STAYS_BLOCKED_MS, `blocked for ${result.phases.blockedMs} ms`);
  assert.equal(result.phases.leaseWaitMs, undefined, 'confirmed down: no lease to wait out');
  assert.deepEqual(c.node('n2').groups.holding('web'), { epoch: before.epoch + 1, state: 'running' });
  const s = await c.ownership();
  assert.equal(s.groups.web!.owner, 'n2');
  assert.equal(s.groups.web!.operation, undefined);
  assert.equal(s.confirmedDown?.length, 1);
  assert.equal(s.confirmedDown![0]!.node, 'n1');
  assert.equal(s.confirmedDown![0]!.detail, 'powered off at the PDU');
  assert.deepEqual(s.confirmedDown![0]!.unblocked, answer.unblocked);
  await recordHistory(failoverWorkflowId(c.name, 'web'), 'failover-failed-stop');
  await c.resetNode('n1');
});

test('a node confirmed down earlier is not confirmed for its next failed stop: it blocks again', async () => {
  const c = plain;
  // Back to n1 (n2 stops cleanly), then n1 fails its stop again.
  await c.failover({ to: 'n1' });
  assert.equal((await c.failoverResult()).to, 'n1');
  const before = await c.web();
  const n2Orders = c.node('n2').startOrders.length;
  c.failStop('n1', 'scripted: stuck again');
  const since = Date.now();
  await c.failover();
  const block = await c.blockedOn('n1', since);
  assert.equal(block.epoch, before.epoch);
  assert.equal(block.confirmed, undefined);
  await holdsFor(1000, () => nothingMoved(c, 'n1', 'n2', before.epoch, n2Orders));
  const answer = await c.confirmDown({ node: 'n1', operator: 'test' });
  assert.deepEqual(answer.unblocked.map((u) => [u.group, u.epoch]), [['web', before.epoch]]);
  assert.equal((await c.failoverResult()).to, 'n2');
  await c.resetNode('n1');
});

test('a node-lost verification answered with the group in state failed: blocked, not a false alarm; a confirm-down moves it', async () => {
  const c = plain;
  const before = await c.web();
  assert.equal(before.owner, 'n2');
  const falseAlarms = (await c.ownership()).falseAlarms.length;
  const n1Orders = c.node('n1').startOrders.length;
  // Its guard's release failed: it answers, holding the group as failed.
  c.node('n2').groups.markFailed('web', 'scripted: the guard could not release it');
  const since = Date.now();
  await c.link.report({ node: 'n2', to: 'suspect', reporter: 'n1', at: Date.now(), detail: 'test: every link silent' });
  const block = await c.blockedOn('n2', since);
  assert.match(block.detail, /state 'failed' at epoch \d+: scripted: the guard could not release it/);
  await holdsFor(1500, () => nothingMoved(c, 'n2', 'n1', before.epoch, n1Orders));
  assert.equal((await c.ownership()).falseAlarms.length, falseAlarms, 'not a false alarm');
  await c.confirmDown({ node: 'n2', operator: 'test' });
  const result = await c.failoverResult();
  assert.equal(result.outcome, 'moved');
  assert.equal(result.to, 'n1');
  assert.ok(result.phases.verifyMs !== undefined);
  await c.resetNode('n2');
  await c.link.report({ node: 'n2', to: 'up', reporter: 'n1', at: Date.now(), detail: 'test: heard again' });
});

test('a switchover whose owner fails its stop: the group is not started again on top of it; blocked, then moved to the target', async () => {
  const c = plain;
  await waitFor('web running on n1, no operation', async () => {
    const g = await c.web();
    return g.owner === 'n1' && g.state === 'running' && g.operation === undefined;
  }, 20_000, 50);
  const before = await c.web();
  const n1Orders = c.node('n1').startOrders.length;
  const n2Orders = c.node('n2').startOrders.length;
  c.failStop('n1', 'scripted: will not stop');
  const since = Date.now();
  const handle = await c.client.workflow.start('switchover', { workflowId: switchoverWorkflowId(c.name, 'web'), taskQueue: clusterTaskQueue(c.name), args: [{ cluster: c.name, group: 'web', to: 'n2' }] });
  await c.blockedOn('n1', since);
  await holdsFor(1500, () => nothingMoved(c, 'n1', 'n2', before.epoch, n2Orders));
  assert.equal(c.node('n1').startOrders.length, n1Orders, 'not started again on the owner, on top of its failed stop');
  await c.confirmDown({ node: 'n1', operator: 'test' });
  const r = await within(handle.result() as Promise<SwitchoverResult>, 60_000, 'the switchover to end');
  assert.equal(r.outcome, 'moved');
  assert.equal(r.to, 'n2');
  assert.equal(r.failover?.epoch, before.epoch + 1);
  assert.equal(c.node('n1').startOrders.length, n1Orders);
  await c.resetNode('n1');
});

test('an operator failover to the owner itself whose stop fails: nothing is started there again, it fails with StopFailed and changes nothing', async () => {
  const c = plain;
  const before = await c.web();
  const owner = c.node(before.owner!);
  const orders = owner.startOrders.length;
  c.failStop(owner.name, 'scripted: will not stop');
  await c.failover({ to: owner.name });
  const err = await c.failoverResult().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof Error && err.cause instanceof ApplicationFailure && err.cause.type === ERROR_TYPES.StopFailed, String(err));
  assert.match(err.cause.message, /no other node may take it: it still holds it, in state 'failed'; nothing was started/);
  assert.equal(owner.startOrders.length, orders);
  const g = await c.web();
  assert.equal(g.owner, owner.name);
  assert.equal(g.epoch, before.epoch);
  assert.equal(g.operation, undefined);
  await c.resetNode(owner.name);
});

test('a candidate that cannot undo its failed start holds the group as failed: no other node starts it until it is confirmed down', async () => {
  const c = plain;
  // From the state the test before left (the controller's owner was reset): the group on n1, cleanly.
  await c.failover({ to: 'n1' });
  assert.equal((await c.failoverResult()).to, 'n1');
  const n1Orders = c.node('n1').startOrders.length;
  c.node('n2').services.get('second')!.behaviour = { startError: 'scripted: cannot start' };
  c.failStop('n2', 'scripted: will not stop either');
  const since = Date.now();
  await c.failover();
  const block = await c.blockedOn('n2', since);
  assert.match(block.detail, /could not undo its start: .*will not stop either/);
  await holdsFor(1500, async () => {
    const g = await c.web();
    assert.equal(g.owner, null, 'claimed for nobody: the failed candidate is no longer renewed');
    assert.ok(g.operation?.blocked);
    assert.equal(c.node('n2').groups.holding('web')?.state, 'failed');
    assert.equal(c.node('n1').groups.holding('web'), undefined);
    assert.equal(c.node('n1').startOrders.length, n1Orders, 'nothing started elsewhere');
    assert.equal(await c.failoverRunning(), true);
  });
  await c.confirmDown({ node: 'n2', operator: 'test' });
  const err = await c.failoverResult().then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof Error && err.cause instanceof ApplicationFailure && err.cause.type === ERROR_TYPES.NoNodeCouldRunGroup, String(err));
  assert.equal((await c.web()).state, 'down');
  await c.resetNode('n2');
  await c.link.report({ node: 'n1', to: 'up', reporter: 'n1', at: Date.now(), detail: 'test: up' });
  await waitFor('placed again', async () => (await c.web()).state === 'running', 20_000, 50);
});

// ------------------------------------------------------------------ fencing

test('a stop that fails, with a fence agent that succeeds: the old owner is fenced and the group moves without a confirm-down', async () => {
  const c = await TestCluster.start('fsf', { nodeExtra: 'fence: { command: [/bin/true], timeout: 5s }' });
  const before = await c.web();
  c.failStop('n1', 'scripted: db will not stop');
  await c.failover();
  const result = await c.failoverResult();
  assert.equal(result.outcome, 'moved');
  assert.equal(result.to, 'n2');
  assert.equal(result.epoch, before.epoch + 1);
  assert.ok(result.phases.fenceMs !== undefined, 'fenced');
  assert.equal(result.phases.blockedMs, undefined, 'never blocked');
  assert.equal(result.phases.leaseWaitMs, undefined, 'fenced: no lease to wait out');
  assert.deepEqual((await c.ownership()).confirmedDown, []);
  await c.close();
});

test('a stop that fails, with a fence agent that fails: still blocked (fencing retried, or a confirm-down)', async () => {
  const c = await TestCluster.start('fsx', { nodeExtra: 'fence: { command: [/bin/false], timeout: 5s }' });
  const before = await c.web();
  c.failStop('n1', 'scripted: db will not stop');
  const since = Date.now();
  await c.failover();
  const block = await c.blockedOn('n1', since);
  assert.deepEqual(block.waitingFor, ['fencing', 'confirm-down']);
  assert.match(block.detail, /fencing failed: fence agent/);
  await holdsFor(STAYS_BLOCKED_MS, () => nothingMoved(c, 'n1', 'n2', before.epoch, 0));
  await c.confirmDown({ node: 'n1', operator: 'test' });
  const result = await c.failoverResult();
  assert.equal(result.to, 'n2');
  assert.ok(result.phases.fenceMs !== undefined);
  await c.close();
});

// ------------------------------------------------------------------ an armed watchdog

test('a stop that fails, with an armed watchdog: blocked until lease + margin + the watchdog timeout, then moved without a confirm-down', async () => {
  const c = await TestCluster.start('fsw', { top: 'guard: { watchdog: { timeout: 2s } }' });
  const before = await c.web();
  c.failStop('n1', 'scripted: db will not stop');
  const since = Date.now();
  await c.failover();
  const block = await c.blockedOn('n1', since);
  assert.deepEqual(block.waitingFor, ['watchdog', 'confirm-down']);
  // The old owner's renewals stopped at blockedSince (the failover's beginOperation): its lease
  // (300 ms), the margin (50 ms) and then its watchdog's timeout (2 s) must have passed.
  const blockedSince = (await c.web()).blockedSince!;
  const safeAt = blockedSince + 300 + 50 + 2000;
  assert.equal(block.until, safeAt);
  const result = await c.failoverResult();
  assert.equal(result.outcome, 'moved');
  assert.equal(result.to, 'n2');
  assert.equal(result.epoch, before.epoch + 1);
  const firstStart = c.node('n2').startOrders[0]!;
  assert.ok(firstStart >= safeAt, `started on n2 at ${firstStart}, not before the watchdog's end at ${safeAt}`);
  assert.ok(result.phases.blockedMs! >= safeAt - block.since, `blocked for ${result.phases.blockedMs} ms, until ${safeAt - block.since} ms after the block`);
  assert.deepEqual((await c.ownership()).confirmedDown, []);
  await c.close();
});
