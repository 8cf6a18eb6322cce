/**
 * The lease guard: its protocol (pure), and the real bin/haoscar-guard process driven through
 * GuardLink as the agent drives it — deadlines on the boot clock, blunt releases of real
 * processes (process groups and cgroups), refusals, restarts, the watchdog it feeds (a regular
 * file stands in for /dev/watchdog: the kernel here has no softdog).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log.js';
import { bootClockCs, GUARD_PROGRAM, GuardLink, GuardUnavailableError } from '../../src/guard/guard-link.js';
import { decodeField, dropLine, encodeField, holdLine, parseGuardState, parseUptimeCs, type GuardAction } from '../../src/guard/protocol.js';
import { findCgroup2Mount, checkCgroupRoot } from '../../src/cgroup.js';
import { waitFor } from '../support/wait.js';

void test('protocol: fields are percent-encoded so that no space or colon survives, and decode back', () => {
  for (const text of ['eth0', '10.0.0.1/24', 'fe80::1/64', 'a b:c%d\\e', 'übung', '/usr/bin/drbdadm']) {
    const enc = encodeField(text);
    assert.doesNotMatch(enc, /[\s:\\]/);
    assert.equal(decodeField(enc), text);
  }
  assert.equal(encodeField('a b:c'), 'a%20b%3Ac');
});

void test('protocol: hold and drop lines, with their limits', () => {
  const actions: GuardAction[] = [
    { kind: 'vip', device: 'eth0', address: '10.0.0.100/24' },
    { kind: 'cgroup', path: '/sys/fs/cgroup/haoscar/c/n/g/web' },
    { kind: 'pgid', pgid: 4242 },
    { kind: 'unit', name: 'nginx.service' },
    { kind: 'run', timeoutMs: 1500, argv: ['/sbin/drbdadm', 'secondary', 'r 0'] },
  ];
  assert.equal(
    holdLine('web', 3, 12345, actions),
    'hold web 3 12345 vip:eth0:10.0.0.100/24 cgroup:/sys/fs/cgroup/haoscar/c/n/g/web pgid:4242 unit:nginx.service run:1500:/sbin/drbdadm:secondary:r%200\n',
  );
  assert.equal(dropLine('web', 3), 'drop web 3\n');
  assert.throws(() => holdLine('bad name', 1, 1, []), RangeError);
  assert.throws(() => holdLine('g', 1, 1, [{ kind: 'pgid', pgid: 1 }]), /not a process group/);
  assert.throws(() => holdLine('g', 1, 1, [{ kind: 'run', timeoutMs: 1, argv: [] }]), /needs a command/);
  assert.throws(() => holdLine('g', 1, 1, Array.from({ length: 200 }, () => ({ kind: 'unit' as const, name: 'a-rather-long-unit-name.service' }))), /longer than 4096/);
});

void test('protocol: the state file is read only when complete', () => {
  const text = 'guard 77 1000 boot-1 armed\ngroup web 3 1200 failed VIP%2010.0.0.1 vip:eth0:10.0.0.1/24\ngroup db 2 900 released - \nend\n';
  const state = parseGuardState(text)!;
  assert.equal(state.pid, 77);
  assert.equal(state.watchdog, 'armed');
  assert.deepEqual(state.groups.get('web'), { group: 'web', epoch: 3, deadlineCs: 1200, status: 'failed', detail: 'VIP 10.0.0.1' });
  assert.deepEqual(state.groups.get('db'), { group: 'db', epoch: 2, deadlineCs: 900, status: 'released' });
  assert.equal(parseGuardState(text.replace('end\n', '')), undefined, 'cut short: read again');
  assert.equal(parseGuardState(''), undefined);
  assert.equal(parseGuardState('guard x\nend\n'), undefined);
  assert.equal(parseUptimeCs('12345.67 999.00\n'), 1234567);
  assert.throws(() => parseUptimeCs('garbage'), /unexpected/);
});

/** A guard in a temporary directory, stopped (SIGTERM) and removed after the test. */
async function startGuard(t: TestContext, opts: { watchdogDevice?: string; dir?: string; program?: string } = {}) {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'haoscar-guard-test-'));
  const link = await GuardLink.attach({ dir: join(dir, 'guard'), logFile: join(dir, 'guard.log'), logger: silentLogger, ...opts });
  t.after(() => {
    link.close();
    // Every guard of this directory (a test may have started a second one), found by its command
    // line: its state file may be caught mid-rewrite.
    for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(`haoscar-guard\0${dir}`)) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return { link, dir, log: () => readFileSync(join(dir, 'guard.log'), 'utf8') };
}

