/**
 * The lease keeper with its guard (a recording stand-in for GuardLink; the real guard process is
 * tested in guard.test.ts and the lab), and the failed-stop rule in the group runtime: what is
 * handed to the guard and when, a guard that is not running, a group the guard released or
 * could not release, a stop that fails.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { ServiceRegistry } from '../../src/agent/services.js';
import { GroupRuntime, NotHoldingError, StopFailedError } from '../../src/agent/groups.js';
import { LeaseKeeper, type LeaseGuard } from '../../src/agent/lease.js';
import { bootClockCs, GuardUnavailableError, type GuardHealth } from '../../src/guard/guard-link.js';
import type { GuardAction, GuardGroupState } from '../../src/guard/protocol.js';
import { ResourceMonitor } from '../../src/monitor/monitor.js';
import { silentLogger } from '../../src/log.js';
import type { Ownership } from '../../workflows/shared.js';
import { ScriptedService } from '../support/scripted-service.js';
import { waitFor } from '../support/wait.js';

const sharedConfig = parseConfig(`
cluster: t
lease: { ttl: 300ms }
nodes:
  - { name: n1, addresses: [127.0.0.1] }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: vip, name: ip, address: 10.213.9.200/24, interface: eth0 }
      - { type: command, name: app, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`);

/** Records what the agent hands the guard; its health and what it "released" are the test's to set. */
class RecordingGuard implements LeaseGuard {
  readonly holds: { group: string; epoch: number; deadlineCs: number; actions: GuardAction[] }[] = [];
  readonly drops: { group: string; epoch: number }[] = [];
  healthy = true;
  groups = new Map<string, GuardGroupState>();
  connects = 0;
  constructor(private readonly order: string[]) {}
  hold(group: string, epoch: number, deadlineCs: number, actions: GuardAction[]): void {
    if (!this.healthy) throw new GuardUnavailableError('test: not running');
    this.order.push(`guard hold ${group}@${epoch}`);
    this.holds.push({ group, epoch, deadlineCs, actions });
  }
  drop(group: string, epoch: number): void {
    this.order.push(`guard drop ${group}@${epoch}`);
    this.drops.push({ group, epoch });
  }
  health(): GuardHealth {
    return this.healthy
      ? { ok: true, state: { pid: 1, nowCs: bootClockCs(), bootId: 'b', watchdog: 'off', groups: this.groups } }
      : { ok: false, why: 'test: its process 1 is not running' };
  }
  async connect(): Promise<void> {
    this.connects++;
  }
}

const soloConfig = parseConfig(`
cluster: t
lease: { ttl: 300ms }
nodes:
  - { name: n1, addresses: [127.0.0.1] }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    nodes: [n1]
    resources:
      - { type: vip, name: ip, address: 10.213.9.200/24, interface: eth0 }
      - { type: command, name: app, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`);

