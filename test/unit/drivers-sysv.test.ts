import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { lsbStatus, SysvDriver } from '../../src/drivers/sysv.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { RecordingExec } from '../support/recording-exec.js';
import { demoScriptDir } from '../support/script-dir.js';
import { waitFor } from '../support/wait.js';

/**
 * A real LSB init script, run through the real exec layer (createExec: execa, its own process
 * group, timeouts). It starts `demod` (beside it) in the background under a pid file and a
 * lock file, waits until the daemon says it is ready or dies, and follows the LSB exit codes:
 * start 0 (also when already running), 1 (the daemon died at start), 5 (not installed); stop 0
 * (also when stopped, or STOP_EXIT_NOT_RUNNING as some scripts do), 1 (still running after
 * STOP_WAIT tenths of a second); status 0 running (with the pid), 1 dead with a pid file, 2 dead
 * with a lock file, 3 not running, 4 unknown (the pid file holds no pid). `demo.default` beside
 * it overrides its settings, as /etc/default/<name> does.
 */
const INIT_SCRIPT = `#!/bin/sh
### BEGIN INIT INFO
# Provides:          demo
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: the sysv driver tests' daemon
### END INIT INFO
DIR=$(cd "$(dirname "$0")" && pwd)
DAEMON="$DIR/demod"
PIDFILE="$DIR/demo.pid"
LOCKFILE="$DIR/demo.lock"
LOG="$DIR/demod.log"
STOP_EXIT_NOT_RUNNING=0
STOP_WAIT=100
STATUS_HANG=
[ -r "$DIR/demo.default" ] && . "$DIR/demo.default"

# The pid file names a process that exists and is not a zombie (a daemon that died and that
# nobody has reaped yet is dead).
alive() {
  p=$(cat "$PIDFILE" 2>/dev/null) || return 1
  case "$p" in ''|*[!0-9]*) return 1 ;; esac
  state=$(sed -n 's/^State:[[:space:]]*\\(.\\).*/\\1/p' "/proc/$p/status" 2>/dev/null)
  [ -n "$state" ] && [ "$state" != Z ]
}

case "$1" in
  start)
    [ -x "$DAEMON" ] || { echo "demo: $DAEMON is not installed" >&2; exit 5; }
    alive && { echo "demo is already running"; exit 0; }
    rm -f "$DIR/ready"
    "$DAEMON" </dev/null >"$LOG" 2>&1 &
    echo $! >"$PIDFILE"
    i=0
    until [ -f "$DIR/ready" ]; do
      if ! alive; then
        rm -f "$PIDFILE"
        echo "demo failed to start: $(tail -n 1 "$LOG")" >&2
        exit 1
      fi
      [ $i -ge 600 ] && { echo "demo did not become ready within 60 s" >&2; exit 1; }
      sleep 0.1; i=$((i + 1))
    done
    touch "$LOCKFILE"
    echo "demo started"; exit 0 ;;
  stop)
    if ! alive; then
      rm -f "$PIDFILE" "$LOCKFILE"
      echo "demo is not running"; exit "$STOP_EXIT_NOT_RUNNING"
    fi
    p=$(cat "$PIDFILE")
    kill "$p"
    i=0
    while alive; do
      [ $i -ge "$STOP_WAIT" ] && { echo "demo (pid $p) did not stop" >&2; exit 1; }
      sleep 0.1; i=$((i + 1))
    done
    rm -f "$PIDFILE" "$LOCKFILE"
    echo "demo stopped"; exit 0 ;;
  status)
    # A status blocked on something that does not answer (an NFS mount, a dead socket).
    if [ -n "$STATUS_HANG" ]; then sleep 300 & echo $! >"$DIR/hang.pid"; wait; fi
    if [ -f "$PIDFILE" ]; then
      p=$(cat "$PIDFILE")
      case "$p" in ''|*[!0-9]*) echo "demo status is unknown: $PIDFILE holds no pid"; exit 4 ;; esac
      alive && { echo "demo is running (pid $p)"; exit 0; }
      echo "demo is dead but pid file exists"; exit 1
    fi
    [ -f "$LOCKFILE" ] && { echo "demo is dead but subsys locked"; exit 2; }
    echo "demo is not running"; exit 3 ;;
  *)
    echo "Usage: $0 {start|stop|status}" >&2; exit 2 ;;
esac
`;

/** The daemon: records its pid (for the teardown), says it is ready, then runs. */
const DAEMON = `#!/bin/sh
echo $$ >>"$(dirname "$0")/daemons"
touch "$(dirname "$0")/ready"
exec sleep 300
`;

/** A daemon that dies during start-up, saying why on stderr. */
const CRASHING_DAEMON = `#!/bin/sh
echo "demod: cannot bind 0.0.0.0:8080: Address already in use" >&2
exit 1
`;

