/**
 * A failed stop is not a stop (issue 8, section 2; docs/failover.md), in the network lab with two
 * real agents, their lease guards, the real controller and `haoscar` as operators run it. The
 * group has, besides the VIP and the HTTP service, a `command` resource (stubborn-resource.sh)
 * whose stop script exits 1 on n1, as a database's does when it will not go down. An operator's
 * `haoscar failover web --to n2` then cannot stop the group on n1: n1 keeps it, in state
 * 'failed'; its guard, at the lease deadline, kills what it can and runs the stop script again,
 * which fails again, so the guard's release fails too and the group stays failed. The failover
 * is blocked, n2 starts nothing of the group — for well over a lease — and the group moves only
 *
 * - after `haoscar confirm-down n1 --yes` (the operator powered n1 off first, as they must), or
 * - after a configured fence agent succeeds (here one that the test answers once it has
 *   powered n1 off: it is run, with the victim's name, before anything starts on n2).
 *
 * The watchdog rule (blocked until lease + margin + the watchdog's timeout) needs an armed
 * /dev/watchdog, which this kernel lacks; test/workflow/failed-stop.test.ts covers it, with a
 * failing fence and the other blocking cases, against the real workflows.
 *
 * Throughout: never two holders of the VIP (exact periods), never two running instances of the
 * service, and nothing of the group started on n2 before n1 was confirmed down or fenced.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { NetLab } from './netlab.js';
import { LabCluster, ROOT, type ClusterTiming } from './cluster.js';
import { agentLogs, LONG_LEASE } from './failover-setup.js';
import { InstanceSampler } from './instance-sampler.js';
import { waitFor } from '../support/wait.js';
import { parseGuardState, type GuardGroupState } from '../../src/guard/protocol.js';
import type { Ownership } from '../../workflows/shared.js';

const STUBBORN = join(ROOT, 'test/lab/stubborn-resource.sh');
const FENCE = join(ROOT, 'test/lab/fence-by-test.sh');
const LEASE_TTL_MS = 4000;
/** How long the failover must stay blocked, at the least: well over a lease (and its margin). */
const STAYS_BLOCKED_MS = 2 * LEASE_TTL_MS;

const TIMING: ClusterTiming = {
  // These tests are about planned moves. On a loaded 2-core machine an agent can stall for more
  // than half a second: with a 500 ms deadtime its peer then suspects it, and a 500 ms
  // verification may not get its answer, so that an unplanned failover (and the lease loss it
  // brings) gets there first. A deadtime of 3 s and a 4 s verification keep that out; the claim
  // handshake still waits for a dead n1 to fall silent (ttl + margin + deadtime).
  heartbeat: { interval: '200ms', deadtime: '3s' },
  // The 4 s lease of the lab tests that assert nothing changed hands (failover-setup.ts).
  ...LONG_LEASE,
  failover: { verifyTimeout: '4s' },
};

const isService = (cmdline: string) => cmdline.includes('pid-service.mjs');

/**
 * A lab cluster whose group ends with the stubborn `db` resource; `nodes(dir)` adds keys to
 * nodes' entries (`dir`: the test's directory, where the helpers keep their files).
 */
