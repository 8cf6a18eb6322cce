import assert from 'node:assert/strict';
import { waitFor as waitUntil } from '../support/wait.js';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmdirSync, statSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test, type TestContext } from 'node:test';
import {
  CgroupError,
  cgroupLivePids,
  cgroupPids,
  checkCgroupRoot,
  ensureCgroup,
  findCgroup2Mount,
  killCgroup,
  readProcessStat,
  removeCgroup,
  serviceCgroupPath,
} from '../../src/cgroup.js';
import type { ServiceResource } from '../../src/config/types.js';
import { createServiceDriver } from '../../src/drivers/index.js';
import { ProcessDriver, type ProcessDriverDeps } from '../../src/drivers/process.js';
import type { ProcessExit } from '../../src/drivers/service-driver.js';
import { silentLogger } from '../../src/log.js';

const waitFor = <T>(what: string, condition: () => T | undefined | false, timeoutMs = 5_000) => waitUntil(what, condition, timeoutMs, 20);

type ProcessResource = Extract<ServiceResource, { driver: 'process' }>;


/** A process that has exited: gone, or a zombie left to a PID 1 that does not reap. */
function isDead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function resource(name: string, code: string, overrides: Partial<ProcessResource> = {}): ProcessResource {
  return {
    type: 'service',
    name,
    driver: 'process',
    command: [process.execPath, '-e', code],
    stopSignal: 'SIGTERM',
    stopTimeoutMs: 2_000,
    check: { type: 'process', intervalMs: 1000, timeoutMs: 1000, rise: 1, fall: 1 },
    healing: { maxRestarts: 3, windowMs: 60_000, backoff: { initialMs: 100, maxMs: 1000, multiplier: 2 }, startTimeoutMs: 5000 },
    ...overrides,
  };
}

/** A driver in a fresh log directory; everything it started is killed after the test. */
function supervised(
  t: TestContext,
  spec: (logDir: string) => ProcessResource,
  deps: Partial<ProcessDriverDeps> = {},
): { driver: ProcessDriver; logDir: string; log: () => string } {
  const logDir = mkdtempSync(join(tmpdir(), 'haoscar-process-'));
  const driver = new ProcessDriver(spec(logDir), { logger: silentLogger, logDir, ...deps });
  const pgids = new Set<number>();
  const original = driver.start.bind(driver);
  driver.start = async () => {
    await original();
    const { pid } = await driver.status();
    if (pid) pgids.add(pid);
  };
  t.after(async () => {
    // Stop normally, then make sure: SIGKILL every group the driver ever started.
    await driver.close().catch(() => undefined);
    for (const pgid of pgids) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(logDir, { recursive: true, force: true });
  });
  const log = () => (existsSync(driver.logFile) ? readFileSync(driver.logFile, 'utf8') : '');
  return { driver, logDir, log };
}

const IDLE = 'setInterval(() => {}, 1000);';

void test('start spawns once, start again is a no-op, status reports the pid, output goes to the log', async (t) => {
  const { driver, logDir, log } = supervised(t, () =>
    resource('web', `console.log('hello from', process.pid, process.env.GREETING, process.cwd()); console.error('on stderr'); ${IDLE}`, {
      env: { GREETING: 'hi' },
      cwd: tmpdir(),
    }),
  );
  assert.deepEqual(await driver.status(), { running: false, detail: 'not started' });
  await driver.start();
  const first = await driver.status();
  assert.equal(first.running, true);
  assert.ok(first.pid && first.pid > 0);
  await driver.start();
  assert.equal((await driver.status()).pid, first.pid, 'idempotent start keeps the same process');

  assert.equal(driver.logFile, join(logDir, 'web.log'));
  await waitFor('both lines in the log', () => log().includes('on stderr') && log().includes('hello'));
  assert.match(log(), new RegExp(`hello from ${first.pid} hi ${tmpdir()}`));
  // The child writes to the file itself, not through a pipe to the agent.
  assert.equal(readlinkSync(`/proc/${first.pid}/fd/1`), driver.logFile);
  assert.equal(readlinkSync(`/proc/${first.pid}/fd/2`), driver.logFile);
});

