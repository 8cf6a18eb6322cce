/**
 * DRBD split brain in the network lab, through the DRBD 9 SIMULATOR (test/support/drbd-sim):
 * both sides wrote while disconnected. A resync of the standby, and a switchover to it,
 * stop at once with the documented recovery choices; nothing is guessed, nothing moves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setUp, agentLogs, LONG_LEASE } from './failover-setup.js';

test('DRBD (simulator): split brain detected and reported with the recovery choices; the group stays', async (t) => {
  const { cluster, client } = await setUp(t, [], { noFileSet: true, drbd: true }, LONG_LEASE);
  const before = await cluster.group();
  // The link drops; someone promotes n2 by hand and writes; then the link comes back.
  assert.equal((await cluster.drbdSim(['cut', 'r0', 'n1', 'n2'])).exitCode, 0);
  assert.equal((await cluster.drbdSim(['write', 'n1', 'r0', '1024'])).exitCode, 0);
  assert.equal((await cluster.drbdSim(['primary', 'r0'], { as: { node: 'n2', tool: 'drbdadm' } })).exitCode, 0);
  assert.equal((await cluster.drbdSim(['write', 'n2', 'r0', '512'])).exitCode, 0);
  assert.equal((await cluster.drbdSim(['secondary', 'r0'], { as: { node: 'n2', tool: 'drbdadm' } })).exitCode, 0);
  assert.equal((await cluster.drbdSim(['heal', 'r0', 'n1', 'n2'])).exitCode, 0);
  assert.match((await cluster.drbdSim(['dmesg', 'n2', 'r0'])).stdout, /Split-Brain detected but unresolved, dropping connection!/);

  const resync = await cluster.cli(['resync', 'web', '--node', 'n2']);
  t.diagnostic(resync.all ?? '');
  assert.notEqual(resync.exitCode, 0);
  assert.match(resync.all ?? '', /split.brain/i);
  assert.match(resync.all ?? '', /drbdadm connect --discard-my-data r0/, 'the documented choice for the node whose changes are dropped');
  assert.match(resync.all ?? '', /drbdadm connect r0/, 'and for the survivor');

  const switchover = await cluster.cli(['switchover', 'web', '--to', 'n2']);
  assert.notEqual(switchover.exitCode, 0);
  assert.match(switchover.all ?? '', /split.brain.*stays on n1/is);
  const after = await cluster.group();
  assert.equal(after?.owner, 'n1');
  if (after?.epoch !== before?.epoch) assert.fail(`nothing was to be stopped or moved: ${JSON.stringify({ before, after })}\n${await agentLogs(cluster)}`);
  assert.equal(after?.state, 'running');
  const seen = await client.stop();
  assert.deepEqual([...seen.answeredBy().keys()], ['n1']);
});
