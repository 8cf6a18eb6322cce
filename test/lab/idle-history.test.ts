/**
 * Idle cost in Temporal (issue 14 item 5): a healthy two-node cluster with nothing happening
 * writes no history event. Lease confirmations are queries, heartbeats and the file set's syncs go
 * between the nodes, so a minute of quiet must leave every workflow's history as it was and start
 * no workflow: an event per lease round or per heartbeat would grow the controller's history (and
 * the server's database) without bound, and its continue-as-new would hide it.
 *
 * The lab's own dev server holds only this cluster's workflows. The lab's long lease (4 s) keeps a
 * slow confirmation on a loaded machine from losing the lease, which would rightly write events:
 * this test is about what a quiet cluster writes, not about load. Seen failing when the service was
 * killed during the quiet minute (its heal's events were listed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LONG_LEASE, setUp } from './failover-setup.js';
import { eventsWritten, historyLengths, settledHistoryLengths } from '../support/history-growth.js';

const QUIET_MS = 60_000;

test('a healthy cluster with nothing happening writes no history event in a minute', async (t) => {
  const { cluster, client } = await setUp(t, [], { fileSet: 'batch: 100ms' }, LONG_LEASE);
  const before = await settledHistoryLengths(cluster.client);
  const quietFrom = Date.now();
  await new Promise((r) => setTimeout(r, QUIET_MS));
  const written = await eventsWritten(cluster.client, before, await historyLengths(cluster.client));
  assert.deepEqual(written.map((w) => `${w.run}: ${w.events.join(', ')}`), [], `history events written by an idle cluster in ${QUIET_MS / 1000} s`);
  assert.equal(client.lastOk()?.host, 'n1', 'n1 still serves');
  assert.ok(client.firstOkAfter(quietFrom), 'the service answered through the VIP meanwhile (the cluster was up)');
});
