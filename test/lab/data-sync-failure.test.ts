/**
 * A destination that cannot take the data (a full filesystem on the target): the switchover
 * fails with rsync's reason, before anything was stopped, and the group stays where it was.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { setUp, expect, agentLogs, LONG_LEASE } from './failover-setup.js';

test('an rsync failure on the target (full destination): a clear failure, the group stays where it was', async (t) => {
  // Registered first, so that it runs before the lab removes its directory (hooks run in order).
  const mounted: { path?: string } = {};
  t.after(async () => {
    if (mounted.path) await execa('umount', ['-l', mounted.path], { reject: false });
  });
  const { lab, cluster, client } = await setUp(t, [], { fileSet: 'verifyEvery: 1h' }, LONG_LEASE);
  // n2's data directory becomes a 512 KiB filesystem (its agent restarts on it).
  await lab.killHost('n2');
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'haoscar-lab-full', cluster.hostData('n2')]);
  mounted.path = cluster.hostData('n2');
  await lab.reviveHost('n2');
  cluster.startAgent('n2');
  await expect(cluster, 'n2 up again', async () => ((await cluster.ownership())?.nodes.n2?.state === 'up' ? true : undefined), 60_000);
  await writeFile(join(cluster.hostData('n1'), 'big.bin'), randomBytes(3 * 1024 * 1024));
  const before = await cluster.group();

  const run = await cluster.cli(['switchover', 'web', '--to', 'n2']);
  t.diagnostic(run.all ?? '');
  assert.notEqual(run.exitCode, 0);
  assert.match(run.all ?? '', /space/i, 'says the destination is full');
  assert.match(run.all ?? '', /stays on n1/);
  const after = await cluster.group();
  assert.equal(after?.owner, 'n1');
  if (after?.epoch !== before?.epoch) assert.fail(`nothing was to be stopped or moved: ${JSON.stringify({ before, after })}\n${await agentLogs(cluster)}`);
  assert.equal(after?.state, 'running');
  // The standby's own pulls say so too (haoscar sync status); one may have been cut short by
  // the resync, so the next one (due at once: the owner's generation is newer) is waited for.
  const state = await expect(cluster, "n2's sync state shows the error", async () => {
    const s = await cluster.syncState('n2');
    return /space/i.test(s?.sets[0]?.lastError ?? '') ? s : undefined;
  }, 20_000);
  assert.ok(state.sets[0]!.errors >= 1);
  const seen = await client.stop();
  assert.deepEqual([...seen.answeredBy().keys()], ['n1'], 'only n1 ever served');
});
