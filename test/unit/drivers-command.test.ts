import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import type { CommandResource } from '../../src/config/types.js';
import { CommandDriver } from '../../src/drivers/command.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { demoScriptDir } from '../support/script-dir.js';

/**
 * A real resource script in the OCF manner: `start` keeps a `sleep` running under a pid file
 * (idempotent), `monitor` exits 0 while it lives and 7 ("not running") otherwise, `stop` kills
 * it (idempotent). The daemon's stdio is detached, as the driver's contract asks.
 */
const RESOURCE_SCRIPT = `#!/bin/sh
PIDFILE="$(dirname "$0")/demo.pid"
alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
case "$1" in
  start)
    alive && { echo "demo already running"; exit 0; }
    sleep 300 </dev/null >/dev/null 2>&1 &
    echo $! > "$PIDFILE"
    echo "demo started"
    exit 0 ;;
  stop)
    if alive; then kill "$(cat "$PIDFILE")"; fi
    rm -f "$PIDFILE"
    exit 0 ;;
  monitor)
    if alive; then echo "demo running (pid $(cat "$PIDFILE"))"; exit 0; fi
    echo "checking demo" >&2
    echo "demo is not running" >&2
    exit 7 ;;
  fail)
    echo "binding 0.0.0.0:8080" >&2
    echo "port 8080 already in use" >&2
    exit 1 ;;
  hang)
    # exec: the timeout's SIGKILL then hits the sleeping process itself.
    exec sleep 30 ;;
  killed)
    kill -TERM $$ ;;
esac
`;

function resourceDir(t: TestContext): { script: string; pidFile: string } {
  return demoScriptDir(t, 'haoscar-command-', RESOURCE_SCRIPT);
}

function resource(script: string, overrides: Partial<CommandResource> = {}): CommandResource {
  return {
    type: 'command',
    name: 'demo',
    start: [script, 'start'],
    stop: [script, 'stop'],
    monitor: [script, 'monitor'],
    timeoutMs: 5_000,
    check: { type: 'status', intervalMs: 1000, timeoutMs: 1000, rise: 1, fall: 1 },
    healing: { maxRestarts: 3, windowMs: 60_000, backoff: { initialMs: 100, maxMs: 1000, multiplier: 2 }, startTimeoutMs: 10_000 },
    ...overrides,
  };
}

function driverFor(res: CommandResource): CommandDriver {
  return new CommandDriver(res, { exec: createExec(silentLogger), logger: silentLogger });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

void test('real scripts: start, start again, monitor running, stop, stop again, monitor not running', async (t) => {
  const { script, pidFile } = resourceDir(t);
  const driver = driverFor(resource(script));
  assert.equal(driver.kind, 'command');

  assert.deepEqual(await driver.status(), { running: false, detail: 'monitor exited 7: demo is not running' });
  await driver.start();
  const pid = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(alive(pid), 'the daemon runs');
  assert.deepEqual(await driver.status(), { running: true, detail: `demo running (pid ${pid})` });

  await driver.start();
  assert.equal(Number(readFileSync(pidFile, 'utf8')), pid, 'the second start left the running daemon alone');

  await driver.stop();
  assert.equal(existsSync(pidFile), false);
  assert.deepEqual(await driver.status(), { running: false, detail: 'monitor exited 7: demo is not running' });
  await driver.stop();
});

void test('a failing start throws with the command, its exit code and its stderr', async (t) => {
  const { script } = resourceDir(t);
  const driver = driverFor(resource(script, { start: [script, 'fail'] }));
  await assert.rejects(driver.start(), (error: unknown) => {
    assert.ok(error instanceof Error);
    assert.match(error.message, /^start of command resource demo failed: command ".*demo fail" exited with 1: binding 0\.0\.0\.0:8080 \| port 8080 already in use$/);
    return true;
  });
});

void test('a stop that outlives the timeout throws naming the limit', async (t) => {
  const { script } = resourceDir(t);
  const driver = driverFor(resource(script, { stop: [script, 'hang'], timeoutMs: 300 }));
  const started = Date.now();
  await assert.rejects(driver.stop(), /^Error: stop of command resource demo failed \(limit 300 ms\): command ".*demo hang" timed out/);
  assert.ok(Date.now() - started < 5_000, 'the timeout cut the script short');
});

void test('a monitor that outlives the timeout means not running', async (t) => {
  const { script } = resourceDir(t);
  const driver = driverFor(resource(script, { monitor: [script, 'hang'], timeoutMs: 300 }));
  const started = Date.now();
  assert.deepEqual(await driver.status(), { running: false, detail: 'monitor timed out after 300 ms' });
  assert.ok(Date.now() - started < 5_000, 'the timeout cut the monitor short');
});

void test('a monitor killed by a signal means not running', async (t) => {
  const { script } = resourceDir(t);
  const driver = driverFor(resource(script, { monitor: [script, 'killed'] }));
  assert.deepEqual(await driver.status(), { running: false, detail: 'monitor was killed by SIGTERM' });
});

void test('a monitor that cannot be run is an error, not "not running"', async (t) => {
  const { script } = resourceDir(t);
  const driver = driverFor(resource(script, { monitor: ['/nonexistent/monitor'] }));
  await assert.rejects(driver.status(), /^Error: monitor command "\/nonexistent\/monitor" could not be run/);
});

void test('each command gets the resource timeout and runs without a shell', async (t) => {
  const { script } = resourceDir(t);
  const seen: { file: string; args: readonly string[]; timeoutMs: number | undefined }[] = [];
  const exec = createExec(silentLogger);
  const driver = new CommandDriver(resource(script, { timeoutMs: 4321 }), {
    logger: silentLogger,
    exec: (file, args, options) => {
      seen.push({ file, args, timeoutMs: options?.timeoutMs });
      return exec(file, args, options);
    },
  });
  await driver.start();
  await driver.status();
  await driver.stop();
  assert.deepEqual(seen, [
    { file: script, args: ['start'], timeoutMs: 4321 },
    { file: script, args: ['monitor'], timeoutMs: 4321 },
    { file: script, args: ['stop'], timeoutMs: 4321 },
  ]);
});
