/**
 * The lease keeper and the group runtime, with scripted resources and a scripted controller
 * answer (the workflow tests and the lab use the real controller).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseConfig } from '../../src/config/load.js';
import { ServiceRegistry } from '../../src/agent/services.js';
import { GroupRuntime, StaleEpochError, PeerStillClaimsError } from '../../src/agent/groups.js';
import { LeaseKeeper } from '../../src/agent/lease.js';
import { ResourceMonitor } from '../../src/monitor/monitor.js';
import { silentLogger } from '../../src/log.js';
import type { Ownership } from '../../workflows/shared.js';
import { ScriptedService } from '../support/scripted-service.js';
import { waitFor } from '../support/wait.js';

const TTL = 90;
const config = parseConfig(`
cluster: t
lease: { ttl: 150ms }
nodes:
  - { name: n1, addresses: [127.0.0.1] }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: a, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
      - { type: command, name: b, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
  - name: solo
    nodes: [n1]
    resources:
      - { type: command, name: a, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`);

function setup(opts: { peerClaims?: () => { node: string; epoch: number }[] } = {}) {
  const registry = new ServiceRegistry();
  const scripted = new Map<string, ScriptedService>();
  const order: string[] = [];
  const monitors = new Map<unknown, ResourceMonitor>();
  for (const group of config.groups) {
    for (const spec of group.resources) {
      const s = new ScriptedService();
      s.running = false;
      const { start, stop } = s.driver;
      Object.assign(s.driver, {
        start: async () => { order.push(`start ${group.name}/${spec.name}`); await start(); },
        stop: async () => { order.push(`stop ${group.name}/${spec.name}`); await stop(); },
      });
      scripted.set(`${group.name}/${spec.name}`, s);
      const managed = { group, spec, driver: s.driver, check: s.check };
      registry.add(managed);
      monitors.set(managed, new ResourceMonitor({ name: spec.name, check: s.check, timing: { ...spec.check, intervalMs: 10_000 }, logger: silentLogger, onEdge: () => undefined }));
    }
  }
  const groups = new GroupRuntime({
    node: 'n1', config, services: registry, logger: silentLogger,
    monitorOf: (s) => monitors.get(s)!,
    claimWaitMs: 100,
    ...(opts.peerClaims ? { peerClaims: () => opts.peerClaims!() } : {}),
  });
  return { groups, scripted, order, close: () => groups.close() };
}

function answer(owner: string | null, epoch: number, renewable = true, group = 'web'): Ownership {
  return { cluster: 't', nodes: {}, falseAlarms: [], reverify: {}, groups: { [group]: { owner, epoch, state: 'running', since: 0, renewable } } };
}

function capture(level = 'info') {
  const lines: string[] = [];
  const logger = pino({ level }, new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } }));
  return { logger, lines };
}

describe('GroupRuntime', () => {
  it('starts in order, stops in reverse, and refuses a stale epoch', async () => {
    const { groups, order, close } = setup();
    await groups.startResource('web', 'a', 3);
    await groups.startResource('web', 'b', 3);
    assert.deepEqual(groups.holding('web'), { epoch: 3, state: 'starting' });
    await groups.watch('web', 'a', 3);
    await groups.watch('web', 'b', 3);
    assert.deepEqual(groups.holding('web'), { epoch: 3, state: 'running' }, 'running once every resource passed its check');
    await assert.rejects(groups.startResource('web', 'a', 2), StaleEpochError);
    await assert.rejects(groups.stopGroup('web', 'test', 2), StaleEpochError);
    groups.seeEpoch('web', 5);
    await assert.rejects(groups.startResource('web', 'a', 4), /stale on node n1 \(epoch 5 has been seen\)/);
    await groups.stopGroup('web', 'test');
    assert.deepEqual(order, ['start web/a', 'start web/b', 'stop web/b', 'stop web/a']);
    assert.equal(groups.holding('web'), undefined);
    await close();
  });

  it('waits for a peer that claims the group under an older epoch, and refuses to start while it does', async () => {
    let claims = [{ node: 'n2', epoch: 1 }];
    const { groups, order, close } = setup({ peerClaims: () => claims });
    setTimeout(() => { claims = []; }, 40);
    const t = performance.now();
    await groups.startResource('web', 'a', 2);
    assert.ok(performance.now() - t >= 30, 'waited for the old owner to let go');
    assert.deepEqual(order, ['start web/a']);
    await groups.stopGroup('web', 'test');
    claims = [{ node: 'n2', epoch: 2 }];
    await assert.rejects(groups.startResource('web', 'a', 3), PeerStillClaimsError);
    assert.deepEqual(order, ['start web/a', 'stop web/b', 'stop web/a'], 'nothing started while the peer still claims it');
    await close();
  });
});

describe('LeaseKeeper', () => {
  const held = async (g: GroupRuntime, epoch = 1) => {
    await g.startResource('web', 'a', epoch);
    await g.startResource('web', 'b', epoch);
  };

  it('keeps the group while the controller confirms, and stops it at once when it names another owner', async () => {
    const { groups, close } = setup();
    await held(groups);
    let truth = answer('n1', 1);
    const lease = new LeaseKeeper({ node: 'n1', ttlMs: TTL, groups, queryOwnership: async () => truth, logger: silentLogger });
    for (let i = 0; i < 5; i++) { await lease.round(); await sleep(TTL / 3); }
    assert.ok(groups.holding('web'));
    truth = answer('n2', 2);
    await lease.round();
    assert.equal(groups.holding('web'), undefined);
    assert.equal(groups.knownEpoch('web'), 2);
    await close();
  });

  it('counts for metrics: the latency of each answered question in the histogram, each unanswered one as a failure', async () => {
    const { groups, close } = setup();
    await held(groups);
    let reachable = true;
    const lease = new LeaseKeeper({
      node: 'n1', ttlMs: 1000, groups, logger: silentLogger,
      queryOwnership: async () => {
        await sleep(30);
        if (!reachable) throw new Error('unreachable');
        return answer('n1', 1);
      },
    });
    await lease.round();
    await lease.round();
    reachable = false;
    await lease.round();
    const h = lease.confirmationLatency.snapshot();
    assert.equal(h.count, 2, 'two answered questions');
    assert.ok(h.sum >= 0.055 && h.sum < 1, `about 2 x 30 ms, in seconds: ${h.sum}`);
    assert.equal(h.buckets.find(([le]) => le === 0.025)![1], 0, 'none answered within 25 ms');
    assert.equal(h.buckets.find(([le]) => le === 0.5)![1], 2, 'both within 500 ms');
    assert.equal(lease.counts.confirmationFailures, 1);
    lease.stop();
    await close();
  });

  it('without confirmation for ttl, stops the group when a peer is silent', async () => {
    const { groups, close } = setup();
    await held(groups);
    const lease = new LeaseKeeper({
      node: 'n1', ttlMs: TTL, groups, logger: silentLogger, heartbeatDeadtimeMs: 60,
      queryOwnership: async () => { throw new Error('unreachable'); },
      peers: () => [{ node: 'n2', alive: false, lastHeardAgoMs: 700, claims: {} }],
    });
    lease.granted('web', 1);
    await lease.round();
    assert.ok(groups.holding('web'), 'still within ttl');
    await sleep(TTL + 10);
    await lease.round();
    assert.equal(groups.holding('web'), undefined);
    await close();
  });

  it('fail-safe: Temporal unreachable but every peer heard and none claims the group → keeps serving, loudly', async () => {
    const { groups, close } = setup();
    await held(groups);
    const { logger, lines } = capture();
    let claims: Record<string, number> = {};
    const lease = new LeaseKeeper({
      node: 'n1', ttlMs: TTL, groups, logger, heartbeatDeadtimeMs: 60,
      queryOwnership: async () => { throw new Error('unreachable'); },
      // Heard 5 ms ago, at every question: a live peer.
      peers: () => [{ node: 'n2', alive: true, lastHeardAgoMs: 5, claims }],
    });
    lease.granted('web', 1);
    await sleep(TTL + 10);
    await lease.round();
    await lease.round();
    assert.ok(groups.holding('web'), 'kept');
    assert.equal(lines.filter((l) => l.includes('FAIL-SAFE')).length, 1, 'said once (rate-limited), not at every round');
    claims = { web: 2 };
    await lease.round();
    assert.equal(groups.holding('web'), undefined, 'a peer claims it: stopped');
    await close();
  });

  it('fail-safe after a freeze: a peer still marked alive but last heard longer than the deadtime ago does not count → the group is stopped, no FAIL-SAFE', async () => {
    const { groups, close } = setup();
    await held(groups);
    const { logger, lines } = capture();
    // n2 was last heard before this process froze; the heartbeat has not judged it since, so it is still 'alive'.
    const heardAt = performance.now();
    const lease = new LeaseKeeper({
      node: 'n1', ttlMs: TTL, groups, logger, heartbeatDeadtimeMs: 60,
      queryOwnership: async () => { throw new Error('unreachable'); },
      peers: () => [{ node: 'n2', alive: true, lastHeardAgoMs: performance.now() - heardAt, claims: {} }],
    });
    lease.granted('web', 1);
    await sleep(TTL + 10);
    await lease.round();
    assert.deepEqual(lines.filter((l) => l.includes('FAIL-SAFE')), [], 'no fail-safe on peer state older than the deadtime');
    assert.equal(groups.holding('web'), undefined, 'stopped: the lease ran out and no peer was heard within the deadtime');
    await close();
  });

  it('fail-safe after a stall of this process longer than the deadtime: a packet read just before the keeper ran again may have waited through it → stopped', async () => {
    const { groups, close } = setup();
    await held(groups);
    const { logger, lines } = capture();
    // A "packet reader": n2 is heard every 5 ms while this process runs.
    let heardAt = performance.now();
    const reader = setInterval(() => { heardAt = performance.now(); }, 5);
    const lease = new LeaseKeeper({
      node: 'n1', ttlMs: TTL, groups, logger, heartbeatDeadtimeMs: 400,
      queryOwnership: async () => { throw new Error('unreachable'); },
      peers: () => [{ node: 'n2', alive: true, lastHeardAgoMs: performance.now() - heardAt, claims: {} }],
    });
    lease.granted('web', 1);
    lease.start();
    await sleep(30);
    // The process does not run for 600 ms: longer than the deadtime (the peers may have suspected it) and the ttl.
    const until = performance.now() + 600;
    while (performance.now() < until) { /* stalled */ }
    // The first thing done after the stall: a packet read from the socket buffer, where it waited through the stall.
    heardAt = performance.now();
    await waitFor('the keeper judged after the stall', async () => (groups.holding('web') === undefined || lines.some((l) => l.includes('FAIL-SAFE')) ? true : undefined), 5000, 5);
    clearInterval(reader);
    lease.stop();
    assert.deepEqual(lines.filter((l) => l.includes('FAIL-SAFE')), [], 'no fail-safe on a packet that may have waited through the stall');
    assert.equal(groups.holding('web'), undefined, 'stopped: the lease ran out during the stall');
    await close();
  });

  it('fail-safe with the keeper running: a stall shorter than the deadtime, the peer heard again at once → still serving', async () => {
    const { groups, close } = setup();
    await held(groups);
    const { logger, lines } = capture('debug');
    let heardAt = performance.now();
    const reader = setInterval(() => { heardAt = performance.now(); }, 5);
    const lease = new LeaseKeeper({
      node: 'n1', ttlMs: TTL, groups, logger, heartbeatDeadtimeMs: 4000,
      queryOwnership: async () => { throw new Error('unreachable'); },
      peers: () => [{ node: 'n2', alive: true, lastHeardAgoMs: performance.now() - heardAt, claims: {} }],
    });
    lease.granted('web', 1);
    lease.start();
    await waitFor('the fail-safe', () => lines.some((l) => l.includes('FAIL-SAFE')), 5000, 5);
    // 2100 ms: more than half the deadtime (noticed), less than the deadtime minus the reader's
    // interval, with room for stalls of a loaded machine's own on top.
    const until = performance.now() + 2100;
    while (performance.now() < until) { /* stalled */ }
    // Heard again at once, before any timer runs: after a stall, the keeper's overdue round and
    // the reader's overdue interval are both due, and which runs first is up to the timer list
    // (the keeper's first made this test fail in a CI preview, seeing n2 last heard 2100 ms ago).
    heardAt = performance.now();
    await sleep(3 * TTL);
    clearInterval(reader);
    lease.stop();
    // At least this one (a loaded CI machine adds stalls of its own).
    assert.ok(lines.filter((l) => l.includes('did not run for')).length >= 1, 'the stall was noticed');
    assert.deepEqual(lines.filter((l) => l.includes('lost the lease')), []);
    assert.ok(groups.holding('web'), 'still serving');
    await close();
  });

  it('a one-node group keeps serving without Temporal (nobody else may run it)', async () => {
    const { groups, close } = setup();
    await groups.startResource('solo', 'a', 1);
    const lease = new LeaseKeeper({ node: 'n1', ttlMs: TTL, groups, logger: silentLogger, queryOwnership: async () => { throw new Error('unreachable'); } });
    lease.granted('solo', 1);
    await sleep(TTL + 10);
    await lease.round();
    assert.ok(groups.holding('solo'));
    await close();
  });

  it('not renewed while the controller moves the group: stopped after ttl even with every peer heard', async () => {
    const { groups, close } = setup();
    await held(groups);
    const lease = new LeaseKeeper({
      node: 'n1', ttlMs: TTL, groups, logger: silentLogger, heartbeatDeadtimeMs: 60,
      queryOwnership: async () => answer('n1', 1, false),
      peers: () => [{ node: 'n2', alive: true, lastHeardAgoMs: 5, claims: {} }],
    });
    lease.granted('web', 1);
    await lease.round();
    assert.ok(groups.holding('web'));
    await sleep(TTL + 10);
    await lease.round();
    assert.equal(groups.holding('web'), undefined);
    await close();
  });

  it('a peer claiming the group under a newer epoch ends ownership at once', async () => {
    const { groups, close } = setup();
    await held(groups, 4);
    const lease = new LeaseKeeper({ node: 'n1', ttlMs: TTL, groups, logger: silentLogger, queryOwnership: async () => answer('n1', 4) });
    lease.peerClaim('n2', 'web', 3);
    assert.ok(groups.holding('web'), 'an older claim changes nothing');
    lease.peerClaim('n2', 'web', 5);
    await sleep(20);
    assert.equal(groups.holding('web'), undefined);
    await close();
  });
});