function setup(config = sharedConfig) {
  const order: string[] = [];
  const guard = new RecordingGuard(order);
  const registry = new ServiceRegistry();
  const scripted = new Map<string, ScriptedService>();
  const monitors = new Map<unknown, ResourceMonitor>();
  for (const group of config.groups) {
    for (const spec of group.resources) {
      const s = new ScriptedService();
      s.running = false;
      const { start, stop } = s.driver;
      Object.assign(s.driver, {
        start: async () => { order.push(`start ${spec.name}`); await start(); },
        stop: async () => { order.push(`stop ${spec.name}`); await stop(); },
        guardActions: (): GuardAction[] => (spec.type === 'vip' ? [{ kind: 'vip', device: 'eth0', address: '10.213.9.200/24' }] : [{ kind: 'pgid', pgid: 4242 }]),
      });
      scripted.set(spec.name, s);
      const managed = { group, spec, driver: s.driver, check: s.check };
      registry.add(managed);
      monitors.set(managed, new ResourceMonitor({ name: spec.name, check: s.check, timing: { ...spec.check, intervalMs: 10_000 }, logger: silentLogger, onEdge: () => undefined }));
    }
  }
  const events = { lost: [] as string[], stopFailed: [] as string[] };
  let answer: Ownership | Error = new Error('no controller');
  const lease: LeaseKeeper = new LeaseKeeper({
    node: 'n1', ttlMs: 300, logger: silentLogger, guard,
    groups: undefined as unknown as GroupRuntime,
    queryOwnership: async () => {
      if (answer instanceof Error) throw answer;
      return answer;
    },
    onLost: (g, e, why) => events.lost.push(`${g}@${e}: ${why}`),
    onStopFailed: (g, e, why) => events.stopFailed.push(`${g}@${e}: ${why}`),
  });
  const groups = new GroupRuntime({
    node: 'n1', config, services: registry, logger: silentLogger,
    monitorOf: (s) => monitors.get(s)!,
    claimWaitMs: 100,
    onHold: (g, e) => lease.granted(g, e),
    onLetGo: (g, e) => lease.letGo(g, e),
    mayServe: (g, e) => lease.mayServe(g, e),
  });
  (lease as unknown as { opts: { groups: GroupRuntime } }).opts.groups = groups;
  const renewable = (epoch: number): void => {
    answer = { cluster: 't', nodes: {}, falseAlarms: [], reverify: {}, groups: { web: { owner: 'n1', epoch, state: 'running', since: 0, renewable: true } } };
  };
  const start = async (epoch: number) => {
    await groups.startResource('web', 'ip', epoch);
    await groups.startResource('web', 'app', epoch);
    await groups.watch('web', 'ip', epoch);
    await groups.watch('web', 'app', epoch);
  };
  return { order, guard, groups, lease, scripted, events, renewable, start, close: async () => { lease.stop(); await groups.close(); } };
}

