/**
 * The filesystem driver: parsers on captured output, then real mounts. The tests run as root,
 * so they mount tmpfs in a temporary directory, and an ext4 image on a loop device for the
 * fsck path (skipped, saying so, where `losetup` cannot attach one). fsck's failure codes
 * come from a recording exec: a filesystem that fsck -a cannot repair is hard to make on
 * purpose.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { FilesystemResource } from '../../src/config/types.js';
import {
  describeFsckExit,
  FilesystemBusyError,
  FilesystemDriver,
  MountpointTakenError,
  parseFuserVerbose,
  parseMountInfo,
  unescapeMountField,
} from '../../src/drivers/filesystem.js';
import { createExec, type Exec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { RecordingExec } from '../support/recording-exec.js';

// ------------------------------------------------------------------------------ parsers
// /proc/self/mountinfo lines as Linux 6.x writes them (the second with optional fields).
const MOUNTINFO = [
  '21 26 0:20 / /proc rw,relatime - proc proc rw',
  '36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 shared:7 - ext3 /dev/root rw,errors=continue',
  '42 26 0:38 / /tmp/fstest/t\\040dir rw,relatime - tmpfs hatest rw',
  '43 42 147:0 / /tmp/fstest/t\\040dir rw,noatime - ext4 /dev/drbd0 rw',
  'garbage line',
  '',
].join('\n');

void test('parseMountInfo reads every field, undoes the octal escapes and keeps stacking order', () => {
  const entries = parseMountInfo(MOUNTINFO);
  assert.equal(entries.length, 4);
  assert.deepEqual(entries[1], {
    mountId: 36,
    parentId: 35,
    majorMinor: '98:0',
    root: '/mnt1',
    mountPoint: '/mnt/parent',
    options: 'rw,noatime',
    fstype: 'ext3',
    source: '/dev/root',
    superOptions: 'rw,errors=continue',
  });
  assert.deepEqual(
    entries.filter((e) => e.mountPoint === '/tmp/fstest/t dir').map((e) => e.source),
    ['hatest', '/dev/drbd0'],
  );
  assert.equal(unescapeMountField('a\\040b\\011c\\012d\\134e'), 'a b\tc\nd\\e');
});

void test('parseFuserVerbose pairs the PIDs of stdout with the table of stderr, skipping the kernel and noise', () => {
  // psmisc 23.6, as root in a container: PIDs on stdout, the table (and noise) on stderr.
  const stdout = 'kernel  2348  2350';
  const stderr = [
    'Cannot stat file /proc/1/fd/0: Permission denied',
    'Cannot stat file /proc/1/fd/1: Permission denied',
    '                     USER        PID ACCESS COMMAND',
    '/tmp/fstest/m:       root      mount /tmp/fstest/m',
    '                     root      ..c.. bash',
    '                     root      ..c.. sleep',
    '',
  ].join('\n');
  assert.deepEqual(parseFuserVerbose(stdout, stderr), [
    { pid: 2348, user: 'root', access: '..c..', command: 'bash' },
    { pid: 2350, user: 'root', access: '..c..', command: 'sleep' },
  ]);
  // A mount point longer than fuser's name column gets a line of its own.
  assert.deepEqual(
    parseFuserVerbose('kernel 31', ['                     USER        PID ACCESS COMMAND', '/tmp/haoscar-fs-Ab12Cd/app data:', '                     root      mount /tmp/haoscar-fs-Ab12Cd/app data', '                     www-data  ..c.. nginx: worker', ''].join('\n')),
    [{ pid: 31, user: 'www-data', access: '..c..', command: 'nginx: worker' }],
  );
  // Without a table that lines up, the PIDs alone.
  assert.deepEqual(parseFuserVerbose(' 77c 78', ''), [{ pid: 77 }, { pid: 78 }]);
  assert.deepEqual(parseFuserVerbose('', ''), []);
});

void test('describeFsckExit decodes fsck(8) exit bits', () => {
  assert.equal(describeFsckExit(0), 'no errors');
  assert.equal(describeFsckExit(1), 'errors corrected');
  assert.equal(describeFsckExit(4), 'errors left uncorrected');
  assert.equal(describeFsckExit(12), 'errors left uncorrected, operational error');
});

// ------------------------------------------------------------------------- real mounts
const isRoot = process.getuid?.() === 0;
const realExec = createExec(silentLogger);

function fsResource(overrides: Partial<FilesystemResource>): FilesystemResource {
  return {
    type: 'filesystem',
    name: 'data',
    device: 'tmpfs',
    mountpoint: '/nonexistent',
    fstype: 'tmpfs',
    options: [],
    fsck: false,
    timeoutMs: 10_000,
    check: { type: 'status', intervalMs: 1000, timeoutMs: 1000, rise: 1, fall: 1 },
    healing: { maxRestarts: 3, windowMs: 60_000, backoff: { initialMs: 100, maxMs: 1000, multiplier: 2 }, startTimeoutMs: 10_000 },
    ...overrides,
  };
}

/** A real exec that writes down each command (program name and arguments). */
function spyExec(): { exec: Exec; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    exec: (file, args, options) => {
      calls.push([file, ...args].join(' '));
      return realExec(file, args, options);
    },
  };
}

