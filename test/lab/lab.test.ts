/**
 * Smoke test of the network lab itself (no agent): addresses, isolation from the outside,
 * every fault, the VIP sampler, the prober, and that close() — or a crash — leaves nothing.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { ROOT } from '../support/lab.js';
import { waitFor } from '../support/wait.js';
import { listLinks, listNamespaces, listNftTables } from './commands.js';
import { NetLab } from './netlab.js';
import { summarizeProbes } from './prober.js';
import { LOCK_ROOT, labOfName, ownerAlive, readOwner, usedThirdOctets } from './subnet-lock.js';
import { silentLogger } from '../../src/log.js';
import { ensureTemporalCli } from '../../src/temporal/cli-binary.js';

const PID_SERVICE = join(ROOT, 'test/lab/pid-service.mjs');
const PORT = 8080;

let lab: NetLab;
/** The dev server starts in the background while the other tests run (it takes seconds). */
let temporal: Promise<string>;

before(async () => {
  lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true, extra: ['intruder'] });
  temporal = lab.startDevServer();
  temporal.catch(() => {}); // awaited (and reported) by its test
});

after(() => lab?.close());

/**
 * One ping from a lab namespace (the lab has no route out: it never leaves the machine).
 * `expected` only sets the wait: generous when an answer is expected (it costs nothing when
 * the answer comes), short when none is.
 */
async function reaches(from: string, ip: string, expected = true): Promise<boolean> {
  const r = await lab.run(from, ['ping', '-c1', `-W${expected ? 2 : 0.5}`, '-n', '-q', ip], { reject: false });
  return r.exitCode === 0;
}

/** Pings in parallel: [from, to, expected] → what happened. */
function reachAll(checks: Array<[string, string, boolean]>): Promise<boolean[]> {
  return Promise.all(checks.map(([from, ip, expected]) => reaches(from, ip, expected)));
}

/**
 * The leftovers of lab x made by process `owner`: namespaces, links, nftables tables, lock.
 * None when x now belongs to another live process (test files run in parallel, and a lab
 * freed by one may be taken by another at once).
 */
async function leftovers(x: number, owner: number): Promise<string[]> {
  const now = await readOwner(x);
  if (now && now.pid !== owner && ownerAlive(now)) return [];
  const [ns, links, tables] = await Promise.all([listNamespaces(silentLogger), listLinks(silentLogger), listNftTables(silentLogger)]);
  return [
    ...ns.filter((n) => labOfName(n) === x).map((n) => `netns ${n}`),
    ...links.filter((l) => labOfName(l) === x).map((l) => `link ${l}`),
    ...tables.filter((t) => labOfName(t.name) === x).map((t) => `table ${t.family} ${t.name}`),
    ...(existsSync(join(LOCK_ROOT, String(x))) ? [`lock ${x}`] : []),
  ];
}

/** Processes whose command line has `--ip <the lab's bridge address>`: its dev server. */
function devServerPids(): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        // It listens on 127.0.0.1 (a forwarder on the bridge address lets the hosts reach it).
        const port = lab.temporalAddress?.split(':').at(-1);
        return port !== undefined && readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' ').includes(` --port ${port} `);
      } catch {
        return false;
      }
    })
    .map(Number);
}

function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0];
  } catch {
    return undefined;
  }
}

test('pure parts: used /24s, lab names, probe gaps', () => {
  const used = usedThirdOctets('2: eth0    inet 10.213.7.20/24 brd 10.213.7.255\n10.213.64.0/18 via 192.0.2.1\ndefault via 192.0.2.1\n10.2.13.0/24 dev x');
  assert.deepEqual([...used].sort((a, b) => a - b), [7, ...Array.from({ length: 64 }, (_, i) => 64 + i)]);
  assert.equal(usedThirdOctets('10.0.0.0/8 dev tun0').size, 256);
  assert.equal(usedThirdOctets('0.0.0.0/0 via 10.1.1.1').size, 0);
  assert.equal(labOfName('hlab17v11'), 17);
  assert.equal(labOfName('hlab3-intruder'), 3);
  assert.equal(labOfName('hlab3br'), 3);
  assert.equal(labOfName('hlab3'), 3);
  assert.equal(labOfName('hlabx'), undefined);
  assert.equal(labOfName('eth0'), undefined);

  const ok = (t: number) => ({ t, end: t + 1, ok: true });
  const ko = (t: number) => ({ t, end: t + 200, ok: false, error: 'timeout' });
  const r = summarizeProbes([ko(0), ok(20), ok(40), ko(60), ko(80), ok(100), ok(120), ko(140)], { url: 'u', everyMs: 20, startedAt: 0, stoppedAt: 200 });
  assert.equal(r.requests, 8);
  assert.equal(r.failures, 4);
  assert.equal(r.failuresBeforeFirstOk, 1);
  assert.deepEqual(r.gaps, [
    { from: 40, to: 100, ms: 60, failures: 2, ongoing: false },
    { from: 120, to: 200, ms: 80, failures: 1, ongoing: true },
  ]);
  assert.equal(r.longestGapMs, 80);
  assert.equal(r.firstOkAfter(41)?.t, 100);
  assert.equal(r.lastOkBefore(100)?.t, 40);
});

