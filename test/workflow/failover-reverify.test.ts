/**
 * Re-verification during a partition (docs/failover.md#re-verification), against a real
 * Temporal dev server, the real controller and failover workflows, and two nodes in this process
 * (test/support/workflow-cluster.ts). The owner's peers lose its heartbeats but Temporal does
 * not: each verification is a false alarm, and the controller verifies it again after 5 s, then
 * 10, 20 and 40 s, then every 60 s, while the owner stays suspect; so an owner that really dies
 * during the partition is failed over within about 60 s plus the usual failover time.
 *
 * - The backoff as it happens: three false alarms 5 s and 10 s apart (announced in the
 *   `ownership` query as `reverify.<node>`), one verification each; then the owner dies and the
 *   next verification, 20 s later, fails it over to the other node.
 * - The cap: after a false alarm at the longest backoff (40 s) the next verification is due 60 s
 *   later, not 80 s. Reaching it by waiting would take 75 s, so the controller is started as it
 *   continues as new in the middle of such a partition: with its state carried over, the owner
 *   suspect and its re-verification (40 s backoff) due in a moment.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeTemporal } from '../support/temporal.js';
import { WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { clusterTaskQueue, controllerWorkflowId, type Ownership } from '../../workflows/shared.js';

/** docs/failover.md: the delays after the 1st, 2nd, 3rd, ... false alarm. */
const DOCUMENTED_BACKOFF_MS = [5000, 10_000, 20_000, 40_000, 60_000, 60_000];
const VERIFY_TIMEOUT_MS = 4000;
const LEASE = { ttlMs: 3000, marginMs: 100 };
/** How late a verification may come after it is due on a loaded machine (a server timer, a workflow task). */
const LATE_MS = 8000;

const YAML = `
lease: { ttl: ${LEASE.ttlMs}ms, margin: ${LEASE.marginMs}ms }
failover: { verifyTimeout: ${VERIFY_TIMEOUT_MS}ms }
defaults:
  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }
nodes:
  - { name: n1, addresses: [127.0.0.1], priority: 10 }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`;

const clusters: WorkflowCluster[] = [];
after(async () => {
  for (const c of clusters) await c.close().catch(() => undefined);
  await closeTemporal();
});

/** Waits for the `count`-th false alarm about n1; returns the state right after it. */
function falseAlarm(c: WorkflowCluster, count: number, timeoutMs: number): Promise<Ownership> {
  return waitFor(`false alarm #${count} about n1`, async () => {
    const s = await c.ownership();
    return s.falseAlarms.filter((f) => f.node === 'n1').length >= count && s.groups.web!.operation === undefined ? s : undefined;
  }, timeoutMs, 50);
}