void test('concurrent starts spawn one process', async (t) => {
  const { driver, log } = supervised(t, () => resource('web', `console.log('started', process.pid); ${IDLE}`));
  await Promise.all([driver.start(), driver.start(), driver.start()]);
  const { pid } = await driver.status();
  await waitFor('the start line', () => log().includes('started'));
  // Give a second spawn (if there were one) time to print too.
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(log().trim().split('\n'), [`started ${pid}`]);
});

void test('a crash (SIGKILL from outside) reaches onExit at once, and start brings it back', async (t) => {
  const { driver } = supervised(t, () => resource('web', IDLE));
  const exits: ProcessExit[] = [];
  driver.onExit((exit) => exits.push(exit));
  await driver.start();
  const { pid } = await driver.status();
  assert.ok(pid);

  const killedAt = Date.now();
  process.kill(pid, 'SIGKILL');
  await waitFor('the onExit listener', () => exits.length > 0, 2_000);
  assert.ok(Date.now() - killedAt < 2_000);
  assert.deepEqual(exits, [{ pid, exitCode: null, signal: 'SIGKILL' }]);
  assert.deepEqual(await driver.status(), { running: false, detail: `killed by SIGKILL (pid ${pid})` });

  await driver.start();
  const again = await driver.status();
  assert.equal(again.running, true);
  assert.notEqual(again.pid, pid);
});

void test('an exit on its own reports the exit code; a removed listener hears nothing', async (t) => {
  const { driver } = supervised(t, () => resource('job', 'setTimeout(() => process.exit(3), 100);'));
  const heard: ProcessExit[] = [];
  const removed: ProcessExit[] = [];
  driver.onExit((exit) => heard.push(exit));
  const unsubscribe = driver.onExit((exit) => removed.push(exit));
  unsubscribe();
  await driver.start();
  await waitFor('the exit', () => heard.length > 0);
  assert.equal(heard[0]?.exitCode, 3);
  assert.equal(heard[0]?.signal, null);
  assert.deepEqual(removed, []);
});

void test('our own stop() does not fire onExit, and stop is idempotent', async (t) => {
  const { driver } = supervised(t, () => resource('web', IDLE));
  const exits: ProcessExit[] = [];
  driver.onExit((exit) => exits.push(exit));
  await driver.stop(); // never started
  await driver.start();
  const { pid } = await driver.status();
  await driver.stop();
  assert.ok(pid && isDead(pid));
  assert.deepEqual(await driver.status(), { running: false, detail: `stopped (pid ${pid})` });
  await driver.stop();
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(exits, []);
});

void test('stop escalates to SIGKILL after stopTimeoutMs when SIGTERM is ignored', async (t) => {
  const { driver, log } = supervised(t, () =>
    resource('stubborn', `process.on('SIGTERM', () => console.log('ignoring SIGTERM')); console.log('ready'); ${IDLE}`, { stopTimeoutMs: 400 }),
  );
  await driver.start();
  const { pid } = await driver.status();
  assert.ok(pid);
  await waitFor('the SIGTERM handler', () => log().includes('ready'));

  const started = Date.now();
  await driver.stop();
  const took = Date.now() - started;
  assert.ok(took >= 400, `waited the stop timeout (${took} ms)`);
  assert.ok(took < 5_000, `then killed it (${took} ms)`);
  assert.ok(isDead(pid));
  assert.match(log(), /ignoring SIGTERM/, 'SIGTERM was sent first');
});

