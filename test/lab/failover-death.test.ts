/**
 * Failover in the network lab: the owner dies. See failover-setup.ts.
 *
 * The dead owner keeps its addresses, the VIP included (a machine that lost power is not
 * tidied up by anyone): what makes it no holder is that nothing reaches it. So "never two
 * holders" is about live holders (the sampler counts a host only while it is alive, with exact
 * periods), and the client checks it too: only one MAC answers ARP for the VIP.
 */
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
  // The harness left n1's VIP where it was: the product made it harmless, not the lab.
  assert.deepEqual(await lab.vipHolders(), ['n1', 'n2'], 'the dead n1 still has the VIP configured');
  const arp = await lab.arpingAddress();
  assert.deepEqual(arp.answers.map((a) => a.host), ['n2'], `only n2 answers ARP for the VIP:\n${arp.output}`);
  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.errors, []);
  assert.deepEqual(samples.dualSamples, [], 'never two live holders of the VIP in a sample');
  assert.deepEqual(samples.dualPeriods, [], 'never two live holders of the VIP, however briefly');
  assert.deepEqual(samples.holdersOverTime.at(-1)?.live, ['n2'], 'n2 is the one live holder at the end');
  const answered = seen.firstOkAfter(killedAt);
  t.diagnostic(`client-observed outage ${seen.longestGapMs} ms; first answer from ${answered?.host} ${answered ? answered.t - killedAt : '?'} ms after the kill`);
  assert.ok(seen.longestGapMs < 15_000, `outage ${seen.longestGapMs} ms (generous bound)`);
});
