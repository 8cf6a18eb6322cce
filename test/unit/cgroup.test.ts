import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  CgroupError,
  cgroupLivePids,
  cgroupPids,
  cgroupsUsable,
  checkCgroupRoot,
  ensureCgroup,
  findCgroup2Mount,
  killCgroup,
  parseCgroup2Mounts,
  readProcessStat,
  removeCgroup,
  serviceCgroupPath,
} from '../../src/cgroup.js';
import { waitFor } from '../support/wait.js';

const FIXTURE = resolve(import.meta.dirname, '../fixtures/escaping-daemon.sh');

const MOUNT = findCgroup2Mount();
/** Why the tests that need real cgroups are skipped here; undefined when they run. */
const NO_CGROUPS = ((): string | undefined => {
  if (MOUNT === undefined) return 'cgroup v2 is not mounted on this machine';
  try {
    checkCgroupRoot(MOUNT);
    return undefined;
  } catch (error) {
    return `cgroup v2 at ${MOUNT} is not usable: ${(error as Error).message}`;
  }
})();

let testRoots = 0;
/**
 * A cgroup tree of the test's own, `<mount>/haoscar-test-<pid>-<n>`, never the shared
 * `<mount>/haoscar`; killed and removed after the test. Skips the test without cgroups.
 */
function cgroupTree(t: TestContext): string | undefined {
  if (NO_CGROUPS !== undefined || MOUNT === undefined) {
    t.skip(NO_CGROUPS);
    return undefined;
  }
  const root = join(MOUNT, `haoscar-test-${process.pid}-${++testRoots}`);
  ensureCgroup(root);
  t.after(async () => {
    killCgroup(root);
    await waitFor(`the test cgroup ${root} to empty`, () => cgroupLivePids(root).length === 0, 10_000);
    removeTree(root);
  });
  return root;
}

/** rmdir deepest first: a cgroup with sub-groups cannot be removed. */
function removeTree(path: string): void {
  if (!existsSync(path)) return;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) removeTree(join(path, entry.name));
  }
  assert.equal(removeCgroup(path), true, `removed ${path}`);
}

/** A process that has exited: gone, or a zombie left to a PID 1 that does not reap. */
function isDead(pid: number): boolean {
  const state = readProcessStat(pid)?.state;
  return state === undefined || state === 'Z' || state === 'X';
}

/** Starts `argv` inside `cgroup` (the shell enters it, then execs), killed after the test. */
function spawnIn(t: TestContext, cgroup: string, argv: string[]): ChildProcess {
  const child = spawn('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', 'test-enter', cgroup, ...argv], { stdio: 'ignore', detached: true });
  t.after(() => {
    if (child.pid !== undefined && !isDead(child.pid)) process.kill(child.pid, 'SIGKILL');
  });
  return child;
}