test('addresses are the lab’s own, hosts reach each other and the bridge, and nothing routes out', async () => {
  assert.match(lab.subnet, /^10\.213\.\d{1,3}\.0\/24$/);
  assert.equal(lab.address('n1'), lab.ip(11));
  assert.equal(lab.address('n2'), lab.ip(12));
  assert.equal(lab.address('client'), lab.ip(100));
  assert.equal(lab.address('intruder'), lab.ip(150));
  assert.equal(lab.bridgeIp, lab.ip(1));
  assert.equal(lab.vip, `${lab.ip(200)}/24`);
  assert.deepEqual(lab.all, ['n1', 'n2', 'client', 'intruder']);

  const checks = await reachAll([
    ['n1', lab.address('n2'), true],
    ['n2', lab.bridgeIp, true],
    ['client', lab.address('n1'), true],
    ['intruder', lab.address('n2'), true],
  ]);
  assert.deepEqual(checks, [true, true, true, true]);
  for (const host of lab.all) {
    const routes = await lab.run(host, ['ip', '-4', 'route', 'show', 'table', 'all']);
    assert.doesNotMatch(routes.stdout, /default/, `${host} has a default route`);
    // `ip route get` asks the kernel only: nothing is sent.
    const out = await lab.run(host, ['ip', 'route', 'get', '192.0.2.1'], { reject: false });
    assert.notEqual(out.exitCode, 0, `${host} has a route out of the lab`);
  }
});

test('partition, isolation, a Temporal cut and a pulled cable, each healed', async () => {
  const check = async (checks: Array<[string, string, boolean]>) => assert.deepEqual(await reachAll(checks), checks.map((c) => c[2]), JSON.stringify(checks));
  await lab.partition('n1', 'n2');
  await check([
    ['n1', lab.address('n2'), false],
    ['n2', lab.address('n1'), false],
    ['n1', lab.bridgeIp, true],
    ['n2', lab.bridgeIp, true],
    ['n1', lab.address('client'), true],
  ]);
  await lab.healPartition('n1', 'n2');
  await waitFor('n1 reaches n2 after the partition heals', () => reaches('n1', lab.address('n2')), 10_000);

  await lab.partition('n1', 'n2', { oneWay: true });
  assert.equal(await reaches('n2', lab.address('n1'), false), false, 'a one-way cut still breaks a round trip');
  await lab.healNetwork();
  await waitFor('n2 reaches n1 after healNetwork', () => reaches('n2', lab.address('n1')), 10_000);

  await lab.isolate('n1');
  await check([
    ['n1', lab.bridgeIp, false],
    ['n1', lab.address('n2'), false],
    ['n2', lab.bridgeIp, true],
  ]);
  await lab.rejoin('n1');

  await lab.cutTemporal('n1');
  await check([
    ['n1', lab.bridgeIp, false],
    ['n1', lab.address('n2'), true],
  ]);
  await lab.restoreTemporal('n1');

  await lab.linkDown('n2');
  await check([
    ['n1', lab.address('n2'), false],
    ['n2', lab.bridgeIp, false],
  ]);
  await lab.linkUp('n2');
  await waitFor('n1 reaches the bridge again', () => reaches('n1', lab.bridgeIp), 10_000);
  await waitFor('n2 reaches the bridge again', () => reaches('n2', lab.bridgeIp), 10_000);
  await waitFor('n1 reaches n2 again', () => reaches('n1', lab.address('n2')), 10_000);
});

