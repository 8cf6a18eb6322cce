/**
 * Temporal restarted (same SQLite file) while everything runs (issue 9 item 6): the group keeps
 * running (the owner serves under the fail-safe while the controller cannot be reached) or is back
 * within the bound, and status answers again. See cold-start-setup.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { setUp, groupBack, status } from './cold-start-setup.js';

test('Temporal restarted while everything runs: the group keeps running (or is back within the bound), and status answers', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t);
  const before = (await cluster.group())!;
  const killedAt = Date.now();
  await lab.killDevServer();
  await sleep(2000);
  await lab.restartDevServer();
  const backAt = Date.now();
  const back = await groupBack(cluster, client, backAt);
  const s = await status(cluster);
  assert.equal(s.code, 0, s.out);
  assert.match(s.out, new RegExp(`web +running +on ${back.owner} +epoch ${back.epoch}`), s.out);
  const seen = await client.stop();
  t.diagnostic(`the group runs on ${back.owner} ${Date.now() - backAt} ms after Temporal was back (epoch ${before.epoch} -> ${back.epoch}); the client's longest gap since the kill: ${seen.longestGapMs} ms (${seen.lastOkBefore(killedAt) ? 'served before' : '?'})`);
  const held = await vip.stop();
  assert.deepEqual(held.dualPeriods, [], 'never two live holders of the VIP');
});
