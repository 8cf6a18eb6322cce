/**
 * The DRBD 9 simulator (test/support/drbd-sim) against what the real tools print and how they
 * exit, as read in drbd-utils' drbdsetup.c / drbdadm_main.c / shared_main.c and the DRBD 9
 * User's Guide. The drbd driver's tests trust these outputs, so they are pinned here.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseDrbdStatusJson } from '../../src/drivers/drbd-commands.js';
import { waitFor } from '../support/wait.js';

const SIM = join(import.meta.dirname, '../support/drbd-sim');

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function simDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-drbd-sim-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function run(dir: string, tool: 'drbdadm' | 'drbdsetup' | 'drbd-sim', args: string[], node?: string): Ran {
  const r = spawnSync(join(SIM, tool), args, { env: { ...process.env, DRBD_SIM_DIR: dir, ...(node ? { DRBD_SIM_NODE: node } : {}) }, encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(r: Ran): Ran {
  assert.equal(r.code, 0, `expected exit 0, got ${r.code}: ${r.stderr}`);
  return r;
}

function twoNodes(t: TestContext, extra: string[] = []) {
  const dir = simDir(t);
  ok(run(dir, 'drbd-sim', ['init', 'r0', '--nodes', 'alpha,beta', '--size-kib', '102400', ...extra]));
  return {
    dir,
    a: (tool: 'drbdadm' | 'drbdsetup', ...args: string[]) => run(dir, tool, args, 'alpha'),
    b: (tool: 'drbdadm' | 'drbdsetup', ...args: string[]) => run(dir, tool, args, 'beta'),
    sim: (...args: string[]) => run(dir, 'drbd-sim', args),
  };
}

void test('drbdadm status of a connected resource prints the DRBD 9 layout', (t) => {
  const { a } = twoNodes(t);
  assert.equal(ok(a('drbdadm', 'status', 'r0')).stdout, 'r0 role:Secondary\n  disk:UpToDate\n  beta role:Secondary\n    peer-disk:UpToDate\n\n');
  ok(a('drbdadm', 'primary', 'r0'));
  assert.equal(
    ok(a('drbdsetup', 'status', 'r0', '--verbose')).stdout,
    'r0 node-id:0 role:Primary suspended:no\n  volume:0 minor:0 disk:UpToDate quorum:yes\n  beta node-id:1 connection:Connected role:Secondary congested:no ap-in-flight:0 rs-in-flight:0\n    volume:0 replication:Established peer-disk:UpToDate resync-suspended:no\n\n',
  );
});

void test('drbdsetup status --json prints the JSON drbd-utils 9 prints, which the parser reads', (t) => {
  const { a } = twoNodes(t);
  const { stdout } = ok(a('drbdsetup', 'status', 'r0', '--json'));
  // drbdsetup's own formatting quirks: the trailing space after connection-state, `} ]`.
  assert.match(stdout, /^\[\n\{\n {2}"name": "r0",\n {2}"node-id": 0,\n {2}"role": "Secondary",\n {2}"suspended": false,\n/);
  assert.match(stdout, /"connection-state": "Connected", \n/);
  assert.match(stdout, /"percent-in-sync": 100\.00\n {8}\} \]\n {4}\} \]\n\}\n\]\n\n$/);
  const [r0] = parseDrbdStatusJson(stdout);
  assert.deepEqual(r0, {
    name: 'r0',
    nodeId: 0,
    role: 'Secondary',
    suspended: false,
    devices: [{ volume: 0, minor: 0, diskState: 'UpToDate', client: false, quorum: true, sizeKiB: 102400 }],
    connections: [
      {
        peerNodeId: 1,
        name: 'beta',
        connectionState: 'Connected',
        peerRole: 'Secondary',
        congested: false,
        peerDevices: [{ volume: 0, replicationState: 'Established', peerDiskState: 'UpToDate', outOfSyncKiB: 0, percentInSync: 100, resyncSuspended: 'no' }],
      },
    ],
  });
});

void test('unknown and down resources fail as drbdadm (exit 1) and drbdsetup (exit 10) do', (t) => {
  const { a, b } = twoNodes(t);
  assert.deepEqual(a('drbdadm', 'status', 'r9'), { code: 1, stdout: '', stderr: "'r9' not defined in your config (for this host).\n" });
  assert.deepEqual(a('drbdadm', 'primary', 'r9'), { code: 1, stdout: '', stderr: "'r9' not defined in your config (for this host).\n" });
  assert.deepEqual(a('drbdsetup', 'status', 'r9', '--json'), { code: 10, stdout: '[\n]\n\n', stderr: 'r9: No such resource\n' });
  ok(b('drbdadm', 'down', 'r0'));
  assert.deepEqual(b('drbdadm', 'down', 'r0'), { code: 0, stdout: '', stderr: '' }, 'down of a resource that is not up succeeds');
  assert.deepEqual(b('drbdadm', 'status', 'r0'), { code: 10, stdout: '', stderr: "r0: No such resource\nCommand 'drbdsetup status r0' terminated with exit code 10\n" });
  assert.deepEqual(b('drbdadm', 'primary', 'r0'), { code: 10, stdout: '', stderr: "r0: Failure: (158) Unknown resource\nCommand 'drbdsetup primary r0' terminated with exit code 10\n" });
  assert.equal(ok(a('drbdadm', 'status', 'r0')).stdout, 'r0 role:Secondary\n  disk:UpToDate\n  beta connection:Connecting\n\n');
  ok(b('drbdadm', 'up', 'r0'));
  assert.deepEqual(b('drbdadm', 'up', 'r0'), {
    code: 10,
    stdout: '',
    stderr: "r0: Failure: (161) Minor or volume exists already (delete it first)\nCommand 'drbdsetup new-minor r0 0 0' terminated with exit code 10\n",
  });
});

void test('promoting while the peer is Primary fails with DRBD\'s state change message and exit 11', (t) => {
  const { a, b } = twoNodes(t);
  ok(a('drbdadm', 'primary', 'r0'));
  assert.deepEqual(a('drbdadm', 'primary', 'r0'), { code: 0, stdout: '', stderr: '' }, 'promoting a Primary is a no-op');
  assert.deepEqual(b('drbdadm', 'primary', 'r0'), {
    code: 11,
    stdout: '',
    stderr: "r0: State change failed: (-1) Multiple primaries not allowed by config\nCommand 'drbdsetup primary r0' terminated with exit code 11\n",
  });
  assert.deepEqual(b('drbdsetup', 'primary', 'r0'), { code: 11, stdout: '', stderr: 'r0: State change failed: (-1) Multiple primaries not allowed by config\n' });
});

void test('connect/disconnect follow DRBD: disconnect is idempotent, connect needs StandAlone and refuses to discard a Primary', (t) => {
  const { a } = twoNodes(t);
  assert.deepEqual(a('drbdadm', 'connect', 'r0'), {
    code: 10,
    stdout: '',
    stderr: "r0: Failure: (125) Device has a net-config (use disconnect first)\nCommand 'drbdsetup connect r0 1' terminated with exit code 10\n",
  });
  ok(a('drbdadm', 'disconnect', 'r0'));
  ok(a('drbdadm', 'disconnect', 'r0'));
  assert.equal(ok(a('drbdadm', 'status', 'r0')).stdout, 'r0 role:Secondary\n  disk:UpToDate\n  beta connection:StandAlone\n\n');
  ok(a('drbdadm', 'primary', 'r0'));
  assert.deepEqual(a('drbdadm', 'connect', '--discard-my-data', 'r0'), {
    code: 10,
    stdout: '',
    stderr: "r0: Failure: (123) --discard-my-data not allowed when primary.\nCommand 'drbdsetup connect r0 1 --discard-my-data' terminated with exit code 10\n",
  });
  ok(a('drbdadm', 'connect', 'r0'));
  assert.equal(ok(a('drbdadm', 'status', 'r0')).stdout, 'r0 role:Primary\n  disk:UpToDate\n  beta role:Secondary\n    peer-disk:UpToDate\n\n');
});

void test('an open device cannot be demoted (exit 11, -12); a node without UpToDate data cannot be promoted (exit 17, -2)', (t) => {
  const { a, b, sim } = twoNodes(t, ['--rate', '1']);
  ok(a('drbdadm', 'primary', 'r0'));
  ok(sim('open', 'alpha', 'r0'));
  assert.deepEqual(a('drbdadm', 'secondary', 'r0'), { code: 11, stdout: '', stderr: "r0: State change failed: (-12) Device is held open by someone\nCommand 'drbdsetup secondary r0' terminated with exit code 11\n" });
  ok(sim('close', 'alpha', 'r0'));
  // beta falls behind and starts a (very slow) resync, then its source dies mid-way.
  ok(b('drbdadm', 'down', 'r0'));
  ok(sim('write', 'alpha', 'r0', '4096'));
  ok(b('drbdadm', 'up', 'r0'));
  assert.match(ok(b('drbdadm', 'status', 'r0')).stdout, /disk:Inconsistent\n {2}alpha role:Primary\n {4}replication:SyncTarget peer-disk:UpToDate done:0\.\d\d\n/);
  ok(sim('crash', 'alpha', 'r0'));
  assert.deepEqual(b('drbdadm', 'primary', 'r0'), { code: 17, stdout: '', stderr: "r0: State change failed: (-2) Need access to UpToDate data\nCommand 'drbdsetup primary r0' terminated with exit code 17\n" });
  ok(b('drbdadm', 'primary', '--force', 'r0'));
});

void test('a node that was away becomes SyncTarget and drains its out-of-sync KiB at the set rate', async (t) => {
  // 8 MiB at 1 MiB/s: the resync lasts 8 s, so the checks below (each a process) see it under way
  // even on a loaded machine (at 4 MiB/s it was over before them once in a loaded run).
  const { a, b, sim } = twoNodes(t, ['--rate', '1024']);
  ok(a('drbdadm', 'primary', 'r0'));
  ok(b('drbdadm', 'down', 'r0'));
  ok(sim('write', 'alpha', 'r0', '4096'));
  assert.match(ok(a('drbdsetup', 'status', 'r0', '--json')).stdout, /"out-of-sync": 4096,/, "alpha's bitmap for beta holds the write");
  ok(b('drbdadm', 'up', 'r0'));
  const first = parseDrbdStatusJson(ok(b('drbdsetup', 'status', 'r0', '--json')).stdout)[0];
  assert.equal(first?.devices[0]?.diskState, 'Inconsistent');
  assert.equal(first?.connections[0]?.peerDevices[0]?.replicationState, 'SyncTarget');
  assert.ok((first?.connections[0]?.peerDevices[0]?.outOfSyncKiB ?? 0) > 2000);
  assert.match(ok(b('drbdsetup', 'status', 'r0', '--json')).stdout, /"has-sync-details": true,[\s\S]*"rs-total": 8192,[\s\S]*"percent-resync-done": \d+\.\d\d\n/);
  assert.match(ok(a('drbdadm', 'status', 'r0')).stdout, /beta role:Secondary\n {4}replication:SyncSource peer-disk:Inconsistent done:\d+\.\d\d\n/);
  await waitFor('beta UpToDate', () => /\n {2}disk:UpToDate/.test(ok(b('drbdadm', 'status', 'r0')).stdout), 30_000, 200);
  assert.equal(ok(b('drbdadm', 'status', 'r0')).stdout, 'r0 role:Secondary\n  disk:UpToDate\n  alpha role:Primary\n    peer-disk:UpToDate\n\n');
  assert.match(ok(sim('dmesg', 'beta', 'r0')).stdout, /drbd r0\/0 drbd0 alpha: Resync done/);
});

void test('split brain: both promoted while apart, then connected: both StandAlone; --discard-my-data on the victim resolves it', async (t) => {
  const { a, b, sim } = twoNodes(t, ['--rate', '1048576']);
  ok(a('drbdadm', 'primary', 'r0'));
  ok(sim('cut', 'r0'));
  ok(sim('write', 'alpha', 'r0', '64'));
  ok(b('drbdadm', 'primary', 'r0'));
  ok(sim('write', 'beta', 'r0', '128'));
  ok(sim('heal', 'r0'));
  assert.equal(ok(a('drbdadm', 'status', 'r0')).stdout, 'r0 role:Primary\n  disk:UpToDate\n  beta connection:StandAlone\n\n');
  assert.equal(ok(b('drbdadm', 'status', 'r0')).stdout, 'r0 role:Primary\n  disk:UpToDate\n  alpha connection:StandAlone\n\n');
  assert.match(ok(sim('dmesg', 'alpha', 'r0')).stdout, /drbd r0\/0 drbd0 beta: Split-Brain detected but unresolved, dropping connection!/);
  // Reconnecting without choosing a victim finds the split brain again.
  ok(a('drbdadm', 'connect', 'r0'));
  ok(b('drbdadm', 'connect', 'r0'));
  assert.match(ok(b('drbdadm', 'status', 'r0')).stdout, /alpha connection:StandAlone/);
  // The User's Guide's recovery, beta as the victim.
  ok(b('drbdadm', 'disconnect', 'r0'));
  ok(b('drbdadm', 'secondary', 'r0'));
  ok(b('drbdadm', 'connect', '--discard-my-data', 'r0'));
  ok(a('drbdadm', 'disconnect', 'r0'));
  ok(a('drbdadm', 'connect', 'r0'));
  await waitFor('beta resynced', () => ok(b('drbdadm', 'status', 'r0')).stdout === 'r0 role:Secondary\n  disk:UpToDate\n  alpha role:Primary\n    peer-disk:UpToDate\n\n', 5000, 50);
});

void test('drbd-sim split-brain reproduces split brain the natural way', (t) => {
  const { a, b, sim } = twoNodes(t);
  ok(sim('split-brain', 'r0'));
  assert.equal(ok(a('drbdadm', 'status', 'r0')).stdout, 'r0 role:Primary\n  disk:UpToDate\n  beta connection:StandAlone\n\n');
  assert.equal(ok(b('drbdadm', 'status', 'r0')).stdout, 'r0 role:Primary\n  disk:UpToDate\n  alpha connection:StandAlone\n\n');
  const kernel = ok(sim('dmesg', 'beta', 'r0')).stdout;
  assert.match(kernel, /drbd r0\/0 drbd0: new current UUID: [0-9A-F]{16} \(was [0-9A-F]{16}\)/);
  assert.match(kernel, /drbd r0\/0 drbd0 alpha: Split-Brain detected but unresolved, dropping connection!/);
  assert.equal(JSON.parse(ok(sim('show', 'r0')).stdout).node.beta.peers.alpha.cstate, 'StandAlone');
});

void test('a Primary that would have to become SyncTarget drops the connection (rr-conflict disconnect)', (t) => {
  const { a, b, sim } = twoNodes(t);
  ok(a('drbdadm', 'primary', 'r0'));
  ok(sim('cut', 'r0'));
  ok(sim('write', 'alpha', 'r0', '64'));
  ok(a('drbdadm', 'secondary', 'r0'));
  ok(b('drbdadm', 'primary', 'r0'));
  ok(a('drbdadm', 'primary', '--force', 'r0'));
  ok(b('drbdadm', 'secondary', 'r0'));
  ok(sim('heal', 'r0'));
  // Both changed the data: split brain, whatever the roles.
  assert.match(ok(a('drbdadm', 'status', 'r0')).stdout, /beta connection:StandAlone/);
});

void test('two nodes promoting at the same moment: the lock lets exactly one win', async (t) => {
  const { dir } = twoNodes(t);
  const promote = (node: string) =>
    new Promise<number | null>((resolve) => {
      const child = spawn(join(SIM, 'drbdadm'), ['primary', 'r0'], { env: { ...process.env, DRBD_SIM_DIR: dir, DRBD_SIM_NODE: node }, stdio: 'ignore' });
      child.on('exit', (code) => resolve(code));
    });
  const codes = await Promise.all([promote('alpha'), promote('beta')]);
  assert.deepEqual([...codes].sort(), [0, 11]);
});

void test('drbd-sim refuses what DRBD would: writing on a Secondary, unknown nodes and resources', (t) => {
  const { sim } = twoNodes(t);
  assert.match(sim('write', 'alpha', 'r0', '10').stderr, /alpha is Secondary; DRBD refuses writes except on a Primary/);
  assert.match(sim('write', 'gamma', 'r0', '10').stderr, /gamma is not a node of r0/);
  assert.match(sim('rate', 'r7', '10').stderr, /no simulated resource r7/);
  assert.equal(sim('rate', 'r7', '10').code, 1);
});
