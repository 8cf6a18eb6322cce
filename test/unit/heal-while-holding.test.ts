/**
 * Heals run only while the node holds the group (issue 8, section 3): under the group's
 * serialisation, while the group runs here, under an unexpired lease the guard has not released.
 * Both heals are covered: the local one (LocalHealer, when Temporal does not take the failure
 * report) and the workflow's restartService activity. The GroupRuntime, the LeaseKeeper, the
 * LocalHealer and the activity are the real ones; only the service (ScriptedService), the
 * controller's answers and the guard's health are scripted.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import { parseConfig } from '../../src/config/load.js';
import { ServiceRegistry, type ManagedService } from '../../src/agent/services.js';
import { GroupRuntime } from '../../src/agent/groups.js';
import { LeaseKeeper, type LeaseGuard } from '../../src/agent/lease.js';
import { LocalHealer } from '../../src/agent/local-heal.js';
import { ResourceMonitor } from '../../src/monitor/monitor.js';
import { silentLogger } from '../../src/log.js';
import { createServiceActivities } from '../../activities/service.js';
import { ERROR_TYPES } from '../../workflows/shared.js';
import type { GuardGroupState } from '../../src/guard/protocol.js';
import { ScriptedService } from '../support/scripted-service.js';

/** The second restart of a heal waits this long (the first is immediate). */
const BACKOFF_MS = 400;

const config = parseConfig(`
cluster: t
nodes:
  - { name: n1, addresses: [127.0.0.1] }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - type: command
        name: svc
        start: [/bin/true]
        stop: [/bin/true]
        monitor: [/bin/true]
        check: { type: status, interval: 50ms, timeout: 50ms, rise: 1, fall: 1 }
        healing: { maxRestarts: 5, window: 60s, backoff: { initial: ${BACKOFF_MS}ms, max: 5s, multiplier: 2 }, startTimeout: 1s }
`);

type MayServe = (group: string, epoch: number) => { ok: true } | { ok: false; why: string };

/**
 * Node n1 with the group's one resource, scripted; every driver call is recorded in `calls`.
 * `mayServe` is what the agent wires to LeaseKeeper.mayServe.
 */
function node(t: TestContext, mayServe?: MayServe) {
  const registry = new ServiceRegistry();
  const svc = new ScriptedService();
  svc.running = false;
  const calls: string[] = [];
  /** While set, the driver's start (or stop) waits for this promise before doing anything. */
  const gates: { start?: Promise<void>; stop?: Promise<void> } = {};
  const { start, stop } = svc.driver;
  Object.assign(svc.driver, {
    start: async () => {
      calls.push('start');
      if (gates.start) await gates.start;
      await start();
    },
    stop: async () => {
      calls.push('stop');
      if (gates.stop) await gates.stop;
      await stop();
    },
  });
  const group = config.groups[0]!;
  const managed: ManagedService = { group, spec: group.resources[0]!, driver: svc.driver, check: svc.check };
  registry.add(managed);
  // The monitor is started with the resource; it watches rarely here (the tests drive heals themselves).
  const monitor = new ResourceMonitor({ name: 'svc', check: svc.check, timing: { ...managed.spec.check, intervalMs: 60_000 }, logger: silentLogger, onEdge: () => undefined });
  const groups = new GroupRuntime({
    node: 'n1', config, services: registry, logger: silentLogger,
    monitorOf: () => monitor,
    claimWaitMs: 100,
    ...(mayServe ? { mayServe } : {}),
  });
  const healer = new LocalHealer(managed, silentLogger, (fn) => groups.whileHolding('web', fn));
  const activities = createServiceActivities({ node: 'n1', services: registry, logger: silentLogger, recoveryPollMs: 20, whileHolding: (g, fn) => groups.whileHolding(g, fn) });
  /** The group started and running here at `epoch` (what a failover does). */
  const run = async (epoch = 1) => {
    await groups.startResource('web', 'svc', epoch);
    await groups.watch('web', 'svc', epoch);
    assert.deepEqual(groups.holding('web'), { epoch, state: 'running' });
    calls.length = 0;
  };
  // Also when an assertion fails: a started monitor's timer would keep the test process alive.
  t.after(() => groups.close());
  return { groups, svc, calls, gates, healer, activities, run };
}

/** A lease keeper as the agent builds it (no timers started: the tests decide when time passes). */
function leaseKeeper(groups: GroupRuntime, ttlMs: number, guard?: LeaseGuard): LeaseKeeper {
  return new LeaseKeeper({ node: 'n1', ttlMs, groups, logger: silentLogger, queryOwnership: async () => { throw new Error('unreachable'); }, ...(guard ? { guard } : {}) });
}