test('lossy links drop a random share of a host\'s frames, both ways, until healed', async () => {
  const pings = async (from: string, ip: string, count: number) => {
    const r = await lab.run(from, ['ping', '-c', String(count), '-i', '0.01', '-W', '0.3', '-n', '-q', ip], { reject: false });
    return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
  };
  await lab.lossy('n1', 100);
  assert.equal(await pings('n2', lab.address('n1'), 3), 0, 'all lost at 100 %');
  assert.equal(await pings('n1', lab.bridgeIp, 3), 0, 'to the root side (Temporal) too');
  assert.equal(await pings('n2', lab.bridgeIp, 3), 3, 'n2 is not lossy');
  await lab.lossy('n1', 50);
  const got = await pings('n2', lab.address('n1'), 100);
  // A round trip survives twice 50 %: about 25 of 100 (far outside [5, 60] is no loss of 50 %).
  assert.ok(got >= 5 && got <= 60, `${got} of 100 round trips at 50 % each way`);
  await lab.healLoss('n1');
  assert.equal(await pings('n2', lab.address('n1'), 20), 20, 'healed');
  await lab.lossy(['n1', 'n2'], 100);
  await lab.healNetwork();
  assert.equal(await pings('n1', lab.address('n2'), 5), 5, 'healNetwork() heals losses too');
});

test('the dev server listens on the bridge: hosts reach it, unless cut off from it', async () => {
  const address = await temporal;
  assert.match(address, new RegExp(`^${lab.bridgeIp.replaceAll('.', '\\.')}:\\d+$`));
  assert.equal(lab.temporalAddress, address);
  const cli = await ensureTemporalCli({ logger: silentLogger });
  const health = (host: string) =>
    lab.run(host, [cli, 'operator', 'cluster', 'health', '--address', address, '--command-timeout', '1s'], { reject: false });
  const ok = await health('n1');
  assert.equal(ok.exitCode, 0, ok.stderr);
  assert.match(ok.stdout, /SERVING/);
  await lab.cutTemporal('n1');
  assert.notEqual((await health('n1')).exitCode, 0, 'n1 still reaches Temporal');
  assert.equal((await health('n2')).exitCode, 0);
  await lab.restoreTemporal('n1');
  await waitFor('n1 reaches Temporal again', async () => (await health('n1')).exitCode === 0, 10_000);
});

test('the VIP sampler sees every holder and reports dual ownership', async () => {
  const ip = (host: string, verb: 'add' | 'del') => lab.run(host, ['ip', 'addr', verb, lab.vip, 'dev', 'eth0']);
  const sampler = await lab.sampleVip(lab.vip, 20);
  try {
    await ip('n1', 'add');
    assert.deepEqual(await lab.vipHolders(lab.vip), ['n1']);
    await waitFor('the sampler sees n1', () => sampler.latest()?.holders.join() === 'n1', 5_000);
    await ip('n2', 'add');
    await waitFor('a sample with two holders', () => sampler.latest()?.holders.join() === 'n1,n2', 5_000);
    await ip('n1', 'del');
    await ip('intruder', 'add');
    await waitFor('the sampler sees n2 and the intruder', () => sampler.latest()?.holders.join() === 'n2,intruder', 5_000);
    await ip('n2', 'del');
    await ip('intruder', 'del');
    await waitFor('nobody holds the VIP', () => sampler.latest()?.holders.length === 0, 5_000);
  } finally {
    const report = await sampler.stop();
    assert.deepEqual(report.errors, []);
    assert.ok(report.samples.length >= 5, `${report.samples.length} samples`);
    assert.ok(report.dualSamples.length >= 1, 'no dual sample');
    assert.ok(report.dualSamples.every((s) => s.holders.length === 2));
    assert.deepEqual(
      report.holdersOverTime.map((p) => p.holders.join('+')),
      ['', 'n1', 'n1+n2', 'n2', 'n2+intruder', 'intruder', ''],
    );
    assert.deepEqual(report.dualPeriods.map((p) => p.holders.join('+')), ['n1+n2', 'n2+intruder']);
  }
});

