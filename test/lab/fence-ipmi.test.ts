/**
 * Fencing as it ships (issue 12 item 2): Debian's fence-agents `fence_ipmilan`, configured as an
 * administrator would, against a simulated BMC per lab host (openipmi's `ipmi_sim`, ipmi-bmc.ts)
 * whose power-off really kills that host: its link goes down and every process in its
 * namespace is SIGKILLed, by the BMC's power script, not by the test.
 *
 * The owner freezes (every process SIGSTOPped: its agent and its lease guard can do nothing,
 * while its kernel still answers ARP for the VIP, which is the overlap a lease alone cannot
 * prevent: docs/failover.md). The failover fences it through its BMC and starts the group on
 * the standby only once the BMC says off: the host is dead before the new owner starts, there
 * is never a second live holder of the VIP, and no lease is waited out.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { NetLab } from './netlab.js';
import { LabCluster, ROOT, type ClusterTiming } from './cluster.js';
import { agentLogs } from './failover-setup.js';
import { SimulatedBmc } from './ipmi-bmc.js';
import { waitFor } from '../support/wait.js';
import { failoverWorkflowId, type FailoverResult } from '../../workflows/shared.js';
import type { Finding } from '../../src/doctor/finding.js';

const FENCE_IPMILAN = '/usr/sbin/fence_ipmilan';
const missing = [FENCE_IPMILAN, '/usr/bin/ipmi_sim', '/usr/bin/ipmitool'].filter((f) => !existsSync(f));
const skip = missing.length > 0 && `${missing.join(', ')} missing: apt-get install fence-agents openipmi ipmitool`;
const PASSWORD = 'bmc-pw-7f3a';
const STUBBORN = join(ROOT, 'test/lab/stubborn-resource.sh');

/**
 * The failover lab's heartbeat, with a lease long enough (8 s) that a failover which waited it
 * out could not have moved the group within FENCED_WITHIN_MS of the freeze.
 */
const TIMING: ClusterTiming = {
  heartbeat: { interval: '100ms', deadtime: '500ms' },
  lease: { ttl: '8s', margin: '150ms' },
  failover: { verifyTimeout: '500ms' },
};

/**
 * A lab cluster whose nodes are fenced with fence_ipmilan through their simulated BMCs. With
 * `stubborn`, the group ends with a `command` resource whose stop can be made to fail
 * (stubborn-resource.sh in `stubbornDir`), as in failed-stop.test.ts.
 */
async function setUp(t: TestContext, opts: { stubborn?: boolean; fenceTimeout?: string } = {}) {
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true });
  const stubbornDir = join(lab.dir, 'stubborn');
  await mkdir(stubbornDir);
  const script = (action: string) => `[/bin/sh, ${STUBBORN}, ${action}, ${stubbornDir}]`;
  const resources = opts.stubborn ? [`{ type: command, name: db, start: ${script('start')}, stop: ${script('stop')}, monitor: ${script('monitor')}, timeout: 10s, check: { type: status, interval: 1s, timeout: 900ms } }`] : [];
  const bmcs = new Map<string, SimulatedBmc>();
  t.after(async () => {
    if (process.env.HAOSCAR_LAB_KEEP) process.stderr.write(`lab kept in ${lab.dir}\n`);
    await cluster?.close();
    await Promise.all([...bmcs.values()].map((b) => b.stop()));
    await lab.close();
  });
  for (const host of lab.hosts) bmcs.set(host, await SimulatedBmc.start(lab, host, PASSWORD));
  const fence = (host: string) => `fence: { command: [${FENCE_IPMILAN}], params: ${bmcs.get(host)!.fenceParams()}, timeout: ${opts.fenceTimeout ?? '60s'} }`;
  const cluster: LabCluster | undefined = new LabCluster(lab, { ...TIMING, resources, nodes: Object.fromEntries(lab.hosts.map((h) => [h, fence(h)])) });
  await cluster.start();
  const vip = await lab.sampleVip(lab.vip);
  const client = await lab.probe(cluster.url, { everyMs: 20, timeoutMs: 300 });
  await waitFor('the client is served through the VIP by n1', async () => (client.lastOk()?.host === 'n1' ? true : undefined), 30_000, 50);
  // The lab's observers in the hosts' namespaces are not the hosts': a power-off leaves them.
  for (const bmc of bmcs.values()) await bmc.keep(lab.observerPids());
  /** `haoscar doctor --json` on `host`, as an administrator runs it there: its finding about fencing `victim`. */
  const doctorOnFencing = async (host: string, victim: string): Promise<Finding | undefined> => {
    const r = await lab.run(host, [process.execPath, join(ROOT, 'bin/haoscar.js'), 'doctor', '--json', '--node', host, '-c', cluster.configFile], { reject: false, timeoutMs: 120_000 });
    return (JSON.parse(r.stdout) as { findings: Finding[] }).findings.find((f) => f.check === `fence ${victim}`);
  };
  return {
    lab, cluster, bmcs, vip, client, doctorOnFencing,
    /** From now on the stubborn resource's stop fails on `host`. */
    failStopOn: (host: string) => writeFile(join(stubbornDir, `stop-fails-${lab.ns(host)}`), ''),
  };
}