describe('LeaseKeeper with its guard', () => {
  it('hands the guard the hold before anything of the group starts; renewals move the deadline; a clean stop drops it', async () => {
    const { order, guard, groups, lease, renewable, start, close } = setup();
    renewable(3);
    const before = bootClockCs();
    await start(3);
    assert.deepEqual(order.slice(0, 3), ['guard hold web@3', 'start ip', 'start app'], 'the guard knows the group before its first resource starts');
    const first = guard.holds[0]!;
    assert.ok(first.deadlineCs >= before + 30 && first.deadlineCs <= bootClockCs() + 30, `deadline = grant + ttl on the boot clock (${first.deadlineCs})`);
    await new Promise((r) => setTimeout(r, 30));
    await lease.round();
    const last = guard.holds.at(-1)!;
    assert.ok(last.deadlineCs > first.deadlineCs, 'a confirmed renewal moves the deadline');
    assert.deepEqual(last.actions, [{ kind: 'pgid', pgid: 4242 }, { kind: 'vip', device: 'eth0', address: '10.213.9.200/24' }], 'release actions in reverse resource order');
    await groups.stopGroup('web', 'test', 3);
    assert.deepEqual(guard.drops, [{ group: 'web', epoch: 3 }]);
    await close();
  });

  it('a group only this node may run is not given to the guard: a stall past its deadline or a guard that is down stops nothing', async () => {
    const { guard, groups, lease, renewable, start, close } = setup(soloConfig);
    try {
      renewable(3);
      await start(3);
      assert.deepEqual(guard.holds, [], 'no deadline for a group no other node can take over');
      guard.healthy = false;
      lease.start();
      await new Promise((r) => setTimeout(r, 400));
      assert.deepEqual(groups.holding('web'), { epoch: 3, state: 'running' }, 'still served with the guard down');
      assert.deepEqual(lease.mayServe('web', 3), { ok: true });
    } finally {
      await close();
    }
  });

  it('a guard that is not running: the node lets go of every group, refuses starts, and starts the guard again', async () => {
    const { order, guard, groups, lease, renewable, start, close } = setup();
    renewable(3);
    await start(3);
    lease.start();
    guard.healthy = false;
    await waitFor('the group is stopped', () => groups.holding('web') === undefined, 5000);
    assert.ok(order.includes('stop ip') && order.includes('stop app'));
    await assert.rejects(groups.startResource('web', 'ip', 4), GuardUnavailableError);
    assert.equal(groups.holding('web'), undefined, 'a refused start holds nothing');
    await waitFor('the guard is started again', () => guard.connects > 0, 5000);
    guard.healthy = true;
    await waitFor('starts are allowed again', async () => {
      try {
        await groups.startResource('web', 'ip', 5);
        return true;
      } catch {
        return undefined;
      }
    }, 5000, 100);
    await close();
  });

  it('the guard released the group at its deadline: the agent stops what is left, reports it lost, heals nothing', async () => {
    const { guard, groups, lease, renewable, start, events, scripted, close } = setup();
    renewable(3);
    await start(3);
    lease.start();
    guard.groups.set('web', { group: 'web', epoch: 3, deadlineCs: 0, status: 'released' });
    await waitFor('let go', () => groups.holding('web') === undefined, 5000);
    assert.equal(events.lost.length, 1);
    assert.match(events.lost[0]!, /web@3: the lease guard released it/);
    const starts = scripted.get('app')!.starts;
    await assert.rejects(groups.whileHolding('web', async () => undefined), NotHoldingError);
    assert.equal(scripted.get('app')!.starts, starts);
    await close();
  });

  it('the guard could not release the group: it stays held as failed, the controller is not told it was stopped', async () => {
    const { guard, groups, lease, renewable, start, events, close } = setup();
    renewable(3);
    await start(3);
    lease.start();
    guard.groups.set('web', { group: 'web', epoch: 3, deadlineCs: 0, status: 'failed', detail: 'VIP 10.213.9.200/24 could not be removed from eth0' });
    await waitFor('failed', () => groups.holding('web')?.state === 'failed', 5000);
    assert.match(groups.holding('web')!.failure!, /could not be removed/);
    assert.equal(events.lost.length, 0, 'no groupLost: that would tell the controller it stopped');
    assert.equal(events.stopFailed.length, 1);
    await assert.rejects(groups.whileHolding('web', async () => undefined), NotHoldingError);
    await close();
  });

  it('a stop that fails is not a stop: the group stays held as failed, the guard keeps its deadline, nothing is reported lost', async () => {
    const { guard, groups, lease, renewable, start, events, scripted, close } = setup();
    renewable(3);
    await start(3);
    scripted.get('app')!.behaviour.stopError = 'stop script exited 1';
    await assert.rejects(groups.stopGroup('web', 'test', 3), StopFailedError);
    assert.equal(groups.holding('web')?.state, 'failed');
    assert.deepEqual(guard.drops, [], 'the guard still holds the deadline: it releases bluntly when it passes');
    assert.equal(groups.view().groups.web?.state, 'failed', 'the heartbeats say so');
    // Its lease is no longer renewed: a round with the controller's answer hands the guard nothing new.
    const holds = guard.holds.length;
    await lease.round();
    assert.equal(guard.holds.length, holds);
    // A newer epoch at the controller does not turn a failed group into a lost one either.
    renewable(4);
    await lease.round();
    assert.deepEqual(events.lost, []);
    await close();
  });

  it('a failed group is not stopped again on every heartbeat of a peer that claims it', async () => {
    const { groups, lease, renewable, start, events, scripted, close } = setup();
    renewable(3);
    await start(3);
    scripted.get('app')!.behaviour.stopError = 'stop script exited 1';
    lease.peerClaim('n2', 'web', 4);
    await waitFor('failed', () => groups.holding('web')?.state === 'failed', 5000);
    const stops = scripted.get('app')!.stops;
    for (let i = 0; i < 10; i++) lease.peerClaim('n2', 'web', 4);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(scripted.get('app')!.stops, stops, 'no stop per heartbeat');
    assert.equal(events.stopFailed.length, 1, 'one report to the controller, not one per heartbeat');
    await close();
  });
});
