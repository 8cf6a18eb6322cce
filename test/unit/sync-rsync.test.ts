/**
 * The rsync layer against a REAL rsync daemon (started by RsyncDaemon on 127.0.0.1) and real
 * directories: what a standby's pull copies, deletes and leaves alone, that nothing can be
 * written toward the daemon, progress and bandwidth, resuming an interrupted transfer, and the
 * errors of a full or read-only destination (tmpfs mounts). Needs root (chroot, mount).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import type { FileSet } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { secretKeyId } from '../../src/heartbeat/secret.js';
import { derivePassword, RsyncDaemon, RsyncDaemonError, writeDaemonFiles, type DaemonFiles, type RsyncDaemonExit } from '../../src/sync/daemon.js';
import { moduleName, PARTIAL_DIR, RsyncError, rsyncPullArgs, runRsync, type RsyncProgress, type RunRsyncOptions } from '../../src/sync/rsync.js';
import { waitFor } from '../support/wait.js';
import { freePort } from '../support/lab.js';

const RSYNC = '/usr/bin/rsync';
const isRoot = process.getuid?.() === 0;
const SECRET = Buffer.from('sync-test-secret-sync-test-secret');
const MiB = 1024 * 1024;

const SET: FileSet = { name: 'data', paths: [], excludes: [], delete: true, bwlimit: 0, continuous: false, batchMs: 200, verifyEveryMs: 60_000, checksum: false, ioTimeoutMs: 30_000 };

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

/** Every file under `dir` (relative paths), sorted, for comparing trees. */
function tree(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .flatMap((entry) => {
      const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
      return entry.isDirectory() ? [`${rel}/`, ...tree(dir, rel)] : [rel];
    })
    .sort();
}

