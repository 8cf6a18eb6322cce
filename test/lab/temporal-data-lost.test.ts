/**
 * Issue 9 item 12 in the network lab, with real agents and the real `haoscar worker`: Temporal
 * loses its data while the cluster runs (the in-memory dev server killed and started again empty,
 * on the same port, as a deleted SQLite file or a fresh database would be). The owner keeps
 * serving (fail-safe while Temporal is down; then it neither renews nor drops the group on the
 * word of a controller behind it), announces what it holds, and the new controller adopts it at
 * its epoch; a failover afterwards claims the next epoch and moves the group. The VIP is never on
 * two live hosts. See failover-setup.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setUp, expect, agentLogs } from './failover-setup.js';

test('Temporal loses its data: the owner keeps the group, the new controller adopts it, a failover afterwards works', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t);
  const before = (await cluster.group())!;
  assert.equal(before.owner, 'n1');
  const lostAt = Date.now();
  await lab.killDevServer();
  await lab.restartDevServer();
  t.diagnostic(`empty dev server back after ${Date.now() - lostAt} ms`);
  const adopted = await expect(cluster, 'the new controller has web running on n1 at the old epoch or above', async () => {
    const g = await cluster.group();
    return g?.owner === 'n1' && g.state === 'running' && g.epoch >= before.epoch && g.operation === undefined ? g : undefined;
  }, 120_000);
  t.diagnostic(`adopted ${Date.now() - lostAt} ms after the loss at epoch ${adopted.epoch} (before: ${before.epoch})`);
  assert.equal(adopted.epoch, before.epoch, 'adopted at its epoch, not placed again');
  assert.equal(client.lastOk()?.host, 'n1', 'still served by n1');
  const kept = await client.stop();
  t.diagnostic(`longest gap while Temporal's data was lost: ${kept.longestGapMs} ms`);

  // A failover afterwards claims the next epoch and is not refused as stale.
  const run = await cluster.cli(['failover', 'web', '--to', 'n2']);
  assert.equal(run.exitCode, 0, `${run.all}\n${await agentLogs(cluster)}`);
  const moved = await cluster.waitForGroup((g) => g.owner === 'n2' && g.state === 'running', 'web running on n2', 60_000);
  // Above the adopted epoch (on a loaded machine the owner may also have lost its lease meanwhile,
  // and a recover claimed an epoch or two: not refused as stale either way).
  assert.ok(moved.epoch > adopted.epoch, `epoch ${moved.epoch} after ${adopted.epoch}`);
  const samples = await vip.stop();
  assert.deepEqual(samples.errors, []);
  assert.deepEqual(samples.dualPeriods, [], 'never two live holders of the VIP, however briefly');
});
