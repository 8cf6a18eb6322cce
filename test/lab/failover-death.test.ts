/** Failover in the network lab: the owner dies. See failover-setup.ts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setUp, expect } from './failover-setup.js';

test('node death: the VIP answers from the standby', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t);
  const before = await cluster.group();
  const killedAt = Date.now();
  await lab.killHost('n1');
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined));
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.equal(g.epoch, before!.epoch + 1);
  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.dualSamples, [], 'never two holders of the VIP');
  assert.deepEqual(samples.errors, []);
  const answered = seen.firstOkAfter(killedAt);
  t.diagnostic(`client-observed outage ${seen.longestGapMs} ms; first answer from ${answered?.host} ${answered ? answered.t - killedAt : '?'} ms after the kill`);
  assert.ok(seen.longestGapMs < 15_000, `outage ${seen.longestGapMs} ms (generous bound)`);
});
