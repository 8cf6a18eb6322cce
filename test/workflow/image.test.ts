/**
 * Issue 13 item 1, golden images: `imageCapture` takes n1's root (a real debootstrapped Debian
 * root, cached per machine: test/support/debootstrap.ts) into a directory of the witness;
 * `imageDeploy` puts it onto n2's empty target root. The workflows run on a real Temporal dev
 * server with the real image activities on the witness's queue (as `haoscar worker` runs them)
 * and the real clone activities on n2's queue; every copy goes over real ssh (an sshd on
 * 127.0.0.1 that allows the key only `rrsync -ro`): the witness pulls from n1, n2 pulls from
 * the witness.
 *
 * Not a network lab: the witness, n1 and n2 are directories of this machine and ssh goes over
 * the loopback, so the transport, the manifest, the fix-ups and the chroot checks are real, the
 * three machines are not.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { closeTemporal, temporalAddress, testWorkerConnection } from '../support/temporal.js';
import { haoscarCli } from '../support/lab.js';
import { failureType, twoNodeWeb, type WorkflowCluster } from '../support/workflow-cluster.js';
import { startCloneCluster } from '../support/clone-cluster.js';
import { TEST_KEY } from '../support/cluster-key.js';
import { debootstrapTree, linkedRoot, rescueTargetRoot } from '../support/debootstrap.js';
import { startTestSshd, type TestSshd } from '../support/sshd.js';
import { createImageActivities } from '../../activities/image.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { cloneWorkflowId, clusterTaskQueue, ERROR_TYPES, imageCaptureWorkflowId, witnessTaskQueue } from '../../workflows/shared.js';
import type { ImageCaptureResult, ImageDeployResult } from '../../workflows/image.js';
import type { ImageCaptureInput, ImageDeployInput } from '../../workflows/inputs.js';
import { parseImageManifest } from '../../workflows/image-plan.js';

let cluster: WorkflowCluster | undefined;
let witness: { worker: Worker; running: Promise<void> } | undefined;
let sshd: TestSshd | undefined;
let dir = '';
after(async () => {
  witness?.worker.shutdown();
  await witness?.running.catch(() => undefined);
  await cluster?.close().catch(() => undefined);
  await sshd?.stop().catch(() => undefined);
  await closeTemporal();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let source = '';
let target = '';
let image = '';
before(async () => {
  const tree = await debootstrapTree();
  dir = await mkdtemp(join(tmpdir(), 'haoscar-image-test-'));
  source = join(dir, 'n1-root');
  target = join(dir, 'n2-target');
  image = join(dir, 'witness', 'images', 'golden');
  await linkedRoot(tree, source, {
    'etc/hostname': 'n1\n',
    'etc/hosts': '127.0.0.1\tlocalhost\n127.0.1.1\tn1.example.org n1\n',
    'etc/machine-id': `${'1'.repeat(32)}\n`,
    'etc/network/interfaces': 'auto lo\niface lo inet loopback\nauto eth0\niface eth0 inet static\n    address 127.0.0.1/8\n',
    'var/lib/haoscar/epochs.json': '{"web": 3}\n',
  });
  await rescueTargetRoot(target);
  sshd = await startTestSshd(join(dir, 'ssh'));
});

const body = () => `${twoNodeWeb({ lease: '{ ttl: 3000ms, margin: 300ms }' })}clone: { sshPort: ${sshd!.port}, checksumSample: 100 }\n`;

/** The cluster with n2's clone activities and the witness's worker (what `haoscar worker` adds: workers/witness-worker.ts). */
async function startCluster(): Promise<WorkflowCluster> {
  const c = await startCloneCluster('image', body(), { ssh: sshd!.client });
  const worker = await Worker.create({
    connection: await testWorkerConnection(),
    taskQueue: witnessTaskQueue(c.name),
    activities: createImageActivities({ cluster: c.name, key: TEST_KEY, logger: silentLogger, exec: createExec(silentLogger), rsync: '/usr/bin/rsync', ssh: sshd!.client }),
  });
  witness = { worker, running: worker.run() };
  return c;
}

