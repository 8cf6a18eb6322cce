import { ConfigError, parseConfig } from '../../src/config/load.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseSystemctlShow, SystemdDriver, UnitNotFoundError } from '../../src/drivers/systemd.js';
import { silentLogger } from '../../src/log.js';
import { RecordingExec, systemctl } from '../support/recording-exec.js';

const unit = 'web.service';
const show = ['systemctl', 'show', '--property=ActiveState,SubState,MainPID,LoadState', '--', unit];

function driverWith(exec: RecordingExec): SystemdDriver {
  return new SystemdDriver(unit, { exec: exec.exec, logger: silentLogger });
}

void test('parseSystemctlShow reads key=value lines in any order, keeping = inside values', () => {
  assert.deepEqual(parseSystemctlShow('MainPID=812\nLoadState=loaded\nActiveState=active\nSubState=running\n'), {
    MainPID: '812',
    LoadState: 'loaded',
    ActiveState: 'active',
    SubState: 'running',
  });
  assert.deepEqual(parseSystemctlShow('ExecStart={ path=/usr/bin/x ; argv[]=x -a=b }\n\ngarbage\n'), {
    ExecStart: '{ path=/usr/bin/x ; argv[]=x -a=b }',
  });
  assert.deepEqual(parseSystemctlShow(''), {});
});

void test('start resets the failed state first, then starts', async () => {
  const exec = new RecordingExec([
    { argv: ['systemctl', 'reset-failed', '--', unit], reply: systemctl.ok() },
    { argv: ['systemctl', 'start', '--', unit], reply: systemctl.ok() },
  ]);
  await driverWith(exec).start();
  assert.deepEqual(exec.commands, [`systemctl reset-failed -- ${unit}`, `systemctl start -- ${unit}`]);
  assert.deepEqual(exec.unused, []);
  assert.ok(exec.calls.every((call) => (call.options.timeoutMs ?? 0) > 0), 'every systemctl call has a timeout');
});

void test('a failing reset-failed does not block the start', async () => {
  const exec = new RecordingExec([
    { argv: ['systemctl', 'reset-failed', '--', unit], reply: systemctl.resetFailedNotLoaded(unit) },
    { argv: ['systemctl', 'start', '--', unit], reply: systemctl.ok() },
  ]);
  await driverWith(exec).start();
  assert.deepEqual(exec.unused, []);
});

void test('starting a unit that does not exist fails with a clear, permanent error', async () => {
  const exec = new RecordingExec([
    { argv: ['systemctl', 'reset-failed', '--', unit], reply: systemctl.resetFailedNotLoaded(unit) },
    { argv: ['systemctl', 'start', '--', unit], reply: systemctl.startNotFound(unit) },
  ]);
  await assert.rejects(driverWith(exec).start(), (error: unknown) => {
    assert.ok(error instanceof UnitNotFoundError);
    assert.match(error.message, /unit web\.service not found on this node: install it or fix groups\[\.\.\] unit/);
    return true;
  });
});

void test('a failed start job names the unit and quotes systemctl', async () => {
  const exec = new RecordingExec([
    { argv: ['systemctl', 'reset-failed', '--', unit], reply: systemctl.ok() },
    { argv: ['systemctl', 'start', '--', unit], reply: systemctl.startJobFailed(unit) },
  ]);
  await assert.rejects(driverWith(exec).start(), (error: unknown) => {
    assert.ok(error instanceof Error && !(error instanceof UnitNotFoundError));
    assert.match(error.message, /^systemctl start web\.service failed \(exit 1\): Job for web\.service failed because the control process exited/);
    assert.match(error.message, /journalctl -u web\.service/);
    return true;
  });
});

void test('a permission error is reported, not mistaken for a missing unit', async () => {
  const exec = new RecordingExec([{ argv: ['systemctl', 'stop', '--', unit], reply: systemctl.accessDenied('stop', unit) }]);
  await assert.rejects(driverWith(exec).stop(), /systemctl stop web\.service failed \(exit 4\): Failed to stop web\.service: Access denied/);
});