async function setUp(t: TestContext, nodes?: (dir: string) => Record<string, string>) {
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true });
  const dir = join(lab.dir, 'stubborn');
  const script = (action: string) => `[/bin/sh, ${STUBBORN}, ${action}, ${dir}]`;
  const cluster = new LabCluster(lab, {
    ...TIMING,
    resources: [`{ type: command, name: db, start: ${script('start')}, stop: ${script('stop')}, monitor: ${script('monitor')}, timeout: 10s, check: { type: status, interval: 1s, timeout: 900ms } }`],
    ...(nodes ? { nodes: nodes(dir) } : {}),
  });
  t.after(async () => {
    if (process.env.HAOSCAR_LAB_KEEP) process.stderr.write(`lab kept in ${lab.dir}\n`);
    await cluster.close();
    await lab.close();
  });
  await mkdir(dir);
  await cluster.start();
  const vip = await lab.sampleVip(lab.vip);
  const instances = new InstanceSampler(Object.fromEntries(lab.hosts.map((h) => [h, lab.ns(h)])), isService);
  t.after(() => instances.stop());
  const client = await lab.probe(cluster.url, { everyMs: 20, timeoutMs: 300 });
  t.after(() => client.stop());
  await expect(cluster, 'the client is served through the VIP by n1', async () => (client.lastOk()?.host === 'n1' ? true : undefined));
  return {
    lab, cluster, vip, instances, client, dir,
    /** The stubborn resource's start and stop calls on `host` so far (`start`, `stop`, `stop-failed`). */
    calls: async (host: string) => (await readFile(join(dir, 'calls'), 'utf8').catch(() => '')).split('\n').filter((l) => l.endsWith(` ${lab.ns(host)}`)).map((l) => l.split(' ')[0]!),
    /** Whether the stubborn resource runs on `host`. */
    runs: (host: string) => access(join(dir, `running-${lab.ns(host)}`)).then(() => true, () => false),
    /** From now on its stop fails on `host` (the agent's and the guard's alike). */
    failStopOn: (host: string) => writeFile(join(dir, `stop-fails-${lab.ns(host)}`), ''),
    /** What `host`'s lease guard says of the group (its state file). */
    guardSays: async (host: string): Promise<GuardGroupState | undefined> => {
      const text = await readFile(join(lab.dir, 'state', 'guard', host, 'state'), 'utf8').catch(() => '');
      return parseGuardState(text)?.groups.get('web');
    },
  };
}

