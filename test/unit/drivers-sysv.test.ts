import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { lsbStatus, SysvDriver } from '../../src/drivers/sysv.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { RecordingExec } from '../support/recording-exec.js';
import { demoScriptDir } from '../support/script-dir.js';

/**
 * A real LSB init script: it keeps a `sleep` running under a pid file and follows the LSB
 * exit codes (start/stop idempotent with exit 0; status 0/1/3).
 */
const INIT_SCRIPT = `#!/bin/sh
PIDFILE="$(dirname "$0")/demo.pid"
alive() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
case "$1" in
  start)
    alive && exit 0
    sleep 300 </dev/null >/dev/null 2>&1 &
    echo $! > "$PIDFILE"
    exit 0 ;;
  stop)
    if alive; then kill "$(cat "$PIDFILE")"; fi
    rm -f "$PIDFILE"
    exit 0 ;;
  status)
    if alive; then echo "demo is running (pid $(cat "$PIDFILE"))"; exit 0; fi
    if [ -f "$PIDFILE" ]; then echo "demo is dead but pid file exists"; exit 1; fi
    echo "demo is not running"; exit 3 ;;
  *)
    echo "Usage: $0 {start|stop|status}" >&2; exit 2 ;;
esac
`;

function realInitDir(t: TestContext): { dir: string; pidFile: string } {
  return demoScriptDir(t, 'haoscar-sysv-', INIT_SCRIPT);
}

void test('a real init script: start, idempotent start, status with pid, stop, idempotent stop', async (t) => {
  const { dir, pidFile } = realInitDir(t);
  const driver = new SysvDriver('demo', { exec: createExec(silentLogger), logger: silentLogger, initDir: dir });
  assert.equal(driver.path, join(dir, 'demo'));

  assert.deepEqual(await driver.status(), { running: false, detail: 'not running (LSB exit 3): demo is not running' });
  await driver.start();
  const pid = Number(readFileSync(pidFile, 'utf8'));
  await driver.start();
  assert.equal(Number(readFileSync(pidFile, 'utf8')), pid, 'a second start does not start another copy');

  const running = await driver.status();
  assert.equal(running.running, true);
  assert.equal(running.pid, pid);

  await driver.stop();
  assert.equal((await driver.status()).running, false);
  await driver.stop();
});

void test('a real init script: a dead process with its pid file left behind is LSB status 1', async (t) => {
  const { dir, pidFile } = realInitDir(t);
  // The pid of a process that has exited and been reaped: nothing answers to it.
  const deadPid = spawnSync('true').pid;
  writeFileSync(pidFile, `${deadPid}\n`);
  const driver = new SysvDriver('demo', { exec: createExec(silentLogger), logger: silentLogger, initDir: dir });
  assert.deepEqual(await driver.status(), { running: false, detail: 'dead, pid file exists (LSB exit 1): demo is dead but pid file exists' });
});

void test('a missing init script: start and status fail clearly, stop succeeds', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-sysv-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const exec = new RecordingExec();
  const driver = new SysvDriver('nosuch', { exec: exec.exec, logger: silentLogger, initDir: dir });
  const expected = new RegExp(`init script ${join(dir, 'nosuch')} not found on this node: install it or fix groups\\[\\.\\.\\] script`);
  await assert.rejects(driver.start(), expected);
  await assert.rejects(driver.status(), expected);
  await driver.stop();
  assert.deepEqual(exec.calls, [], 'nothing was run');
});

void test('status passes the LSB codes 1-4 as ok and maps them', async () => {
  const script = '/bin/sh'; // exists; the recording exec answers for it
  for (const [exitCode, running, meaning] of [
    [0, true, 'running'],
    [1, false, 'dead, pid file exists'],
    [2, false, 'dead, lock file exists'],
    [3, false, 'not running'],
    [4, false, 'status unknown'],
  ] as const) {
    const exec = new RecordingExec([{ argv: [script, 'status'], reply: { exitCode } }]);
    const status = await new SysvDriver(script, { exec: exec.exec, logger: silentLogger }).status();
    assert.deepEqual(status, { running, detail: `${meaning} (LSB exit ${exitCode})` });
    assert.deepEqual(exec.calls[0]?.options.okExitCodes, [0, 1, 2, 3, 4]);
  }
});

void test('status exit codes outside LSB 0-4 are errors naming the script', async () => {
  const exec = new RecordingExec([{ argv: ['/bin/sh', 'status'], reply: { exitCode: 150, stderr: 'config broken' } }]);
  await assert.rejects(new SysvDriver('/bin/sh', { exec: exec.exec, logger: silentLogger }).status(), /init script \/bin\/sh status exited 150: config broken/);
});

void test('stop accepts 7 (program is not running) from scripts that say so; start does not', async () => {
  const exec = new RecordingExec([
    { argv: ['/bin/sh', 'stop'], reply: { exitCode: 7 } },
    { argv: ['/bin/sh', 'start'], reply: { exitCode: 7 } },
  ]);
  const driver = new SysvDriver('/bin/sh', { exec: exec.exec, logger: silentLogger });
  await driver.stop();
  await assert.rejects(driver.start(), /init script \/bin\/sh start exited 7/);
});

void test('start failures name the script and the LSB meaning', async () => {
  const exec = new RecordingExec([
    { argv: ['/bin/sh', 'start'], reply: { exitCode: 5, stderr: '/usr/sbin/demod not found' } },
    { argv: ['/bin/sh', 'start'], reply: { timedOut: true } },
  ]);
  const driver = new SysvDriver('/bin/sh', { exec: exec.exec, logger: silentLogger, timeoutMs: 1000 });
  await assert.rejects(driver.start(), /init script \/bin\/sh start exited 5 \(program is not installed\): \/usr\/sbin\/demod not found/);
  await assert.rejects(driver.start(), /init script \/bin\/sh start timed out after 1000 ms/);
});

void test('lsbStatus reads a pid only from a running status', () => {
  assert.deepEqual(lsbStatus(0, 'demo is running (pid 4242)\n'), { running: true, pid: 4242, detail: 'running (LSB exit 0): demo is running (pid 4242)' });
  assert.deepEqual(lsbStatus(0, ' * apache2 is running'), { running: true, detail: 'running (LSB exit 0): * apache2 is running' });
  assert.equal(lsbStatus(1, 'dead (pid 4242)').pid, undefined);
});
