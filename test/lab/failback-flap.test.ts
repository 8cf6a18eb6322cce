/**
 * Automatic fail-back in the network lab: the preferred node comes back but flaps (frozen and
 * thawed, so its peers suspect it and hear it again); the group stays put until it has been
 * up for `stableFor`, then moves back once, and stays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { setUp, expect, LONG_LEASE } from './failover-setup.js';

test('a flapping preferred node under auto fail-back: no ping-pong; one fail-back once it is stable', async (t) => {
  const { lab, cluster } = await setUp(t, [], { noFileSet: true, failback: '{ policy: auto, stableFor: 5s, stickiness: 3s }' }, LONG_LEASE);
  await lab.killHost('n1');
  const moved = await cluster.waitForGroup((g) => g.owner === 'n2' && g.state === 'running', 'n2 owns the group');
  await lab.reviveHost('n1');
  cluster.startAgent('n1');
  await expect(cluster, 'n1 up again', async () => ((await cluster.ownership())?.nodes.n1?.state === 'up' ? true : undefined), 60_000);

  // Flapping: suspect for ~1.5 s every ~3.5 s, never up for 5 s in a row.
  const epochs = new Set<number>();
  const until = Date.now() + 14_000;
  while (Date.now() < until) {
    await sleep(2000);
    await lab.freeze('n1');
    await sleep(1500);
    await lab.thaw('n1');
    const g = await cluster.group();
    if (g) epochs.add(g.epoch);
    assert.equal(g?.owner, 'n2', 'the group stays on n2 while n1 flaps');
  }
  assert.deepEqual([...epochs], [moved.epoch], 'no move at all while n1 flapped');

  // Stable now: one fail-back after stableFor, and then it stays.
  const back = await cluster.waitForGroup((g) => g.owner === 'n1' && g.state === 'running', 'the group back on n1', 60_000);
  assert.equal(back.epoch, moved.epoch + 1, 'exactly one move back');
  await sleep(6000);
  const g = await cluster.group();
  assert.equal(g?.owner, 'n1');
  assert.equal(g?.epoch, back.epoch, 'it stays');
});
