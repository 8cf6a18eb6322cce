/**
 * The data policy with real agents, real rsync and real faults (issue 9 item 8,
 * docs/failover.md#the-data-policy-a-stale-standby-does-not-take-over-unplanned): the standby
 * n2's pulls fail (its data directory is a 512 KiB filesystem and the owner wrote 3 MiB), while the
 * owner n1 announces more changes; then n1 dies. n2 is further behind than maxSyncLag (default
 * 1): it is not promoted, the group is down, and `haoscar failover web --accept-data-loss` starts
 * it on n2.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { WorkflowFailedError } from '@temporalio/client';
import { failoverWorkflowId } from '../../workflows/shared.js';
import { setUp, expect, LONG_LEASE } from './failover-setup.js';
import type { FileSetSyncRecord } from '../../workflows/shared.js';

test('a standby further behind than maxSyncLag is not promoted when the owner dies; --accept-data-loss promotes it', async (t) => {
  const mounted: { path?: string } = {};
  t.after(async () => {
    if (mounted.path) await execa('umount', ['-l', mounted.path], { reject: false });
  });
  // A long deadtime: on a loaded machine a stalled agent must not move the group mid-test (the
  // premise is that n1 owns it, and writes, until it is killed).
  const { lab, cluster, client } = await setUp(t, [], { fileSet: 'batch: 100ms, verifyEvery: 1h' }, { ...LONG_LEASE, heartbeat: { interval: '250ms', deadtime: '3s' } });
  const n1 = cluster.hostData('n1');
  const series = async (): Promise<FileSetSyncRecord | undefined> => {
    const text = await readFile(join(cluster.lab.dir, 'hosts', 'n2', 'state', 'sync-series.json'), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : (JSON.parse(text) as { records: Record<string, FileSetSyncRecord> }).records['web/www'];
  };

  // n2's data directory becomes a 512 KiB filesystem (its agent restarts on it).
  await lab.killHost('n2');
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=512k', 'haoscar-lab-stale', cluster.hostData('n2')]);
  mounted.path = cluster.hostData('n2');
  await lab.reviveHost('n2');
  cluster.startAgent('n2');
  await expect(cluster, 'n2 up again', async () => ((await cluster.ownership())?.nodes.n2?.state === 'up' ? true : undefined), 60_000);
  await writeFile(join(n1, 'index.html'), 'v1\n');
  await expect(cluster, 'n2 pulled from n1 completely', async () => {
    const r = await series();
    return r?.owner === 'n1' && r.pulled !== null && r.pulled === r.announced && r.announced > 0 ? r : undefined;
  }, 30_000);

  // More than fits on n2, then more changes: n2's pulls fail while n1 announces.
  await writeFile(join(n1, 'big.bin'), randomBytes(3 * 1024 * 1024));
  for (let i = 2; i <= 4; i++) {
    const before = (await series())?.announced ?? 0;
    await writeFile(join(n1, 'index.html'), `v${i}\n`);
    await expect(cluster, `n2 heard n1's generation after change v${i}`, async () => (((await series())?.announced ?? 0) > before ? true : undefined), 20_000);
  }
  const behind = await series();
  assert.ok(behind && behind.pulled !== null && behind.announced - behind.pulled >= 2, `n2 is behind by more than 1: ${JSON.stringify(behind)}`);
  t.diagnostic(`n2 before n1 dies: ${JSON.stringify(behind)}`);

  // n1 dies: n2 is not promoted; the group is down.
  const epochBefore = (await cluster.group())?.epoch ?? 0;
  await lab.killHost('n1');
  const down = await expect(cluster, 'the group down, not moved to n2', async () => {
    const g = await cluster.group();
    return g?.state === 'down' && g.operation === undefined ? g : undefined;
  }, 60_000);
  assert.equal(down.owner, null);
  assert.ok(down.epoch > epochBefore);
  // The failover (or a placement retry after it) says why, in its history's failure.
  const failed = await cluster.client.workflow.getHandle(failoverWorkflowId(cluster.cluster, 'web')).result().then(() => undefined, (err: unknown) => err);
  assert.ok(failed instanceof WorkflowFailedError, `the failover failed: ${String(failed)}`);
  t.diagnostic(failed.cause?.message ?? '');
  assert.match(failed.cause?.message ?? '', /n2 is \d+ generation\(s\) behind \(more than failover\.maxSyncLag 1/);

  // The operator accepts the loss (the controller may be retrying the placement meanwhile).
  let run: Awaited<ReturnType<typeof cluster.cli>> | undefined;
  await expect(cluster, 'the operator failover ran', async () => {
    run = await cluster.cli(['failover', 'web', '--accept-data-loss', '--reason', 'lab: accept the loss']);
    return run.exitCode === 0 ? run : /already running/.test(run.all ?? '') ? undefined : run;
  }, 90_000);
  assert.equal(run?.exitCode, 0, run?.all);
  assert.match(run?.all ?? '', /to n2/);
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined));
});