test('fence_ipmilan against a simulated BMC: a frozen owner is powered off (link down, every process gone) before the standby starts the group; never two live holders, no lease wait', { skip }, async (t) => {
  const { lab, cluster, bmcs, vip, client, doctorOnFencing } = await setUp(t);
  const before = (await cluster.group())!;
  const bmc = bmcs.get('n1')!;
  // What an administrator checks first (docs/fencing.md): n2 can fence n1 now.
  const ready = await doctorOnFencing('n2', 'n1');
  assert.equal(ready?.level, 'ok', JSON.stringify(ready));
  assert.match(ready.found, /reaches n1's fence device: Status: ON/);

  const frozenAt = Date.now();
  await lab.freeze('n1');
  const linkDownAt = await waitFor('n1 powered off by its BMC', () => bmc.linkDownAt(), 60_000, 50).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await agentLogs(cluster)}`);
  });
  lab.noteDied('n1', linkDownAt);
  const poweredOffAt = await waitFor('every process of n1 gone', () => bmc.poweredOffAt(), 10_000, 50);
  assert.deepEqual(await lab.pids('n1'), [], 'nothing of n1 runs after its power-off');
  const link = await execa('ip', ['-n', lab.ns('n1'), '-o', 'link', 'show', 'eth0']);
  assert.match(link.stdout, /state DOWN/, "n1's link is down");

  await waitFor('the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined), 30_000, 50);
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.equal(g.epoch, before.epoch + 1);
  const result = (await cluster.client.workflow.getHandle(failoverWorkflowId(cluster.cluster, 'web')).result()) as FailoverResult;
  assert.equal(result.outcome, 'moved');
  assert.equal(result.to, 'n2');
  assert.ok(result.phases.fenceMs !== undefined, `the failover fenced n1: ${JSON.stringify(result.phases)}`);
  assert.equal(result.phases.leaseWaitMs, undefined, `fenced: no lease waited out: ${JSON.stringify(result.phases)}`);

  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.errors, []);
  assert.deepEqual(samples.dualPeriods, [], 'never two live holders of the VIP');
  // The new owner's first resource is the VIP: n2 got it only after n1 was dead.
  const n2Got = samples.changes.find((c) => c.host === 'n2' && c.added);
  assert.ok(n2Got, `n2 got the VIP: ${JSON.stringify(samples.changes)}`);
  assert.ok(n2Got.at >= poweredOffAt, `n2 added the VIP at ${n2Got.at}, n1's last process was gone at ${poweredOffAt}`);
  const first = seen.results.find((r) => r.ok && r.host === 'n2' && r.t >= frozenAt);
  t.diagnostic(
    `frozen at 0 ms; fence_ipmilan: link down at +${linkDownAt - frozenAt} ms, last process gone at +${poweredOffAt - frozenAt} ms; ` +
      `n2 added the VIP at +${n2Got.at - frozenAt} ms; first answer from n2 at +${first ? first.t - frozenAt : '?'} ms; ` +
      `failover phases ${JSON.stringify(result.phases)}; client outage ${seen.longestGapMs} ms`,
  );
});

