/** Failover in the network lab: the owner cut off from everything. See failover-setup.ts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setUp, expect } from './failover-setup.js';

test('owner cut off from everything: it drops the VIP by itself, the standby takes over, never two holders', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t);
  const before = await cluster.group();
  const cutAt = Date.now();
  await lab.isolate('n1');
  await expect(cluster, 'n1 drops the VIP by itself', async () => ((await lab.vipHolders()).includes('n1') ? undefined : true));
  const droppedAt = Date.now();
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined));
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.equal(g.epoch, before!.epoch + 1);
  // Whichever comes first lets go: the agent's own lease check, or (an agent slowed by load)
  // the lease guard at the deadline.
  assert.match(await cluster.agentLog('n1'), /lost the lease: stopping the group|the lease guard released the group at its deadline/);
  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.dualSamples, [], 'never two holders of the VIP');
  assert.deepEqual(samples.dualPeriods, [], 'not even between two samples');
  assert.deepEqual(samples.errors, []);
  t.diagnostic(`n1 dropped the VIP ${droppedAt - cutAt} ms after the cut; outage ${seen.longestGapMs} ms`);
  await lab.rejoin('n1');
});
