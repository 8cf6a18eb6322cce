/**
 * The drbd driver: its pure parts on captured `drbdsetup status --json` output, then the
 * driver itself through the real exec against the DRBD 9 simulator (test/support/drbd-sim;
 * the kernel module cannot load here). Each simulated node is an exec that sets
 * DRBD_SIM_NODE, sharing one DRBD_SIM_DIR.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { DrbdResource } from '../../src/config/types.js';
import { drbdCommands, DrbdStatusParseError, parseDrbdStatusJson, splitBrainRecoveryCommands } from '../../src/drivers/drbd-commands.js';
import {
  describeDrbdStatus,
  DrbdDriver,
  DrbdPeerPrimaryError,
  DrbdResourceNotConfiguredError,
  DrbdSplitBrainError,
  estimateSync,
  syncView,
  type DrbdSyncProgress,
} from '../../src/drivers/drbd.js';
import { createExec, type Exec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';

const SIM = join(import.meta.dirname, '../support/drbd-sim');

// -------------------------------------------------------------------------- pure parts
/**
 * `drbdsetup status r0 --json` on a SyncTarget (drbd-utils 9 layout: the printf formats of
 * drbdsetup.c, including the stray space after connection-state), with a second peer that is
 * away, and a field a newer drbd-utils might add.
 */
const SYNC_TARGET_JSON = `[
{
  "name": "r0",
  "node-id": 1,
  "role": "Secondary",
  "suspended": false,
  "write-ordering": "flush",
  "devices": [
    {
      "volume": 0,
      "minor": 7,
      "disk-state": "Inconsistent",
      "client": false,
      "quorum": true,
      "size": 409600,
      "read": 0,
      "written": 548525,
      "al-writes": 4,
      "bm-writes": 0,
      "upper-pending": 0,
      "lower-pending": 0
    } ],
  "connections": [
    {
      "peer-node-id": 0,
      "name": "alpha",
      "connection-state": "Connected", 
      "congested": false,
      "peer-role": "Primary",
      "ap-in-flight": 0,
      "rs-in-flight": 2048,
      "tls": false,
      "peer_devices": [
        {
          "volume": 0,
          "replication-state": "SyncTarget",
          "peer-disk-state": "UpToDate",
          "peer-client": false,
          "resync-suspended": "no",
          "received": 102400,
          "sent": 0,
          "out-of-sync": 102400,
          "pending": 0,
          "unacked": 0,
          "has-sync-details": true,
          "has-online-verify-details": false,
          "percent-in-sync": 75.00,
          "rs-total": 409600,
          "rs-dt-start-ms": 10000,
          "rs-paused-ms": 0,
          "rs-dt0-ms": 10000,
          "rs-db0-sectors": 204800,
          "rs-dt1-ms": 10000,
          "rs-db1-sectors": 204800,
          "rs-failed": 0,
          "rs-same-csum": 0,
          "want": 0.00,
          "db0/dt0 [MiB/s]": 10.00,
          "db1/dt1 [MiB/s]": 10.00,
          "estimated-seconds-to-finish": 10,
          "db/dt [MiB/s]": 10.00,
          "percent-resync-done": 50.00
        } ]
    },
    {
      "peer-node-id": 2,
      "name": "gamma",
      "connection-state": "Connecting", 
      "congested": false,
      "peer-role": "Unknown",
      "peer_devices": [
        {
          "volume": 0,
          "replication-state": "Off",
          "peer-disk-state": "DUnknown",
          "peer-client": false,
          "resync-suspended": "no",
          "received": 0,
          "sent": 0,
          "out-of-sync": 0,
          "pending": 0,
          "unacked": 0,
          "has-sync-details": false,
          "has-online-verify-details": false,
          "percent-in-sync": 100.00
        } ]
    } ]
}
]
`;