/** A process in a session (and process group) of its own, as a supervised service is. */
function serviceProcess(t: TestContext): number {
  const child = spawn('sleep', ['300'], { detached: true, stdio: 'ignore' });
  child.unref();
  t.after(() => {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // killed by the guard, as it should be
    }
  });
  return child.pid!;
}

const alive = (pid: number) => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) [ZX]/.test(stat);
  } catch {
    return false;
  }
};

void test('guard: at the deadline it SIGKILLs the group bluntly and says released; a later hold at that epoch is refused', async (t) => {
  const { link, log } = await startGuard(t);
  const pid = serviceProcess(t);
  const deadline = bootClockCs() + 50;
  link.hold('web', 4, deadline, [{ kind: 'pgid', pgid: pid }]);
  await waitFor('the guard holds web', () => link.health().ok && (link.health() as { state: { groups: Map<string, unknown> } }).state.groups.has('web'), 5000);
  assert.ok(alive(pid), 'nothing happens before the deadline');
  const released = await waitFor('web released', () => {
    const h = link.health();
    return h.ok && h.state.groups.get('web')?.status === 'released' ? h.state : undefined;
  }, 10_000);
  assert.ok(bootClockCs() >= deadline);
  assert.ok(!alive(pid), 'the service process was killed');
  assert.equal(released.groups.get('web')!.epoch, 4);
  assert.match(log(), /group web \(epoch 4\) released in \d+ms \(addresses deleted and SIGKILL sent after \d+ms\)/);

  // An agent that froze past its deadline must not get back what the guard killed.
  link.hold('web', 4, bootClockCs() + 1000, [{ kind: 'pgid', pgid: pid }]);
  await waitFor('the refusal is logged', () => /refused a hold of group web at epoch 4: it was released/.test(log()), 5000);
  assert.equal((link.health() as { ok: true; state: { groups: Map<string, { status: string }> } }).state.groups.get('web')!.status, 'released');
  // A new grant (a newer epoch) is held again.
  link.hold('web', 5, bootClockCs() + 1000, []);
  await waitFor('epoch 5 held', () => {
    const h = link.health();
    return h.ok && h.state.groups.get('web')?.epoch === 5 && h.state.groups.get('web')?.status === 'held';
  }, 5000);
});