test('the prober measures the outage of a killed host and a VIP moved by hand', async () => {
  const services = new Map<string, ResultPromise>();
  for (const host of ['n1', 'n2']) services.set(host, lab.spawn(host, [process.execPath, PID_SERVICE, String(PORT)]));
  await lab.run('n1', ['ip', 'addr', 'add', lab.vip, 'dev', 'eth0']);
  const sampler = await lab.sampleVip();
  const prober = await lab.probe(`http://${lab.vipIp}:${PORT}/`, { everyMs: 20, timeoutMs: 200 });
  const first = await waitFor('n1 answers through the VIP', () => prober.lastOk(), 10_000);
  assert.equal(first.host, 'n1');
  assert.equal(first.pid, services.get('n1')!.pid);

  const killed = await lab.killHost('n1');
  const killedAt = Date.now();
  assert.ok(killed.includes(services.get('n1')!.pid!), 'the service of n1 was killed');
  // A dead host keeps its addresses (the harness does not do the product's work), but nothing
  // reaches them: no ARP answer, and the sampler does not count it.
  assert.deepEqual(await lab.vipHolders(), ['n1'], 'a dead host keeps its addresses');
  assert.deepEqual(lab.deadHosts(), ['n1']);
  assert.deepEqual((await lab.arpingAddress()).answers, [], 'a dead host answers no ARP');
  assert.equal((await services.get('n1')!).signal, 'SIGKILL');
  await waitFor('three failed requests after the kill', () => prober.results.filter((r) => !r.ok && r.t > killedAt).length >= 3, 5_000);

  // Fail over by hand: the VIP on n2, and a gratuitous ARP so the client's cache follows.
  await lab.run('n2', ['ip', 'addr', 'add', lab.vip, 'dev', 'eth0']);
  await lab.run('n2', ['arping', '-U', '-c1', '-I', 'eth0', '-s', lab.vipIp, lab.vipIp], { reject: false });
  const second = await waitFor('n2 answers through the VIP', () => (prober.lastOk()?.host === 'n2' ? prober.lastOk() : undefined), 15_000);
  assert.equal(second.pid, services.get('n2')!.pid);

  const probes = await prober.stop();
  const vip = await sampler.stop();
  assert.ok(probes.failures >= 3);
  assert.equal(probes.gaps.filter((g) => g.failures > 0).length, 1, JSON.stringify(probes.gaps));
  assert.ok(probes.longestGapMs >= 3 * 20, `longest gap ${probes.longestGapMs} ms`);
  assert.equal(probes.firstOkAfter(killedAt)?.host, 'n2');
  assert.deepEqual([...probes.answeredBy().keys()], ['n1', 'n2']);
  assert.deepEqual(vip.errors, []);
  assert.deepEqual(vip.dualSamples, []);
  assert.deepEqual(vip.dualPeriods, [], 'the dead n1 does not count as a holder');
  assert.deepEqual(vip.holdersOverTime.map((p) => `${p.holders.join('+')}/${p.live.join('+')}`), ['n1/n1', 'n1/', 'n1+n2/n2']);
  const arp = await lab.arpingAddress();
  assert.deepEqual(arp.answers.map((a) => a.host), ['n2'], arp.output);
  process.stderr.write(`lab smoke: outage through the VIP ${probes.longestGapMs} ms, ${probes.failures}/${probes.requests} requests failed\n`);

  // Revived, n1 has the VIP again, alive: both answer ARP, a duplicate address.
  await lab.reviveHost('n1');
  await waitFor('n1 reaches n2 after revival', () => reaches('n1', lab.address('n2')), 10_000);
  const dup = await lab.arpingAddress();
  assert.deepEqual(dup.answers.map((a) => a.host).sort(), ['n1', 'n2'], dup.output);
  await lab.run('n1', ['ip', 'addr', 'del', lab.vip, 'dev', 'eth0']);
  await lab.run('n2', ['ip', 'addr', 'del', lab.vip, 'dev', 'eth0']);
});

test('freeze stops every process of a host and thaw resumes them', async () => {
  const sleeper = lab.spawn('n2', ['sleep', '60']);
  await waitFor('sleep runs in n2', async () => (await lab.pids('n2')).includes(sleeper.pid!), 5_000);
  const stopped = await lab.freeze('n2');
  assert.ok(stopped.includes(sleeper.pid!));
  await waitFor('sleep is stopped', () => processState(sleeper.pid!) === 'T', 5_000);
  assert.deepEqual(lab.frozenHosts(), ['n2']);
  const answer = await lab.run('client', ['ping', '-c1', '-W1', '-q', lab.address('n2')], { reject: false });
  assert.equal(answer.exitCode, 0, 'the kernel of a frozen host still answers');
  await lab.thaw('n2');
  await waitFor('sleep runs again', () => processState(sleeper.pid!) !== 'T', 5_000);
  assert.deepEqual(lab.frozenHosts(), []);
  // Left running on purpose (and frozen): close() must still remove it.
  await lab.freeze('n2');
});

