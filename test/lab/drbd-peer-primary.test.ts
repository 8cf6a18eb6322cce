/**
 * DRBD in the network lab, through the DRBD 9 SIMULATOR (test/support/drbd-sim; the kernel
 * module cannot load on these machines): the owner freezes while Primary, so it can neither
 * answer nor demote; the failover waits out its lease, and then the promotion on the standby
 * is refused because its peer is still Primary. The group is left down rather than run twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowFailedError } from '@temporalio/client';
import { setUp, expect, LONG_LEASE } from './failover-setup.js';
import { failoverWorkflowId, type FailoverResult } from '../../workflows/shared.js';

interface SimState { node: Record<string, { role: string }> }

test('DRBD (simulator): promotion refused while the peer is Primary; never two Primaries', async (t) => {
  const { lab, cluster, vip } = await setUp(t, [], { noFileSet: true, drbd: true }, LONG_LEASE);
  const roles = async () => {
    const shown = await cluster.drbdSim(['show', 'r0']);
    const s = JSON.parse(shown.stdout) as SimState;
    return Object.fromEntries(Object.entries(s.node).map(([n, x]) => [n, x.role]));
  };
  assert.deepEqual(await roles(), { n1: 'Primary', n2: 'Secondary' });
  const before = await cluster.group();

  await lab.freeze('n1');
  const failed = await expect(cluster, 'the failover fails on n2', async () => {
    const handle = cluster.client.workflow.getHandle(failoverWorkflowId(cluster.cluster, 'web'));
    const d = await handle.describe().catch(() => undefined);
    if (!d || d.status.name === 'RUNNING' || (await cluster.group())?.epoch === before!.epoch) return undefined;
    return handle.result().then(() => undefined, (e: unknown) => e);
  }, 60_000);
  assert.ok(failed instanceof WorkflowFailedError, String(failed));
  const details = (failed.cause as { details?: FailoverResult[] }).details?.[0];
  const attempt = details?.attempts.find((a) => a.node === 'n2');
  t.diagnostic(`n2's attempt: ${attempt?.detail}`);
  assert.match(attempt?.detail ?? '', /n1.*Primary/, 'refused because n1 is Primary');
  assert.deepEqual(await roles(), { n1: 'Primary', n2: 'Secondary' }, 'n2 was not promoted');
  assert.equal((await cluster.group())?.state, 'down');

  // Thawed, n1 learns of the newer epoch and stops the group (demotes); it is placed again once.
  await lab.thaw('n1');
  await cluster.waitForGroup((g) => g.state === 'running' && g.owner !== null, 'the group running again', 60_000);
  const r = await roles();
  assert.equal(Object.values(r).filter((x) => x === 'Primary').length, 1, `one Primary: ${JSON.stringify(r)}`);
  assert.equal(r[(await cluster.group())!.owner!], 'Primary', 'on the owner');
  const samples = await vip.stop();
  assert.deepEqual(samples.dualSamples, [], 'never two holders of the VIP either');
});