void test('guard: renewals push the deadline; a drop forgets the group; stale epochs and malformed lines change nothing', async (t) => {
  const { link, log, dir } = await startGuard(t);
  const pid = serviceProcess(t);
  const until = Date.now() + 3500;
  // Renewed every 200 ms with a 1.5 s lease (longer than the product's 600 ms, so that a
  // loaded machine's late timer does not release it), for longer than the lease: never released.
  while (Date.now() < until) {
    link.hold('web', 2, bootClockCs() + 150, [{ kind: 'pgid', pgid: pid }]);
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.ok(alive(pid));
  link.hold('web', 1, bootClockCs() + 1, [{ kind: 'pgid', pgid: pid }]);
  writeFileSync(join(dir, 'guard', 'control'), 'hold web x y\nhello\nhold ../etc 3 1\n');
  await waitFor('refusals logged', () => /refused a hold of group web at epoch 1: epoch 2 is newer/.test(log()) && (log().match(/ignored a/g) ?? []).length >= 3, 15_000);
  link.drop('web', 2);
  await waitFor('web forgotten', () => {
    const h = link.health();
    return h.ok && !h.state.groups.has('web');
  }, 5000);
  await new Promise((r) => setTimeout(r, 700));
  assert.ok(alive(pid), 'a dropped group is not released');
});

void test('guard: the agent goes away, the guard keeps its deadlines; a new link re-attaches to the same guard; a restarted guard reloads them', async (t) => {
  const { link, dir } = await startGuard(t);
  const first = link.health();
  assert.ok(first.ok);
  link.hold('web', 7, bootClockCs() + 3000, []);
  await waitFor('held', () => link.state()?.groups.get('web')?.status === 'held', 5000);
  link.close();
  const again = await GuardLink.attach({ dir: join(dir, 'guard'), logFile: join(dir, 'guard.log'), logger: silentLogger });
  const second = again.health();
  assert.ok(second.ok);
  assert.equal(second.state.pid, first.state.pid, 'the same guard');
  assert.equal(second.state.groups.get('web')?.epoch, 7, 'with its deadline');

  process.kill(first.state.pid, 'SIGKILL');
  await waitFor('the guard is seen dead', () => !again.health().ok, 5000);
  // A dying process loses its command line (its memory) before its files: for a moment the FIFO
  // may still have its reader, and a write still goes in (harmless: the guard is seen dead).
  await waitFor('nobody reads the FIFO any more', () => {
    try {
      again.hold('web', 7, bootClockCs() + 100, []);
      return undefined;
    } catch (err) {
      return err instanceof GuardUnavailableError ? true : undefined;
    }
  }, 5000, 20);
  await again.connect();
  const third = again.health();
  assert.ok(third.ok);
  assert.notEqual(third.state.pid, first.state.pid);
  assert.equal(third.state.groups.get('web')?.status, 'held', 'the restarted guard reloaded the hold of this boot');
  again.close();
});

void test('guard: killed in the middle of rewriting its state (a node death), the next guard of the boot still knows the hold and releases it at its deadline', async (t) => {
  // Found by the chaos suite (seed 777, fault #120 node-death): the guard rewrites its state
  // every 100 ms in place; SIGKILLed between truncating and writing it, it left an empty file,
  // the guard started at "boot" reloaded nothing, and the dead owner's VIP stayed on its
  // interface once its link came up: two live holders for 2.2 s, until the agent cleaned up.
  const { link, dir } = await startGuard(t);
  const pid = serviceProcess(t);
  link.hold('web', 9, bootClockCs() + 150, [{ kind: 'pgid', pgid: pid }]);
  await waitFor('held', () => link.state()?.groups.get('web')?.status === 'held', 5000);
  const first = link.health();
  assert.ok(first.ok);
  link.close();
  process.kill(first.state.pid, 'SIGKILL');
  // What the kill left: the file truncated, its new content never written.
  writeFileSync(join(dir, 'guard', 'state'), '');
  const again = await GuardLink.attach({ dir: join(dir, 'guard'), logFile: join(dir, 'guard.log'), logger: silentLogger });
  t.after(() => again.close());
  const reloaded = again.health();
  assert.ok(reloaded.ok);
  assert.notEqual(reloaded.state.pid, first.state.pid, 'a new guard');
  assert.equal(reloaded.state.groups.get('web')?.epoch, 9, 'the hold of this boot was reloaded');
  await waitFor('released at the deadline', () => again.state()?.groups.get('web')?.status === 'released', 10_000);
  await waitFor('the service killed', () => !alive(pid), 5000);
});

/** Root, and `ip netns` (iproute2): the guard's vip release is run inside a namespace of its own. */
function canUseNamespaces(): string | false {
  if (process.getuid?.() !== 0) return 'needs root for ip netns';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'needs iproute2';
  }
  return false;
}

