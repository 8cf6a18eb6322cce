/**
 * Automatic fail-back at most once per `stickiness` (docs/failback.md), against a real Temporal
 * dev server, the real controller, switchover, resync and failover workflows, and two nodes in
 * this process (test/support/workflow-cluster.ts). The lab test failback-flap.test.ts covers
 * `stableFor` (a preferred node that flaps is never up long enough, so nothing moves) and one
 * fail-back once it is stable; this file covers `stickiness`, the other half:
 *
 * - a fail-back that fails (here its resync: the preferred node's disk is full) is not retried
 *   in a loop: the next one starts no sooner than `stickiness` after the last one started,
 *   however often the controller wakes up in between;
 * - a preferred node that dies right after the group went back to it, and returns at once,
 *   does not pull the group back before `stickiness` after the group's last move, although it
 *   has been up for `stableFor` long before that.
 *
 * The group has a file set, so each fail-back begins with a resync of the preferred node; the
 * nodes' `resyncGroup` activity is scripted (recorded, made to fail at will). While it watches,
 * the test keeps waking the controller with harmless edges (n2 heard up), so that a fail-back
 * due too early would start at once rather than at the controller's next timer.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import { closeTemporal } from '../support/temporal.js';
import { WorkflowCluster, type WorkflowTestNode } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { ERROR_TYPES, type ResyncResult } from '../../workflows/shared.js';

const STABLE_FOR_MS = 1000;
const STICKINESS_MS = 7000;
/**
 * A fail-back's start is read from the controller's history: the event is written when the
 * workflow task that decided it completes, a moment after the controller's `now()` at which it
 * was due (a loaded machine can take a while over a task). A broken rule is off by seconds.
 */
const CLOCK_SLACK_MS = 1000;
const WAIT_MS = 60_000;

/** The node whose resync fails (its disk is full), if any. */
let resyncFailsOn: string | undefined;
const resyncs: { node: string; at: number; final: boolean }[] = [];

const YAML = `
lease: { ttl: 2000ms, margin: 100ms }
failover: { verifyTimeout: 2000ms }
defaults:
  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }
nodes:
  - { name: n1, addresses: [127.0.0.1], priority: 10 }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
    fileSets:
      - { name: www, paths: [/srv/haoscar-test-www] }
    failback: { policy: auto, stableFor: ${STABLE_FOR_MS}ms, stickiness: ${STICKINESS_MS}ms }
`;

function scriptedResync(node: WorkflowTestNode) {
  return {
    async resyncGroup(req: { group: string; source: string; epoch: number; final?: boolean }): Promise<ResyncResult> {
      resyncs.push({ node: node.name, at: Date.now(), final: req.final ?? false });
      if (resyncFailsOn === node.name) {
        throw ApplicationFailure.create({ type: ERROR_TYPES.SyncFailed, nonRetryable: true, message: `scripted: no space left on the standby's filesystem holding /srv/haoscar-test-www/ (${node.name})` });
      }
      return { group: req.group, node: node.name, source: req.source, steps: [], bytes: 0, durationMs: 0, attempts: 1 };
    },
  };
}

let cluster: WorkflowCluster | undefined;
/** Stops the wake-ups (also when an assertion failed half-way). */
let stopWaking: () => Promise<void> = async () => undefined;
after(async () => {
  // Stopped first; the close aborts a report still being retried (a dead server).
  const waking = stopWaking();
  await cluster?.close().catch(() => undefined);
  await waking;
  await closeTemporal();
});

