/**
 * Resync in the network lab: every process of the node being resynced (its agent with the
 * worker, its rsync) is SIGKILLed half-way, as systemd would stop a crashed unit; the
 * restarted worker resumes the activity from its last heartbeat instead of starting over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkflowIdConflictPolicy } from '@temporalio/client';
import { setUp, expect, LONG_LEASE } from './failover-setup.js';
import { currentProgress } from '../../src/cli/progress.js';
import { clusterTaskQueue, resyncWorkflowId, type ResyncResult } from '../../workflows/shared.js';

const MB = 1024 * 1024;
const FIRST_BYTES = 4 * MB;
const SECOND_BYTES = 16 * MB;
/** rsync's --bwlimit, KiB/s: the second directory takes about 11 s. */
const BWLIMIT_KB = 1500;

test('the worker killed in the middle of a resync: the workflow resumes and completes without starting over', async (t) => {
  // Only the resync moves data here (no continuous pulls, no verify within the test).
  // The kill must land while the second directory is copied, as the workflow's progress shows it.
  // That progress is the resync activity's heartbeat as Temporal last got it, and the SDK sends a
  // heartbeat at most every 4 s (0.8 of its 5 s timeout): so the second directory takes about
  // 11 s at this bandwidth, two or three heartbeats, where with 8 MB each at 2000 KB/s the 3 s
  // from 60% to the end fell between two of them on a quiet machine (it failed so in a CI run).
  const { lab, cluster } = await setUp(t, [], { dirs: ['a', 'b'], fileSet: `continuous: false, verifyEvery: 1h, bwlimit: ${BWLIMIT_KB}` }, LONG_LEASE);
  const files: Record<string, string> = {};
  for (const [dir, name, size] of [['a', 'one.bin', FIRST_BYTES], ['b', 'two.bin', SECOND_BYTES]] as const) {
    const data = randomBytes(size);
    await writeFile(join(cluster.hostData('n1'), dir, name), data);
    files[`${dir}/${name}`] = createHash('sha256').update(data).digest('hex');
  }
  // n2 pulled the (empty) set at its start; wait for that so the resync is the only transfer.
  await expect(cluster, 'n2 pulled once', async () => ((await cluster.syncState('n2'))?.sets[0]?.lastSuccessAt ? true : undefined));

  const workflowId = resyncWorkflowId(cluster.cluster, 'web', 'n2');
  const handle = await cluster.client.workflow.start('resync', {
    workflowId,
    taskQueue: clusterTaskQueue(cluster.cluster),
    args: [{ cluster: cluster.cluster, group: 'web', node: 'n2', reason: 'lab: resume test' }],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
  });
  const before = await expect(cluster, 'the resync past its first directory and 1 MB into the second', async () => {
    const p = await currentProgress(cluster.client, workflowId);
    return p && p.done.length >= 1 && p.bytes >= FIRST_BYTES + MB ? p : undefined;
  }, 60_000);
  t.diagnostic(`killing n2's processes at ${before.percent.toFixed(0)}% (${before.bytes} bytes, done: ${before.done.join(', ')})`);
  const killed = await lab.signalHost('n2', 'SIGKILL');
  assert.ok(killed.length > 0);
  await expect(cluster, "n2's processes gone", async () => ((await lab.pids('n2')).length === 0 ? true : undefined), 10_000);
  cluster.startAgent('n2');

  const result = (await handle.result()) as ResyncResult;
  t.diagnostic(JSON.stringify(result));
  assert.ok(result.attempts >= 2, `resumed by a later attempt (attempts ${result.attempts})`);
  const resumed = result.steps.filter((s) => s.resumed).map((s) => s.key);
  assert.ok(resumed.some((k) => k.endsWith('/a')), `the first directory was not copied again (resumed: ${resumed.join(', ')})`);
  const again = result.steps.filter((s) => !s.resumed);
  const copiedAgain = again.reduce((n, s) => n + s.bytes, 0);
  // The first directory is not copied again: the later attempt moves the second one only.
  // (A SIGKILLed rsync keeps no partial file, as rsync saves one only when it can catch the
  // signal or the connection drops; so after a kill -9 the unit of resumption is a directory.)
  assert.ok(copiedAgain <= SECOND_BYTES * 1.05, `the later attempt copied ${copiedAgain} bytes, more than the second directory's ${SECOND_BYTES}: it did not start over`);
  for (const [rel, sum] of Object.entries(files)) {
    const got = createHash('sha256').update(await readFile(join(cluster.hostData('n2'), rel))).digest('hex');
    assert.equal(got, sum, `${rel} is complete and intact on n2`);
  }
  const g = await cluster.group();
  assert.equal(g?.owner, 'n1', 'a resync moves no group');
});