void test('guard: at the deadline it deletes an IPv6 VIP (and an IPv4 one) and checks that it is gone', { skip: canUseNamespaces() }, async (t) => {
  // The guard runs in a network namespace with a veth pair (eth0) holding both addresses; its
  // program is a wrapper that enters the namespace, as the agent's would be the real thing.
  const ns = `haoguard6-${process.pid}`;
  const ip = (...args: string[]) => execFileSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
  execFileSync('ip', ['netns', 'add', ns]);
  t.after(() => execFileSync('ip', ['netns', 'del', ns]));
  ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth1');
  ip('link', 'set', 'eth0', 'up');
  ip('-6', 'address', 'add', 'fd00:213::200/64', 'dev', 'eth0', 'nodad');
  ip('-4', 'address', 'add', '10.213.250.200/24', 'dev', 'eth0');
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-guard-test-'));
  const program = join(dir, 'guard-in-ns');
  writeFileSync(program, `#!/bin/sh\nexec ip netns exec ${ns} ${GUARD_PROGRAM} "$@"\n`, { mode: 0o755 });
  const { link, log } = await startGuard(t, { dir, program });
  // As the vip driver hands them: the canonical text, which `ip address show` prints.
  link.hold('web', 2, bootClockCs() + 30, [
    { kind: 'vip', device: 'eth0', address: 'fd00:213::200/64' },
    { kind: 'vip', device: 'eth0', address: '10.213.250.200/24' },
  ]);
  const released = await waitFor('web released', () => {
    const h = link.health();
    return h.ok && h.state.groups.get('web')?.status !== 'held' ? h.state.groups.get('web') : undefined;
  }, 10_000);
  assert.equal(released.status, 'released', `the guard says: ${released.detail ?? ''}\n${log()}`);
  const left = ip('-o', 'address', 'show', 'dev', 'eth0');
  assert.doesNotMatch(left, /fd00:213::200/);
  assert.doesNotMatch(left, /10\.213\.250\.200/);
  assert.match(log(), /group web: VIP fd00:213::200\/64 removed from eth0/);
});

void test('guard: a release that cannot finish is failed, says why, and starves the watchdog', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-guard-test-'));
  const watchdog = join(dir, 'watchdog');
  writeFileSync(watchdog, '');
  const { link, log } = await startGuard(t, { dir, watchdogDevice: watchdog });
  await waitFor('the watchdog is fed', () => statSync(watchdog).size > 0, 5000);
  link.hold('db', 1, bootClockCs() + 20, [{ kind: 'run', timeoutMs: 2000, argv: ['/bin/sh', '-c', 'echo demote failed >&2; exit 1'] }]);
  const failed = await waitFor('db failed', () => {
    const h = link.health();
    return h.ok && h.state.groups.get('db')?.status === 'failed' ? h.state : undefined;
  }, 10_000);
  assert.match(failed.groups.get('db')!.detail!, /'\/bin\/sh -c echo demote failed >&2; exit 1' failed/);
  assert.match(log(), /RELEASE FAILED for group db/);
  await waitFor('the watchdog starves', () => link.state()?.watchdog === 'starving', 5000);
  const size = statSync(watchdog).size;
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(statSync(watchdog).size, size, 'no more feeding: the watchdog resets the node');
  assert.ok(!readFileSync(watchdog, 'latin1').includes('V'), 'never disarmed');
});