void test('stop kills the whole process group, grandchildren included', async (t) => {
  const parent = `
    const { spawn } = require('node:child_process');
    const code = "process.on('SIGTERM', () => {}); console.log('grandchild ready'); setInterval(() => {}, 1000)";
    const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'inherit', 'inherit'] });
    console.log('grandchild', child.pid);
    ${IDLE}`;
  const { driver, log } = supervised(t, () => resource('forker', parent, { stopTimeoutMs: 300 }));
  await driver.start();
  const grandchild = Number(await waitFor('the grandchild pid', () => /grandchild (\d+)/.exec(log())?.[1]));
  t.after(() => {
    try {
      process.kill(grandchild, 'SIGKILL');
    } catch {
      // already gone
    }
  });
  await waitFor('the grandchild to ignore SIGTERM', () => log().includes('grandchild ready'));
  assert.equal(isDead(grandchild), false);

  await driver.stop();
  assert.ok(isDead(grandchild), 'the grandchild (which ignores SIGTERM) is gone too');
});

void test('a command that does not exist rejects with a clear message', async (t) => {
  const { driver } = supervised(t, () => ({ ...resource('ghost', ''), command: ['/nonexistent/haoscar-no-such-daemon', '--flag'] }));
  await assert.rejects(driver.start(), /service ghost: command not found: \/nonexistent\/haoscar-no-such-daemon: install it/);
  assert.equal((await driver.status()).running, false);
});

void test('a working directory that does not exist rejects with a clear message', async (t) => {
  const { driver } = supervised(t, () => resource('web', IDLE, { cwd: '/nonexistent/haoscar-dir' }));
  await assert.rejects(driver.start(), /service web: working directory \/nonexistent\/haoscar-dir does not exist/);
});

void test('logFile overrides the default log path, and its directory is created', async (t) => {
  const { driver, logDir, log } = supervised(t, (dir) => resource('web', `console.log('custom'); ${IDLE}`, { logFile: join(dir, 'deep', 'er', 'web-out.log') }));
  await driver.start();
  assert.equal(driver.logFile, join(logDir, 'deep', 'er', 'web-out.log'));
  await waitFor('the custom log', () => log().includes('custom'));
});

void test('the default log file is per group and resource, created 0640 (not readable by everyone)', async (t) => {
  const web = supervised(t, () => resource('httpd', `console.log('web'); ${IDLE}`), { group: 'web' });
  const api = supervised(t, () => resource('httpd', `console.log('api'); ${IDLE}`), { group: 'api', logDir: web.logDir });
  assert.equal(web.driver.logFile, join(web.logDir, 'web', 'httpd.log'));
  assert.notEqual(api.driver.logFile, web.driver.logFile, 'two groups with a resource of the same name do not share a log');
  const umask = process.umask(0);
  try {
    await web.driver.start();
  } finally {
    process.umask(umask);
  }
  await waitFor('the log', () => web.log().includes('web'));
  assert.equal(statSync(web.driver.logFile).mode & 0o777, 0o640);
});

// --- Services in a cgroup of their own: a daemon that leaves the process group is still held. ---

const ESCAPING_DAEMON = resolve(import.meta.dirname, '../fixtures/escaping-daemon.sh');

const CGROUP_MOUNT = findCgroup2Mount();
/** Why the tests that need real cgroups are skipped here; undefined when they run. */
const NO_CGROUPS = ((): string | undefined => {
  if (CGROUP_MOUNT === undefined) return 'cgroup v2 is not mounted on this machine';
  try {
    checkCgroupRoot(CGROUP_MOUNT);
    return undefined;
  } catch (error) {
    return `cgroup v2 at ${CGROUP_MOUNT} is not usable: ${(error as Error).message}`;
  }
})();

let cgroupTrees = 0;
/**
 * A service cgroup in a tree of the test's own (`<mount>/haoscar-test-<pid>-<n>`, never the
 * shared `<mount>/haoscar`), killed and removed after the test. Skips the test without cgroups.
 */