function mountedOn(path: string): string[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'))
    .filter((e) => e.mountPoint === path)
    .map((e) => e.source);
}

/** A temp dir whose mounts are all undone afterwards, whatever the test did. */
function workdir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-fs-'));
  t.after(() => {
    for (const entry of parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')).reverse()) {
      if (entry.mountPoint.startsWith(dir)) {
        try {
          execFileSync('umount', ['-l', entry.mountPoint]);
        } catch {
          // already gone
        }
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

void test('tmpfs: start mounts (creating the mount point), is idempotent, and status says what is mounted', { skip: !isRoot && 'needs root to mount' }, async (t) => {
  const dir = workdir(t);
  // A space in the path: /proc/self/mountinfo writes it as \040.
  const mountpoint = join(dir, 'app data', 'mnt');
  const spy = spyExec();
  const driver = new FilesystemDriver(fsResource({ device: 'haoscar-test', mountpoint, options: ['size=8m', 'mode=0750'] }), { exec: spy.exec, logger: silentLogger });
  assert.deepEqual(await driver.status(), { running: false, detail: `nothing mounted on ${mountpoint}` });
  await driver.start();
  assert.deepEqual(mountedOn(mountpoint), ['haoscar-test']);
  assert.deepEqual(spy.calls, [`mount -t tmpfs -o size=8m,mode=0750 haoscar-test ${mountpoint}`], 'no fsck unless the resource asks for it');
  const status = await driver.status();
  assert.equal(status.running, true);
  assert.match(status.detail, new RegExp(`^haoscar-test on ${mountpoint} type tmpfs \\(rw,`));
  await driver.start();
  assert.equal(spy.calls.length, 1, 'a second start mounts nothing');
  assert.deepEqual(mountedOn(mountpoint), ['haoscar-test']);
  await driver.stop();
  assert.deepEqual(mountedOn(mountpoint), []);
  assert.equal((await driver.status()).running, false);
  await driver.stop();
  assert.deepEqual(spy.calls.slice(1), [`umount ${mountpoint}`], 'a second stop unmounts nothing');
});

void test('tmpfs: something else on the mount point is an error for start and left alone by stop', { skip: !isRoot && 'needs root to mount' }, async (t) => {
  const dir = workdir(t);
  const mountpoint = join(dir, 'mnt');
  mkdirSync(mountpoint);
  execFileSync('mount', ['-t', 'tmpfs', 'someone-else', mountpoint]);
  const driver = new FilesystemDriver(fsResource({ device: 'haoscar-test', mountpoint }), { exec: realExec, logger: silentLogger });
  await assert.rejects(driver.start(), (e: unknown) => {
    assert.ok(e instanceof MountpointTakenError);
    assert.equal(e.message, `${mountpoint} already has someone-else (tmpfs) mounted, not haoscar-test: unmount it (\`umount ${mountpoint}\`) or choose another mountpoint for this filesystem resource`);
    return true;
  });
  const status = await driver.status();
  assert.equal(status.running, false);
  assert.match(status.detail, new RegExp(`^someone-else on ${mountpoint} type tmpfs \\(rw,.*\\), not haoscar-test$`));
  await driver.stop();
  assert.deepEqual(mountedOn(mountpoint), ['someone-else']);
});

void test('tmpfs: a busy umount names the processes holding it (fuser -vm), or says how to find them', { skip: !isRoot && 'needs root to mount' }, async (t) => {
  const dir = workdir(t);
  const mountpoint = join(dir, 'busy');
  const driver = new FilesystemDriver(fsResource({ device: 'haoscar-test', mountpoint }), { exec: realExec, logger: silentLogger });
  await driver.start();
  const holder: ChildProcess = spawn('sleep', ['60'], { cwd: mountpoint, stdio: 'ignore' });
  t.after(() => holder.kill('SIGKILL'));
  await assert.rejects(driver.stop(), (e: unknown) => {
    assert.ok(e instanceof FilesystemBusyError);
    assert.ok(e.holders?.some((h) => h.pid === holder.pid && h.command === 'sleep' && h.access?.includes('c')), JSON.stringify(e.holders));
    assert.match(e.message, new RegExp(`^umount ${mountpoint} failed: target is busy; held by .*sleep \\(pid ${holder.pid}, user root, access \\.\\.c\\.\\.\\).*Stop those processes`));
    return true;
  });
  const noFuser = new FilesystemDriver(fsResource({ device: 'haoscar-test', mountpoint }), { exec: realExec, logger: silentLogger, fuserBin: '/nonexistent/fuser' });
  await assert.rejects(noFuser.stop(), (e: unknown) => e instanceof FilesystemBusyError && e.holders === undefined && e.message.includes(`find them with \`fuser -vm ${mountpoint}\` or \`lsof ${mountpoint}\``));
  holder.kill('SIGKILL');
  await new Promise((resolve) => holder.once('exit', resolve));
  await driver.stop();
  assert.deepEqual(mountedOn(mountpoint), []);
});

void test('ext4 on a loop device: fsck -a runs before the mount when the resource asks for it', { skip: !isRoot && 'needs root to mount' }, async (t) => {
  const dir = workdir(t);
  const image = join(dir, 'disk.img');
  writeFileSync(image, '');
  execFileSync('truncate', ['-s', '16M', image]);
  let loop: string;
  try {
    loop = execFileSync('losetup', ['-f', '--show', image], { encoding: 'utf8' }).trim();
  } catch (error) {
    t.skip(`losetup cannot attach a loop device here (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); the fsck path is covered by the recording-exec test below`);
    return;
  }
  t.after(() => {
    try {
      execFileSync('losetup', ['-d', loop]);
    } catch {
      // detached already
    }
  });
  execFileSync('mkfs.ext4', ['-q', loop]);
  const mountpoint = join(dir, 'ext4');
  const spy = spyExec();
  const driver = new FilesystemDriver(fsResource({ device: loop, fstype: 'ext4', mountpoint, options: ['noatime'], fsck: true }), { exec: spy.exec, logger: silentLogger });
  await driver.start();
  assert.deepEqual(spy.calls, [`fsck -a ${loop}`, `mount -t ext4 -o noatime ${loop} ${mountpoint}`]);
  assert.deepEqual(mountedOn(mountpoint), [loop]);
  assert.match((await driver.status()).detail, new RegExp(`^${loop} on ${mountpoint} type ext4 \\(rw,noatime`));
  await driver.start();
  assert.equal(spy.calls.length, 2, 'already mounted: no second fsck');
  await driver.stop();
  assert.deepEqual(mountedOn(mountpoint), []);
});

void test('fsck exit codes: 1 mounts anyway, 4 refuses and asks for a manual fsck (recording exec)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-fs-fake-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const mountInfoPath = join(dir, 'mountinfo');
  writeFileSync(mountInfoPath, '21 26 0:20 / /proc rw,relatime - proc proc rw\n');
  const mountpoint = join(dir, 'srv');
  const resource = fsResource({ device: '/dev/drbd0', fstype: 'ext4', mountpoint, fsck: true });

  const corrected = new RecordingExec([
    { argv: ['fsck', '-a', '/dev/drbd0'], reply: { exitCode: 1, stdout: '/dev/drbd0: 11/4096 files (0.0% non-contiguous), 2325/16384 blocks\n' } },
    { argv: ['mount', '-t', 'ext4', '/dev/drbd0', mountpoint], reply: {} },
  ]);
  await new FilesystemDriver(resource, { exec: corrected.exec, logger: silentLogger, mountInfoPath }).start();
  assert.deepEqual(corrected.unused, []);

  const broken = new RecordingExec([
    {
      argv: ['fsck', '-a', '/dev/drbd0'],
      reply: { exitCode: 4, stdout: '/dev/drbd0: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY.\n\t(i.e., without -a or -p options)\n' },
    },
  ]);
  await assert.rejects(
    new FilesystemDriver(resource, { exec: broken.exec, logger: silentLogger, mountInfoPath }).start(),
    /^Error: fsck -a \/dev\/drbd0 exited 4 \(errors left uncorrected\): \(i\.e\., without -a or -p options\): the filesystem needs a manual fsck\. Run `fsck \/dev\/drbd0` on this node and answer its questions, then start the group again$/,
  );
  assert.deepEqual(broken.commands, ['fsck -a /dev/drbd0'], 'no mount after a failed fsck');
});