/** `fn`'s value once it has one; on a timeout, a failure with every agent's (and guard's) log. */
async function expect<T>(cluster: LabCluster, what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  try {
    return await waitFor(what, fn, timeoutMs, 100);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await agentLogs(cluster)}`);
  }
}

/** The group, once it runs on n1 with no operation under way. */
function settledOnN1(cluster: LabCluster) {
  return expect(cluster, 'web settled on n1', async () => {
    const g = await cluster.group();
    return g?.owner === 'n1' && g.state === 'running' && g.operation === undefined ? g : undefined;
  });
}

/** `haoscar failover web --to n2` as an operator runs it (it waits for the end), started now. */
function operatorFailover(cluster: LabCluster) {
  const run = cluster.cli(['failover', 'web', '--to', 'n2', '--reason', 'lab: planned move'], { timeoutMs: 600_000 });
  const state = { ended: false };
  void run.finally(() => { state.ended = true; });
  return { run, state };
}

type Env = Awaited<ReturnType<typeof setUp>>;

/**
 * Nothing has moved, repeatedly until `done()` says enough (at least `minMs`, at most 90 s): n1
 * owns the group at `epoch` and the operation on it is still under way (blocked, or fencing);
 * n2 holds no VIP, runs no instance of the service and was never asked to start the stubborn
 * resource; the operator's `haoscar failover` still waits.
 */
async function nothingMovesWhile(env: Env, epoch: number, failover: { state: { ended: boolean } }, minMs: number, done: () => Promise<boolean>, blocked: boolean): Promise<number> {
  const { cluster, lab, instances } = env;
  const began = Date.now();
  let checks = 0;
  for (;;) {
    const g = (await cluster.ownership())?.groups.web;
    if (!g) {
      // The controller did not answer this time (a loaded machine): not a change.
      await new Promise((r) => setTimeout(r, 200));
      continue;
    }
    const wrong = [
      g?.owner !== 'n1' && 'n1 no longer owns the group',
      g?.epoch !== epoch && 'the epoch changed: the group was claimed',
      !g?.operation && 'the failover is no longer under way',
      blocked && g?.operation?.blocked?.node !== 'n1' && 'the failover is not blocked on n1',
      (await lab.vipHolders()).includes('n2') && 'n2 holds the VIP',
      (instances.now().byHost.n2 ?? []).length > 0 && 'an instance of the service runs on n2',
      (await env.calls('n2')).includes('start') && 'the stubborn resource was started on n2',
      failover.state.ended && 'haoscar failover ended',
    ].filter((w) => typeof w === 'string');
    if (wrong.length > 0) assert.fail(`after ${Date.now() - began} ms, with nothing to unblock it: ${wrong.join('; ')} (${JSON.stringify(g)})\n${await agentLogs(cluster)}`);
    checks++;
    if (Date.now() - began >= minMs && (await done())) return checks;
    if (Date.now() - began > 90_000) assert.fail(`the guard of n1 did not fail its release within 90 s\n${await agentLogs(cluster)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Never two VIP holders or service instances; n2 had neither before `movedAt`. */
async function oneOwnerThroughout(t: TestContext, env: Env, movedAt: number): Promise<void> {
  const held = await env.vip.stop();
  const ran = env.instances.stop();
  t.diagnostic(`VIP holders over time: ${held.holdersOverTime.map((p) => `${p.holders.join('+') || 'nobody'} ${Math.round(p.to - p.from)}ms`).join(', ')}`);
  assert.deepEqual(held.errors, [], 'the VIP sampler worked');
  assert.deepEqual(held.dualSamples, [], 'never two holders of the VIP in a sample');
  assert.deepEqual(held.dualPeriods, [], 'never two holders of the VIP, however briefly');
  assert.deepEqual(held.holdersOverTime.filter((p) => p.holders.includes('n2') && p.from < movedAt), [], 'n2 got the VIP only once n1 was confirmed down or fenced');
  assert.deepEqual(ran.dualSamples.map((s) => s.byHost), [], 'never two running instances of the service');
  assert.deepEqual(ran.samples.filter((s) => (s.byHost.n2?.length ?? 0) > 0 && s.at < movedAt).map((s) => s.at), [], 'no instance on n2 before n1 was confirmed down or fenced');
}

test('a stop that fails on the owner: n1 keeps the group as failed (its guard cannot release it either), n2 starts nothing, until `haoscar confirm-down n1`', async (t) => {
  const env = await setUp(t);
  const { lab, cluster, client } = env;
  assert.equal(await env.runs('n1'), true, 'the stubborn resource runs on n1');
  const before = await settledOnN1(cluster);
  await env.failStopOn('n1');
  const failover = operatorFailover(cluster);
  const block = await expect(cluster, 'the failover blocked on n1', async () => {
    const b = (await cluster.group())?.operation?.blocked;
    if (!b && failover.state.ended) assert.fail(`haoscar failover ended without blocking: ${(await failover.run).all}`);
    return b?.node === 'n1' ? b : undefined;
  });
  assert.equal(block.epoch, before.epoch);
  assert.deepEqual(block.waitingFor, ['confirm-down'], 'no fence agent, no watchdog: only an operator unblocks it');
  // Which failure n1 reports first depends on timing, both safe: the failover's stop order (its
  // stop failed), or, when the failover reached n1 only after n1's lease deadline (a loaded CI
  // machine), the guard's release, which ran the same stop and failed too.
  assert.match(block.detail, /^(its stop failed: .*stubborn-resource\.sh stop .*scripted: will not stop on |it answered holding the group in state 'failed' at epoch \d+: the lease guard could not release it: .*stubborn-resource\.sh stop ).*no fence agent is configured for it$/s);
  assert.match(await cluster.agentLog('n1'), /the group failed to stop: this node still holds it \(state failed\)/, 'n1 keeps the group, failed');

  // Well past the lease, and until n1's guard has tried (and failed) to release the group at
  // its deadline: nothing moves.
  let guardFailedAt: number | undefined;
  const checks = await nothingMovesWhile(env, before.epoch, failover, STAYS_BLOCKED_MS, async () => {
    if (guardFailedAt === undefined && (await env.guardSays('n1'))?.status === 'failed') guardFailedAt = Date.now();
    return guardFailedAt !== undefined && Date.now() - guardFailedAt >= 2000;
  }, true);
  t.diagnostic(`nothing moved in ${checks} checks over ${Date.now() - block.since} ms of blocked failover`);
  const guard = await env.guardSays('n1');
  assert.equal(guard?.status, 'failed', 'n1\'s guard could not release the group either');
  assert.equal(guard?.epoch, before.epoch);
  assert.match(guard?.detail ?? '', /stubborn-resource\.sh stop .* failed/);
  const calls = await env.calls('n1');
  // The agent's stop and the guard's both ran the stop script; when the guard came first, the
  // agent found the group failed already and may not have run it again.
  const stopsRun = block.detail.startsWith('its stop failed') ? 2 : 1;
  assert.ok(calls.filter((c) => c === 'stop-failed').length >= stopsRun, `the stop script ran (and failed) at least ${stopsRun} time(s): ${calls.join(', ')}`);
  assert.equal(await env.runs('n1'), true, 'the resource still runs on n1');

  // What the operator sees.
  const json = await cluster.cli(['status', '--json']);
  assert.equal(json.exitCode, 0, json.all);
  const shown = JSON.parse(json.stdout) as Ownership;
  assert.equal(shown.groups.web?.owner, 'n1');
  assert.equal(shown.groups.web?.operation?.blocked?.node, 'n1');
  assert.deepEqual(shown.groups.web?.operation?.blocked?.waitingFor, ['confirm-down']);
  const text = await cluster.cli(['status']);
  assert.match(text.stdout, /BLOCKED since \d+s ago: node n1 failed to stop group web .*waiting for `haoscar confirm-down n1`/);

  // The operator powers n1 off (as confirm-down requires), then confirms it.
  await lab.killHost('n1');
  const confirmedAt = Date.now();
  const confirm = await cluster.cli(['confirm-down', 'n1', '--yes', '--reason', 'lab: powered off']);
  assert.equal(confirm.exitCode, 0, confirm.all);
  const done = await failover.run;
  assert.equal(done.exitCode, 0, `${done.all}\n${await agentLogs(cluster)}`);
  assert.match(done.stdout, new RegExp(`group web moved from n1 to n2 at epoch ${before.epoch + 1} \\(.*blocked \\d+ ms`));
  const after = await cluster.waitForGroup((g) => g.owner === 'n2' && g.state === 'running', 'web running on n2');
  assert.equal(after.epoch, before.epoch + 1);
  assert.equal(after.operation, undefined);
  assert.deepEqual((await cluster.ownership())?.confirmedDown?.map((c) => [c.node, c.detail]), [['n1', 'lab: powered off']]);
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined));
  const n2 = await env.calls('n2');
  assert.equal(n2.filter((c) => c === 'start').length, 1, `the stubborn resource was started once on n2: ${n2.join(', ')}`);
  assert.equal(n2.at(-1), 'start');
  assert.equal(await env.runs('n2'), true);
  await oneOwnerThroughout(t, env, confirmedAt);
});

