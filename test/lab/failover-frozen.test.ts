/**
 * Failover in the network lab: a frozen owner comes back. See failover-setup.ts.
 *
 * Issue 9 item 5: once thawed, the owner's lease timers are overdue and can run before the
 * heartbeats that arrived during the freeze are read; its peer still looks "alive" from before
 * the freeze. It must not take that for the fail-safe (serve on without a lease, "FAIL-SAFE"):
 * it drops the VIP at once, well within a lease ttl of SIGCONT.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { setUp, expect, agentLogs, LONG_LEASE } from './failover-setup.js';

/** A thawed owner drops the VIP at once: well within the lab's shortest lease ttl (2 s, failover-setup.ts). */
const DROP_BOUND_MS = 2000;

test('a frozen owner resumed after a failover sees the newer epoch and stays down', async (t) => {
  // The long lease: the test asserts that nothing moves after n1 let go, and under load n2's 2 s
  // lease has run out once and the group went back to n1 (a later failover, not n1 keeping it).
  const { lab, cluster, vip, client } = await setUp(t, [], undefined, LONG_LEASE);
  const before = await cluster.group();
  await lab.freeze('n1');
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined));
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.equal(g.epoch, before!.epoch + 1);
  const thawedAt = Date.now();
  await lab.thaw('n1');
  await expect(cluster, 'n1 drops the VIP once it runs again', async () => ((await lab.vipHolders()).includes('n1') ? undefined : true), 10_000);
  const droppedAfter = Date.now() - thawedAt;
  const n1Log = await cluster.agentLog('n1');
  assert.doesNotMatch(n1Log, /FAIL-SAFE/, `the thawed owner did not take stale peer state for the fail-safe\n${await agentLogs(cluster, 30)}`);
  assert.ok(droppedAfter < DROP_BOUND_MS, `n1 dropped the VIP ${droppedAfter} ms after SIGCONT (bound ${DROP_BOUND_MS} ms)\n${await agentLogs(cluster, 30)}`);
  // Long enough for a heal, a lease round or a heartbeat to bring it back, if anything would.
  await sleep(3000);
  assert.deepEqual(await lab.vipHolders(), ['n2']);
  const after = await cluster.group();
  assert.equal(after!.owner, 'n2');
  assert.equal(after!.epoch, g.epoch, 'no further move');
  const seen = await client.stop();
  const samples = await vip.stop();
  // While n1 was frozen its kernel still had the address (a frozen machine cannot be made to
  // drop it; that is what fencing is for); from its first moment back it must not keep it.
  const lastDual = samples.dualPeriods.at(-1);
  assert.ok(lastDual === undefined || lastDual.to <= thawedAt + droppedAfter + 50, `no second holder after n1 dropped the VIP (${JSON.stringify(samples.dualPeriods)})`);
  assert.ok(samples.samples.filter((s) => s.at > thawedAt + droppedAfter + 50).every((s) => s.holders.join() === 'n2'));
  assert.equal(seen.lastOkBefore(Date.now())?.host, 'n2', 'the client is still served by n2');
  const by = n1Log.includes('the lease guard released the group at its deadline') ? 'its lease guard' : n1Log.includes('lost the lease') ? 'its agent (lost the lease)' : 'its agent';
  t.diagnostic(`n1 dropped the VIP ${droppedAfter} ms after SIGCONT (bound ${DROP_BOUND_MS} ms), let go by ${by}`);
});
