/**
 * The lease enforced outside the agent (docs/guard.md), in the network lab: the owner's AGENT
 * fails while its node lives on. Killed or frozen, its guard lets go of the group at the lease
 * deadline (the VIP deleted, the service killed), before the standby may start it; restarted
 * within its lease, it re-attaches and nothing moves. Each test samples who holds the VIP (exact
 * periods from address events) and the service's running instances in every namespace.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { setUp, expect, agentLogs, LONG_LEASE } from './failover-setup.js';
import { InstanceSampler } from './instance-sampler.js';
import type { LabCluster } from './cluster.js';
import type { NetLab } from './netlab.js';

const isService = (cmdline: string) => cmdline.includes('pid-service.mjs');

function sampleInstances(lab: NetLab): InstanceSampler {
  return new InstanceSampler(Object.fromEntries(lab.hosts.map((h) => [h, lab.ns(h)])), isService);
}

function agentPid(cluster: LabCluster, host: string): number {
  const pid = cluster.agents.get(host)?.pid;
  assert.ok(pid, `the agent of ${host} runs`);
  return pid;
}

async function explain(cluster: LabCluster, what: string): Promise<string> {
  return `${what}\n${await agentLogs(cluster, 30)}`;
}

/** Common checks: never two VIP holders, never two running instances of the service. */
async function assertOneOwnerThroughout(t: TestContext, cluster: LabCluster, vip: Awaited<ReturnType<typeof setUp>>['vip'], instances: InstanceSampler) {
  const held = await vip.stop();
  const ran = instances.stop();
  t.diagnostic(`VIP holders over time: ${held.holdersOverTime.map((p) => `${p.holders.join('+') || 'nobody'} ${Math.round(p.to - p.from)}ms`).join(', ')}`);
  assert.deepEqual(held.errors, [], 'the VIP sampler worked');
  assert.deepEqual(held.dualPeriods, [], await explain(cluster, 'never two holders of the VIP, however briefly'));
  assert.deepEqual(ran.dualSamples.map((s) => s.byHost), [], await explain(cluster, 'never two running instances of the service'));
}

test('the owner\'s agent SIGKILLed: its guard drops the VIP and kills the service before the standby starts them', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t);
  const instances = sampleInstances(lab);
  const before = await cluster.group();
  process.kill(agentPid(cluster, 'n1'), 'SIGKILL');
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined), 60_000);
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.equal(g.epoch, before!.epoch + 1);
  // The guard, not the dead agent, let go on n1.
  await expect(cluster, 'n1 holds nothing', async () => ((await lab.vipHolders()).join() === 'n2' ? true : undefined), 10_000);
  const n1 = instances.now().byHost.n1 ?? [];
  assert.deepEqual(n1, [], 'no instance of the service is left on n1');
  assert.match(await cluster.guardLog('n1'), /group web \(epoch \d+\) released in \d+ms/);
  await assertOneOwnerThroughout(t, cluster, vip, instances);
  await client.stop();
});

test('the owner\'s agent frozen (SIGSTOP) past its lease: the guard lets go; thawed, the agent restarts nothing', async (t) => {
  // It asserts that nothing changes hands after the thaw: the long lease of such tests (a 2 s
  // one has run out on the new owner under CI load, and the group moved again).
  const { lab, cluster, vip, client } = await setUp(t, [], undefined, LONG_LEASE);
  const instances = sampleInstances(lab);
  const pid = agentPid(cluster, 'n1');
  process.kill(pid, 'SIGSTOP');
  let thawed = false;
  t.after(() => {
    if (!thawed) process.kill(pid, 'SIGCONT');
  });
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined), 60_000);
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.deepEqual(instances.now().byHost.n1 ?? [], [], 'the guard killed the service on n1 while its agent was frozen');
  process.kill(pid, 'SIGCONT');
  thawed = true;
  // Long enough for a heal, a lease round or a heartbeat to bring anything back on n1.
  await sleep(4000);
  assert.deepEqual(await lab.vipHolders(), ['n2'], await explain(cluster, 'the VIP is on n2 only'));
  assert.deepEqual(instances.now().byHost.n1 ?? [], [], await explain(cluster, 'the thawed agent did not restart the service the guard killed'));
  const after = await cluster.group();
  assert.equal(after!.owner, 'n2');
  assert.equal(after!.epoch, g.epoch, 'no further move');
  await assertOneOwnerThroughout(t, cluster, vip, instances);
  await client.stop();
});

test('the owner\'s agent restarted within its lease: it re-attaches to its guard and nothing moves', async (t) => {
  // The peer must not suspect n1 while its agent restarts (deadtime longer than a restart under
  // tsx on a loaded machine), and the lease must outlast the restart; docs/guard.md.
  const { lab, cluster, vip, client } = await setUp(t, [], undefined, { heartbeat: { interval: '200ms', deadtime: '10s' }, lease: { ttl: '15s', margin: '300ms' } });
  const instances = sampleInstances(lab);
  const before = await cluster.group();
  const servicePids = instances.now().byHost.n1;
  assert.equal(servicePids?.length, 1);
  const old = cluster.agents.get('n1')!;
  process.kill(agentPid(cluster, 'n1'), 'SIGKILL');
  await old.catch(() => undefined);
  const killedAt = Date.now();
  cluster.startAgent('n1');
  const times = (text: string, what: string) => text.split(what).length - 1;
  await expect(cluster, 'the new agent connected', async () => (times(await cluster.agentLog('n1'), 'agent connected to Temporal') >= 2 ? true : undefined), 60_000);
  const log = await cluster.agentLog('n1');
  assert.equal(times(log, 'attached to the lease guard'), 2, 'both agents attached to a guard');
  assert.equal(times(log, 'starting the lease guard'), 1, 'the second one found the first one\'s guard running');
  t.diagnostic(`the agent was back ${Date.now() - killedAt} ms after SIGKILL`);
  // A few lease rounds of the new agent.
  await sleep(3000);
  const after = await cluster.group();
  assert.equal(after!.owner, 'n1', await explain(cluster, 'still owned by n1'));
  assert.equal(after!.epoch, before!.epoch, await explain(cluster, 'under the same epoch: nothing moved'));
  assert.deepEqual(instances.now().byHost.n1, servicePids, 'the same service process runs on (not restarted)');
  assert.doesNotMatch(await cluster.guardLog('n1'), /released/);
  const held = await vip.stop();
  assert.ok(held.holdersOverTime.every((p) => p.holders.join() === 'n1'), `the VIP stayed on n1 throughout: ${JSON.stringify(held.holdersOverTime)}`);
  instances.stop();
  await client.stop();
});