async function capture(c: WorkflowCluster, input: Partial<ImageCaptureInput> = {}): Promise<ImageCaptureResult> {
  const args: ImageCaptureInput = { cluster: c.name, from: 'n1', dir: image, sourceRoot: source, ...input };
  const handle = await c.client.workflow.start('imageCapture', { workflowId: `${imageCaptureWorkflowId(c.name, args.dir)}/${Date.now()}`, taskQueue: clusterTaskQueue(c.name), args: [args] });
  return (await handle.result()) as ImageCaptureResult;
}

async function deploy(c: WorkflowCluster, input: Partial<ImageDeployInput> = {}): Promise<ImageDeployResult> {
  const args: ImageDeployInput = { cluster: c.name, dir: image, to: 'n2', targetRoot: target, witnessHost: '127.0.0.1', ...input };
  const handle = await c.client.workflow.start('imageDeploy', { workflowId: `${cloneWorkflowId(c.name, args.to)}/${Date.now()}`, taskQueue: clusterTaskQueue(c.name), args: [args] });
  return (await handle.result()) as ImageDeployResult;
}

test("n1's root is captured into an image on the witness with its manifest, without its identity or agent state", async (t) => {
  cluster = await startCluster();
  const c = cluster;
  await c.web();

  // ---- refusals: a directory with someone's data is not captured into (its --delete would remove it)
  const data = join(dir, 'witness', 'someones-data');
  await mkdir(data, { recursive: true });
  await writeFile(join(data, 'thesis.tex'), 'years of work\n');
  assert.match(await failureType(capture(c, { dir: data })), new RegExp(`^${ERROR_TYPES.ImageRefused}: .*someones-data is not empty and is not an image \\(it holds thesis\\.tex\\)`));
  assert.deepEqual(await readdir(data), ['thesis.tex']);

  const first = await capture(c);
  t.diagnostic(`capture: ${first.copy.stats?.files} entries, ${first.copy.stats?.totalFileSize} bytes in ${first.copy.durationMs} ms; ${first.verify.sampled} sampled`);
  assert.equal(first.prepared.created, true);
  assert.ok(first.verify.ok, JSON.stringify(first.verify));
  assert.ok(first.verify.sampled >= 50, `sampled ${first.verify.sampled}`);
  assert.deepEqual(first.verify.checks, [], 'no chroot checks on an image (it has no host keys)');
  assert.deepEqual((await readdir(image)).sort(), ['haoscar-image.json', 'root'], 'the capture mark is gone once sealed');
  assert.equal((await stat(image)).mode & 0o777, 0o700, 'the image holds /etc/shadow: only root reads it');

  const manifest = parseImageManifest(await readFile(join(image, 'haoscar-image.json'), 'utf8'));
  assert.deepEqual(manifest, first.manifest);
  assert.equal(manifest.cluster, c.name);
  assert.deepEqual(manifest.source, { node: 'n1', addresses: ['127.0.0.1'], root: source });
  assert.equal(manifest.osRelease?.id, 'debian');
  assert.match(manifest.osRelease?.name ?? '', /^Debian GNU\/Linux 12/);
  assert.match(manifest.haoscarVersion, /^\d+\.\d+\.\d+/);
  assert.ok(Date.parse(manifest.startedAt) <= Date.parse(manifest.capturedAt) && Date.now() - Date.parse(manifest.capturedAt) < 600_000, `${manifest.startedAt} ${manifest.capturedAt}`);
  assert.ok((manifest.stats?.bytes ?? 0) > 100 * 1048576, JSON.stringify(manifest.stats));
  assert.ok(manifest.filters.includes('- /etc/ssh/ssh_host_*'));

  const tree = join(image, 'root');
  assert.equal(await readFile(join(tree, 'etc/hostname'), 'utf8'), 'n1\n', 'the image is n1 as it is');
  await assert.rejects(stat(join(tree, 'etc/machine-id')), 'no machine ID in the image');
  assert.deepEqual((await readdir(join(tree, 'etc/ssh'))).filter((f) => f.startsWith('ssh_host_')), [], 'no ssh host keys in the image');
  assert.deepEqual(await readdir(join(tree, 'var/lib/haoscar')), [], "no agent state in the image");
  assert.equal((await stat(join(tree, 'usr/bin/dpkg'))).mode, (await stat(join(source, 'usr/bin/dpkg'))).mode);

  // ---- a capture again: the image is brought up to date, only what changed is sent
  await writeFile(join(source, 'etc/motd.new'), 'changed since\n');
  const again = await capture(c);
  t.diagnostic(`capture again: ${again.copy.stats?.regularFilesTransferred} files in ${again.copy.durationMs} ms`);
  assert.equal(again.prepared.previous?.node, 'n1');
  assert.equal(again.copy.stats?.regularFilesTransferred, 1, JSON.stringify(again.copy.stats));
  assert.equal(await readFile(join(tree, 'etc/motd.new'), 'utf8'), 'changed since\n');
  await rm(join(source, 'etc/motd.new'));
});