void test('guard: a process group that escaped is no match for a cgroup: the whole cgroup is killed', async (t) => {
  const mount = findCgroup2Mount();
  try {
    if (!mount) throw new Error('no cgroup v2');
    checkCgroupRoot(mount);
  } catch (err) {
    t.skip(`cgroup v2 is not usable here: ${String(err)}`);
    return;
  }
  const cgroup = join(mount!, `haoscar-guard-test-${process.pid}`);
  mkdirSync(cgroup);
  t.after(() => {
    try {
      writeFileSync(join(cgroup, 'cgroup.kill'), '1');
    } catch {
      // empty
    }
    for (let i = 0; i < 50 && existsSync(cgroup); i++) {
      try {
        rmdirSync(cgroup);
      } catch {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
  });
  // A daemon that left its process group and session (setsid after a double fork), in the cgroup.
  const starter = spawn('/bin/sh', ['-c', 'echo $$ > "$1/cgroup.procs" && (setsid sleep 300 & echo $! > "$2") && sleep 0.2', 'x', cgroup, join(tmpdir(), `guard-test-${process.pid}.pid`)], { stdio: 'ignore' });
  await new Promise((r) => starter.once('exit', r));
  const daemon = Number(readFileSync(join(tmpdir(), `guard-test-${process.pid}.pid`), 'utf8'));
  rmSync(join(tmpdir(), `guard-test-${process.pid}.pid`), { force: true });
  assert.ok(alive(daemon));
  const { link } = await startGuard(t);
  link.hold('web', 1, bootClockCs() + 20, [{ kind: 'cgroup', path: cgroup }]);
  await waitFor('web released', () => link.state()?.groups.get('web')?.status === 'released', 10_000);
  assert.ok(!alive(daemon), 'the escaped daemon was killed with its cgroup');
});

void test('guard: a state file caught empty mid-rewrite is not a dead guard; a guard silent for 5 s is', async (t) => {
  const { link, dir } = await startGuard(t);
  const first = link.health();
  assert.ok(first.ok);
  // Stopped, its state file as a reader finds it between the truncation and the write.
  process.kill(first.state.pid, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(first.state.pid, 'SIGCONT');
    } catch {
      // gone
    }
  });
  writeFileSync(join(dir, 'guard', 'state'), '');
  assert.deepEqual(link.health().ok, true, 'the last complete state stands for it');
  await waitFor('the stopped guard counts as dead once its state is stale', () => {
    const h = link.health();
    return !h.ok && /has not written its state/.test(h.why) ? true : undefined;
  }, 15_000, 200);
});

test('under systemd the guard gives each line its syslog priority (journalctl -p err finds a failure); elsewhere plain', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-guard-journal-'));
  const journal = openSync(join(dir, 'journal'), 'a');
  const { dev, ino } = fstatSync(journal, { bigint: true });
  const env = { ...process.env, JOURNAL_STREAM: `${dev}:${ino}` };
  const first = spawn(GUARD_PROGRAM, [join(dir, 'guard')], { env, stdio: ['ignore', journal, journal] });
  t.after(() => {
    first.kill('SIGKILL');
    closeSync(journal);
    rmSync(dir, { recursive: true, force: true });
  });
  const text = () => readFileSync(join(dir, 'journal'), 'utf8');
  await waitFor('the guard started', () => /haoscar-guard\[\d+\]: started in/.test(text()));
  // A second guard for the same directory dies (FATAL), under the journal too.
  const second = spawn(GUARD_PROGRAM, [join(dir, 'guard')], { env, stdio: ['ignore', journal, journal] });
  const code = await new Promise((resolve) => second.once('exit', resolve));
  assert.equal(code, 1);
  assert.match(text(), /^<6>\S+ haoscar-guard\[\d+\]: started in /m);
  assert.match(text(), /^<2>\S+ haoscar-guard\[\d+\]: FATAL: another guard already runs for /m);
  for (const line of text().split('\n').filter(Boolean)) assert.match(line, /^<[2-7]>/, `a line without its priority: ${line}`);

  // The variable inherited, stderr elsewhere: lines as before.
  const plain = join(dir, 'plain');
  const other = openSync(plain, 'a');
  const third = spawn(GUARD_PROGRAM, [join(dir, 'guard')], { env, stdio: ['ignore', other, other] });
  assert.equal(await new Promise((resolve) => third.once('exit', resolve)), 1);
  closeSync(other);
  assert.match(readFileSync(plain, 'utf8'), /^\d{4}-\S+ haoscar-guard\[\d+\]: FATAL: another guard already runs/);
});
