/**
 * The sd_notify module (src/systemd/notify.ts): which variables count, nothing done without
 * NOTIFY_SOCKET, and the real `systemd-notify` against a socket of our own (PID 1 is not systemd
 * here) that records READY=1, STATUS=, WATCHDOG=1 and STOPPING=1 as systemd would receive them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { readNotifySettings, SystemdNotifier } from '../../src/systemd/notify.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { describeStatus } from '../../src/agent/agent.js';
import { NotifyReceiver } from '../support/notify-receiver.js';
import { RecordingExec } from '../support/recording-exec.js';
import { waitFor } from '../support/wait.js';

describe('readNotifySettings', () => {
  const cases: { name: string; env: Record<string, string>; settings: ReturnType<typeof readNotifySettings>['settings']; ignored?: RegExp }[] = [
    { name: 'no NOTIFY_SOCKET: not under systemd', env: { WATCHDOG_USEC: '10000000' }, settings: undefined },
    { name: 'empty NOTIFY_SOCKET counts as unset', env: { NOTIFY_SOCKET: '' }, settings: undefined },
    { name: 'a socket, no watchdog', env: { NOTIFY_SOCKET: '/run/systemd/notify' }, settings: { socket: '/run/systemd/notify' } },
    { name: 'an abstract socket', env: { NOTIFY_SOCKET: '@/org/x' }, settings: { socket: '@/org/x' } },
    { name: 'a watchdog for this process', env: { NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '10000000', WATCHDOG_PID: '42' }, settings: { socket: '/s', watchdogMs: 10_000 } },
    { name: 'a watchdog without WATCHDOG_PID is ours', env: { NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '3000000' }, settings: { socket: '/s', watchdogMs: 3000 } },
    { name: 'a watchdog meant for another process (leaked to a child)', env: { NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '10000000', WATCHDOG_PID: '41' }, settings: { socket: '/s' }, ignored: /WATCHDOG_PID=41: the watchdog is meant for another process/ },
    { name: 'a malformed WATCHDOG_USEC is ignored, readiness still sent', env: { NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '10s' }, settings: { socket: '/s' }, ignored: /WATCHDOG_USEC="10s": expected a positive number of microseconds/ },
    { name: 'a malformed WATCHDOG_PID: no watchdog', env: { NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '10000000', WATCHDOG_PID: 'me' }, settings: { socket: '/s' }, ignored: /WATCHDOG_PID="me": expected a process id/ },
    { name: 'zero microseconds is no watchdog', env: { NOTIFY_SOCKET: '/s', WATCHDOG_USEC: '0' }, settings: { socket: '/s' }, ignored: /WATCHDOG_USEC="0"/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const { settings, ignored } = readNotifySettings(c.env, 42);
      assert.deepEqual(settings, c.settings);
      if (c.ignored) assert.match(ignored.join('\n'), c.ignored);
      else assert.deepEqual(ignored, []);
    });
  }
});

describe('the agent\'s status line (describeStatus)', () => {
  const held = [['web', { epoch: 3, state: 'running' }]] as const;
  const cases: { phase: Parameters<typeof describeStatus>[0]; held: Parameters<typeof describeStatus>[2]; peers?: boolean; ready: boolean; text: string }[] = [
    { phase: { kind: 'starting', detail: 'attaching to the lease guard' }, held: [], ready: false, text: 'starting: attaching to the lease guard' },
    {
      phase: { kind: 'waiting', detail: 'cannot reach Temporal at 10.0.0.5:7233 (attempt 4); retrying' },
      held: [],
      ready: true,
      text: 'without Temporal: cannot reach Temporal at 10.0.0.5:7233 (attempt 4); retrying; heartbeats and the lease guard run, no group starts here until the controller confirms a lease; holds no group',
    },
    {
      phase: { kind: 'waiting', detail: 'cannot reach Temporal at 10.0.0.5:7233; retrying' },
      held: [],
      peers: false,
      ready: true,
      text: 'without Temporal: cannot reach Temporal at 10.0.0.5:7233; retrying; no group starts here until the controller confirms a lease; holds no group',
    },
    { phase: { kind: 'serving' }, held, ready: true, text: 'serving: connected to Temporal at 10.0.0.5:7233; holds web (epoch 3, running)' },
    { phase: { kind: 'stopping' }, held, ready: true, text: 'stopping: letting go of its groups; holds web (epoch 3, running)' },
  ];
  for (const c of cases) {
    test(`${c.phase.kind}${c.held.length ? ', holding a group' : ''}${c.peers === false ? ', one-node cluster' : ''}`, () => {
      assert.deepEqual(describeStatus(c.phase, '10.0.0.5:7233', c.held, c.peers ?? true), { ready: c.ready, text: c.text });
    });
  }
});

describe('SystemdNotifier without NOTIFY_SOCKET', () => {
  test('sends nothing and runs nothing', async () => {
    const exec = new RecordingExec();
    const n = new SystemdNotifier({ exec: exec.exec, logger: silentLogger, env: { WATCHDOG_USEC: '1000' } });
    assert.equal(n.enabled, false);
    n.startWatchdog();
    await n.ready('up');
    await n.status('still up');
    await n.stopping('going');
    assert.deepEqual(exec.calls, []);
  });
});

describe('SystemdNotifier with systemd-notify, against a socket of our own', () => {
  let receiver: NotifyReceiver;
  before(async () => {
    receiver = await NotifyReceiver.start();
  });
  after(() => receiver.close());

  test('READY=1 once with its status, STATUS= only when it changes, STOPPING=1; the watchdog fed every half interval', async () => {
    const from = receiver.messages.length;
    const n = new SystemdNotifier({ exec: createExec(silentLogger), logger: silentLogger, env: { NOTIFY_SOCKET: receiver.socket, WATCHDOG_USEC: '400000', WATCHDOG_PID: String(process.pid) } });
    assert.equal(n.enabled, true);
    assert.equal(n.watchdogMs, 400);
    await n.status('starting: connecting');
    await n.ready('serving: holds no group');
    await n.ready('serving: holds web');
    await n.status('serving: holds web');
    const startedAt = performance.now();
    n.startWatchdog();
    // Pings every 200 ms: a 2 s window holds about ten (fewer on a loaded machine; never none).
    await waitFor('six watchdog pings', () => receiver.messages.slice(from).filter((m) => 'WATCHDOG' in m.fields).length >= 6, 20_000, 20);
    await n.stopping('stopping (SIGTERM)');
    const pingsAtStop = receiver.with('WATCHDOG').length;
    const got = receiver.messages.slice(from);
    const first = got.filter((m) => !('BARRIER' in m.fields) && !('WATCHDOG' in m.fields)).map((m) => m.fields);
    assert.deepEqual(first, [
      { STATUS: 'starting: connecting' },
      { READY: '1', STATUS: 'serving: holds no group' },
      { STATUS: 'serving: holds web' },
      { STOPPING: '1', STATUS: 'stopping (SIGTERM)' },
    ]);
    const pings = got.filter((m) => 'WATCHDOG' in m.fields);
    assert.deepEqual(pings[0]!.fields, { WATCHDOG: '1' });
    assert.ok(pings[0]!.at - startedAt < 2000, 'the first ping is sent at once');
    const gaps = pings.slice(1).map((p, i) => p.at - pings[i]!.at);
    // Half the interval, 200 ms (the median; single gaps stretch on a loaded machine: generous bound).
    const median = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)]!;
    assert.ok(median >= 150 && median < 400, `the median gap between pings is half the interval: ${gaps.map(Math.round).join(', ')} ms`);
    assert.ok(gaps.every((g) => g < 3000), `no gap of seconds: ${gaps.map(Math.round).join(', ')} ms`);
    // systemd-notify (systemd 252, as root) sends with its parent's pid — ours — and its barrier from a child of its own.
    assert.ok(got.some((m) => m.pid === process.pid), `some messages carry this process's pid: ${got.map((m) => m.pid).join(',')}`);
    // Stopped: no more pings.
    await new Promise((r) => setTimeout(r, 600));
    assert.equal(receiver.with('WATCHDOG').length, pingsAtStop, 'no ping after STOPPING=1');
  });

  test('the variables are removed from the environment, so that children do not inherit them', async () => {
    process.env.NOTIFY_SOCKET = receiver.socket;
    process.env.WATCHDOG_USEC = '10000000';
    process.env.WATCHDOG_PID = String(process.pid);
    const from = receiver.messages.length;
    const n = new SystemdNotifier({ exec: createExec(silentLogger), logger: silentLogger });
    assert.equal(n.watchdogMs, 10_000);
    assert.equal(process.env.NOTIFY_SOCKET, undefined);
    const child = await execa('sh', ['-c', 'echo "${NOTIFY_SOCKET-unset} ${WATCHDOG_USEC-unset} ${WATCHDOG_PID-unset}"']);
    assert.equal(child.stdout, 'unset unset unset');
    // …while the notifier still reaches the socket.
    await n.ready('up');
    await receiver.waitFor('READY', /^1$/, { from });
  });

  test('a socket nobody listens on: logged, never thrown', async () => {
    const n = new SystemdNotifier({ exec: createExec(silentLogger), logger: silentLogger, env: { NOTIFY_SOCKET: `${receiver.socket}.absent` } });
    await n.ready('up');
    await n.status('still up');
  });
});