void describe('rsync pulls from a real read-only daemon', { skip: !isRoot && 'needs root: the daemon chroots and the tests mount tmpfs' }, () => {
  const root = mkdtempSync(join(tmpdir(), 'haoscar-sync-'));
  const owner = join(root, 'owner');
  const standby = join(root, 'standby');
  const mounts: string[] = [];
  let files: DaemonFiles;
  let daemon: RsyncDaemon;
  let port: number;
  const dirs = { basic: join(owner, 'basic'), big: join(owner, 'big'), huge: join(owner, 'huge'), five: join(owner, 'five') };
  const modules = Object.fromEntries(Object.keys(dirs).map((set) => [set, moduleName('g', set, 0)])) as Record<keyof typeof dirs, string>;

  before(async () => {
    mkdirSync(standby, { recursive: true });
    for (const dir of Object.values(dirs)) mkdirSync(dir, { recursive: true });
    // basic: nested directories, a symlink, a hard link, modes.
    mkdirSync(join(dirs.basic, 'sub/deeper'), { recursive: true });
    writeFileSync(join(dirs.basic, 'index.html'), 'hello');
    writeFileSync(join(dirs.basic, 'sub/deeper/data.bin'), randomBytes(4096));
    writeFileSync(join(dirs.basic, 'private'), 'secret');
    chmodSync(join(dirs.basic, 'private'), 0o600);
    symlinkSync('index.html', join(dirs.basic, 'link'));
    linkSync(join(dirs.basic, 'index.html'), join(dirs.basic, 'hardlink'));
    // big: 20 MiB in four files (random: nothing to compress or match).
    for (let i = 0; i < 4; i++) writeFileSync(join(dirs.big, `part${i}`), randomBytes(5 * MiB));
    writeFileSync(join(dirs.huge, 'big.img'), randomBytes(30 * MiB));
    writeFileSync(join(dirs.five, 'five.img'), randomBytes(5 * MiB));

    port = await freePort();
    files = await writeDaemonFiles(join(root, 'daemon'), {
      cluster: 'test',
      port,
      address: '127.0.0.1',
      modules: Object.entries(dirs).map(([set, path]) => ({ name: modules[set as keyof typeof dirs], path, comment: `group g, file set ${set}` })),
      hostsAllow: ['127.0.0.1'],
      secret: SECRET,
    });
    daemon = new RsyncDaemon({ rsync: RSYNC, config: files.config, pidFile: files.pidFile, port, address: '127.0.0.1', logger: silentLogger });
    await daemon.start();
  });

  after(async () => {
    await daemon?.stop();
    for (const mount of mounts.reverse()) await execa('umount', ['-l', mount], { reject: false });
    rmSync(root, { recursive: true, force: true });
  });

  const dest = (name: string) => {
    const dir = join(standby, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const pull = (set: keyof typeof dirs, destination: string, overrides: Partial<FileSet> = {}, run: Partial<RunRsyncOptions> = {}) =>
    runRsync(rsyncPullArgs({ set: { ...SET, ...overrides }, source: { transport: 'daemon', host: '127.0.0.1', port, module: modules[set], passwordFile: files.passwordFile }, destination }), { rsync: RSYNC, ...run });
  const mountTmpfs = async (dir: string, options: string) => {
    await execa('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
    mounts.push(dir);
  };

  void test('the daemon files: secrets and password are 0600, the password is derived from the heartbeat secret', () => {
    assert.equal(statSync(files.secrets).mode & 0o777, 0o600);
    assert.equal(statSync(files.passwordFile).mode & 0o777, 0o600);
    const password = derivePassword(SECRET, 'test');
    assert.match(password, /^[0-9a-f]{64}$/);
    assert.equal(readFileSync(files.secrets, 'utf8'), `haoscar:${password}\nhaoscar-${secretKeyId(SECRET)}:${password}\n`);
    assert.equal(readFileSync(files.passwordFile, 'utf8'), `${password}\n`);
    assert.notEqual(derivePassword(SECRET, 'other-cluster'), password);
    const conf = readFileSync(files.config, 'utf8');
    for (const line of ['read only = yes', 'list = no', 'use chroot = yes', 'numeric ids = yes', 'hosts allow = 127.0.0.1', 'hosts deny = *', `auth users = haoscar, haoscar-${secretKeyId(SECRET)}`]) {
      assert.ok(conf.includes(`\n${line}\n`), `rsyncd.conf has "${line}"`);
    }
  });

  void test('a pull copies the tree: content, nested directories, symlinks, hard links, modes', async () => {
    const to = dest('basic');
    const result = await pull('basic', to);
    assert.equal(result.exitCode, 0);
    assert.equal(result.vanished, false);
    assert.deepEqual(tree(to), tree(dirs.basic));
    assert.equal(readFileSync(join(to, 'index.html'), 'utf8'), 'hello');
    assert.equal(sha256(join(to, 'sub/deeper/data.bin')), sha256(join(dirs.basic, 'sub/deeper/data.bin')));
    assert.equal(statSync(join(to, 'private')).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(to, 'link'), 'utf8'), 'hello');
    assert.equal(statSync(join(to, 'hardlink')).ino, statSync(join(to, 'index.html')).ino, 'hard link kept as a link');
    assert.ok(result.stats);
    assert.equal(result.stats.fileKinds.reg, 4);
    assert.equal(result.stats.regularFilesTransferred, 3, 'the hard link is not transferred as a file of its own');

    const again = await pull('basic', to);
    assert.equal(again.stats?.regularFilesTransferred, 0, 'nothing to transfer the second time');
  });

  void test('deletions propagate with delete: true and not with delete: false; excluded files on the standby stay', async () => {
    const src = join(owner, 'basic');
    const keep = dest('delete-false');
    const mirror = dest('delete-true');
    await pull('basic', keep, { delete: false });
    await pull('basic', mirror, { delete: true, excludes: ['*.local'] });
    writeFileSync(join(mirror, 'standby-only.local'), 'mine');
    writeFileSync(join(src, 'gone-soon'), 'x');
    await pull('basic', keep, { delete: false });
    await pull('basic', mirror, { delete: true, excludes: ['*.local'] });
    assert.ok(existsSync(join(keep, 'gone-soon')) && existsSync(join(mirror, 'gone-soon')));

    rmSync(join(src, 'gone-soon'));
    const kept = await pull('basic', keep, { delete: false });
    const mirrored = await pull('basic', mirror, { delete: true, excludes: ['*.local'] });
    assert.ok(existsSync(join(keep, 'gone-soon')), 'delete: false keeps what the owner deleted');
    assert.equal(kept.stats?.deletedFiles, 0);
    assert.ok(!existsSync(join(mirror, 'gone-soon')), 'delete: true removes it');
    assert.equal(mirrored.stats?.deletedFiles, 1);
    assert.equal(readFileSync(join(mirror, 'standby-only.local'), 'utf8'), 'mine', 'an excluded name on the standby is left alone');
  });

  void test('excludes: matching files and directories are not copied', async () => {
    mkdirSync(join(dirs.basic, 'cache'), { recursive: true });
    writeFileSync(join(dirs.basic, 'cache/blob'), 'cached');
    writeFileSync(join(dirs.basic, 'sub/scratch.tmp'), 'tmp');
    try {
      const to = dest('excludes');
      await pull('basic', to, { excludes: ['*.tmp', 'cache/'] });
      assert.ok(existsSync(join(to, 'index.html')));
      assert.ok(existsSync(join(to, 'sub/deeper/data.bin')));
      assert.ok(!existsSync(join(to, 'cache')), 'cache/ excluded');
      assert.ok(!existsSync(join(to, 'sub/scratch.tmp')), '*.tmp excluded in subdirectories too');
    } finally {
      rmSync(join(dirs.basic, 'cache'), { recursive: true });
      rmSync(join(dirs.basic, 'sub/scratch.tmp'));
    }
  });

  void test('a wrong password is refused: RsyncError kind auth, not retryable, says to compare the secrets', async () => {
    const wrong = join(root, 'wrong-password');
    writeFileSync(wrong, `${derivePassword(Buffer.from('another-secret-another-secret!!'), 'test')}\n`, { mode: 0o600 });
    const argv = rsyncPullArgs({ set: SET, source: { transport: 'daemon', host: '127.0.0.1', port, module: modules.basic, passwordFile: wrong }, destination: dest('wrong') });
    await assert.rejects(runRsync(argv, { rsync: RSYNC }), (err: unknown) => {
      assert.ok(err instanceof RsyncError, String(err));
      assert.equal(err.kind, 'auth');
      assert.equal(err.retryable, false);
      assert.equal(err.exitCode, 5);
      assert.match(err.message, /module g\.basic\.0 from 127\.0\.0\.1/);
      assert.match(err.message, /same heartbeat secret/);
      assert.match(err.message, /@ERROR: auth failed on module g\.basic\.0/);
      return true;
    });
  });

  void test('a secret rotation: the daemon serves every accepted secret under a user of its own, and the files are read again at the next connection', async () => {
    const NEW = Buffer.from('the-new-cluster-secret-0123456789');
    const pullAs = async (name: string, from: { passwordFile: string; user: string }) =>
      runRsync(rsyncPullArgs({ set: SET, source: { transport: 'daemon', host: '127.0.0.1', port, module: modules.basic, ...from }, destination: dest(name) }), { rsync: RSYNC });
    const write = (signing: Buffer, accepted: Buffer[]) => writeDaemonFiles(join(root, 'daemon'), {
      cluster: 'test', port, address: '127.0.0.1', hostsAllow: ['127.0.0.1'], secret: signing, acceptedSecrets: accepted,
      modules: Object.entries(dirs).map(([set, path]) => ({ name: modules[set as keyof typeof dirs], path, comment: `group g, file set ${set}` })),
    });
    // A second set of client files, as a peer in another step writes them (another directory).
    const peerFiles = (signing: Buffer, accepted: Buffer[]) => writeDaemonFiles(join(root, `peer-${secretKeyId(signing)}-${accepted.length}`), {
      cluster: 'test', port: port + 1, address: '127.0.0.1', hostsAllow: ['127.0.0.1'], secret: signing, acceptedSecrets: accepted, modules: [],
    });
    try {
      // Step 1 here (signs with the old secret, accepts the new one); the peer in step 2 pulls as the new secret's user.
      const step1 = await write(SECRET, [NEW]);
      assert.equal(step1.user, `haoscar-${secretKeyId(SECRET)}`, 'in a rotation, pulls log in as the signing secret\'s own user');
      const peerStep2 = await peerFiles(NEW, [SECRET]);
      await pullAs('rotation-step2-peer', peerStep2);
      // Step 3 at the peer (signs with the new one only) pulls as haoscar, with the new password: refused by this node still in step 1.
      const peerStep3 = await peerFiles(NEW, []);
      assert.equal(peerStep3.user, 'haoscar');
      await assert.rejects(pullAs('rotation-too-early', peerStep3), (err: unknown) => err instanceof RsyncError && err.kind === 'auth');
      // Once this node signs with the new secret too (step 2), the same pull passes: the daemon read its files again.
      await write(NEW, [SECRET]);
      await pullAs('rotation-step3-peer', peerStep3);
      // And a peer still in step 1 (signs with the old one) is still served.
      await pullAs('rotation-step1-peer', await peerFiles(SECRET, [NEW]));
    } finally {
      files = await write(SECRET, []);
    }
  });

  void test('a client address outside hosts allow is refused (rsync calls the module unknown to it)', async () => {
    // 127.0.0.2 is loopback too, but not in the daemon's hosts allow.
    const argv = rsyncPullArgs({ set: SET, source: { transport: 'daemon', host: '127.0.0.1', port, module: modules.basic, passwordFile: files.passwordFile }, destination: dest('other-host') });
    await assert.rejects(runRsync(['--address=127.0.0.2', ...argv], { rsync: RSYNC }), (err: unknown) => {
      assert.ok(err instanceof RsyncError, String(err));
      // With list = no, rsync does not tell a refused host that the module exists.
      assert.match(err.message, /@ERROR: (Unknown module|access denied)/);
      assert.match(err.message, /does not allow this node's address|same heartbeat secret/);
      return true;
    });
  });

  void test('nothing can be written to the daemon: a push and --remove-source-files are refused, the owner is unchanged', async () => {
    const before = tree(dirs.basic);
    const intruder = join(root, 'intruder');
    mkdirSync(intruder, { recursive: true });
    writeFileSync(join(intruder, 'index.html'), 'defaced');
    writeFileSync(join(intruder, 'planted'), 'x');
    const url = `rsync://haoscar@127.0.0.1:${port}/${modules.basic}/`;
    await assert.rejects(runRsync(['-a', '--delete', `--password-file=${files.passwordFile}`, `${intruder}/`, url], { rsync: RSYNC }), (err: unknown) => {
      assert.ok(err instanceof RsyncError, String(err));
      assert.equal(err.kind, 'read-only');
      assert.match(err.message, /module is read only/);
      return true;
    });
    await assert.rejects(runRsync(['-a', '--remove-source-files', `--password-file=${files.passwordFile}`, url, `${dest('remove-source')}/`], { rsync: RSYNC }), RsyncError);
    assert.deepEqual(tree(dirs.basic), before);
    assert.equal(readFileSync(join(dirs.basic, 'index.html'), 'utf8'), 'hello');
  });

  void test('progress: increasing bytes, 100% at the end; bwlimit makes the pull measurably slower', async () => {
    const progress: RsyncProgress[] = [];
    // 20 MiB at 10,000 KiB/s: about 2 s.
    const limited = await pull('big', dest('big-limited'), { bwlimit: 10_000 }, { onProgress: (p) => progress.push(p) });
    assert.ok(progress.length >= 3, `several progress lines (got ${progress.length})`);
    for (let i = 1; i < progress.length; i++) assert.ok(progress[i]!.bytes >= progress[i - 1]!.bytes, 'bytes never go down');
    const last = progress.at(-1)!;
    assert.equal(last.percent, 100);
    assert.equal(last.bytes, 20 * MiB);
    assert.ok(progress.some((p) => p.percent > 0 && p.percent < 100), 'intermediate percentages');
    assert.equal(limited.stats?.transferredFileSize, 20 * MiB);

    const unlimited = await pull('big', dest('big-unlimited'));
    assert.ok(limited.durationMs >= 1_200, `20 MiB at 10,000 KiB/s took ${limited.durationMs} ms (expected about 2 s)`);
    assert.ok(unlimited.durationMs * 2 < limited.durationMs, `without a limit ${unlimited.durationMs} ms, with ${limited.durationMs} ms`);
  });

  void test('an interrupted pull leaves a partial file in the partial dir; the next pull sends only the rest', async () => {
    const to = dest('huge');
    const controller = new AbortController();
    let seen = 0;
    const aborted = pull('huge', to, { bwlimit: 5_000 }, {
      signal: controller.signal,
      onProgress: (p) => {
        seen = p.bytes;
        if (p.bytes >= 8 * MiB) controller.abort(new Error('test abort'));
      },
    });
    await assert.rejects(aborted, /test abort/);
    assert.ok(seen >= 8 * MiB && seen < 30 * MiB, `aborted mid-way (${seen} bytes)`);
    const partial = join(to, PARTIAL_DIR, 'big.img');
    assert.ok(existsSync(partial), 'the partial file is kept');
    const partialSize = statSync(partial).size;
    assert.ok(partialSize >= 4 * MiB, `partial file holds what arrived (${partialSize} bytes)`);
    assert.ok(!existsSync(join(to, 'big.img')), 'no half file under the real name');

    const resumed = await pull('huge', to);
    assert.ok(resumed.stats);
    assert.ok(resumed.stats.literalData < 30 * MiB - 4 * MiB, `only the rest is sent (literal ${resumed.stats.literalData}, matched ${resumed.stats.matchedData})`);
    assert.ok(resumed.stats.bytesReceived < 30 * MiB - 4 * MiB, `received ${resumed.stats.bytesReceived} bytes`);
    assert.equal(sha256(join(to, 'big.img')), sha256(join(dirs.huge, 'big.img')));
    assert.ok(!existsSync(partial), 'the partial file is used up');
  });

  void test('a full destination: RsyncError kind no-space, not retryable, message says to free space', { skip: !isRoot }, async () => {
    const to = dest('full');
    await mountTmpfs(to, 'size=1m');
    await assert.rejects(pull('five', to), (err: unknown) => {
      assert.ok(err instanceof RsyncError, String(err));
      assert.equal(err.kind, 'no-space');
      assert.equal(err.retryable, false);
      assert.match(err.message, /no space left/i);
      assert.match(err.message, new RegExp(`free space there \\(df -h ${to}\\)`));
      assert.match(err.message, /No space left on device \(28\)/, 'rsync\'s own line is in the message');
      return true;
    });
  });

  void test('a read-only destination: RsyncError kind read-only, not retryable, says to remount', { skip: !isRoot }, async () => {
    const to = dest('readonly');
    await mountTmpfs(to, 'ro,size=1m');
    await assert.rejects(pull('basic', to), (err: unknown) => {
      assert.ok(err instanceof RsyncError, String(err));
      assert.equal(err.kind, 'read-only');
      assert.equal(err.retryable, false);
      assert.match(err.message, /remount/);
      assert.match(err.message, /Read-only file system \(30\)/);
      return true;
    });
  });

  void test('transport ssh: the -e string works through rrsync -ro (a fake ssh runs the forced command), and rrsync refuses a push', { skip: !existsSync('/usr/bin/rrsync') && 'rrsync not installed' }, async () => {
    // Stands in for ssh + sshd with `command="rrsync -ro /"` in authorized_keys: skips ssh's
    // options up to the host, then runs what rsync asked for through rrsync.
    const fakeSsh = join(root, 'fake-ssh');
    const log = join(root, 'fake-ssh.log');
    writeFileSync(fakeSsh, [
      '#!/bin/sh',
      `echo "$@" >> ${log}`,
      'while [ $# -gt 0 ]; do case "$1" in -l|-i|-o|-p) shift 2;; -*) shift;; *) shift; break;; esac; done',
      'SSH_ORIGINAL_COMMAND="$*" exec /usr/bin/rrsync -ro /',
      '',
    ].join('\n'), { mode: 0o755 });
    const to = dest('ssh');
    writeFileSync(join(to, 'stale'), 'x');
    const argv = rsyncPullArgs({
      set: SET,
      source: { transport: 'ssh', host: 'node1', user: 'root', path: dirs.basic, identityFile: '/etc/haoscar/sync_ed25519', knownHostsFile: '/etc/haoscar/known_hosts', ssh: fakeSsh },
      destination: to,
    });
    const result = await runRsync(argv, { rsync: RSYNC });
    assert.equal(result.exitCode, 0);
    assert.deepEqual(tree(to), tree(dirs.basic), 'copied, and the stale file deleted (--delete works with rrsync -ro)');
    assert.match(readFileSync(log, 'utf8'), /^-i \/etc\/haoscar\/sync_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=\/etc\/haoscar\/known_hosts -o IdentitiesOnly=yes -o ConnectTimeout=30 -p 22 -l root node1 rsync --server --sender /m);

    await assert.rejects(runRsync(['-a', '-e', fakeSsh, `${to}/`, `root@node1:${dirs.basic}/`], { rsync: RSYNC }), (err: unknown) => {
      assert.ok(err instanceof RsyncError, String(err));
      assert.equal(err.kind, 'auth');
      assert.match(err.message, /sending to read-only server is not allowed/);
      return true;
    });
  });
});

void describe('RsyncDaemon supervision', { skip: !isRoot && 'needs root: the daemon chroots' }, () => {
  const root = mkdtempSync(join(tmpdir(), 'haoscar-rsyncd-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  const setUp = async (name: string) => {
    const served = join(root, name, 'data');
    mkdirSync(served, { recursive: true });
    writeFileSync(join(served, 'f'), name);
    const port = await freePort();
    const files = await writeDaemonFiles(join(root, name, 'daemon'), { cluster: 'test', port, address: '127.0.0.1', modules: [{ name: 'g.s.0', path: served, comment: 'test' }], hostsAllow: ['127.0.0.1'], secret: SECRET });
    const make = () => new RsyncDaemon({ rsync: RSYNC, config: files.config, pidFile: files.pidFile, port, address: '127.0.0.1', logger: silentLogger, restartBackoff: { initialMs: 50, maxMs: 200 } });
    const canPull = async () => {
      const to = join(root, name, `pulled-${Date.now()}`);
      mkdirSync(to);
      const argv = rsyncPullArgs({ set: SET, source: { transport: 'daemon', host: '127.0.0.1', port, module: 'g.s.0', passwordFile: files.passwordFile }, destination: to });
      await runRsync(argv, { rsync: RSYNC });
      return readFileSync(join(to, 'f'), 'utf8') === name;
    };
    return { files, port, make, canPull };
  };

  void test('a daemon that dies is reported to onExit and restarted', async () => {
    const { make, canPull } = await setUp('restart');
    const daemon = make();
    try {
      const exits: RsyncDaemonExit[] = [];
      daemon.onExit((exit) => exits.push(exit));
      await daemon.start();
      const first = daemon.pid!;
      process.kill(first, 'SIGKILL');
      await waitFor('the daemon to be restarted', () => daemon.pid !== undefined && daemon.pid !== first, 10_000);
      assert.equal(exits[0]?.expected, false);
      assert.equal(exits[0]?.signal, 'SIGKILL');
      await waitFor('the restarted daemon to serve', () => canPull().catch(() => false), 10_000);
      await daemon.stop();
      assert.equal(exits.at(-1)?.expected, true);
      assert.equal(daemon.running, false);
    } finally {
      await daemon.stop();
    }
  });

  void test('a daemon left running by a killed agent is ended at start instead of blocking the port', async () => {
    const { make, canPull, files, port } = await setUp('leftover');
    // What an agent killed with SIGKILL leaves behind: its daemon, still listening, and the pid file.
    const orphan = execa(RSYNC, ['--daemon', '--no-detach', `--config=${files.config}`, `--port=${port}`, '--address=127.0.0.1', '--log-file=/dev/null'], { detached: true, stdio: 'ignore', reject: false });
    const orphanPid = orphan.pid!;
    const successor = make();
    try {
      await waitFor('the orphan to write its pid file', () => existsSync(files.pidFile) && readFileSync(files.pidFile, 'utf8').trim() === String(orphanPid), 5_000);
      await successor.start();
      assert.notEqual(successor.pid, orphanPid);
      await waitFor('the orphan to be gone', () => !existsSync(`/proc/${orphanPid}`) || readFileSync(`/proc/${orphanPid}/stat`, 'utf8').includes(') Z'), 5_000);
      assert.ok(await canPull());
      assert.ok(existsSync(files.pidFile));
    } finally {
      await successor.stop();
      try {
        process.kill(-orphanPid, 'SIGKILL');
      } catch {
        // ended by the successor, as it should be
      }
      await orphan;
    }
  });

  void test('a port in use: start() fails with a message that says so', async () => {
    const { files, port } = await setUp('busy');
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(port, '127.0.0.1', resolve));
    const daemon = new RsyncDaemon({ rsync: RSYNC, config: files.config, pidFile: files.pidFile, port, address: '127.0.0.1', logger: silentLogger, startTimeoutMs: 3_000 });
    try {
      await assert.rejects(daemon.start(), (err: unknown) => {
        assert.ok(err instanceof RsyncDaemonError, String(err));
        assert.match(err.message, new RegExp(`port ${port}`));
        assert.match(err.message, /in use/i);
        return true;
      });
    } finally {
      await daemon.stop();
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