/** A running guard that reports the group in `status` at epoch 1. */
function guardSaying(status: GuardGroupState['status']): LeaseGuard {
  return {
    hold: () => undefined,
    drop: () => undefined,
    connect: async () => undefined,
    health: () => ({
      ok: true,
      state: { pid: 1, nowCs: 0, bootId: 'b', watchdog: 'off', groups: new Map([['web', { group: 'web', epoch: 1, deadlineCs: 0, status, ...(status === 'failed' ? { detail: 'scripted' } : {}) }]]) },
    }),
  };
}

const abort = () => new AbortController().signal;

/** `err` is the activity's typed refusal: not this node's group, not retryable, and says why. */
function isNotInGroup(why: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof ApplicationFailure, `an ApplicationFailure, not ${String(err)}`);
    assert.equal(err.type, ERROR_TYPES.NodeNotInGroup);
    assert.equal(err.nonRetryable, true);
    assert.match(err.message, /node n1 does not hold group 'web'/);
    assert.match(err.message, why);
    return true;
  };
}

describe('local heal (LocalHealer) only while the node holds the group', () => {
  it('a local heal in backoff when the group is stopped does not start the service: it ends as stopped', async (t) => {
    const { groups, svc, calls, healer, run } = node(t);
    await run();
    // A first crash: healed at once (the first restart of a heal has no backoff).
    svc.crash();
    assert.equal(await healer.heal('scripted crash', abort()), 'healthy');
    assert.deepEqual(calls, ['stop', 'start']);
    calls.length = 0;
    // A second crash within the window: the next restart waits BACKOFF_MS first.
    svc.crash();
    const began = performance.now();
    const heal = healer.heal('scripted crash again', abort());
    let outcome: string | undefined;
    void heal.then((o) => { outcome = o; });
    await sleep(BACKOFF_MS / 4);
    assert.equal(outcome, undefined, 'the heal is waiting out its backoff');
    assert.deepEqual(calls, [], 'nothing restarted yet');
    // Meanwhile the group is stopped here (a failover moved it, or the lease was lost).
    await groups.stopGroup('web', 'test: moved to n2', 1);
    assert.equal(groups.holding('web'), undefined);
    assert.deepEqual(calls, ['stop']);
    assert.equal(await heal, 'stopped');
    assert.ok(performance.now() - began >= BACKOFF_MS - 20, 'the heal went on after its backoff, and was refused then');
    assert.deepEqual(calls, ['stop'], 'the heal neither stopped nor started the service after the group was let go');
    assert.equal(svc.running, false);
  });

  it('a group whose lease has expired is not healed (LeaseKeeper.mayServe), though one under a valid lease is', async (t) => {
    const ttlMs = 1000;
    const n = node(t, (g, e) => lease.mayServe(g, e));
    const lease = leaseKeeper(n.groups, ttlMs);
    lease.granted('web', 1);
    await n.run();
    // Within the lease: healed (the same healer, so the refusal below is the lease's doing).
    n.svc.crash();
    assert.equal(await n.healer.heal('scripted crash', abort()), 'healthy');
    assert.deepEqual(n.calls, ['stop', 'start']);
    n.calls.length = 0;
    // The lease runs out (the agent was frozen, or the controller could not be reached); the
    // keeper has not acted yet, so the group is still held here, running.
    await sleep(ttlMs + 50);
    assert.deepEqual(lease.mayServe('web', 1), { ok: false, why: 'its lease has expired' });
    assert.equal(n.groups.holding('web')?.state, 'running');
    n.svc.crash();
    assert.equal(await n.healer.heal('scripted crash after the lease', abort()), 'stopped');
    assert.deepEqual(n.calls, [], 'not restarted under an expired lease');
    assert.equal(n.svc.running, false);
  });

  for (const status of ['released', 'failed'] as const) {
    it(`a group the lease guard ${status === 'released' ? 'released' : 'failed to release'} at its deadline is not healed, its lease unexpired`, async (t) => {
      const n = node(t, (g, e) => lease.mayServe(g, e));
      const lease = leaseKeeper(n.groups, 60_000, guardSaying(status));
      lease.granted('web', 1);
      await n.run();
      assert.deepEqual(lease.mayServe('web', 1), { ok: false, why: `the lease guard ${status === 'released' ? 'released' : 'failed to release'} it` });
      n.svc.crash();
      assert.equal(await n.healer.heal('scripted crash', abort()), 'stopped');
      assert.deepEqual(n.calls, [], 'not restarted: the guard killed it, the agent must not bring it back');
    });
  }

  it('a group held as failed (its stop failed) is not healed', async (t) => {
    const { groups, svc, calls, healer, run } = node(t);
    await run();
    svc.behaviour = { stopError: 'scripted: will not stop' };
    await assert.rejects(groups.stopGroup('web', 'test: moved', 1), /failed/);
    assert.equal(groups.holding('web')?.state, 'failed');
    calls.length = 0;
    svc.crash();
    assert.equal(await healer.heal('scripted crash', abort()), 'stopped');
    assert.deepEqual(calls, []);
  });
});

