/**
 * Issue 13 item 1: `clone` images a node's system onto a standby's offline root. A real
 * debootstrapped Debian root (cached per machine: test/support/debootstrap.ts) is n1's root;
 * n2's target root is an empty directory. The workflow runs on a real Temporal dev server with
 * the real clone activities on n2's queue, which pull over real ssh (an sshd on 127.0.0.1 that
 * allows the key only `rrsync -ro`, as docs/sync.md sets the nodes up).
 *
 * Not a network lab: source and target are directories of this machine and ssh goes over the
 * loopback, so the transport, the fix-ups and the chroot checks are real, the two machines are not.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger, Worker } from '@temporalio/worker';
import { closeTemporal, temporalAddress, testWorkerConnection, uniqueName } from '../support/temporal.js';
import { haoscarCli } from '../support/lab.js';
import { failureType, twoNodeWeb, type WorkflowCluster } from '../support/workflow-cluster.js';
import { startCloneCluster } from '../support/clone-cluster.js';
import { debootstrapTree, linkedRoot, rescueTargetRoot } from '../support/debootstrap.js';
import { startTestSshd, type TestSshd } from '../support/sshd.js';
import { waitFor } from '../support/wait.js';
import { cloneWorkflowId, clusterTaskQueue, ERROR_TYPES, nodeTaskQueue } from '../../workflows/shared.js';
import type { CloneResult } from '../../workflows/clone.js';
import type { CloneInput } from '../../workflows/inputs.js';

let cluster: WorkflowCluster | undefined;
let sshd: TestSshd | undefined;
let dir = '';
after(async () => {
  await cluster?.close().catch(() => undefined);
  await sshd?.stop().catch(() => undefined);
  await closeTemporal();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let source = '';
let target = '';
before(async () => {
  const tree = await debootstrapTree();
  dir = await mkdtemp(join(tmpdir(), 'haoscar-clone-test-'));
  source = join(dir, 'source');
  target = join(dir, 'target');
  await linkedRoot(tree, source, {
    'etc/hostname': 'n1\n',
    'etc/hosts': '127.0.0.1\tlocalhost\n127.0.1.1\tn1.example.org n1\n127.0.0.1 n1-data\n',
    'etc/machine-id': `${'1'.repeat(32)}\n`,
    'etc/network/interfaces': 'auto lo\niface lo inet loopback\nauto eth0\niface eth0 inet static\n    address 127.0.0.1/8\n',
    'etc/netplan/01-cluster.yaml': 'network:\n  ethernets:\n    eth0:\n      addresses: [127.0.0.1/8]\n',
    'etc/fstab': 'UUID=0b6e2e63-6b4e-4f2b-9f0a-1d2e3f4a5b6c / ext4 errors=remount-ro 0 1\n',
    'tmp/scratch': 'not part of the system\n',
    'var/lib/haoscar/epochs.json': '{"web": 3}\n',
  });
  await rescueTargetRoot(target);
  sshd = await startTestSshd(join(dir, 'ssh'));
});

const body = () => `${twoNodeWeb({ lease: '{ ttl: 3000ms, margin: 300ms }' })}clone: { sshPort: ${sshd!.port}, checksumSample: 100 }\n`;

function startCluster(heldGroups: () => string[] = () => []) {
  return startCloneCluster('clone', body(), { ssh: sshd!.client, heldGroups });
}

async function runClone(c: WorkflowCluster, input: Partial<CloneInput>): Promise<CloneResult> {
  const args: CloneInput = { cluster: c.name, from: 'n1', to: 'n2', targetRoot: target, sourceRoot: source, ...input };
  const handle = await c.client.workflow.start('clone', { workflowId: `${cloneWorkflowId(c.name, args.to)}/${Date.now()}`, taskQueue: clusterTaskQueue(c.name), args: [args] });
  return (await handle.result()) as CloneResult;
}

test('a debootstrapped root is cloned onto the standby over ssh, fixed up, verified; a second run leaves unchanged files alone', async (t) => {
  // n1's address in the configuration (127.0.0.1) is where the target connects: the test's sshd.
  cluster = await startCluster();
  const c = cluster;
  await c.web();

  // ---- refusals: toward the owner of a group, and the target's running root
  assert.match(await failureType(runClone(c, { to: 'n1', from: 'n2' })), new RegExp(`^${ERROR_TYPES.TargetRunsGroup}: node 'n1' owns group\\(s\\) web`));
  assert.match(await failureType(runClone(c, { targetRoot: '/proc/..' })), new RegExp(`^${ERROR_TYPES.CloneRefused}: .*running system's own root`));

  // ---- dry run: lists, changes nothing
  const dry = await runClone(c, { dryRun: true });
  assert.equal(dry.dryRun, true);
  assert.ok((dry.copy.stats?.regularFilesTransferred ?? 0) > 1000, `a dry run lists the files it would copy: ${JSON.stringify(dry.copy.stats)}`);
  assert.ok(dry.fixups.changes.some((ch) => ch.file === '/etc/hostname' && ch.what === 'n1 -> n2'), JSON.stringify(dry.fixups.changes));
  assert.ok((await stat(join(target, 'stale-file'))).isFile(), 'the dry run deleted nothing');
  await assert.rejects(stat(join(target, 'etc')), 'the dry run copied nothing');

  // ---- the clone
  const first = await runClone(c, {});
  t.diagnostic(`first clone: ${first.copy.stats?.files} entries, ${first.copy.stats?.totalFileSize} bytes in ${first.copy.durationMs} ms; verify: ${JSON.stringify(first.verify?.checks.map((x) => [x.name, x.ok]))}, ${first.verify?.sampled} sampled`);
  const read = (f: string) => readFile(join(target, f), 'utf8');
  assert.equal(await read('etc/hostname'), 'n2\n');
  assert.match(await read('etc/hosts'), /^127\.0\.1\.1\tn2\.example\.org n2$/m);
  assert.match(await read('etc/hosts'), /^127\.0\.0\.1 n1-data$/m, 'other names are left alone');
  assert.match(await read('etc/network/interfaces'), /address 127\.0\.0\.2\/8/);
  assert.match(await read('etc/netplan/01-cluster.yaml'), /addresses: \[127\.0\.0\.2\/8\]/);
  const machineId = (await read('etc/machine-id')).trim();
  assert.match(machineId, /^[0-9a-f]{32}$/);
  assert.notEqual(machineId, '1'.repeat(32), 'the source machine ID is not copied');
  const hostKey = await read('etc/ssh/ssh_host_ed25519_key.pub');
  assert.notEqual(hostKey, await readFile(join(source, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8'), "the source's host key is not copied");
  assert.equal(first.fixups.hostKeys.length, 3, first.fixups.hostKeys.join('\n'));
  assert.match(first.fixups.warnings.join('\n'), /\/etc\/fstab line 1 names a disk of the source/);
  await assert.rejects(stat(join(target, 'tmp', 'scratch')), '/tmp is not copied');
  await assert.rejects(stat(join(target, 'var/lib/haoscar/epochs.json')), "the agent's state is not copied");
  await assert.rejects(stat(join(target, 'stale-file')), "the standby's old files are deleted");
  assert.ok((await stat(join(target, 'mnt/rescue/keep'))).isFile(), 'an excluded path on the target is not deleted');
  assert.equal((await stat(join(target, 'usr/bin/dpkg'))).mode, (await stat(join(source, 'usr/bin/dpkg'))).mode);
  assert.ok(first.verify?.ok, JSON.stringify(first.verify));
  assert.deepEqual(first.verify?.checks.map((x) => x.name), ['sshd -t', 'dpkg --audit']);
  assert.ok((first.verify?.sampled ?? 0) >= 50, `sampled ${first.verify?.sampled}`);

  // ---- a second run: unchanged files keep their inode (not rewritten); the identity stays
  const unchanged = ['usr/bin/dpkg', 'etc/os-release', 'usr/lib/x86_64-linux-gnu/libc.so.6', 'etc/ssh/sshd_config', 'var/lib/dpkg/status'];
  const inodes = await Promise.all(unchanged.map(async (f) => (await stat(join(target, f)).catch(() => stat(join(target, 'etc/os-release')))).ino));
  const second = await runClone(c, {});
  t.diagnostic(`second clone: ${second.copy.stats?.regularFilesTransferred} files transferred in ${second.copy.durationMs} ms`);
  assert.deepEqual(await Promise.all(unchanged.map(async (f) => (await stat(join(target, f)).catch(() => stat(join(target, 'etc/os-release')))).ino)), inodes, 'unchanged files are untouched');
  // Only the files the fix-ups changed differ from the source: hostname, hosts, interfaces, netplan.
  assert.ok((second.copy.stats?.regularFilesTransferred ?? 99) <= 4, JSON.stringify(second.copy.stats));
  assert.equal((await read('etc/machine-id')).trim(), machineId, 'the machine ID is kept');
  assert.equal(await read('etc/ssh/ssh_host_ed25519_key.pub'), hostKey, 'the host keys are kept');
  assert.ok(second.verify?.ok);
});

test('haoscar clone through bin/haoscar.js: a dry run, a re-clone with its report, a usage error', async () => {
  const c = cluster ?? (cluster = await startCluster());
  await c.web();
  const configFile = join(dir, 'haoscar.yaml');
  await writeFile(configFile, `cluster: ${c.name}\ntemporal: { address: "${await temporalAddress()}" }\n${body()}`);
  const fresh = join(dir, 'target-cli');
  await mkdir(fresh);
  const dry = await haoscarCli('clone', '-c', configFile, '--from', 'n1', '--to', 'n2', '--target-root', fresh, '--source-root', source, '--dry-run');
  assert.equal(dry.exitCode, 0, dry.stderr);
  assert.match(dry.stdout, /^dry run: a clone of n1 onto n2:\S+ would transfer \d+ files/m);
  assert.match(dry.stdout, /^ {2}\/etc\/hostname: n1 -> n2$/m);
  assert.match(dry.stdout, /^ {2}\/etc\/network\/interfaces: line 5: address 127\.0\.0\.1\/8 -> address 127\.0\.0\.2\/8$/m);
  assert.deepEqual(await readdir(fresh), [], 'the dry run changed nothing');

  // Onto the target the first test cloned: only the fixed-up files move, the report is complete.
  const again = await haoscarCli('clone', '-c', configFile, '--from', 'n1', '--to', 'n2', '--target-root', target, '--source-root', source);
  assert.equal(again.exitCode, 0, again.stderr);
  assert.match(again.stdout, /^cloned n1 onto n2:/m);
  assert.match(again.stdout, /^its ssh host keys/m);
  assert.match(again.stdout, /names a disk of the source: UUID=/);
  assert.match(again.stdout, /^ {2}sshd -t in a chroot: ok$/m);
  assert.match(again.stdout, /^ {2}dpkg --audit in a chroot: ok$/m);

  const same = await haoscarCli('clone', '-c', configFile, '--from', 'n1', '--to', 'n1', '--target-root', fresh);
  assert.equal(same.exitCode, 2, same.stderr);
  assert.match(same.stderr, /--from and --to name the same node/);
});

test('a copy cut off mid-way (sshd and its connections killed) is retried and resumes: the clone completes', async (t) => {
  const c = cluster ?? (cluster = await startCluster());
  await c.web();
  const fresh = join(dir, 'target-resumed');
  await mkdir(fresh);
  const done = runClone(c, { targetRoot: fresh });
  const copied = async () => Number((await execa('du', ['-sb', fresh], { reject: false })).stdout.split(/\s/)[0] ?? 0);
  await waitFor('30 MiB copied into the target', async () => (await copied()) > 30 * 1048576, 60_000, 50);
  const cutAt = await copied();
  await sshd!.restart();
  const r = await done;
  t.diagnostic(`cut at ${cutAt} bytes; the copy took ${r.copy.attempts} attempts, ${r.copy.stats?.transferredFileSize} bytes in the last`);
  assert.ok(r.copy.attempts >= 2, `the copy was retried: ${JSON.stringify(r.copy)}`);
  // The retry did not start over: what the first attempt copied was not sent again.
  assert.ok((r.copy.stats?.transferredFileSize ?? Infinity) < (r.copy.stats?.totalFileSize ?? 0) - cutAt / 2, JSON.stringify(r.copy.stats));
  assert.ok(r.verify?.ok, JSON.stringify(r.verify));
  assert.equal(await readFile(join(fresh, 'etc/hostname'), 'utf8'), 'n2\n');
});

test('a copy order not signed by the workflow worker (someone with access to Temporal only) is refused before anything is done', async () => {
  const c = cluster ?? (cluster = await startCluster());
  await c.web();
  const attackerQueue = `attacker-${c.name}`;
  const worker = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: attackerQueue,
    workflowBundle: await bundleWorkflowCode({ workflowsPath: fileURLToPath(new URL('../fixtures/attacker-workflows/index.ts', import.meta.url)), logger: new DefaultLogger('WARN') }),
  });
  const running = worker.run();
  try {
    const victim = join(dir, 'victim');
    await mkdir(victim);
    await writeFile(join(victim, 'precious'), 'the standby\'s own data\n');
    const input = { source: 'n1', sourceHost: '127.0.0.1', sourceRoot: source, targetRoot: victim, filters: ['+ /**'], dryRun: false, checksum: false };
    const outcome = await failureType(c.client.workflow.execute('forge', { taskQueue: attackerQueue, workflowId: uniqueName('forge-clone'), args: [{ taskQueue: nodeTaskQueue(c.name, 'n2'), activity: 'cloneCopy', input }] }));
    assert.match(outcome, new RegExp(`^${ERROR_TYPES.Unauthenticated}: node n2 refused cloneCopy`));
    assert.equal(await readFile(join(victim, 'precious'), 'utf8'), 'the standby\'s own data\n', 'nothing was deleted');
    await assert.rejects(stat(join(victim, 'etc')), 'nothing was copied');
  } finally {
    worker.shutdown();
    await running;
  }
});

test('a target that holds a group refuses the copy itself, whatever the controller said', async () => {
  const c = await startCluster(() => ['web']);
  try {
    await c.web();
    assert.match(await failureType(runClone(c, {})), new RegExp(`^${ERROR_TYPES.TargetRunsGroup}: node n2 runs group\\(s\\) web`));
  } finally {
    await c.close();
  }
});