/** Wakes the controller every 300 ms (an edge about n2, which changes nothing) until stopWaking(). */
function keepWaking(c: WorkflowCluster): void {
  let on = true;
  const loop = (async () => {
    while (on) {
      await c.report('n2', 'up', 'n2', 'heard (wake-up)').catch(() => undefined);
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  stopWaking = async () => {
    on = false;
    await loop;
  };
}

/** The fail-backs (switchover children of the controller) started at or after `since`. */
async function failbacks(c: WorkflowCluster, since: number): Promise<number[]> {
  return (await c.childrenStarted('switchover')).map((s) => s.at).filter((at) => at >= since - CLOCK_SLACK_MS);
}

/** n1 dies; n2 suspects it; waits until the group runs on n2. */
async function n1Dies(c: WorkflowCluster) {
  await c.kill('n1');
  await c.report('n1', 'suspect', 'n2', 'every link silent');
  return c.settled('n2', WAIT_MS);
}

test('fail-back at most once per stickiness: a failing fail-back is not retried in a loop, and a preferred node that dies after its fail-back does not pull the group back before stickiness', async (t) => {
  const c = await WorkflowCluster.start('stickiness', YAML, { extra: scriptedResync });
  cluster = c;
  const placed = await c.web();

  // ---- a fail-back that fails
  resyncFailsOn = 'n1';
  const moved = await n1Dies(c);
  assert.equal(moved.epoch, placed.epoch + 1);
  await c.revive('n1');
  const upAt = (await waitFor('n1 up again', async () => {
    const n = (await c.ownership()).nodes.n1;
    return n?.state === 'up' ? n : undefined;
  }, WAIT_MS, 50)).since;
  keepWaking(c);
  // Two attempts, each failing at its resync; the second no sooner than stickiness after the first.
  const failed = await waitFor('two fail-backs started (and failed at their resync)', async () => {
    const f = await failbacks(c, moved.since);
    return f.length >= 2 ? f : undefined;
  }, 2 * STICKINESS_MS + WAIT_MS, 100);
  const [first, second] = failed as [number, number];
  // The first: once n1 had been up for stableFor, and the group had stayed put for stickiness.
  assert.ok(first >= upAt + STABLE_FOR_MS - CLOCK_SLACK_MS, `first fail-back ${first - upAt} ms after n1 came up (stableFor ${STABLE_FOR_MS} ms)`);
  assert.ok(first >= moved.since + STICKINESS_MS - CLOCK_SLACK_MS, `first fail-back ${first - moved.since} ms after the group's last move (stickiness ${STICKINESS_MS} ms)`);
  assert.ok(second - first >= STICKINESS_MS - CLOCK_SLACK_MS, `the failed fail-back was started again ${second - first} ms later (stickiness ${STICKINESS_MS} ms): ${JSON.stringify(failed.map((x) => x - first))}`);
  // (The second one's resync may still be on its way.)
  await waitFor('each fail-back began with a resync of n1', () => resyncs.filter((r) => r.node === 'n1' && !r.final).length >= 2, WAIT_MS, 50);
  let g = await c.web();
  assert.equal(g.owner, 'n2', 'a fail-back whose resync failed stopped nothing');
  assert.equal(g.epoch, moved.epoch);
  t.diagnostic(`failed fail-backs ${failed.map((x) => x - moved.since).join(', ')} ms after the group moved to n2`);

  // ---- the disk is fixed: the next fail-back (stickiness after the last) moves the group
  resyncFailsOn = undefined;
  const back = await c.settled('n1', 2 * STICKINESS_MS + WAIT_MS);
  assert.equal(back.epoch, moved.epoch + 1, 'one move back');
  const attempts = await failbacks(c, moved.since);
  for (let i = 1; i < attempts.length; i++) {
    assert.ok(attempts[i]! - attempts[i - 1]! >= STICKINESS_MS - CLOCK_SLACK_MS, `fail-backs at most once per stickiness: ${JSON.stringify(attempts.map((x) => x - attempts[0]!))}`);
  }
  const lastFailback = attempts.at(-1)!;

  // ---- n1 dies right after the fail-back and comes back at once: up for stableFor long before
  // stickiness has passed since the group's last move
  const again = await n1Dies(c);
  assert.equal(again.epoch, back.epoch + 1);
  await c.revive('n1');
  const upAgainAt = (await waitFor('n1 up again', async () => {
    const n = (await c.ownership()).nodes.n1;
    return n?.state === 'up' && n.since >= again.since ? n : undefined;
  }, WAIT_MS, 50)).since;
  const home = await c.settled('n1', 2 * STICKINESS_MS + WAIT_MS);
  await stopWaking();
  assert.equal(home.epoch, again.epoch + 1, 'one move back');
  const next = (await failbacks(c, again.since)).filter((at) => at > lastFailback);
  assert.equal(next.length, 1, `one fail-back after n1's second death: ${JSON.stringify(next.map((x) => x - again.since))}`);
  assert.ok(next[0]! >= again.since + STICKINESS_MS - CLOCK_SLACK_MS, `fail-back ${next[0]! - again.since} ms after the group's last move (stickiness ${STICKINESS_MS} ms; n1 up since ${upAgainAt - again.since} ms, stableFor ${STABLE_FOR_MS} ms)`);
  assert.ok(next[0]! >= lastFailback + STICKINESS_MS - CLOCK_SLACK_MS, 'and stickiness after the last fail-back started');
  g = await c.web();
  assert.equal(g.owner, 'n1');
  t.diagnostic(`after n1's second death: up again ${upAgainAt - again.since} ms, fail-back ${next[0]! - again.since} ms after the move to n2`);
});