describe('restartService (the workflow\'s heal) only while the node holds the group', () => {
  it('a restart ordered to a node that never held the group, or no longer holds it, is refused (NodeNotInGroup), the service untouched', async (t) => {
    const { groups, svc, calls, activities, run } = node(t);
    await assert.rejects(activities.restartService({ group: 'web', resource: 'svc' }), isNotInGroup(/it is not held here/));
    assert.deepEqual(calls, []);
    // Held, then moved away (stopped here under the failover's epoch).
    await run();
    assert.deepEqual(await activities.restartService({ group: 'web', resource: 'svc' }), { restarted: true, pid: 4242 }, 'held: restarted');
    assert.deepEqual(calls, ['stop', 'start']);
    await groups.stopGroup('web', 'test: moved to n2', 1);
    calls.length = 0;
    await assert.rejects(activities.restartService({ group: 'web', resource: 'svc' }), isNotInGroup(/it is not held here.*moved, stopped, or its lease ran out/));
    assert.deepEqual(calls, [], 'the driver was not touched');
    assert.equal(svc.running, false);
  });

  it('a restart ordered to a node whose lease has expired is refused (NodeNotInGroup), the service untouched', async (t) => {
    const ttlMs = 1000;
    const n = node(t, (g, e) => lease.mayServe(g, e));
    const lease = leaseKeeper(n.groups, ttlMs);
    lease.granted('web', 1);
    await n.run();
    assert.equal((await n.activities.restartService({ group: 'web', resource: 'svc' })).restarted, true, 'within the lease: restarted');
    n.calls.length = 0;
    await sleep(ttlMs + 50);
    assert.equal(n.groups.holding('web')?.state, 'running', 'still held (the keeper has not acted yet)');
    await assert.rejects(n.activities.restartService({ group: 'web', resource: 'svc' }), isNotInGroup(/its lease has expired/));
    assert.deepEqual(n.calls, []);
  });

  it('a restart ordered to a node whose guard released the group is refused, its lease unexpired', async (t) => {
    const n = node(t, (g, e) => lease.mayServe(g, e));
    const lease = leaseKeeper(n.groups, 60_000, guardSaying('released'));
    lease.granted('web', 1);
    await n.run();
    await assert.rejects(n.activities.restartService({ group: 'web', resource: 'svc' }), isNotInGroup(/the lease guard released it/));
    assert.deepEqual(n.calls, []);
  });

  it('a restart queued behind a stopGroup waits for it, then is refused: nothing is started on a node that let go', async (t) => {
    const { groups, svc, calls, gates, activities, run } = node(t);
    await run();
    let openStop!: () => void;
    gates.stop = new Promise((resolve) => { openStop = resolve; });
    const stopping = groups.stopGroup('web', 'test: moved to n2', 1);
    await sleep(20);
    assert.deepEqual(calls, ['stop'], 'the stop is under way (and held up)');
    let restartSettled = false;
    const restart = activities.restartService({ group: 'web', resource: 'svc' }).finally(() => { restartSettled = true; });
    restart.catch(() => undefined);
    await sleep(100);
    assert.equal(restartSettled, false, 'the restart waits in the group\'s queue while the stop runs');
    assert.deepEqual(calls, ['stop'], 'and touches nothing meanwhile');
    openStop();
    await stopping;
    await assert.rejects(restart, isNotInGroup(/it is not held here/));
    assert.deepEqual(calls, ['stop'], 'refused once the group was let go: not started again');
    assert.equal(svc.running, false);
  });

  it('a stopGroup queued behind a restart waits for it: the stop comes last, and the service ends stopped', async (t) => {
    const { groups, svc, calls, gates, activities, run } = node(t);
    await run();
    let openStart!: () => void;
    gates.start = new Promise((resolve) => { openStart = resolve; });
    const restart = activities.restartService({ group: 'web', resource: 'svc' });
    await sleep(20);
    assert.deepEqual(calls, ['stop', 'start'], 'the restart is under way (its start held up)');
    let stopped = false;
    const stopping = groups.stopGroup('web', 'test: moved to n2', 1).then(() => { stopped = true; });
    await sleep(100);
    assert.equal(stopped, false);
    assert.deepEqual(calls, ['stop', 'start'], 'the stop waits for the restart: they do not interleave');
    openStart();
    assert.equal((await restart).restarted, true);
    await stopping;
    assert.deepEqual(calls, ['stop', 'start', 'stop']);
    assert.equal(svc.running, false, 'stopped last: nothing runs on a node that let go of the group');
    assert.equal(groups.holding('web'), undefined);
  });
});