function serviceCgroup(t: TestContext, name: string): string | undefined {
  if (NO_CGROUPS !== undefined || CGROUP_MOUNT === undefined) {
    t.skip(NO_CGROUPS);
    return undefined;
  }
  const root = join(CGROUP_MOUNT, `haoscar-test-${process.pid}-${++cgroupTrees}`);
  ensureCgroup(root);
  t.after(async () => {
    killCgroup(root);
    await waitFor(`the test cgroup ${root} to empty`, () => cgroupLivePids(root).length === 0, 10_000);
    removeTree(root);
  });
  return serviceCgroupPath(root, 'lab', 'n1', 'web', name);
}

/** rmdir deepest first: a cgroup with sub-groups cannot be removed. */
function removeTree(path: string): void {
  if (!existsSync(path)) return;
  for (const entry of readdirSync(path, { withFileTypes: true })) {
    if (entry.isDirectory()) removeTree(join(path, entry.name));
  }
  assert.equal(removeCgroup(path), true, `removed ${path}`);
}

/** The fixture daemon as a service: its starter stays in the foreground, the daemon escapes. */
function escaper(logDir: string, mode: 'stubborn' | 'polite', overrides: Partial<ProcessResource> = {}): ProcessResource {
  return { ...resource('escaper', ''), command: [ESCAPING_DAEMON, join(logDir, 'daemon.pid'), mode], ...overrides };
}

/** Waits for the daemon's pid file (removing it, for the next start); its session is killed after the test. */
async function daemonPid(t: TestContext, logDir: string): Promise<number> {
  const pidFile = join(logDir, 'daemon.pid');
  const daemon = Number(await waitFor('the daemon pid file', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim(), 10_000));
  unlinkSync(pidFile);
  t.after(() => {
    try {
      process.kill(-daemon, 'SIGKILL'); // it leads its own session and process group
    } catch {
      // already gone
    }
  });
  return daemon;
}

/** The daemon's own children (its sleep), to check they went too. */
function childrenOf(pid: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((candidate) => {
      try {
        const stat = readFileSync(`/proc/${candidate}/stat`, 'utf8');
        return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid;
      } catch {
        return false;
      }
    });
}

void test('without a cgroup, a daemon that double-forks and calls setsid escapes stop() (why process services get a cgroup)', async (t) => {
  const { driver, logDir } = supervised(t, (dir) => escaper(dir, 'stubborn', { stopTimeoutMs: 300 }));
  await driver.start();
  const { pid: main } = await driver.status();
  assert.ok(main);
  const daemon = await daemonPid(t, logDir);
  assert.notEqual(readProcessStat(daemon)?.pgrp, main, 'the daemon left the process group');
  assert.deepEqual(driver.guardTargets(), { pgid: main });

  await driver.stop();
  assert.ok(isDead(main));
  assert.equal(isDead(daemon), false, 'the process group was signalled, and the daemon was not in it');
  assert.deepEqual(driver.guardTargets(), {}, 'and nothing tells a guard about it');
});

void test('with a cgroup, the service and everything it forks run in it from the start; the guard is told the cgroup', async (t) => {
  const cgroup = serviceCgroup(t, 'escaper');
  if (!cgroup) return;
  const { driver, logDir } = supervised(t, (dir) => escaper(dir, 'stubborn'), { cgroup });
  assert.deepEqual(driver.guardTargets(), { cgroup }, 'the cgroup even before anything runs');
  await driver.start();
  const { pid: main, running } = await driver.status();
  assert.ok(running && main);
  const daemon = await daemonPid(t, logDir);
  const [sleep] = childrenOf(daemon);
  assert.ok(sleep, 'the daemon runs its sleep');

  assert.equal(readProcessStat(main)?.pgrp, main, 'the main process still leads its own process group');
  assert.notEqual(readProcessStat(daemon)?.pgrp, main, 'the daemon left it');
  // A helper the script forks on its way (the daemon's parent shell) may still be exiting: wait for it to be gone.
  const three = [main, daemon, sleep].sort();
  await waitUntil('only the three in the cgroup', () => JSON.stringify(cgroupPids(cgroup).sort()) === JSON.stringify(three), 5000, 20).catch(() => undefined);
  assert.deepEqual(cgroupPids(cgroup).sort(), three, 'all three are in the cgroup');
  const relative = cgroup.slice(CGROUP_MOUNT!.length);
  assert.match(readFileSync(`/proc/${main}/cgroup`, 'utf8'), new RegExp(`^0::${relative}$`, 'm'));
  assert.match(readFileSync(`/proc/${daemon}/cgroup`, 'utf8'), new RegExp(`^0::${relative}$`, 'm'));
  // The wrapper exec'd the command: same pid, the command's own argv.
  assert.equal(readFileSync(`/proc/${main}/cmdline`, 'utf8'), 'sleep\0' + '1000\0');
  assert.deepEqual(driver.guardTargets(), { cgroup });
  assert.deepEqual(driver.guardActions(), [{ kind: 'cgroup', path: cgroup }]);
});