void test('the command lines are the DRBD 9 ones', () => {
  const tools = { drbdadm: '/usr/sbin/drbdadm', drbdsetup: '/usr/sbin/drbdsetup' };
  assert.deepEqual(drbdCommands.up(tools, 'r0'), ['/usr/sbin/drbdadm', 'up', 'r0']);
  assert.deepEqual(drbdCommands.down(tools, 'r0'), ['/usr/sbin/drbdadm', 'down', 'r0']);
  assert.deepEqual(drbdCommands.primary(tools, 'r0'), ['/usr/sbin/drbdadm', 'primary', 'r0']);
  assert.deepEqual(drbdCommands.primary(tools, 'r0', { force: true }), ['/usr/sbin/drbdadm', 'primary', '--force', 'r0']);
  assert.deepEqual(drbdCommands.secondary(tools, 'r0'), ['/usr/sbin/drbdadm', 'secondary', 'r0']);
  assert.deepEqual(drbdCommands.connect(tools, 'r0'), ['/usr/sbin/drbdadm', 'connect', 'r0']);
  assert.deepEqual(drbdCommands.connect(tools, 'r0', { discardMyData: true }), ['/usr/sbin/drbdadm', 'connect', '--discard-my-data', 'r0']);
  assert.deepEqual(drbdCommands.disconnect(tools, 'r0'), ['/usr/sbin/drbdadm', 'disconnect', 'r0']);
  assert.deepEqual(drbdCommands.status(tools, 'r0'), ['/usr/sbin/drbdsetup', 'status', 'r0', '--json']);
  assert.deepEqual(splitBrainRecoveryCommands('r0'), {
    victim: ['drbdadm disconnect r0', 'drbdadm secondary r0', 'drbdadm connect --discard-my-data r0'],
    survivor: ['drbdadm disconnect r0', 'drbdadm connect r0'],
  });
});

void test('parseDrbdStatusJson reads a resyncing resource and ignores fields it does not know', () => {
  const [r0, ...rest] = parseDrbdStatusJson(SYNC_TARGET_JSON);
  assert.equal(rest.length, 0);
  assert.deepEqual(r0, {
    name: 'r0',
    nodeId: 1,
    role: 'Secondary',
    suspended: false,
    devices: [{ volume: 0, minor: 7, diskState: 'Inconsistent', client: false, quorum: true, sizeKiB: 409600 }],
    connections: [
      {
        peerNodeId: 0,
        name: 'alpha',
        connectionState: 'Connected',
        peerRole: 'Primary',
        congested: false,
        peerDevices: [
          { volume: 0, replicationState: 'SyncTarget', peerDiskState: 'UpToDate', outOfSyncKiB: 102400, percentInSync: 75, percentResyncDone: 50, estimatedSecondsToFinish: 10, resyncSuspended: 'no' },
        ],
      },
      {
        peerNodeId: 2,
        name: 'gamma',
        connectionState: 'Connecting',
        peerRole: 'Unknown',
        congested: false,
        peerDevices: [{ volume: 0, replicationState: 'Off', peerDiskState: 'DUnknown', outOfSyncKiB: 0, percentInSync: 100, resyncSuspended: 'no' }],
      },
    ],
  });
  assert.deepEqual(parseDrbdStatusJson('[\n]\n\n'), []);
  // Statistics are optional: drbdsetup prints them only when the kernel sent them.
  assert.equal(parseDrbdStatusJson('[{"name":"r1","role":"Primary","devices":[{"volume":0,"minor":1,"disk-state":"UpToDate"}],"connections":[]}]')[0]?.suspended, false);
});