test('a reused pid is attributed to the host it runs in now, not the one it ran in before', async () => {
  // pid_max is 32768 here: a long chaos run recycles pids, and the lab remembers the host of
  // every pid a fault signalled (so that answers of a killed process are still attributed).
  const old = lab.spawn('n1', ['sleep', '60']);
  await waitFor('sleep runs in n1', async () => (await lab.pids('n1')).includes(old.pid!), 5_000);
  assert.ok((await lab.signalHost('n1', 'SIGCONT')).includes(old.pid!));
  assert.equal(lab.hostOfPid(old.pid!), 'n1');
  process.kill(old.pid!, 'SIGKILL');
  await old;
  // The kernel gives the next process the pid after ns_last_pid: n2's next process gets the
  // dead one's pid (other processes of the machine may take it first: tried again then).
  let reused: ResultPromise | undefined;
  for (let i = 0; i < 50 && !reused; i++) {
    writeFileSync('/proc/sys/kernel/ns_last_pid', String(old.pid! - 1));
    const p = lab.spawn('n2', ['sleep', '60']);
    if (p.pid === old.pid) reused = p;
    else {
      p.kill('SIGKILL');
      await p;
    }
  }
  assert.ok(reused, `no process of n2 got pid ${old.pid} in 50 tries`);
  await waitFor('sleep runs in n2', async () => (await lab.pids('n2')).includes(reused!.pid!), 5_000);
  assert.equal(lab.hostOfPid(reused.pid!), 'n2', 'a live process is where it runs now');
  reused.kill('SIGKILL');
  await reused;
  assert.equal(lab.hostOfPid(reused.pid!), 'n2', 'remembered after it exits');
});

test('a crashed lab is removed by cleanupStale, a killed one by its exit handler', async () => {
  const script = `
    import { NetLab } from ${JSON.stringify(join(ROOT, 'test/lab/netlab.ts'))};
    const lab = await NetLab.create({ hosts: ['a'], client: false });
    lab.spawn('a', ['sleep', '60']);
    console.log(lab.x);
    setInterval(() => {}, 1000);`;
  const start = () => {
    const child = execa(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, reject: false, buffer: false, stderr: 'inherit' });
    const x = new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      void child.then((r) => reject(new Error(`the lab child exited early: ${r.exitCode ?? r.signal}`)));
    });
    return { child, x };
  };
  const crashed = start();
  const terminated = start();
  const [xCrashed, xTerminated] = await Promise.all([crashed.x, terminated.x]);
  assert.notEqual(xCrashed, xTerminated, 'two live labs never share a /24');
  assert.notEqual(xCrashed, lab.x);
  const [crashedPid, terminatedPid] = [crashed.child.pid!, terminated.child.pid!];
  assert.ok((await leftovers(xCrashed, crashedPid)).length > 0);

  crashed.child.kill('SIGKILL'); // no handler runs: its lab stays behind
  terminated.child.kill('SIGTERM'); // its exit handler removes its lab
  await Promise.all([crashed.child, terminated.child]);
  assert.deepEqual(await leftovers(xTerminated, terminatedPid), [], 'SIGTERM left the lab behind');

  // (When lab tests run in parallel, another lab's create() may have removed it first.)
  const cleaned = await NetLab.cleanupStale(silentLogger);
  assert.deepEqual(await leftovers(xCrashed, crashedPid), []);
  assert.ok(!cleaned.includes(lab.x), 'a live lab is left alone');
  assert.ok((await leftovers(lab.x, process.pid)).length > 0);
});

test('close() leaves no namespace, link, table, lock, directory or process behind', async () => {
  const pids = (await Promise.all(lab.all.map((h) => lab.pids(h)))).flat();
  assert.ok(pids.length > 0, 'something is running in the lab');
  const server = devServerPids();
  assert.equal(server.length, 1, 'the dev server runs');
  await lab.close();
  assert.deepEqual(devServerPids(), [], 'the dev server was stopped');
  assert.deepEqual(await leftovers(lab.x, process.pid), []);
  assert.equal(existsSync(lab.dir), false);
  assert.deepEqual(pids.filter((p) => processState(p) !== undefined && processState(p) !== 'Z'), []);
  const links = await execa('ip', ['-o', 'link', 'show']);
  assert.doesNotMatch(links.stdout, new RegExp(`\\b${lab.bridge}\\b`));
  await lab.close(); // idempotent
});