test('a stop that fails on the owner, with a fence agent for it: nothing starts on n2 until the fence agent has powered n1 off; no confirm-down needed', async (t) => {
  const env = await setUp(t, (dir) => ({ n1: `fence: { command: [${FENCE}], params: { dir: ${dir} }, timeout: 120s }` }));
  const { lab, cluster, client, dir: fenceDir } = env;
  const before = await settledOnN1(cluster);
  await env.failStopOn('n1');
  const failover = operatorFailover(cluster);
  const request = await expect(cluster, 'the fence agent was run against n1', () => readFile(join(fenceDir, 'fence-request'), 'utf8').catch(() => undefined));
  assert.match(request, /^action=off$/m);
  assert.match(request, /^nodename=n1$/m);
  assert.match(request, /^port=n1$/m);
  assert.match(await cluster.agentLog('n1'), /the group failed to stop: this node still holds it \(state failed\)/, 'n1 keeps the group, failed');
  // While the fence agent has not answered, nothing starts on n2 (a fence is not a lease wait).
  await nothingMovesWhile(env, before.epoch, failover, LEASE_TTL_MS + 1000, async () => true, false);

  // The fence agent powers n1 off, and says so.
  await lab.killHost('n1');
  const fencedAt = Date.now();
  await writeFile(join(fenceDir, 'fence-done'), '');
  const done = await failover.run;
  assert.equal(done.exitCode, 0, `${done.all}\n${await agentLogs(cluster)}`);
  assert.match(done.stdout, new RegExp(`group web moved from n1 to n2 at epoch ${before.epoch + 1} \\(.*fence \\d+ ms`));
  assert.doesNotMatch(done.stdout, /blocked \d+ ms|leaseWait \d+ ms/, 'fenced: not blocked, no lease to wait out');
  const after = await cluster.waitForGroup((g) => g.owner === 'n2' && g.state === 'running', 'web running on n2');
  assert.equal(after.epoch, before.epoch + 1);
  assert.deepEqual((await cluster.ownership())?.confirmedDown ?? [], [], 'no operator was needed');
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined));
  assert.equal((await env.calls('n2')).filter((c) => c === 'start').length, 1);
  await oneOwnerThroughout(t, env, fencedAt);
});
