/**
 * Clone between two lab hosts, onto a standby booted into a rescue system (issue 13 item 1,
 * docs/clone.md#from-a-rescue-system). `alpha` runs its agent and owns the group; its root is the
 * cached debootstrapped Debian tree (test/support/debootstrap.ts), served by a real sshd in
 * alpha's network namespace on its lab address (key restricted to `rrsync -ro /`). `beta` runs
 * NO agent: only `haoscar rescue --node beta` in its namespace, as on a rescue system. The clone,
 * started with `haoscar clone` from the root side, runs its steps in that rescue worker, which
 * pulls alpha's root over the veth link into beta's target root.
 *
 * Checked: the copy went over alpha's veth (its byte counters), the fix-ups (host name, loopback
 * line, address, machine ID, host keys), the report, the exclusions; `--boot-device` reaching the
 * rescue worker (refused there for a device that is not a block device); the rescue worker refused
 * to start beside a running agent; and that the controller never had beta up nor as an owner,
 * during the clone and after alpha's agent stopped (the group then has nowhere to go: beta is
 * not a candidate even with its rescue worker on its queue).
 *
 * Not a real rescue system: the hosts share this machine's file system (the target root is a
 * directory, not a mounted disk), and both namespaces run this machine's kernel.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { NetLab } from './netlab.js';
import { GROUP, LabCluster, ROOT } from './cluster.js';
import { TIMING } from './failover-setup.js';
import { debootstrapTree, linkedRoot, rescueTargetRoot } from '../support/debootstrap.js';
import { startTestSshd, type TestSshd } from '../support/sshd.js';
import { waitFor } from '../support/wait.js';

const HAOSCAR = join(ROOT, 'bin/haoscar.js');

/** Bytes through a root-side veth end, both directions (what its namespace sent and received). */
async function vethBytes(dev: string): Promise<number> {
  const { stdout } = await execa('ip', ['-j', '-s', 'link', 'show', 'dev', dev]);
  const [link] = JSON.parse(stdout) as { stats64: { rx: { bytes: number }; tx: { bytes: number } } }[];
  return link!.stats64.rx.bytes + link!.stats64.tx.bytes;
}