void test('with a cgroup, stop() kills a daemon that escaped the process group and ignores SIGTERM: SIGTERM, then SIGKILL after stopTimeoutMs', async (t) => {
  const cgroup = serviceCgroup(t, 'escaper');
  if (!cgroup) return;
  const { driver, logDir } = supervised(t, (dir) => escaper(dir, 'stubborn', { stopTimeoutMs: 500 }), { cgroup });
  const exits: ProcessExit[] = [];
  driver.onExit((exit) => exits.push(exit));
  await driver.start();
  const { pid: main } = await driver.status();
  assert.ok(main);
  const daemon = await daemonPid(t, logDir);
  const [sleep] = childrenOf(daemon);
  assert.ok(sleep);

  const started = Date.now();
  await driver.stop();
  const took = Date.now() - started;
  assert.ok(took >= 500, `waited the stop timeout for the daemon (${took} ms)`);
  for (const pid of [main, daemon, sleep]) assert.ok(isDead(pid), `${pid} is dead`);
  assert.deepEqual(cgroupLivePids(cgroup), []);
  assert.equal(existsSync(cgroup), false, 'the empty cgroup is removed');
  assert.deepEqual(await driver.status(), { running: false, detail: `stopped (pid ${main})` });
  assert.deepEqual(exits, [], 'our own stop is no crash');
  await driver.stop(); // idempotent, with the cgroup gone
});

void test('with a cgroup, the stop signal reaches the escaped daemon too: a polite one exits at once', async (t) => {
  const cgroup = serviceCgroup(t, 'escaper');
  if (!cgroup) return;
  const { driver, logDir } = supervised(t, (dir) => escaper(dir, 'polite', { stopTimeoutMs: 20_000 }), { cgroup });
  await driver.start();
  const daemon = await daemonPid(t, logDir);

  const started = Date.now();
  await driver.stop();
  const took = Date.now() - started;
  assert.equal(readFileSync(join(logDir, 'daemon.pid.term'), 'utf8').trim(), String(daemon), 'the daemon got SIGTERM');
  assert.ok(took < 15_000, `stopped without waiting for the SIGKILL (${took} ms)`);
  assert.ok(isDead(daemon));
  assert.deepEqual(cgroupLivePids(cgroup), []);
});