void test('parseDrbdStatusJson says what is wrong with output it cannot read', () => {
  assert.throws(() => parseDrbdStatusJson('r0 role:Secondary\n  disk:UpToDate\n'), (e: unknown) => e instanceof DrbdStatusParseError && /not JSON/.test(e.message) && /r0 role:Secondary/.test(e.message));
  assert.throws(() => parseDrbdStatusJson('{"name":"r0"}'), (e: unknown) => e instanceof DrbdStatusParseError && /unexpected shape \(\(top level\): /.test(e.message));
  assert.throws(
    () => parseDrbdStatusJson('[{"name":"r0","role":"Primary","devices":[{"volume":0,"minor":0,"disk-state":7}]}]'),
    (e: unknown) => e instanceof DrbdStatusParseError && /\[0\]\.devices\[0\]\.disk-state: /.test(e.message),
  );
});

void test('estimateSync: rate and time to go over the window, nothing while the amount does not shrink', () => {
  assert.deepEqual(estimateSync([]), { rateKiBPerSecond: undefined, etaSeconds: undefined });
  assert.deepEqual(estimateSync([{ atMs: 0, outOfSyncKiB: 1000 }]), { rateKiBPerSecond: undefined, etaSeconds: undefined });
  assert.deepEqual(
    estimateSync([
      { atMs: 0, outOfSyncKiB: 10_000 },
      { atMs: 1000, outOfSyncKiB: 9_000 },
      { atMs: 2000, outOfSyncKiB: 8_000 },
    ]),
    { rateKiBPerSecond: 1000, etaSeconds: 8 },
  );
  // Only the last 30 s count: an early stall does not drag the rate down.
  assert.deepEqual(
    estimateSync([
      { atMs: 0, outOfSyncKiB: 10_000 },
      { atMs: 60_000, outOfSyncKiB: 10_000 },
      { atMs: 70_000, outOfSyncKiB: 5_000 },
    ]),
    { rateKiBPerSecond: 500, etaSeconds: 10 },
  );
  // Writes outpacing the resync: no estimate rather than a negative one.
  assert.deepEqual(
    estimateSync([
      { atMs: 0, outOfSyncKiB: 100 },
      { atMs: 1000, outOfSyncKiB: 300 },
    ]),
    { rateKiBPerSecond: undefined, etaSeconds: undefined },
  );
  assert.deepEqual(estimateSync([{ atMs: 5, outOfSyncKiB: 0 }]), { rateKiBPerSecond: undefined, etaSeconds: 0 });
});

void test('syncView and describeDrbdStatus summarise a status', () => {
  const [r0] = parseDrbdStatusJson(SYNC_TARGET_JSON);
  assert.ok(r0);
  assert.deepEqual(syncView(r0), { upToDate: false, percent: 50, outOfSyncKiB: 102400, diskState: 'Inconsistent', replicationState: 'SyncTarget', peer: 'alpha', drbdEtaSeconds: 10 });
  assert.equal(describeDrbdStatus(r0), 'role:Secondary disk:Inconsistent alpha:Primary/SyncTarget/peer-disk:UpToDate gamma:Connecting');
  const settled = { ...r0, devices: [{ ...r0.devices[0]!, diskState: 'UpToDate' }], connections: [{ ...r0.connections[0]!, peerDevices: [{ ...r0.connections[0]!.peerDevices[0]!, replicationState: 'Established', outOfSyncKiB: 0 }] }] };
  assert.equal(syncView(settled).upToDate, true);
  assert.equal(syncView(settled).percent, 100);
  // UpToDate on disk, but not yet compared with any peer: not done.
  const alone = { ...settled, connections: [{ ...settled.connections[0]!, connectionState: 'Connecting', peerDevices: [] }] };
  assert.deepEqual({ ...syncView(alone), drbdEtaSeconds: undefined }, { upToDate: false, percent: 0, outOfSyncKiB: 0, diskState: 'UpToDate', replicationState: 'Connecting', peer: undefined, drbdEtaSeconds: undefined });
});

// ------------------------------------------------------------------ against the simulator
interface Cluster {
  dir: string;
  driver(node: string, overrides?: Partial<DrbdResource>): DrbdDriver;
  /** Commands run through `node`'s driver exec, newest last. */
  calls: Map<string, string[]>;
  sim(...args: string[]): string;
  adm(node: string, ...args: string[]): { code: number | null; stdout: string; stderr: string };
}

function cluster(t: TestContext, init: string[] = []): Cluster {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-drbd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const exec = createExec(silentLogger);
  const calls = new Map<string, string[]>();
  const sim = (...args: string[]) => {
    const r = spawnSync(join(SIM, 'drbd-sim'), args, { env: { ...process.env, DRBD_SIM_DIR: dir }, encoding: 'utf8' });
    assert.equal(r.status, 0, `drbd-sim ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  sim('init', 'r0', '--nodes', 'alpha,beta', '--size-kib', '102400', ...init);
  return {
    dir,
    calls,
    sim,
    driver(node, overrides = {}) {
      const nodeExec: Exec = (file, args, options = {}) => {
        const seen = calls.get(node) ?? [];
        seen.push([file.split('/').pop(), ...args].join(' '));
        calls.set(node, seen);
        return exec(file, args, { ...options, env: { ...options.env, DRBD_SIM_DIR: dir, DRBD_SIM_NODE: node } });
      };
      return new DrbdDriver(drbd(overrides), { exec: nodeExec, logger: silentLogger, node });
    },
    adm(node, ...args) {
      const r = spawnSync(join(SIM, 'drbdadm'), args, { env: { ...process.env, DRBD_SIM_DIR: dir, DRBD_SIM_NODE: node }, encoding: 'utf8' });
      return { code: r.status, stdout: r.stdout, stderr: r.stderr };
    },
  };
}

function drbd(overrides: Partial<DrbdResource> = {}): DrbdResource {
  return {
    type: 'drbd',
    name: 'data-disk',
    resource: 'r0',
    drbdadm: join(SIM, 'drbdadm'),
    drbdsetup: join(SIM, 'drbdsetup'),
    timeoutMs: 10_000,
    check: { type: 'status', intervalMs: 1000, timeoutMs: 1000, rise: 1, fall: 1 },
    healing: { maxRestarts: 3, windowMs: 60_000, backoff: { initialMs: 100, maxMs: 1000, multiplier: 2 }, startTimeoutMs: 10_000 },
    ...overrides,
  };
}

void test('start brings a down resource up and promotes it; a second start only looks', async (t) => {
  const c = cluster(t, ['--down']);
  assert.equal(c.adm('beta', 'up', 'r0').code, 0);
  const alpha = c.driver('alpha');
  assert.deepEqual(await alpha.status(), { running: false, detail: 'DRBD resource r0 is not up on this node' });
  await alpha.start({ epoch: 7 });
  assert.deepEqual(c.calls.get('alpha'), ['drbdsetup status r0 --json', 'drbdsetup status r0 --json', 'drbdadm up r0', 'drbdsetup status r0 --json', 'drbdadm primary r0']);
  assert.deepEqual(await alpha.status(), { running: true, detail: 'role:Primary disk:UpToDate beta:Secondary/Established/peer-disk:UpToDate' });
  c.calls.set('alpha', []);
  await alpha.start();
  assert.deepEqual(c.calls.get('alpha'), ['drbdsetup status r0 --json']);
});

void test('start is refused while the peer is Primary, naming the peer and what to do', async (t) => {
  const c = cluster(t);
  await c.driver('alpha').start();
  const beta = c.driver('beta');
  await assert.rejects(beta.start(), (e: unknown) => {
    assert.ok(e instanceof DrbdPeerPrimaryError);
    assert.equal(e.peer, 'alpha');
    assert.match(e.message, /cannot promote DRBD resource r0: peer alpha is Primary/);
    assert.match(e.message, /drbdadm secondary r0/);
    return true;
  });
  assert.ok(!c.calls.get('beta')?.includes('drbdadm primary r0'), 'refused before asking DRBD');
  assert.equal((await beta.status()).running, false);
});

void test('stop demotes and is idempotent; a device still in use is named with what to do', async (t) => {
  const c = cluster(t);
  const alpha = c.driver('alpha');
  await alpha.start();
  c.sim('open', 'alpha', 'r0');
  await assert.rejects(alpha.stop(), /cannot demote DRBD resource r0: \/dev\/drbd0 is still in use on this node.*fuser -vm \/dev\/drbd0/);
  c.sim('close', 'alpha', 'r0');
  await alpha.stop();
  assert.equal((await alpha.status()).running, false);
  c.calls.set('alpha', []);
  await alpha.stop();
  assert.deepEqual(c.calls.get('alpha'), ['drbdsetup status r0 --json']);
  assert.equal(c.adm('alpha', 'down', 'r0').code, 0);
  await alpha.stop();
  // Now the peer may take over.
  await c.driver('beta').start();
});

void test('configuration and installation errors say what to fix', async (t) => {
  const c = cluster(t);
  await assert.rejects(c.driver('alpha', { resource: 'r9' }).start(), (e: unknown) => e instanceof DrbdResourceNotConfiguredError && /DRBD resource r9 is not configured on this node \(drbdadm: 'r9' not defined in your config/.test(e.message));
  await assert.rejects(c.driver('alpha', { drbdsetup: '/nonexistent/drbdsetup' }).status(), /\/nonexistent\/drbdsetup status r0 --json could not be run .*install drbd-utils 9/);
});

void test('start says how to proceed when no UpToDate data is reachable, and never forces', async (t) => {
  const c = cluster(t, ['--rate', '1']);
  await c.driver('alpha').start();
  assert.equal(c.adm('beta', 'down', 'r0').code, 0);
  c.sim('write', 'alpha', 'r0', '4096');
  assert.equal(c.adm('beta', 'up', 'r0').code, 0);
  c.sim('crash', 'alpha', 'r0');
  const beta = c.driver('beta');
  await assert.rejects(beta.start(), /DRBD has no UpToDate data for it here \(role:Secondary disk:Inconsistent alpha:Connecting\).*drbdadm primary --force r0/);
  assert.ok(!c.calls.get('beta')?.some((line) => line.includes('--force')));
});

void test('waitUpToDate reports resync progress until 100', async (t) => {
  const c = cluster(t, ['--rate', '8192']);
  await c.driver('alpha').start();
  assert.equal(c.adm('beta', 'down', 'r0').code, 0);
  c.sim('write', 'alpha', 'r0', '16384');
  const beta = c.driver('beta');
  await beta.connect({ epoch: 3 });
  const seen: DrbdSyncProgress[] = [];
  const last = await beta.waitUpToDate({ pollMs: 150, onProgress: (p) => seen.push(p), timeoutMs: 20_000 });
  assert.deepEqual(last, { percent: 100, outOfSyncKiB: 0, remainingBytes: 0, etaSeconds: 0, rateKiBPerSecond: last.rateKiBPerSecond, diskState: 'UpToDate', replicationState: 'Established', peer: undefined });
  const during = seen.filter((p) => p.percent < 100);
  assert.ok(during.length >= 3, `several reports while syncing, got ${during.length}`);
  for (const p of during) {
    assert.equal(p.diskState, 'Inconsistent');
    assert.equal(p.replicationState, 'SyncTarget');
    assert.equal(p.peer, 'alpha');
    assert.equal(p.remainingBytes, p.outOfSyncKiB * 1024);
  }
  for (let i = 1; i < seen.length; i += 1) assert.ok(seen[i]!.percent >= seen[i - 1]!.percent, `percent never goes back: ${seen.map((p) => p.percent).join(' ')}`);
  const measured = during.filter((p) => p.rateKiBPerSecond !== undefined);
  assert.ok(measured.length > 0, 'a rate is measured');
  for (const p of measured) {
    // 8192 KiB/s set in the simulator; polling jitter allowed.
    assert.ok(p.rateKiBPerSecond! > 4000 && p.rateKiBPerSecond! < 16000, `rate ${p.rateKiBPerSecond}`);
    assert.ok(p.etaSeconds !== undefined && p.etaSeconds <= 3, `eta ${p.etaSeconds}`);
  }
  assert.equal((await beta.status()).detail, 'role:Secondary disk:UpToDate alpha:Primary/Established/peer-disk:UpToDate');
});

void test('waitUpToDate stops when aborted', async (t) => {
  const c = cluster(t);
  assert.equal(c.adm('alpha', 'down', 'r0').code, 0);
  const beta = c.driver('beta');
  const abort = new AbortController();
  const seen: DrbdSyncProgress[] = [];
  setTimeout(() => abort.abort(new Error('cancelled by the test')), 400);
  await assert.rejects(beta.waitUpToDate({ pollMs: 100, signal: abort.signal, onProgress: (p) => seen.push(p) }), /cancelled by the test/);
  assert.ok(seen.length > 0);
  assert.deepEqual({ percent: seen[0]!.percent, replicationState: seen[0]!.replicationState }, { percent: 0, replicationState: 'Connecting' }, 'UpToDate on disk but alone: not done');
});

void test('split brain is detected and reported with the DRBD recovery choices; recovery with --discard-my-data resyncs the victim', async (t) => {
  const c = cluster(t, ['--rate', '4096']);
  const alpha = c.driver('alpha');
  const beta = c.driver('beta');
  await alpha.start();
  // A partition: both sides act as the owner and write.
  c.sim('cut', 'r0');
  c.sim('write', 'alpha', 'r0', '1024');
  await beta.start();
  c.sim('write', 'beta', 'r0', '2048');
  c.sim('heal', 'r0');
  assert.match(c.sim('dmesg', 'beta', 'r0'), /Split-Brain detected but unresolved, dropping connection!/);

  const report = await beta.splitBrain();
  assert.ok(report);
  assert.equal(report.resource, 'r0');
  assert.equal(report.peer, 'alpha');
  assert.deepEqual(report.victimCommands, ['drbdadm disconnect r0', 'drbdadm secondary r0', 'drbdadm connect --discard-my-data r0']);
  assert.deepEqual(report.survivorCommands, ['drbdadm disconnect r0', 'drbdadm connect r0']);
  assert.equal(report.choices.length, 2);
  assert.match(report.choices[0]!, /^keep alpha's data and discard the changes made on this node \(beta\) since the split: on this node \(beta\) run `drbdadm disconnect r0`, `drbdadm secondary r0`, `drbdadm connect --discard-my-data r0`; then on alpha, if it is StandAlone too, run `drbdadm disconnect r0`, `drbdadm connect r0`$/);
  assert.match(report.choices[1]!, /^keep the data of this node \(beta\) and discard alpha's changes since the split: on alpha run `drbdadm disconnect r0`, `drbdadm secondary r0`/);
  assert.match(report.detail, /StandAlone.*Split-Brain detected but unresolved.*this node \(beta\) is Primary with disk UpToDate.*HA-OSCAR does not choose/);
  assert.equal((await alpha.splitBrain())?.peer, 'beta');

  // The resync code connects and waits: it must stop with the report, not wait forever.
  c.calls.set('beta', []);
  await beta.connect();
  assert.deepEqual(c.calls.get('beta'), ['drbdsetup status r0 --json'], 'a StandAlone it did not cause is left for the administrator');
  await assert.rejects(beta.waitUpToDate({ pollMs: 100, timeoutMs: 10_000 }), (e: unknown) => {
    assert.ok(e instanceof DrbdSplitBrainError);
    assert.equal(e.report.peer, 'alpha');
    assert.match(e.message, /^DRBD split brain on resource r0 with alpha: an administrator must choose whose changes to discard\. \(1\) keep alpha's data/);
    return true;
  });
  // Our own disconnect is not split brain.
  await beta.disconnect();
  assert.equal(await beta.splitBrain(), undefined);

  // The administrator picks beta as the victim (DRBD User's Guide, manual split brain recovery).
  await beta.stop();
  await beta.disconnect();
  await beta.connect({ discardMyData: true });
  await alpha.disconnect();
  await alpha.connect();
  const seen: DrbdSyncProgress[] = [];
  const last = await beta.waitUpToDate({ pollMs: 100, onProgress: (p) => seen.push(p), timeoutMs: 20_000 });
  assert.equal(last.percent, 100);
  assert.ok(seen.some((p) => p.replicationState === 'SyncTarget' && p.outOfSyncKiB > 0), 'the victim resynced');
  assert.equal(await beta.splitBrain(), undefined);
  assert.equal(await alpha.splitBrain(), undefined);
  assert.equal((await alpha.status()).detail, 'role:Primary disk:UpToDate beta:Secondary/Established/peer-disk:UpToDate');
});

void test('--discard-my-data is refused unless the connection is StandAlone and this node Secondary', async (t) => {
  const c = cluster(t);
  const alpha = c.driver('alpha');
  await assert.rejects(alpha.connect({ discardMyData: true }), /needs the connections of DRBD resource r0 StandAlone; disconnect first/);
  await alpha.start();
  await alpha.disconnect();
  await assert.rejects(alpha.connect({ discardMyData: true }), /refuses --discard-my-data on resource r0 because this node is Primary: demote it first/);
  await alpha.connect();
  assert.equal((await alpha.status()).detail, 'role:Primary disk:UpToDate beta:Secondary/Established/peer-disk:UpToDate');
});
