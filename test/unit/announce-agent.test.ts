/**
 * The node's side of issue 9 item 12 (losing Temporal's data): the highest epoch seen is kept on
 * disk (src/agent/epoch-store.ts), the node announces again when the controller is behind it
 * (src/agent/announcer.ts), its lease keeper neither renews nor drops a group on the word of a
 * controller behind it (src/agent/lease.ts), and a start under an epoch older than a peer's claim
 * is refused (src/agent/groups.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../src/config/load.js';
import { ServiceRegistry } from '../../src/agent/services.js';
import { GroupRuntime, StaleEpochError } from '../../src/agent/groups.js';
import { controllerBehind, LeaseKeeper } from '../../src/agent/lease.js';
import { EpochStore, EpochStoreError, epochFile, parseEpochFile } from '../../src/agent/epoch-store.js';
import { announcementDue, Announcer } from '../../src/agent/announcer.js';
import { ResourceMonitor } from '../../src/monitor/monitor.js';
import { silentLogger } from '../../src/log.js';
import type { NodeAnnounce, Ownership } from '../../workflows/shared.js';
import { ScriptedService } from '../support/scripted-service.js';

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
`);

function runtime(opts: { seen?: Record<string, number>; store?: EpochStore; peerClaims?: () => { node: string; epoch: number }[] } = {}) {
  const registry = new ServiceRegistry();
  const monitors = new Map<unknown, ResourceMonitor>();
  for (const group of config.groups) {
    for (const spec of group.resources) {
      const s = new ScriptedService();
      s.running = false;
      const managed = { group, spec, driver: s.driver, check: s.check };
      registry.add(managed);
      monitors.set(managed, new ResourceMonitor({ name: spec.name, check: s.check, timing: { ...spec.check, intervalMs: 10_000 }, logger: silentLogger, onEdge: () => undefined }));
    }
  }
  return new GroupRuntime({
    node: 'n1', config, services: registry, logger: silentLogger, monitorOf: (s) => monitors.get(s)!, claimWaitMs: 100,
    ...(opts.seen ? { seenEpochs: opts.seen } : {}),
    ...(opts.store ? { onEpochSeen: (g: string, e: number) => opts.store!.record(g, e) } : {}),
    ...(opts.peerClaims ? { peerClaims: opts.peerClaims } : {}),
  });
}

const ownership = (web: { owner: string | null; epoch: number }, leases?: Ownership['leases']): Ownership => ({
  cluster: 't', nodes: {}, falseAlarms: [], reverify: {}, groups: { web: { ...web, state: web.owner ? 'running' : 'unplaced', since: 0, renewable: true } }, ...(leases ? { leases } : {}),
});

describe('EpochStore', () => {
  it('keeps the highest epoch seen of each group across restarts of the agent, on disk before a start runs under it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'haoscar-epochs-'));
    try {
      const store = await EpochStore.open(dir, 'n1');
      assert.deepEqual(store.all(), {});
      const g = runtime({ store });
      await g.startResource('web', 'a', 7);
      assert.deepEqual(JSON.parse(await readFile(epochFile(dir, 'n1'), 'utf8')), { seen: { web: 7 } }, 'on disk once the start has begun');
      g.seeEpoch('web', 5);
      g.seeEpoch('web', 9);
      await store.record('web', 9);
      await g.close();
      // The agent restarts: it remembers 9, and refuses an order under an older epoch.
      const again = await EpochStore.open(dir, 'n1');
      assert.deepEqual(again.all(), { web: 9 });
      const g2 = runtime({ seen: again.all(), store: again });
      assert.equal(g2.knownEpoch('web'), 9);
      assert.deepEqual(g2.seenEpochs(), { web: 9 });
      await assert.rejects(g2.startResource('web', 'a', 1), StaleEpochError);
      await g2.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a damaged file is an error naming it, and is not overwritten', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'haoscar-epochs-'));
    try {
      await mkdir(join(dir, 'epochs'));
      await writeFile(epochFile(dir, 'n1'), '{"seen": {"web": -1}}');
      await assert.rejects(EpochStore.open(dir, 'n1'), (err: Error) => err instanceof EpochStoreError && err.message.includes(epochFile(dir, 'n1')) && /damaged \(seen\.web:/.test(err.message));
      assert.equal(await readFile(epochFile(dir, 'n1'), 'utf8'), '{"seen": {"web": -1}}');
      assert.deepEqual(parseEpochFile('nope'), { ok: false, why: 'not JSON' });
      assert.deepEqual(parseEpochFile('{"seen":{"web":3}}'), { ok: true, seen: { web: 3 } });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('announcing to a controller that is behind', () => {
  const lease = { ttlMs: 600, marginMs: 100 };
  const recorded = { worker: lease, nodes: { n1: { ...lease, at: 0 } } };
  it('announcementDue: the table', () => {
    const mine = { lease, holds: { web: { epoch: 7, state: 'running' } }, seen: { web: 7 } };
    const table: [string, Ownership, string | undefined][] = [
      ['up to date', ownership({ owner: 'n1', epoch: 7 }, recorded), undefined],
      ['a controller from before announcements is never asked', ownership({ owner: null, epoch: 0 }), undefined],
      ['moved on (this node loses the group at its next round)', ownership({ owner: 'n2', epoch: 8 }, recorded), undefined],
      ['lease not recorded', ownership({ owner: 'n1', epoch: 7 }, { worker: lease, nodes: {} }), 'the controller has not recorded the lease this node enforces'],
      ['lease recorded differently', ownership({ owner: 'n1', epoch: 7 }, { worker: lease, nodes: { n1: { ttlMs: 3000, marginMs: 100, at: 0 } } }), 'the controller has not recorded the lease this node enforces'],
      ['data lost: epoch 0', ownership({ owner: null, epoch: 0 }, recorded), 'the controller has group web at epoch 0 (no owner), this node holds it at epoch 7'],
      ['epoch raised by a peer, no owner yet', ownership({ owner: null, epoch: 7 }, recorded), 'the controller has group web at epoch 7 (no owner), this node holds it at epoch 7'],
    ];
    for (const [what, answer, expected] of table) assert.equal(announcementDue('n1', mine, answer), expected, what);
    assert.equal(announcementDue('n1', { lease, seen: { web: 9 } }, ownership({ owner: 'n2', epoch: 4 }, recorded)), 'the controller has group web at epoch 4, this node has seen epoch 9');
  });

  it('Announcer: announces what it holds and has seen when the controller is behind or not running, at most once per interval', async () => {
    const g = runtime();
    await g.startResource('web', 'a', 7);
    await g.watch('web', 'a', 7);
    const sent: NodeAnnounce[] = [];
    const a = new Announcer({ node: 'n1', lease, groups: g, send: async (x) => { sent.push(x); }, logger: silentLogger, minIntervalMs: 50 });
    a.answered(ownership({ owner: 'n1', epoch: 7 }, recorded));
    assert.equal(sent.length, 0);
    a.answered(ownership({ owner: null, epoch: 0 }, recorded));
    a.answered(ownership({ owner: null, epoch: 0 }, recorded));
    assert.equal(sent.length, 1, 'once per interval');
    assert.deepEqual(sent[0]!.announce, { lease, holds: { web: { epoch: 7, state: 'running' } }, seen: { web: 7 } });
    await sleep(60);
    const { WorkflowNotFoundError } = await import('@temporalio/client');
    a.failed(new Error('deadline exceeded'));
    assert.equal(sent.length, 1, 'an unreachable controller is not a missing one');
    a.failed(new WorkflowNotFoundError('not found', 'controller/t', undefined));
    assert.equal(sent.length, 2, 'a controller that is not running is started by the announcement');
    await g.close();
  });
});

describe('the lease keeper and a controller behind the node', () => {
  it('controllerBehind: an older epoch, or this one without an owner', () => {
    assert.equal(controllerBehind({ owner: null, epoch: 0 }, 7), true);
    assert.equal(controllerBehind({ owner: null, epoch: 7 }, 7), true);
    assert.equal(controllerBehind({ owner: 'n1', epoch: 7 }, 7), false);
    assert.equal(controllerBehind({ owner: 'n2', epoch: 7 }, 7), false, 'another owner at this epoch is not "behind": the group is lost');
    assert.equal(controllerBehind({ owner: null, epoch: 8 }, 7), false);
  });

  it('does not drop the group on the word of a controller behind it, keeps it when the controller adopts it, and lets it go at the end of the lease if it never does', async () => {
    const g = runtime();
    await g.startResource('web', 'a', 7);
    await g.watch('web', 'a', 7);
    let truth = ownership({ owner: null, epoch: 0 });
    const ttl = 150;
    const lease = new LeaseKeeper({ node: 'n1', ttlMs: ttl, groups: g, queryOwnership: async () => truth, logger: silentLogger, peers: () => [{ node: 'n2', alive: true, lastHeardAgoMs: 10, claims: {} }], heartbeatDeadtimeMs: 600 });
    lease.granted('web', 7);
    await lease.round();
    assert.deepEqual(g.holding('web'), { epoch: 7, state: 'running' }, 'not dropped at once');
    truth = ownership({ owner: 'n1', epoch: 7 });
    await lease.round();
    await sleep(ttl + 20);
    await lease.round();
    assert.deepEqual(g.holding('web'), { epoch: 7, state: 'running' }, 'adopted: confirmed and renewed');
    // Behind again and never catching up: the lease runs out; no fail-safe (that controller could place the group).
    truth = ownership({ owner: null, epoch: 0 });
    await lease.round();
    await sleep(ttl + 20);
    await lease.round();
    assert.equal(g.holding('web'), undefined, 'let go at the end of its lease');
    await g.close();
  });
});

describe('GroupRuntime and a peer holding a newer epoch', () => {
  it('refuses to start under an epoch older than a peer claims (a controller behind the nodes gave it out), and remembers the newer one', async () => {
    const g = runtime({ peerClaims: () => [{ node: 'n2', epoch: 7 }] });
    await assert.rejects(g.startResource('web', 'a', 1), (err: Error) => err instanceof StaleEpochError && /epoch 1 of group 'web' is stale on node n1 \(epoch 7 has been seen\)/.test(err.message));
    assert.equal(g.knownEpoch('web'), 7);
    await g.close();
  });
});