test('the image is deployed onto n2 with its fix-ups and verified; a second deploy leaves unchanged files alone; refusals change nothing', async (t) => {
  const c = cluster ?? (cluster = await startCluster());
  await c.web();
  if (!(await stat(join(image, 'haoscar-image.json')).catch(() => undefined))) await capture(c);

  // ---- refusals: a directory that is not an image, toward a group's owner
  const notImage = join(dir, 'witness', 'not-an-image');
  await mkdir(join(notImage, 'root', 'etc'), { recursive: true });
  assert.match(await failureType(deploy(c, { dir: notImage })), new RegExp(`^${ERROR_TYPES.ImageRefused}: .*not-an-image on the witness is not an image \\(it has no haoscar-image\\.json\\)`));
  // A capture that was interrupted (its mark left behind) is not deployed, whatever its manifest says.
  const interrupted = join(dir, 'witness', 'interrupted');
  await mkdir(join(interrupted, 'root'), { recursive: true });
  await writeFile(join(interrupted, 'haoscar-image.json'), await readFile(join(image, 'haoscar-image.json')));
  await writeFile(join(interrupted, 'haoscar-image.capturing.json'), '{}\n');
  assert.match(await failureType(deploy(c, { dir: interrupted })), new RegExp(`^${ERROR_TYPES.ImageRefused}: .*interrupted on the witness is being captured, or its capture was interrupted`));
  assert.match(await failureType(deploy(c, { to: 'n1' })), new RegExp(`^${ERROR_TYPES.TargetRunsGroup}: node 'n1' owns group\\(s\\) web .*an image deploy never goes toward the owner of a group`));
  assert.match(await failureType(deploy(c, { targetRoot: '/proc/..' })), new RegExp(`^${ERROR_TYPES.CloneRefused}: .*running system's own root`));
  assert.ok((await stat(join(target, 'stale-file'))).isFile(), 'the refusals deleted nothing');
  await assert.rejects(stat(join(target, 'etc')), 'the refusals copied nothing');

  const first = await deploy(c);
  t.diagnostic(`deploy: ${first.copy.stats?.files} entries, ${first.copy.stats?.totalFileSize} bytes in ${first.copy.durationMs} ms; verify: ${JSON.stringify(first.verify?.checks.map((x) => [x.name, x.ok]))}`);
  assert.equal(first.from, 'n1');
  assert.equal(first.image.source.node, 'n1');
  const read = (f: string) => readFile(join(target, f), 'utf8');
  assert.equal(await read('etc/hostname'), 'n2\n');
  assert.match(await read('etc/hosts'), /^127\.0\.1\.1\tn2\.example\.org n2$/m);
  assert.match(await read('etc/network/interfaces'), /address 127\.0\.0\.2\/8/);
  const machineId = (await read('etc/machine-id')).trim();
  assert.match(machineId, /^[0-9a-f]{32}$/);
  assert.notEqual(machineId, '1'.repeat(32));
  assert.equal(first.fixups.hostKeys.length, 3, first.fixups.hostKeys.join('\n'));
  const hostKey = await read('etc/ssh/ssh_host_ed25519_key.pub');
  await assert.rejects(stat(join(target, 'stale-file')), "the standby's old files are deleted");
  assert.ok((await stat(join(target, 'mnt/rescue/keep'))).isFile(), 'an excluded path on the target is not deleted');
  await assert.rejects(stat(join(target, 'haoscar-image.json')), 'the manifest is not part of the system');
  assert.ok(first.verify?.ok, JSON.stringify(first.verify));
  assert.deepEqual(first.verify?.checks.map((x) => [x.name, x.ok]), [['sshd -t', true], ['dpkg --audit', true]]);

  // ---- a second deploy: unchanged files keep their inode; the identity stays
  const unchanged = ['usr/bin/dpkg', 'etc/os-release', 'usr/lib/x86_64-linux-gnu/libc.so.6', 'etc/ssh/sshd_config', 'var/lib/dpkg/status'];
  const inodes = async () => Promise.all(unchanged.map(async (f) => (await stat(join(target, f)).catch(() => stat(join(target, 'etc/os-release')))).ino));
  const before = await inodes();
  const second = await deploy(c);
  t.diagnostic(`second deploy: ${second.copy.stats?.regularFilesTransferred} files transferred in ${second.copy.durationMs} ms`);
  assert.deepEqual(await inodes(), before, 'unchanged files are untouched');
  // Only the files the fix-ups changed differ from the image: hostname, hosts, interfaces.
  assert.ok((second.copy.stats?.regularFilesTransferred ?? 99) <= 3, JSON.stringify(second.copy.stats));
  assert.equal((await read('etc/machine-id')).trim(), machineId, 'the machine ID is kept');
  assert.equal(await read('etc/ssh/ssh_host_ed25519_key.pub'), hostKey, 'the host keys are kept');
  assert.ok(second.verify?.ok);
});