test('a failed fence keeps the group where it is: the owner cannot stop the group and its BMC does not answer; nothing starts on n2, n1 lives on, until a retried fence powers it off', { skip }, async (t) => {
  // fence_ipmilan gives up on a BMC that does not answer after its own login timeouts and
  // retries; the fence activity's bound is the configured timeout (+ 30 s).
  const { lab, cluster, bmcs, vip, failStopOn, doctorOnFencing } = await setUp(t, { stubborn: true, fenceTimeout: '20s' });
  const before = await cluster.waitForGroup((g) => g.owner === 'n1' && g.state === 'running' && g.operation === undefined, 'web settled on n1');
  const bmc = bmcs.get('n1')!;
  await failStopOn('n1');
  bmc.pause();
  const failover = cluster.cli(['failover', 'web', '--to', 'n2', '--reason', 'lab: planned move'], { timeoutMs: 600_000 });
  const block = await waitFor('the failover blocked on n1, its fence failed', async () => {
    const b = (await cluster.group())?.operation?.blocked;
    return b?.node === 'n1' && /fenc/i.test(b.detail) && /fence agent/.test(b.detail) ? b : undefined;
  }, 120_000, 200).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await agentLogs(cluster)}`);
  });
  t.diagnostic(`blocked: ${block.detail} (waiting for ${block.waitingFor.join(', ')})`);
  assert.equal(block.epoch, before.epoch);

  // Meanwhile, doctor on n2 says that n2 cannot fence n1 now.
  const doctorSays = doctorOnFencing('n2', 'n1');
  // Well past a lease: the group stays on n1, which lives on (a fence that failed killed nothing).
  const blockedAt = Date.now();
  while (Date.now() - blockedAt < 10_000) {
    const g = await cluster.group();
    if (g) {
      assert.equal(g.owner, 'n1', 'n1 keeps the group');
      assert.equal(g.epoch, before.epoch, 'not claimed for another node');
    }
    assert.ok(!(await lab.vipHolders()).includes('n2'), 'n2 holds no VIP');
    assert.equal(await bmc.linkDownAt(), undefined, 'n1 was not powered off');
    assert.ok((await lab.pids('n1')).length > 0, "n1's processes run");
    await new Promise((r) => setTimeout(r, 250));
  }

  const unready = await doctorSays;
  assert.equal(unready?.level, 'error', JSON.stringify(unready));
  assert.match(unready.found, /cannot fence n1 now: .*fence_ipmilan status failed: fence agent timed out/);
  assert.doesNotMatch(JSON.stringify(unready), new RegExp(PASSWORD), 'no BMC password in what doctor prints');

  // The BMC answers again: the retried fence powers n1 off, and only then does n2 start the group.
  bmc.resume();
  const linkDownAt = await waitFor('n1 powered off by the retried fence', () => bmc.linkDownAt(), 150_000, 100).catch(async (err: Error) => {
    throw new Error(`${err.message}\n${await agentLogs(cluster)}`);
  });
  lab.noteDied('n1', linkDownAt);
  const poweredOffAt = await waitFor('every process of n1 gone', () => bmc.poweredOffAt(), 10_000, 50);
  const done = await failover;
  assert.equal(done.exitCode, 0, `${done.all}\n${await agentLogs(cluster)}`);
  assert.match(done.stdout, new RegExp(`group web moved from n1 to n2 at epoch ${before.epoch + 1} \\(.*fence \\d+ ms`));
  const samples = await vip.stop();
  assert.deepEqual(samples.dualPeriods, [], 'never two live holders of the VIP');
  const n2Got = samples.changes.find((c) => c.host === 'n2' && c.added);
  assert.ok(n2Got && n2Got.at >= poweredOffAt, `n2 got the VIP (${n2Got?.at}) only after n1 was dead (${poweredOffAt})`);
  t.diagnostic(`blocked ${Math.round(linkDownAt - block.since)} ms until the retried fence; n1 dead ${poweredOffAt - linkDownAt} ms after its link went down; ${done.stdout.trim().split('\n').pop()}`);
});
