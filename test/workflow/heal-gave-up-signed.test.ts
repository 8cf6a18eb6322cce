/**
 * A heal's "gave up" report is signed (issue 9 item 9): the `healGaveUp` signal makes the
 * controller move a group off its owner, and anyone with Temporal access can send a signal. Before,
 * a forged one moved a healthy group (a planned-like move with every safety step, but an outage and
 * a denial of service at will); a recorded one sent again did the same.
 *
 * Now the heal workflow has its report signed by the workflow worker (a local activity, bound to
 * the heal's workflow ID), the controller checks it in an activity and keeps the newest report's
 * time per heal. Here, on the real controller and heal workflows: a heal that really gives up moves
 * the group; a forged report and one signed for another heal are refused and counted, and the
 * genuine one sent again is a duplicate of that heal's newest: none of them moves anything.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { defaultPayloadConverter } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { signedHealGaveUp } from '../support/cluster-key.js';
import { recordHistory } from '../support/record.js';
import { waitFor } from '../support/wait.js';
import { requestHeal } from '../../src/agent/heal-trigger.js';
import { workflowsPath } from '../../workers/workflow-bundle.js';
import { PATCH_SIGNED_HEAL_REPORTS } from '../../workflows/controller.js';
import { controllerWorkflowId, healGaveUpSignal, healWorkflowId, ownershipQuery, type HealGaveUpReport } from '../../workflows/shared.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

const BODY = twoNodeWeb({
  lease: '{ ttl: 1500ms, margin: 100ms }',
  verifyTimeout: '500ms',
  resources: ['first', 'second'],
  healing: '{ maxRestarts: 1, window: 10m, startTimeout: 400ms, backoff: { initial: 100ms, max: 100ms } }',
});

test('a heal that gives up moves the group with its signed report; forged and misdirected reports are refused, a replayed one is a duplicate: none moves anything', { timeout: 300_000 }, async () => {
  const c = await WorkflowCluster.start('heal-signed', BODY);
  cluster = c;
  const handle = c.client.workflow.getHandle(controllerWorkflowId(c.name));
  const start = await c.settled('n1');
  const refused = async () => (await handle.query(ownershipQuery)).reports?.refused ?? 0;

  // 1. Forged (no MAC), and signed for another heal (web/second's MAC on a report about web/first).
  const report: HealGaveUpReport = { group: 'web', resource: 'first', node: 'n1', at: Date.now(), detail: 'test: forged' };
  await handle.signal(healGaveUpSignal, report);
  await waitFor('the forged report refused', async () => ((await refused()) === 1 ? true : undefined), 30_000, 50);
  const [, otherAuth] = signedHealGaveUp(c.name, { ...report, resource: 'second' });
  await handle.signal(healGaveUpSignal, report, otherAuth);
  await waitFor('the misdirected report refused', async () => ((await refused()) === 2 ? true : undefined), 30_000, 50);
  const o = await handle.query(ownershipQuery);
  assert.match(o.reports?.lastRefused?.at(-2)?.why ?? '', /no MAC/);
  assert.match(o.reports?.lastRefused?.at(-1)?.why ?? '', /signed for heal .*second/);
  const unmoved = await c.web();
  assert.deepEqual({ owner: unmoved.owner, epoch: unmoved.epoch, operation: unmoved.operation }, { owner: 'n1', epoch: start.epoch, operation: undefined });

  // 2. The real thing: web/first on n1 never becomes healthy again; its heal gives up and asks.
  const svc = c.node('n1').services.get('first')!;
  svc.behaviour.unhealthyAfterStart = true;
  svc.crash();
  await requestHeal(c.client, { cluster: c.name, node: 'n1', group: 'web', resource: 'first', failure: { at: Date.now(), detail: 'test: crashed', source: 'test' } });
  const moved = await waitFor('web moved to n2 by the heal that gave up', async () => {
    const g = await c.web();
    return g.owner === 'n2' && g.state === 'running' && g.operation === undefined ? g : undefined;
  }, 60_000, 100).catch(async (err: unknown) => {
    const heal = c.client.workflow.getHandle(healWorkflowId(c.name, 'web', 'first'));
    const healEvents = (await heal.fetchHistory().catch(() => ({ events: [] }))).events ?? [];
    throw new Error(`${String(err)}\nheal: ${(await heal.describe().catch(() => undefined))?.status.name}, events ${healEvents.map((e) => e.eventType).join(' ')}\ncontroller: ${JSON.stringify({ web: await c.web(), reports: (await handle.query(ownershipQuery)).reports })}`);
  });
  assert.equal(moved.epoch, start.epoch + 1);
  // The heal's own history (its signed report, the patch marker) replays too.
  const healHistory = await c.client.workflow.getHandle(healWorkflowId(c.name, 'web', 'first')).fetchHistory();
  await recordHistory(healWorkflowId(c.name, 'web', 'first'), 'heal-service-gave-up-signed');
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, healHistory, 'heal-gave-up-signed');
  assert.equal(await refused(), 2, 'the genuine report was not refused');
  svc.behaviour = {};

  // 3. The genuine report, MAC and all, read from the controller's history and sent again.
  const { events } = await handle.fetchHistory();
  const genuine = (events ?? []).map((e) => e.workflowExecutionSignaledEventAttributes).filter((a) => a?.signalName === 'healGaveUp' && (a.input?.payloads?.length ?? 0) === 2);
  const args = genuine.map((a) => a!.input!.payloads!.map((p) => defaultPayloadConverter.fromPayload(p))).find((x) => (x[1] as { healId?: string }).healId === healWorkflowId(c.name, 'web', 'first') && (x[0] as HealGaveUpReport).detail !== 'test: forged');
  assert.ok(args, 'the heal\'s signed report is in the history');
  // Back on n1 first (the replayed report names n1 as the owner that gave up): n2 dies, then returns.
  await c.kill('n2');
  await c.report('n2', 'suspect', 'n1', 'every link silent');
  await c.settled('n1', 120_000);
  await c.revive('n2');
  await waitFor('n2 up', async () => ((await handle.query(ownershipQuery)).nodes.n2?.state === 'up' ? true : undefined), 30_000, 50);
  const back = await c.web();
  const replayedAt = Date.now();
  await handle.signal('healGaveUp', ...args);
  // Reports are handled in the order they came: once a forged one sent after it is refused, the
  // replayed one has been handled (as a duplicate of the newest report of that heal: nothing to do).
  await handle.signal(healGaveUpSignal, { ...report, at: Date.now(), detail: 'test: forged after the replay' });
  await waitFor('the report after the replay refused', async () => ((await refused()) === 3 ? true : undefined), 30_000, 50);
  assert.deepEqual((await c.childrenStarted('failover')).filter((f) => f.at >= replayedAt), [], 'no failover started');
  for (let i = 0; i < 10; i++) {
    const g = await c.web();
    assert.deepEqual({ owner: g.owner, epoch: g.epoch }, { owner: 'n1', epoch: back.epoch }, 'the replayed report moved nothing');
    await new Promise((r) => setTimeout(r, 100));
  }

  await recordHistory(controllerWorkflowId(c.name), 'controller-signed-heal-reports');
  const history = await handle.fetchHistory();
  const patches = (history.events ?? []).filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((e) => (JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details?.['patch-data']?.payloads?.[0]?.data ?? []).toString() || '{}') as { id?: string }).id);
  assert.ok(patches.includes(PATCH_SIGNED_HEAL_REPORTS), `the marker of ${PATCH_SIGNED_HEAL_REPORTS}: ${JSON.stringify(patches)}`);
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, history, 'signed-heal-reports');
});