void test('a hanging systemctl becomes a timeout error naming the unit', async () => {
  const exec = new RecordingExec([
    { argv: ['systemctl', 'reset-failed', '--', unit], reply: systemctl.ok() },
    { argv: ['systemctl', 'start', '--', unit], reply: { timedOut: true } },
  ]);
  await assert.rejects(driverWith(exec).start(), /systemctl start web\.service timed out after \d+ ms/);
});

void test('stop runs systemctl stop; stopping an unknown unit succeeds (it cannot be running)', async () => {
  const ok = new RecordingExec([{ argv: ['systemctl', 'stop', '--', unit], reply: systemctl.ok() }]);
  await driverWith(ok).stop();
  assert.deepEqual(ok.commands, [`systemctl stop -- ${unit}`]);

  const missing = new RecordingExec([{ argv: ['systemctl', 'stop', '--', unit], reply: systemctl.stopNotLoaded(unit) }]);
  await driverWith(missing).stop();
});

void test('status: active and reloading count as running, with the main pid', async () => {
  const table = [
    { ActiveState: 'active', SubState: 'running', MainPID: 812, running: true, pid: 812, detail: 'active/running' },
    { ActiveState: 'reloading', SubState: 'reload', MainPID: 812, running: true, pid: 812, detail: 'reloading/reload' },
    { ActiveState: 'activating', SubState: 'start', MainPID: 0, running: false, pid: undefined, detail: 'activating/start' },
    { ActiveState: 'inactive', SubState: 'dead', MainPID: 0, running: false, pid: undefined, detail: 'inactive/dead' },
    { ActiveState: 'failed', SubState: 'failed', MainPID: 0, running: false, pid: undefined, detail: 'failed/failed' },
    { ActiveState: 'deactivating', SubState: 'stop-sigterm', MainPID: 812, running: false, pid: 812, detail: 'deactivating/stop-sigterm' },
  ];
  for (const row of table) {
    const exec = new RecordingExec([{ argv: show, reply: systemctl.show(row) }]);
    const status = await driverWith(exec).status();
    assert.deepEqual(status, { running: row.running, ...(row.pid ? { pid: row.pid } : {}), detail: row.detail }, row.ActiveState);
  }
});

void test('status of a unit that does not exist throws UnitNotFoundError', async () => {
  const exec = new RecordingExec([{ argv: show, reply: systemctl.showNotFound() }]);
  await assert.rejects(driverWith(exec).status(), UnitNotFoundError);
});

void test('status when systemctl itself is missing names the unit', async () => {
  const exec = new RecordingExec([{ argv: show, reply: { notInstalled: true } }]);
  await assert.rejects(driverWith(exec).status(), /systemctl show web\.service/);
});

void test('the recording exec models is-active exit 3 as a failure unless allowed', async () => {
  const exec = new RecordingExec([{ argv: ['systemctl', 'is-active', unit], reply: systemctl.isActiveInactive(), repeat: true }]);
  await assert.rejects(exec.exec('systemctl', ['is-active', unit]), /exited with 3: inactive/);
  const result = await exec.exec('systemctl', ['is-active', unit], { okExitCodes: [3] });
  assert.deepEqual(result, { exitCode: 3, stdout: 'inactive', stderr: '' });
});

void test('a unit name that systemctl would read as an option is refused by the configuration', () => {
  const file = (name: string) => `cluster: c\nnodes: [{ name: a, addresses: [10.0.0.1] }]\ngroups:\n  - name: g\n    resources:\n      - { type: service, driver: systemd, name: s, unit: '${name}' }\n`;
  assert.throws(() => parseConfig(file('-H.service')), (err: unknown) => err instanceof ConfigError && /unit.*expected a systemd unit name/.test(err.message));
  assert.equal(parseConfig(file('web-1.service')).groups[0]!.resources[0]!.name, 's');
});
