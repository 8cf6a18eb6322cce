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
import { execa } from 'execa';
import { NetLab } from './netlab.js';
import { LabCluster, type ClusterTiming } from './cluster.js';
import { agentLogs } from './failover-setup.js';
import { SimulatedBmc } from './ipmi-bmc.js';
import { waitFor } from '../support/wait.js';
import { failoverWorkflowId, type FailoverResult } from '../../workflows/shared.js';

const FENCE_IPMILAN = '/usr/sbin/fence_ipmilan';
const missing = [FENCE_IPMILAN, '/usr/bin/ipmi_sim', '/usr/bin/ipmitool'].filter((f) => !existsSync(f));
const skip = missing.length > 0 && `${missing.join(', ')} missing: apt-get install fence-agents openipmi ipmitool`;
const PASSWORD = 'bmc-pw-7f3a';

/**
 * The failover lab's heartbeat, with a lease long enough (8 s) that a failover which waited it
 * out could not have moved the group within FENCED_WITHIN_MS of the freeze.
 */
const TIMING: ClusterTiming = {
  heartbeat: { interval: '100ms', deadtime: '500ms' },
  lease: { ttl: '8s', margin: '150ms' },
  failover: { verifyTimeout: '500ms' },
};

async function setUp(t: TestContext) {
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true });
  const bmcs = new Map<string, SimulatedBmc>();
  t.after(async () => {
    if (process.env.HAOSCAR_LAB_KEEP) process.stderr.write(`lab kept in ${lab.dir}\n`);
    await cluster?.close();
    await Promise.all([...bmcs.values()].map((b) => b.stop()));
    await lab.close();
  });
  for (const host of lab.hosts) bmcs.set(host, await SimulatedBmc.start(lab, host, PASSWORD));
  const fence = (host: string) => `fence: { command: [${FENCE_IPMILAN}], params: ${bmcs.get(host)!.fenceParams()}, timeout: 60s }`;
  const cluster: LabCluster | undefined = new LabCluster(lab, { ...TIMING, nodes: Object.fromEntries(lab.hosts.map((h) => [h, fence(h)])) });
  await cluster.start();
  const vip = await lab.sampleVip(lab.vip);
  const client = await lab.probe(cluster.url, { everyMs: 20, timeoutMs: 300 });
  await waitFor('the client is served through the VIP by n1', async () => (client.lastOk()?.host === 'n1' ? true : undefined), 30_000, 50);
  // The lab's observers in the hosts' namespaces are not the hosts': a power-off leaves them.
  for (const bmc of bmcs.values()) await bmc.keep(lab.observerPids());
  return { lab, cluster, bmcs, vip, client };
}

test('fence_ipmilan against a simulated BMC: a frozen owner is powered off (link down, every process gone) before the standby starts the group; never two live holders, no lease wait', { skip }, async (t) => {
  const { lab, cluster, bmcs, vip, client } = await setUp(t);
  const before = (await cluster.group())!;
  const bmc = bmcs.get('n1')!;

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
