/**
 * Issue 11 item 1, on the real controller: a group in maintenance gets no automatic failover (a
 * heal that gave up, its owner's death), keeps its maintenance and what was asked for meanwhile
 * across a continue-as-new, and `off` does what still stands; a node in standby has its group
 * switched over to the other node and is given nothing until `off`.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { signedHealGaveUp, signedUpdate } from '../support/cluster-key.js';
import { controllerWorkflowId, healGaveUpSignal, setMaintenanceUpdate, type SetMaintenance } from '../../workflows/shared.js';
import type { ControllerGroup } from '../../workflows/group-plan.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

let updates = 0;
function maintenance(c: WorkflowCluster, req: SetMaintenance) {
  const updateId = `test-maintenance/${++updates}`;
  return c.client.workflow.getHandle(controllerWorkflowId(c.name)).executeUpdate(setMaintenanceUpdate, { args: [signedUpdate(c.name, 'setMaintenance', updateId, undefined, { operator: 'test', ...req })], updateId });
}

/** For `ms`, the group stays on `owner` with no operation (polled), and no failover child was started since `since`. */
async function staysPut(c: WorkflowCluster, owner: string, since: number, ms: number): Promise<void> {
  for (const until = Date.now() + ms; Date.now() < until; ) {
    const g = await c.web();
    assert.equal(g.owner, owner, `web stays on ${owner}`);
    assert.equal(g.operation, undefined, `no operation holds web (${JSON.stringify(g.operation)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual((await c.childrenStarted('failover')).filter((f) => f.at >= since), [], 'no failover was started');
}

test('maintenance blocks failover and survives continue-as-new; off resumes it; a node in standby is emptied and given nothing', { timeout: 400_000 }, async () => {
  const c = await WorkflowCluster.start('maintenance', twoNodeWeb({ lease: '{ ttl: 1000ms, margin: 100ms }', verifyTimeout: '300ms' }));
  cluster = c;
  const handle = c.client.workflow.getHandle(controllerWorkflowId(c.name));
  const epoch = (await c.web()).epoch;

  const on = await maintenance(c, { group: 'web', on: true, reason: 'new disk' });
  assert.deepEqual(on, { target: { group: 'web' }, on: true, changed: true, moves: [], stays: [] });
  assert.equal((await c.ownership()).maintenance?.groups.web?.reason, 'new disk');

  // A heal that gave up (n2 is up: it would fail over) and the owner's death: nothing moves.
  const since = Date.now();
  await handle.signal(healGaveUpSignal, ...signedHealGaveUp(c.name, { group: 'web', resource: 'first', node: 'n1', at: Date.now(), detail: 'test: gave up' }));
  await staysPut(c, 'n1', since, 1500);
  await c.kill('n1');
  await c.report('n1', 'suspect', 'n2', 'every link silent');
  await waitFor('n1 suspect at the controller', async () => ((await c.ownership()).nodes.n1?.state === 'suspect' ? true : undefined), 30_000, 50);
  await staysPut(c, 'n1', since, 3000);
  const kept = (await c.web()) as ControllerGroup;
  assert.equal(kept.deferred?.kind, 'node-lost', `the failover asked for is kept for the end of maintenance (${JSON.stringify(kept.deferred)})`);
  assert.equal(kept.epoch, epoch);
  assert.equal(kept.renewable, true, "the owner's lease is not blocked");

  // Continue-as-new: the maintenance and the kept request go along.
  const first = await handle.describe();
  await waitFor('the controller continued as new', async () => {
    const d = await handle.describe();
    if (d.runId !== first.runId) return d.runId;
    await Promise.all(Array.from({ length: 10 }, () => handle.signal(healGaveUpSignal, { group: 'nope', resource: 'none', node: 'n1', at: Date.now(), detail: 'test: fills the history' })));
    return undefined;
  }, 200_000, 10);
  const carried = await c.ownership();
  assert.equal(carried.maintenance?.groups.web?.operator, 'test', 'maintenance survived the continue-as-new');
  assert.equal((carried.groups.web as ControllerGroup).deferred?.kind, 'node-lost');
  await staysPut(c, 'n1', since, 1000);

  // Off: the node-lost failover that still stands runs, web moves to n2.
  const off = await maintenance(c, { group: 'web', on: false });
  assert.equal(off.changed, true);
  const moved = await c.settled('n2', 90_000);
  assert.ok(moved.epoch > epoch);
  assert.equal((await c.ownership()).maintenance?.groups.web, undefined);

  // Node standby: n1 comes back, n2 goes in standby: web is switched over to n1.
  await c.revive('n1');
  await waitFor('n1 up at the controller', async () => ((await c.ownership()).nodes.n1?.state === 'up' ? true : undefined), 30_000, 50);
  const standby = await maintenance(c, { node: 'n2', on: true, reason: 'kernel update' });
  assert.deepEqual({ moves: standby.moves, stays: standby.stays }, { moves: [{ group: 'web', to: 'n1' }], stays: [] });
  await c.settled('n1', 90_000);
  assert.equal((await c.childrenStarted('switchover')).length, 1, 'one switchover moved it');

  // Nothing is placed on n2 while it is in standby: n1 dies, web is not moved there.
  const deathAt = Date.now();
  await c.kill('n1');
  await c.report('n1', 'suspect', 'n2', 'every link silent');
  await waitFor('the failover after n1 died ended', async () => {
    const started = (await c.childrenStarted('failover')).filter((f) => f.at >= deathAt);
    return started.length > 0 && (await c.web()).operation === undefined ? true : undefined;
  }, 60_000, 100);
  assert.equal((await c.web()).owner, 'n1', 'web was not placed on n2 (standby)');

  // Off: n2 may take it now.
  await maintenance(c, { node: 'n2', on: false });
  await c.settled('n2', 90_000);
});