void test('with a cgroup, start after a crash kills the daemon the crashed process left (never two instances)', async (t) => {
  const cgroup = serviceCgroup(t, 'escaper');
  if (!cgroup) return;
  const { driver, logDir } = supervised(t, (dir) => escaper(dir, 'stubborn'), { cgroup });
  const exits: ProcessExit[] = [];
  driver.onExit((exit) => exits.push(exit));
  await driver.start();
  const { pid: main } = await driver.status();
  assert.ok(main);
  const daemon = await daemonPid(t, logDir);

  process.kill(main, 'SIGKILL');
  await waitFor('the crash to be reported', () => exits.length > 0);
  assert.equal(isDead(daemon), false, 'the daemon outlived the crash of its starter');
  assert.match((await driver.status()).detail, /^killed by SIGKILL \(pid \d+\); 2 processes still in cgroup /);
  assert.deepEqual(driver.guardTargets(), { cgroup });

  await driver.start();
  assert.ok(isDead(daemon), 'the old daemon was killed before the new start');
  const { pid: again } = await driver.status();
  assert.ok(again && again !== main);
  const newDaemon = await daemonPid(t, logDir);
  assert.notEqual(newDaemon, daemon);
  // Until the new instance settles, its starter's short-lived helpers (the subshell of the double
  // fork, the daemon's mv of its pid file) are in the cgroup too: wait for them to go, then compare.
  const onlyNew = () => [again, newDaemon, ...childrenOf(newDaemon)].sort();
  await waitFor('the new instance to settle', () => cgroupLivePids(cgroup).length === onlyNew().length, 10_000).catch(() => undefined);
  assert.deepEqual(cgroupLivePids(cgroup).sort(), onlyNew(), 'only the new instance runs');
});

void test('with a cgroup, a new driver (the agent restarted) adopts the earlier instance: it runs on, start does not start another, stop stops it', async (t) => {
  const cgroup = serviceCgroup(t, 'escaper');
  if (!cgroup) return;
  const earlier = supervised(t, (dir) => escaper(dir, 'polite'), { cgroup });
  await earlier.driver.start();
  const { pid: earlierMain } = await earlier.driver.status();
  assert.ok(earlierMain);
  const earlierDaemon = await daemonPid(t, earlier.logDir);
  const before = cgroupLivePids(cgroup).sort();

  const { driver } = supervised(t, (dir) => escaper(dir, 'polite'), { cgroup });
  const status = await driver.status();
  assert.equal(status.running, true, 'what the earlier agent started runs: the service is running');
  assert.equal(status.pid, earlierMain, 'its main process (the leader of its process group) is the pid');
  assert.match(status.detail, /adopted/);
  assert.deepEqual(driver.guardTargets(), { cgroup }, 'a guard can still kill it');

  await driver.start();
  // Nothing new in the cgroup, and the instance's main process and daemon alive. (Not "the same
  // pids as before": a short-lived helper of the escaper's daemonising may be gone by now, which
  // failed a CI preview.)
  assert.deepEqual(cgroupLivePids(cgroup).filter((pid) => !before.includes(pid)), [], 'start left it alone: nothing new was spawned');
  assert.ok(!isDead(earlierMain) && !isDead(earlierDaemon), 'nothing was stopped');

  await driver.stop();
  assert.ok(isDead(earlierMain) && isDead(earlierDaemon), 'stop stops the adopted instance');
  assert.ok(existsSync(join(earlier.logDir, 'daemon.pid.term')), 'with the stop signal first');
  assert.equal((await driver.status()).running, false);
});

void test('with a cgroup, stop() of a new driver (the agent restarted) stops the earlier instance', async (t) => {
  const cgroup = serviceCgroup(t, 'escaper');
  if (!cgroup) return;
  const earlier = supervised(t, (dir) => escaper(dir, 'stubborn', { stopTimeoutMs: 300 }), { cgroup });
  await earlier.driver.start();
  const earlierDaemon = await daemonPid(t, earlier.logDir);

  const { driver } = supervised(t, (dir) => escaper(dir, 'stubborn', { stopTimeoutMs: 300 }), { cgroup });
  await driver.stop();
  assert.ok(isDead(earlierDaemon));
  assert.deepEqual(cgroupLivePids(cgroup), []);
  assert.equal(existsSync(cgroup), false);
});

