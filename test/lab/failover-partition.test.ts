/** Failover in the network lab: a partition between the nodes. See failover-setup.ts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { setUp, expect, agentLogs, LONG_LEASE } from './failover-setup.js';
import { GROUP } from './cluster.js';

test('partition between the nodes while both reach Temporal: no failover, a false alarm recorded', async (t) => {
  // The owner's lease is not renewed while the controller verifies it (so that a real failover
  // waits less): a false alarm costs nothing only while the verification round trip is shorter
  // than the lease. On a loaded 2-core CI machine it once took longer than 2 s (the owner then
  // stopped and took the group again under a new epoch).
  const { lab, cluster, vip, client } = await setUp(t, [], undefined, LONG_LEASE);
  const before = await cluster.group();
  await lab.partition('n1', 'n2');
  const state = await expect(cluster, 'a false alarm recorded', async () => {
    const s = await cluster.ownership();
    return s && s.falseAlarms.some((f) => f.group === GROUP && f.node === 'n1') ? s : undefined;
  });
  assert.match(state.falseAlarms.find((f) => f.node === 'n1')!.detail, /answered through its task queue/);
  // Longer than verification + lease: a failover would have happened by now.
  await sleep(5000);
  const g = await cluster.group();
  // Seen once in CI under load (epoch raised, owner still n1): the logs say which path did it.
  if (g?.owner !== 'n1' || g.epoch !== before!.epoch || g.state !== 'running') {
    assert.fail(`the group changed during the partition: ${JSON.stringify({ before, after: g, falseAlarms: state.falseAlarms })}\n${await agentLogs(cluster, 60)}`);
  }
  await lab.healPartition('n1', 'n2');
  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual([...seen.answeredBy().keys()], ['n1'], 'only n1 ever answered');
  assert.ok(seen.longestGapMs < 1000, `no outage (longest gap ${seen.longestGapMs} ms)`);
  assert.deepEqual(samples.dualSamples, []);
  assert.deepEqual(samples.holdersOverTime.map((p) => p.holders), [['n1']], 'the VIP never moved');
});
