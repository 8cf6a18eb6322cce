import assert from 'node:assert/strict';
import { waitFor as waitUntil } from '../support/wait.js';
import { existsSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import type { ServiceResource } from '../../src/config/types.js';
import { ProcessDriver } from '../../src/drivers/process.js';
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
function supervised(t: TestContext, spec: (logDir: string) => ProcessResource): { driver: ProcessDriver; logDir: string; log: () => string } {
  const logDir = mkdtempSync(join(tmpdir(), 'haoscar-process-'));
  const driver = new ProcessDriver(spec(logDir), { logger: silentLogger, logDir });
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