void test('with a cgroup, members that survive SIGKILL make stop() fail (a failed stop is not a stop); once they can die, stop succeeds', async (t) => {
  // A task frozen by the cgroup v1 freezer sleeps uninterruptibly: SIGKILL waits for the thaw,
  // as it would for a process stuck in D state on a dead NFS server.
  const freezerRoot = '/sys/fs/cgroup/freezer';
  if (!existsSync(join(freezerRoot, 'cgroup.procs'))) {
    t.skip('no cgroup v1 freezer hierarchy to make a process survive SIGKILL with');
    return;
  }
  const cgroup = serviceCgroup(t, 'escaper');
  if (!cgroup) return;
  const freezer = join(freezerRoot, `haoscar-test-${process.pid}`);
  mkdirSync(freezer);
  const frozenPids = () => readFileSync(join(freezer, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  t.after(async () => {
    writeFileSync(join(freezer, 'freezer.state'), 'THAWED');
    for (const pid of frozenPids()) process.kill(pid, 'SIGKILL'); // only this test put processes there
    await waitFor('the v1 freezer cgroup to empty', () => frozenPids().length === 0, 10_000);
    rmdirSync(freezer);
  });
  const { driver, logDir } = supervised(t, (dir) => escaper(dir, 'stubborn', { stopTimeoutMs: 300 }), { cgroup });
  await driver.start();
  const daemon = await daemonPid(t, logDir);
  writeFileSync(join(freezer, 'cgroup.procs'), String(daemon));
  writeFileSync(join(freezer, 'freezer.state'), 'FROZEN');
  await waitFor('the daemon frozen', () => readProcessStat(daemon)?.state === 'D');

  await assert.rejects(driver.stop(), (error: unknown) => {
    assert.ok(error instanceof CgroupError);
    assert.equal(error.path, cgroup);
    assert.match(error.message, new RegExp(`^service escaper: processes ${daemon} \\(state D\\) of cgroup ${cgroup} survived SIGKILL for 5000 ms, so the service is not stopped`));
    return true;
  });
  assert.equal(isDead(daemon), false);
  assert.ok(existsSync(cgroup), 'the cgroup stays');
  assert.deepEqual(driver.guardTargets(), { cgroup }, 'and a guard is still told to kill it');
  assert.match((await driver.status()).detail, new RegExp(`; 1 process still in cgroup ${cgroup} \\(pid ${daemon}\\)$`));

  writeFileSync(join(freezer, 'freezer.state'), 'THAWED');
  await driver.stop();
  assert.ok(isDead(daemon));
  assert.deepEqual(cgroupLivePids(cgroup), []);
});

void test('with a cgroup, a command that does not exist rejects with the same clear message, and nothing is left in the cgroup', async (t) => {
  const cgroup = serviceCgroup(t, 'ghost');
  if (!cgroup) return;
  const { driver } = supervised(t, () => ({ ...resource('ghost', ''), command: ['/nonexistent/haoscar-no-such-daemon', '--flag'] }), { cgroup });
  const exits: ProcessExit[] = [];
  driver.onExit((exit) => exits.push(exit));
  await assert.rejects(driver.start(), /service ghost: command not found: \/nonexistent\/haoscar-no-such-daemon: install it/);
  assert.equal((await driver.status()).running, false);
  assert.deepEqual(cgroupLivePids(cgroup), []);
  assert.deepEqual(exits, [], 'a failed start is no crash');
});

void test('with a cgroup the command cannot enter, start fails with a clear error and nothing runs', async (t) => {
  const cgroup = serviceCgroup(t, 'web');
  if (!cgroup) return;
  ensureCgroup(cgroup);
  // A threaded sibling makes the service's cgroup "domain invalid": no process may join it.
  const threaded = join(cgroup, '..', 'threads');
  ensureCgroup(threaded);
  writeFileSync(join(threaded, 'cgroup.type'), 'threaded');
  assert.equal(readFileSync(join(cgroup, 'cgroup.type'), 'utf8').trim(), 'domain invalid');

  const { driver, log } = supervised(t, () => resource('web', IDLE), { cgroup });
  await assert.rejects(driver.start(), (error: unknown) => {
    assert.ok(error instanceof CgroupError);
    assert.equal(error.path, cgroup);
    assert.match(error.message, new RegExp(`^service web: could not move the service into cgroup ${cgroup} \\(the shell's reason is at the end of ${driver.logFile}\\)`));
    return true;
  });
  assert.match(log(), /cgroup\.procs|I\/O error/, "the shell's reason is in the log");
  assert.equal((await driver.status()).running, false);
  assert.deepEqual(cgroupLivePids(cgroup), []);
});

void test('a cgroup root that is not cgroup v2: start fails with a clear error, creates nothing and spawns nothing', async (t) => {
  const fakeRoot = mkdtempSync(join(tmpdir(), 'haoscar-not-cgroup-'));
  t.after(() => rmSync(fakeRoot, { recursive: true, force: true }));
  const cgroup = serviceCgroupPath(fakeRoot, 'lab', 'n1', 'web', 'web');
  const { driver } = supervised(t, () => resource('web', `require('node:fs').writeFileSync(${JSON.stringify(join(fakeRoot, 'ran'))}, ''); ${IDLE}`), { cgroup });
  await assert.rejects(driver.start(), (error: unknown) => {
    assert.ok(error instanceof CgroupError);
    assert.match(error.message, new RegExp(`^service web: cgroup ${cgroup}: ${fakeRoot} is not on a cgroup v2 filesystem: give the cgroup v2 mount point as the root`));
    return true;
  });
  assert.deepEqual(readdirSync(fakeRoot), [], 'no directory created, and the command never ran');
  assert.equal(existsSync(driver.logFile), false, 'not even its log file');
  assert.deepEqual(await driver.status(), { running: false, detail: 'not started' });
});

void test('createServiceDriver puts process services in <cgroupRoot>/haoscar/<cluster>/<node>/<group>/<resource>, and needs the three names', () => {
  const deps = { exec: (() => {
    throw new Error('not used');
  }) as never, logger: silentLogger, logDir: tmpdir() };
  const driver = createServiceDriver(resource('web', IDLE), { ...deps, cgroupRoot: '/sys/fs/cgroup', cluster: 'lab', node: 'n1', group: 'www' });
  assert.ok(driver instanceof ProcessDriver);
  assert.equal(driver.cgroup, '/sys/fs/cgroup/haoscar/lab/n1/www/web');
  assert.deepEqual(driver.guardActions(), [{ kind: 'cgroup', path: '/sys/fs/cgroup/haoscar/lab/n1/www/web' }]);

  const plain = createServiceDriver(resource('web', IDLE), deps);
  assert.ok(plain instanceof ProcessDriver);
  assert.equal(plain.cgroup, undefined);
  assert.deepEqual(plain.guardActions(), [], 'nothing runs: nothing to kill');

  assert.throws(() => createServiceDriver(resource('web', IDLE), { ...deps, cgroupRoot: '/sys/fs/cgroup', node: 'n1' }), /service web: a cgroupRoot needs the cluster, group name too/);
  assert.throws(() => createServiceDriver(resource('web', IDLE), { ...deps, cgroupRoot: '/sys/fs/cgroup', cluster: 'lab', node: 'n1', group: '../x' }), CgroupError);
});

void test('without a cgroup, guardTargets is the process group while it runs, and nothing once stopped', async (t) => {
  const { driver } = supervised(t, () => resource('web', IDLE));
  assert.deepEqual(driver.guardTargets(), {});
  await driver.start();
  const { pid } = await driver.status();
  assert.ok(pid);
  assert.deepEqual(driver.guardTargets(), { pgid: pid });
  assert.deepEqual(driver.guardActions(), [{ kind: 'pgid', pgid: pid }]);
  await driver.stop();
  assert.deepEqual(driver.guardTargets(), {});
  assert.deepEqual(driver.guardActions(), []);
});