test('partition, owner still reaching Temporal: verified again after 5 s, then 10 s, then 20 s; once it is really gone, the next verification fails it over', async (t) => {
  const c = await WorkflowCluster.start('reverify', YAML);
  clusters.push(c);
  const before = await c.web();
  const placements = (await c.childrenStarted('failover')).length;
  // n2 stops hearing n1; n1 still answers through its task queue.
  await c.report('n1', 'suspect', 'n2', 'every link silent (partition)');
  const alarms: { at: number; delayMs: number; dueAt: number }[] = [];
  for (let k = 1; k <= 3; k++) {
    const previous = alarms.at(-1);
    const s = await falseAlarm(c, k, (previous?.delayMs ?? 0) + VERIFY_TIMEOUT_MS + LATE_MS + 20_000);
    const alarm = s.falseAlarms.filter((f) => f.node === 'n1')[k - 1]!;
    const next = s.reverify.n1;
    assert.ok(next, `after false alarm #${k} a verification is announced: ${JSON.stringify(s.reverify)}`);
    assert.equal(next.delayMs, DOCUMENTED_BACKOFF_MS[k - 1], `the delay after false alarm #${k}`);
    assert.ok(Math.abs(next.at - alarm.at - next.delayMs) < 1000, `announced ${next.at - alarm.at} ms after the false alarm`);
    assert.equal(s.nodes.n1!.state, 'suspect', 'n1 stays suspect');
    assert.equal(s.groups.web!.owner, 'n1');
    assert.equal(s.groups.web!.epoch, before.epoch, 'nothing moved');
    if (previous) {
      // The verification ran when it was due: not before, not much after.
      assert.ok(alarm.at >= previous.dueAt, `false alarm #${k} ${alarm.at - previous.at} ms after #${k - 1}: not before the announced ${previous.delayMs} ms`);
      assert.ok(alarm.at <= previous.dueAt + LATE_MS, `false alarm #${k} ${alarm.at - previous.at} ms after #${k - 1}: within ${LATE_MS} ms of the announced ${previous.delayMs} ms`);
    }
    alarms.push({ at: alarm.at, delayMs: next.delayMs, dueAt: next.at });
  }
  // One verification (one failover workflow) per false alarm: backing off, not polling.
  assert.equal((await c.childrenStarted('failover')).length - placements, 3, 'three verifications so far');
  t.diagnostic(`false alarms ${alarms.map((a) => a.at - alarms[0]!.at).join(', ')} ms after the first`);

  // Now n1 dies (it no longer reaches Temporal either) while still suspect: no new edge comes.
  await c.kill('n1');
  const killedAt = Date.now();
  const dueAt = alarms.at(-1)!.dueAt;
  const moved = await c.settled('n2', dueAt - Date.now() + VERIFY_TIMEOUT_MS + LEASE.ttlMs + LEASE.marginMs + LATE_MS + 20_000);
  const movedAt = Date.now();
  assert.equal(moved.epoch, before.epoch + 1);
  const result = await c.failoverResult();
  assert.equal(result.outcome, 'moved');
  assert.equal(result.from, 'n1');
  assert.ok(result.phases.verifyMs! >= VERIFY_TIMEOUT_MS - 50, 'the re-verification got no answer');
  const children = (await c.childrenStarted('failover')).slice(placements);
  assert.equal(children.length, 4, 'the fourth verification moved it');
  assert.ok(children[3]!.at >= dueAt - 1000, `the verification that moved it came when due (${children[3]!.at - dueAt} ms after)`);
  // The documented bound: within the current backoff (at most 60 s) plus the usual failover time.
  const bound = dueAt - killedAt + VERIFY_TIMEOUT_MS + LEASE.ttlMs + LEASE.marginMs + LATE_MS;
  assert.ok(movedAt - killedAt <= bound, `failed over ${movedAt - killedAt} ms after n1 died (bound ${bound} ms)`);
  t.diagnostic(`n1 died ${killedAt - alarms.at(-1)!.at} ms after false alarm #3; the group ran on n2 ${movedAt - killedAt} ms later`);
});

test('the backoff is capped: after a false alarm at the 40 s backoff the next verification is due 60 s later', async (t) => {
  const c = await WorkflowCluster.start('reverify-cap', YAML);
  clusters.push(c);
  const running = await c.ownership();
  // The controller continues as new during a long partition: its state carried over, n1
  // suspect since long, 4 false alarms behind it, the next verification (40 s backoff) due now.
  const ctl = c.client.workflow.getHandle(controllerWorkflowId(c.name));
  await ctl.terminate('test: replaced by a run carrying a long partition');
  const now = Date.now();
  const carried: Ownership = {
    ...running,
    nodes: { ...running.nodes, n1: { state: 'suspect', since: now - 80_000, reportedBy: 'n2' } },
    reverify: { n1: { at: now + 500, delayMs: 40_000 } },
  };
  await c.client.workflow.start('controller', { workflowId: controllerWorkflowId(c.name), taskQueue: clusterTaskQueue(c.name), args: [{ cluster: c.name, carried }] });
  const s = await falseAlarm(c, running.falseAlarms.length + 1, VERIFY_TIMEOUT_MS + LATE_MS + 20_000);
  const alarm = s.falseAlarms.at(-1)!;
  assert.equal(alarm.node, 'n1');
  assert.equal(s.groups.web!.epoch, running.groups.web!.epoch, 'nothing moved');
  const next = s.reverify.n1!;
  assert.equal(next.delayMs, DOCUMENTED_BACKOFF_MS[4], 'capped at 60 s (not doubled to 80 s)');
  assert.ok(Math.abs(next.at - alarm.at - 60_000) < 1000, `due ${next.at - alarm.at} ms after the false alarm`);
  t.diagnostic(`next verification due ${next.at - alarm.at} ms after the false alarm`);
});