test('haoscar image through bin/haoscar.js: usage errors, a deploy dry run, a refusal', async () => {
  const c = cluster ?? (cluster = await startCluster());
  await c.web();
  if (!(await stat(join(image, 'haoscar-image.json')).catch(() => undefined))) await capture(c);
  const configFile = join(dir, 'haoscar.yaml');
  await writeFile(configFile, `cluster: ${c.name}\ntemporal: { address: "${await temporalAddress()}" }\n${body()}`);

  const usage = await haoscarCli('image', 'deploy', image, 'n2', '-c', configFile);
  assert.equal(usage.exitCode, 2, usage.stderr);
  assert.match(usage.stderr, /required option '--target-root <path>' not specified/);
  const unknown = await haoscarCli('image', 'capture', 'n9', join(dir, 'witness', 'other'), '-c', configFile);
  assert.equal(unknown.exitCode, 2, unknown.stderr);
  assert.match(unknown.stderr, /NODE: unknown node 'n9' \(known: n1, n2\)/);

  const fresh = join(dir, 'target-cli');
  await mkdir(fresh);
  // --witness-host left out: the host of temporal.address (127.0.0.1 here, where the test's sshd listens).
  const dry = await haoscarCli('image', 'deploy', image, 'n2', '-c', configFile, '--target-root', fresh, '--dry-run');
  assert.equal(dry.exitCode, 0, dry.stderr);
  assert.match(dry.stdout, /^dry run: a deploy of the image \S+golden \(Debian GNU\/Linux 12 \(bookworm\) of n1, captured \S+ by HA-OSCAR \S+\) onto n2:\S+ would transfer \d+ files/m);
  assert.match(dry.stdout, /^ {2}\/etc\/hostname: n1 -> n2$/m);
  assert.match(dry.stdout, /^ {2}\/etc\/network\/interfaces: line 5: address 127\.0\.0\.1\/8 -> address 127\.0\.0\.2\/8$/m);
  assert.deepEqual(await readdir(fresh), [], 'the dry run changed nothing');

  const notImage = await haoscarCli('image', 'deploy', join(dir, 'n2-target'), 'n2', '-c', configFile, '--target-root', fresh);
  assert.equal(notImage.exitCode, 1, notImage.stderr);
  assert.match(notImage.stderr, /the image deploy failed: .*n2-target on the witness is not an image/);
});