test('a standby in a rescue system is cloned from its peer over the lab link; the rescue worker never holds a group', async (t) => {
  const tree = await debootstrapTree();
  const lab = await NetLab.create({ hosts: ['alpha', 'beta'], client: false });
  // What the clean-up stops, as far as the test got.
  const made: { sshd?: TestSshd; cluster?: LabCluster; rescue?: ResultPromise } = {};
  let watching = true;
  t.after(async () => {
    watching = false;
    if (process.env.HAOSCAR_LAB_KEEP) process.stderr.write(`lab kept in ${lab.dir}\n`);
    made.rescue?.kill('SIGTERM');
    await Promise.race([made.rescue?.catch(() => undefined), new Promise((r) => setTimeout(r, 10_000))]);
    made.rescue?.kill('SIGKILL');
    await made.sshd?.stop().catch(() => undefined);
    await made.cluster?.close();
    await lab.close();
  });
  const [alphaIp, betaIp] = [lab.address('alpha'), lab.address('beta')];

  // ---- alpha's root: the debootstrapped tree, hard-linked, with alpha's identity.
  const source = join(lab.dir, 'alpha-root');
  await linkedRoot(tree, source, {
    'etc/hostname': 'alpha\n',
    'etc/hosts': `127.0.0.1\tlocalhost\n127.0.1.1\talpha.example.org alpha\n${alphaIp}\talpha\n${betaIp}\tbeta\n`,
    'etc/machine-id': `${'a'.repeat(32)}\n`,
    'etc/network/interfaces': `auto lo\niface lo inet loopback\nauto eth0\niface eth0 inet static\n    address ${alphaIp}/24\n`,
    'etc/fstab': 'UUID=0b6e2e63-6b4e-4f2b-9f0a-1d2e3f4a5b6c / ext4 errors=remount-ro 0 1\n',
    'tmp/scratch': 'not part of the system\n',
  });
  // ---- beta's target root, as a rescue system would have it mounted.
  const target = join(lab.dir, 'beta-target');
  await rescueTargetRoot(target);

  // ---- alpha's sshd, in alpha's namespace on its lab address only: beta reaches it over the link.
  const sshd = await startTestSshd(join(lab.dir, 'ssh'), { address: alphaIp, netns: lab.ns('alpha') });
  made.sshd = sshd;
  const c = new LabCluster(lab, TIMING, undefined, {
    noAgent: ['beta'],
    extraYaml: `sync: { ssh: { user: root, identityFile: ${sshd.identityFile}, knownHostsFile: ${sshd.knownHostsFile} } }\nclone: { sshPort: ${sshd.port}, checksumSample: 100 }\n`,
  });
  made.cluster = c;
  await c.start();

  // ---- the controller's view, all along: beta is never up and never an owner.
  const seen: string[] = [];
  const watcher = (async () => {
    while (watching) {
      const view = await c.ownership();
      const beta = view?.nodes.beta?.state;
      if (beta === 'up') seen.push(`beta up (reported by ${view!.nodes.beta!.reportedBy})`);
      for (const [g, o] of Object.entries(view?.groups ?? {})) if (o.owner === 'beta') seen.push(`beta owner of ${g} (${o.state})`);
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  // ---- a rescue worker beside a running agent is refused (they would share its task queue).
  const beside = await execa('ip', ['netns', 'exec', lab.ns('alpha'), process.execPath, HAOSCAR, 'rescue', '--config', c.configFile, '--node', 'alpha'], { reject: false, cwd: ROOT, timeout: 120_000 });
  assert.equal(beside.exitCode, 1, `${beside.stdout}\n${beside.stderr}`);
  assert.match(beside.stderr, /the agent of node 'alpha' runs on this machine .*stop it first/);

  // ---- beta's rescue worker: says what it is, in --help and in its log.
  const help = await execa(process.execPath, [HAOSCAR, 'rescue', '--help'], { cwd: ROOT, reject: false });
  assert.match(help.stdout, /rescue or install system/);
  assert.match(help.stdout, /never becomes an owner/);
  const rescueLog = join(lab.dir, 'rescue-beta.log');
  const rescue = lab.spawn('beta', [process.execPath, HAOSCAR, 'rescue', '--config', c.configFile, '--node', 'beta'], { cwd: ROOT, log: rescueLog });
  made.rescue = rescue;
  const log = () => readFile(rescueLog, 'utf8').catch(() => '');
  await waitFor('the rescue worker serves beta\'s queue', async () => {
    if (rescue.exitCode !== null) throw new Error(`the rescue worker exited:\n${await log()}`);
    return (await log()).includes('rescue worker for node beta: serving ONLY the clone') ? true : undefined;
  }, 120_000, 200);
  assert.match(await log(), /it runs no group, sends no heartbeats and reports nothing to the controller/);

  // ---- the clone, from the root side, as an administrator runs it.
  const vethBefore = await vethBytes(lab.veth('alpha'));
  const started = Date.now();
  const run = await c.cli(['clone', '--from', 'alpha', '--to', 'beta', '--target-root', target, '--source-root', source], { timeoutMs: 150_000 });
  const cloneMs = Date.now() - started;
  assert.equal(run.exitCode, 0, `${run.all}\n--- rescue worker\n${(await log()).split('\n').slice(-20).join('\n')}`);
  const moved = (await vethBytes(lab.veth('alpha'))) - vethBefore;
  const report = run.stdout;
  t.diagnostic(`clone over the lab link: ${(cloneMs / 1000).toFixed(1)} s, ${(moved / 1048576).toFixed(0)} MiB through alpha's veth`);

  // It went over alpha's link (the tree is ~190 MB; the lab's own traffic is a few MB), and the
  // rescue worker ran its steps (nobody else serves beta's queue).
  assert.ok(moved > 100 * 1048576, `only ${moved} bytes through alpha's veth`);
  assert.match(await log(), /"msg":"clone copy"/);
  assert.match(await log(), /"msg":"clone verified"/);

  // ---- the report.
  assert.match(report, /^cloned alpha onto beta:.*beta-target: \d+ entries/m);
  assert.match(report, new RegExp(`^fix-ups \\(host name beta, ${alphaIp.replace(/\./g, '\\.')} -> ${betaIp.replace(/\./g, '\\.')}\\):`, 'm'));
  assert.match(report, /^ {2}\/etc\/hostname: alpha -> beta$/m);
  assert.match(report, /^ {2}\/etc\/network\/interfaces: line 5: /m);
  assert.match(report, /^its ssh host keys .*\n( {2}\d+ SHA256:\S+ .*\n)* {2}256 SHA256:\S+ .*\(ED25519\)$/m);
  assert.match(report, /^check by hand:\n(.*\n)*.*\/etc\/fstab line 1 names a disk of the source: UUID=0b6e2e63/m);
  assert.match(report, /^verified: \d+ sampled files compared by checksum with alpha: all equal$/m);
  assert.match(report, /^ {2}sshd -t in a chroot: ok$/m);
  assert.match(report, /^ {2}dpkg --audit in a chroot: ok$/m);

  // ---- the result on beta's target root.
  const read = (f: string) => readFile(join(target, f), 'utf8');
  assert.equal(await read('etc/hostname'), 'beta\n');
  const hosts = await read('etc/hosts');
  assert.match(hosts, /^127\.0\.1\.1\tbeta\.example\.org beta$/m);
  assert.match(hosts, new RegExp(`^${alphaIp}\\talpha$`, 'm'), 'the cluster\'s list of nodes stays');
  assert.match(await read('etc/network/interfaces'), new RegExp(`address ${betaIp}/24`));
  const machineId = (await read('etc/machine-id')).trim();
  assert.match(machineId, /^[0-9a-f]{32}$/);
  assert.notEqual(machineId, 'a'.repeat(32));
  const targetKey = await read('etc/ssh/ssh_host_ed25519_key.pub');
  const sourceKey = await readFile(join(source, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8').catch(() => undefined);
  assert.notEqual(targetKey, sourceKey, "alpha's host key never leaves it");
  assert.equal(await read('etc/os-release'), await readFile(join(tree, 'etc/os-release'), 'utf8'));
  assert.equal(await stat(join(target, 'stale-file')).catch(() => undefined), undefined, "the old system's file is deleted");
  assert.equal(await read('mnt/rescue/keep'), 'the rescue system mounts things here\n', "the rescue system's mounts are kept");
  assert.equal(await stat(join(target, 'tmp', 'scratch')).catch(() => undefined), undefined, '/tmp is not copied');

  // ---- --boot-device goes to the rescue worker too (a signed order it verifies): a dry run
  // naming a device that is not a block device there is refused by it, with its words.
  const boot = await c.cli(['clone', '--from', 'alpha', '--to', 'beta', '--target-root', target, '--source-root', source, '--dry-run', '--boot-device', '/dev/null'], { timeoutMs: 120_000 });
  assert.equal(boot.exitCode, 1, boot.all);
  assert.match(boot.all ?? '', /the boot loader on beta:\/dev\/null: \/dev\/null is not a block device on this node/);

  // ---- with the rescue worker on beta's queue, alpha's agent stops (and says so: it reports
  // itself suspect as it lets go of its group). A node the controller had up would now be given
  // the group; beta must not be (the controller never heard of it being up).
  await c.stopAgent('alpha');
  await waitFor('the controller no longer has alpha up', async () => {
    const v = await c.ownership();
    return v && v.nodes.alpha?.state !== 'up' ? true : undefined;
  }, 60_000, 200);
  // Long enough for the controller to place the group elsewhere, were there a candidate (a
  // failover starts within a second of the report here).
  await new Promise((r) => setTimeout(r, 6000));
  watching = false;
  await watcher;
  const view = await c.ownership();
  t.diagnostic(`after alpha's agent stopped: ${GROUP} ${JSON.stringify({ owner: view?.groups[GROUP]?.owner, state: view?.groups[GROUP]?.state })}, alpha ${view?.nodes.alpha?.state}, beta ${view?.nodes.beta?.state ?? 'not listed'}`);
  assert.notEqual(view?.groups[GROUP]?.owner, 'beta');
  assert.notEqual(view?.nodes.beta?.state, 'up');
  assert.deepEqual(seen, [], `the controller saw beta as a member: ${seen.slice(0, 5).join('; ')}`);
  assert.equal(rescue.exitCode, null, 'the rescue worker runs on');
});