/** Starts the fixture daemon inside `cgroup`: @returns the starter's pid and the daemon's. */
async function escapingDaemonIn(t: TestContext, cgroup: string): Promise<{ starter: number; daemon: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-cgroup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const pidFile = join(dir, 'daemon.pid');
  const starter = spawnIn(t, cgroup, [FIXTURE, pidFile]);
  const daemon = Number(await waitFor('the daemon pid file', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim(), 10_000));
  // Should a check fail before killCgroup: the daemon leads its own session and group.
  t.after(() => {
    try {
      process.kill(-daemon, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  return { starter: starter.pid!, daemon };
}

void test('parseCgroup2Mounts and findCgroup2Mount: unified, hybrid, none, escaped and stacked mount points', () => {
  const hybrid = [
    '30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
    '31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
    '40 30 0:37 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw',
  ].join('\n');
  assert.deepEqual(parseCgroup2Mounts(hybrid), ['/sys/fs/cgroup/unified']);
  assert.equal(findCgroup2Mount(hybrid), '/sys/fs/cgroup/unified');

  const unified = [
    '25 21 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot',
    '90 25 0:22 / /srv/my\\040cgroups rw - cgroup2 cgroup2 rw',
  ].join('\n');
  assert.deepEqual(parseCgroup2Mounts(unified), ['/sys/fs/cgroup', '/srv/my cgroups']);
  assert.equal(findCgroup2Mount(unified), '/sys/fs/cgroup', '/sys/fs/cgroup is preferred');

  assert.equal(findCgroup2Mount('90 25 0:22 / /mnt/cg rw - cgroup2 none rw\n'), '/mnt/cg', 'anywhere else: the first one');
  assert.equal(findCgroup2Mount('22 1 0:21 / /sys rw - sysfs sysfs rw\n'), undefined);
  assert.equal(findCgroup2Mount(''), undefined);

  // A tmpfs mounted over a cgroup2 mount hides it.
  const hidden = ['25 21 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw', '26 21 0:23 / /sys/fs/cgroup rw - tmpfs tmpfs rw'].join('\n');
  assert.deepEqual(parseCgroup2Mounts(hidden), []);
});

void test('serviceCgroupPath is <root>/haoscar/<cluster>/<node>/<group>/<resource>; names that could leave their level are refused', () => {
  assert.equal(serviceCgroupPath('/sys/fs/cgroup', 'lab', 'n1', 'web', 'nginx'), '/sys/fs/cgroup/haoscar/lab/n1/web/nginx');
  assert.equal(serviceCgroupPath('/sys/fs/cgroup/unified/', 'lab', 'n1', 'web', 'nginx'), '/sys/fs/cgroup/unified/haoscar/lab/n1/web/nginx');
  for (const [args, message] of [
    [['lab', 'n1', 'web', '../../../evil'], /resource name "\.\.\/\.\.\/\.\.\/evil" cannot name a cgroup directory/],
    [['lab', 'n1/x', 'web', 'nginx'], /node name "n1\/x" cannot name a cgroup directory/],
    [['..', 'n1', 'web', 'nginx'], /cluster name "\.\." cannot name/],
    [['lab', 'n1', 'a..b', 'nginx'], /group name "a\.\.b" cannot name/],
    [['lab', 'n1', '.', 'nginx'], /group name "\." cannot name/],
    [['lab', '', 'web', 'nginx'], /node name "" cannot name/],
    [['lab', 'n1', 'web', 'ng\ninx'], /resource name "ng\\ninx" cannot name/],
  ] as const) {
    assert.throws(() => serviceCgroupPath('/sys/fs/cgroup', ...(args as unknown as [string, string, string, string])), (error: unknown) => {
      assert.ok(error instanceof CgroupError);
      assert.match(error.message, message);
      return true;
    });
  }
  assert.throws(() => serviceCgroupPath('sys/fs/cgroup', 'lab', 'n1', 'web', 'nginx'), /cgroup root 'sys\/fs\/cgroup' is not an absolute path/);
});

void test('ensureCgroup refuses a path that is not on cgroup v2 with a clear error, and creates nothing', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-not-cgroup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = serviceCgroupPath(dir, 'lab', 'n1', 'web', 'nginx');
  assert.throws(() => ensureCgroup(path), (error: unknown) => {
    assert.ok(error instanceof CgroupError);
    assert.equal(error.path, path);
    assert.match(error.message, new RegExp(`cgroup ${path}: ${dir} is not on a cgroup v2 filesystem: give the cgroup v2 mount point as the root`));
    return true;
  });
  assert.deepEqual(readdirSync(dir), [], 'nothing was created');
  assert.throws(() => ensureCgroup('/nonexistent-haoscar-root/haoscar/lab/n1/web/nginx'), /\/ is not on a cgroup v2 filesystem/);
  assert.equal(existsSync('/nonexistent-haoscar-root'), false);
  assert.throws(() => ensureCgroup('relative/path'), /not absolute/);
});

void test('checkCgroupRoot and cgroupsUsable: a plain directory or a missing path is refused, saying why', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-not-cgroup-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.equal(cgroupsUsable(dir), false);
  assert.throws(() => checkCgroupRoot(dir), new RegExp(`${dir} is not a cgroup directory \\(no cgroup.procs\\)`));
  // A directory that looks like a cgroup but is not on cgroup v2 (as a cgroup v1 hierarchy).
  writeFileSync(join(dir, 'cgroup.procs'), '');
  assert.throws(() => checkCgroupRoot(dir), /is not on a cgroup v2 filesystem/);
  assert.deepEqual(readdirSync(dir), ['cgroup.procs'], 'no probe was created');
  assert.equal(cgroupsUsable('/nonexistent-haoscar-root'), false);
  assert.equal(cgroupsUsable('relative'), false);
});

void test('on this machine: findCgroup2Mount names a cgroup v2 directory, cgroupsUsable says yes and leaves no probe behind', (t) => {
  if (MOUNT === undefined || NO_CGROUPS !== undefined) {
    t.skip(NO_CGROUPS);
    return;
  }
  assert.ok(statSync(join(MOUNT, 'cgroup.procs')).isFile());
  assert.equal(cgroupsUsable(MOUNT), true);
  assert.deepEqual(
    readdirSync(MOUNT).filter((name) => name.startsWith(`haoscar-probe-${process.pid}`)),
    [],
  );
});

void test('ensureCgroup creates the nested group, idempotently; cgroupPids lists the processes moved in, sub-groups included', async (t) => {
  const root = cgroupTree(t);
  if (!root) return;
  const path = serviceCgroupPath(root, 'lab', 'n1', 'web', 'nginx');
  assert.deepEqual(cgroupPids(path), [], 'a missing group has no pids');
  ensureCgroup(path);
  ensureCgroup(path);
  assert.ok(existsSync(join(path, 'cgroup.procs')));
  assert.deepEqual(cgroupPids(path), []);

  const first = spawnIn(t, path, ['sleep', '1000']);
  const sub = join(path, 'worker');
  ensureCgroup(sub);
  const second = spawnIn(t, sub, ['sleep', '1000']);
  await waitFor('both sleeps in the groups', () => cgroupPids(path).length === 2, 10_000);
  assert.deepEqual(cgroupPids(path).sort(), [first.pid, second.pid].sort());
  assert.deepEqual(cgroupPids(sub), [second.pid]);
  assert.deepEqual(cgroupLivePids(path).sort(), [first.pid, second.pid].sort());
  assert.match(readFileSync(`/proc/${first.pid}/cgroup`, 'utf8'), new RegExp(`^0::${path.slice(MOUNT!.length)}$`, 'm'));
});

void test('killCgroup kills every member, the daemon that called setsid and left its starter included', async (t) => {
  const root = cgroupTree(t);
  if (!root) return;
  const path = serviceCgroupPath(root, 'lab', 'n1', 'web', 'escaper');
  ensureCgroup(path);
  const { starter, daemon } = await escapingDaemonIn(t, path);
  assert.notEqual(readProcessStat(daemon)?.pgrp, readProcessStat(starter)?.pgrp, 'the daemon left the process group');
  const members = cgroupLivePids(path);
  assert.ok(members.includes(starter) && members.includes(daemon), `starter and daemon are in the cgroup (${members.join(' ')})`);
  assert.equal(members.length, 3, 'the starter, the daemon and its sleep');

  killCgroup(path);
  await waitFor('the cgroup to empty', () => cgroupLivePids(path).length === 0, 10_000);
  for (const pid of members) assert.ok(isDead(pid), `${pid} is dead`);
});

void test('killCgroup without cgroup.kill (the fallback for kernels before 5.14) kills every member too', async (t) => {
  const root = cgroupTree(t);
  if (!root) return;
  const path = serviceCgroupPath(root, 'lab', 'n1', 'web', 'escaper');
  ensureCgroup(path);
  const { starter, daemon } = await escapingDaemonIn(t, path);
  const members = cgroupLivePids(path);
  assert.ok(members.includes(starter) && members.includes(daemon));

  killCgroup(path, { killFile: false });
  await waitFor('the cgroup to empty', () => cgroupLivePids(path).length === 0, 10_000);
  for (const pid of members) assert.ok(isDead(pid), `${pid} is dead`);
  assert.equal(readFileSync(join(path, 'cgroup.freeze'), 'utf8').trim(), '0', 'the group is thawed again');
});

void test('killCgroup of a missing group does nothing; removeCgroup is false while a process is in it, true once empty or gone', async (t) => {
  const root = cgroupTree(t);
  if (!root) return;
  const path = serviceCgroupPath(root, 'lab', 'n1', 'web', 'nginx');
  killCgroup(path);
  killCgroup(path, { killFile: false });
  assert.equal(removeCgroup(path), true, 'a missing group is gone already');

  ensureCgroup(path);
  const sleeper = spawnIn(t, path, ['sleep', '1000']);
  await waitFor('the sleep in the group', () => cgroupPids(path).includes(sleeper.pid!), 10_000);
  assert.equal(removeCgroup(path), false, 'EBUSY: it has a process');
  assert.ok(existsSync(path));
  killCgroup(path);
  await waitFor('the cgroup to empty', () => cgroupLivePids(path).length === 0, 10_000);
  assert.equal(removeCgroup(path), true);
  assert.equal(existsSync(path), false);
  assert.equal(existsSync(join(root, 'haoscar', 'lab', 'n1', 'web')), true, 'its parents stay (other services share them)');

  // Not a directory: a typed error with the errno.
  assert.throws(() => removeCgroup(join(root, 'cgroup.procs')), (error: unknown) => {
    assert.ok(error instanceof CgroupError);
    assert.equal(error.code, 'ENOTDIR');
    assert.match(error.message, /cannot remove cgroup .*cgroup\.procs \(ENOTDIR\)/);
    return true;
  });
});