/** A daemon that ignores SIGTERM (SIG_IGN survives the exec), so a stop cannot stop it. */
const STUBBORN_DAEMON = `#!/bin/sh
trap '' TERM
echo $$ >>"$(dirname "$0")/daemons"
touch "$(dirname "$0")/ready"
exec sleep 300
`;

/** Whether `pid` is a live process (a zombie is dead: PID 1 here may not reap). */
function isAlive(pid: number): boolean {
  try {
    return !/^State:\s*Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function realInitDir(t: TestContext, opts: { daemon?: string | false; defaults?: string; script?: string } = {}) {
  const made = demoScriptDir(t, 'haoscar-sysv-', opts.script ?? INIT_SCRIPT);
  const daemonPids = () => (existsSync(join(made.dir, 'daemons')) ? readFileSync(join(made.dir, 'daemons'), 'utf8').split('\n').filter(Boolean).map(Number) : []);
  // Runs before demoScriptDir's teardown removes the directory: no daemon is left behind,
  // whatever the test did to the pid file.
  t.after(() => {
    for (const pid of daemonPids()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  if (opts.daemon !== false) {
    writeFileSync(join(made.dir, 'demod'), opts.daemon ?? DAEMON);
    chmodSync(join(made.dir, 'demod'), 0o755);
  }
  if (opts.defaults) writeFileSync(join(made.dir, 'demo.default'), opts.defaults);
  return { ...made, daemonPids };
}

/** The driver on the real exec layer, with a timeout generous enough for a loaded machine. */
function realDriver(dir: string, timeoutMs = 60_000): SysvDriver {
  return new SysvDriver('demo', { exec: createExec(silentLogger), logger: silentLogger, initDir: dir, timeoutMs });
}

void test('a real init script: start, idempotent start, status with pid, stop, idempotent stop', async (t) => {
  const { dir, pidFile, daemonPids } = realInitDir(t);
  const driver = realDriver(dir);
  assert.equal(driver.path, join(dir, 'demo'));

  assert.deepEqual(await driver.status(), { running: false, detail: 'not running (LSB exit 3): demo is not running' });
  await driver.start();
  const pid = Number(readFileSync(pidFile, 'utf8'));
  assert.ok(isAlive(pid), 'the daemon runs after start');
  await driver.start();
  assert.equal(Number(readFileSync(pidFile, 'utf8')), pid, 'a second start does not start another copy');
  assert.deepEqual(daemonPids(), [pid], 'one daemon was ever started');

  assert.deepEqual(await driver.status(), { running: true, pid, detail: `running (LSB exit 0): demo is running (pid ${pid})` });

  await driver.stop();
  assert.equal(isAlive(pid), false, 'the daemon is gone after stop');
  assert.deepEqual(await driver.status(), { running: false, detail: 'not running (LSB exit 3): demo is not running' });
  await driver.stop();
});

void test('a real init script: a daemon killed after start is LSB status 1 (pid file left), then 2 (lock file left)', async (t) => {
  const { dir, pidFile } = realInitDir(t);
  const driver = realDriver(dir);
  await driver.start();
  const pid = Number(readFileSync(pidFile, 'utf8'));
  process.kill(pid, 'SIGKILL');
  await waitFor('the killed daemon is gone', () => !isAlive(pid), 10_000);
  assert.deepEqual(await driver.status(), { running: false, detail: 'dead, pid file exists (LSB exit 1): demo is dead but pid file exists' });
  rmSync(pidFile); // as a tmp cleaner or the daemon's own exit handler would
  assert.deepEqual(await driver.status(), { running: false, detail: 'dead, lock file exists (LSB exit 2): demo is dead but subsys locked' });
  // And it can be started again: a dead service is restartable.
  await driver.start();
  assert.equal((await driver.status()).running, true);
});

void test('a real init script: a dead process with its pid file left behind is LSB status 1', async (t) => {
  const { dir, pidFile } = realInitDir(t);
  // The pid of a process that has exited and been reaped: nothing answers to it.
  const deadPid = spawnSync('true').pid;
  writeFileSync(pidFile, `${deadPid}\n`);
  assert.deepEqual(await realDriver(dir).status(), { running: false, detail: 'dead, pid file exists (LSB exit 1): demo is dead but pid file exists' });
});

void test('a real init script: LSB status 4 (unknown) is read as not running, with the script\'s words', async (t) => {
  const { dir, pidFile } = realInitDir(t);
  writeFileSync(pidFile, 'garbage\n');
  assert.deepEqual(await realDriver(dir).status(), {
    running: false,
    detail: `status unknown (LSB exit 4): demo status is unknown: ${pidFile} holds no pid`,
  });
});

void test('a real init script exiting outside LSB 0-4 on status is an error, not a state', async (t) => {
  // An init script that hands over to a control program (as apachectl does) that is not there:
  // the shell exits 127.
  const { dir } = realInitDir(t, { script: '#!/bin/sh\nexec "$(dirname "$0")/democtl" "$@"\n', daemon: false });
  await assert.rejects(realDriver(dir).status(), new RegExp(`init script ${join(dir, 'demo')} status exited 127: .*democtl.*not found`));
});

void test('a real init script: a daemon that dies at start makes start fail (LSB 1) with its reason; nothing runs', async (t) => {
  const { dir, pidFile } = realInitDir(t, { daemon: CRASHING_DAEMON });
  const driver = realDriver(dir);
  await assert.rejects(
    driver.start(),
    new RegExp(`init script ${join(dir, 'demo')} start exited 1: demo failed to start: demod: cannot bind 0\\.0\\.0\\.0:8080: Address already in use`),
  );
  assert.equal(existsSync(pidFile), false);
  assert.deepEqual(await driver.status(), { running: false, detail: 'not running (LSB exit 3): demo is not running' });
  await driver.stop();
});

void test('a real init script: a daemon that is not installed makes start fail with LSB 5; stop and status still answer', async (t) => {
  const { dir } = realInitDir(t, { daemon: false });
  const driver = realDriver(dir);
  await assert.rejects(driver.start(), new RegExp(`init script ${join(dir, 'demo')} start exited 5 \\(program is not installed\\): demo: ${join(dir, 'demod')} is not installed`));
  assert.equal((await driver.status()).running, false);
  await driver.stop();
});

void test('a real init script: a daemon that ignores SIGTERM makes stop fail (LSB 1), and status still says running', async (t) => {
  const { dir, pidFile } = realInitDir(t, { daemon: STUBBORN_DAEMON, defaults: 'STOP_WAIT=5\n' });
  const driver = realDriver(dir);
  await driver.start();
  const pid = Number(readFileSync(pidFile, 'utf8'));
  await assert.rejects(driver.stop(), new RegExp(`init script ${join(dir, 'demo')} stop exited 1: demo \\(pid ${pid}\\) did not stop`));
  // A failed stop is not a stop.
  assert.ok(isAlive(pid));
  assert.deepEqual(await driver.status(), { running: true, pid, detail: `running (LSB exit 0): demo is running (pid ${pid})` });
});

void test('a real init script that exits 7 from stop when nothing runs: the stop succeeds', async (t) => {
  const { dir, pidFile } = realInitDir(t, { defaults: 'STOP_EXIT_NOT_RUNNING=7\n' });
  const driver = realDriver(dir);
  await driver.stop();
  await driver.start();
  const pid = Number(readFileSync(pidFile, 'utf8'));
  await driver.stop();
  assert.equal(isAlive(pid), false);
  await driver.stop();
});

void test('a real init script that is not executable: start and status fail saying so, and nothing runs', async (t) => {
  const { dir, script, daemonPids } = realInitDir(t);
  chmodSync(script, 0o644);
  const driver = realDriver(dir);
  await assert.rejects(driver.start(), new RegExp(`init script ${script} start could not be run \\(is it executable\\?\\)`));
  await assert.rejects(driver.status(), new RegExp(`init script ${script} status could not be run`));
  assert.deepEqual(daemonPids(), []);
});

void test('a real init script killed by a signal (as the OOM killer would): status fails naming the signal', async (t) => {
  const { dir } = realInitDir(t, { script: '#!/bin/sh\nkill -KILL $$\n', daemon: false });
  await assert.rejects(realDriver(dir).status(), (err: unknown) => {
    assert.match(String((err as Error).message), new RegExp(`^init script ${join(dir, 'demo')} status was killed by SIGKILL`));
    assert.doesNotMatch(String((err as Error).message), /is it executable/, 'it did run: the message must not send the operator to its mode bits');
    return true;
  });
});

// The timeout bounds the run if the script's child kept the output pipe open past the kill.
void test('a real init script whose status hangs: it fails after the timeout, and what it started is killed with it', { timeout: 60_000 }, async (t) => {
  const { dir } = realInitDir(t, { defaults: 'STATUS_HANG=1\n' });
  const driver = realDriver(dir, 1500);
  const hangPid = join(dir, 'hang.pid');
  const started = performance.now();
  await assert.rejects(driver.status(), new RegExp(`init script ${join(dir, 'demo')} status timed out after 1500 ms`));
  const took = performance.now() - started;
  assert.ok(took >= 1400 && took < 30_000, `failed after the timeout, not before or much later (${Math.round(took)} ms)`);
  const child = Number(readFileSync(hangPid, 'utf8'));
  await waitFor(`the script's child ${child} is killed with its process group`, () => !isAlive(child), 10_000);
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
