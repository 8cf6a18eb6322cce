/**
 * Found by the chaos suite (`npm run chaos -- --seed 777`, faults #29 and #30, partitions): the
 * owner n2, suspected by its peer, answered the failover's verification holding the group (a
 * false alarm); its lease, not renewed while the controller verifies it, then ran out before the
 * verification ended (a loaded machine: docs/failover.md, "the price of the overlap"), so n2
 * stopped the group and reported `groupLost` — while the failover still held the group. The
 * controller drops a request for a group an operation holds ("the running one handles it"), but
 * a false alarm does not handle it: the failover ended, and the controller kept "running on n2"
 * while nothing ran anywhere. Nothing corrected it (the node does not report again): 65 s until
 * the suite gave up twice in a row, for ever in a quiet cluster. docs/failover.md says the
 * controller then starts the group again (`recover`).
 *
 * Deterministic here: n1's `ping` answers what it holds, then its lease is lost (the group
 * stopped, groupLost delivered to the controller) before the answer reaches the failover; then
 * its peer hears it again (the partition heals), which ends the false alarm's re-verifications.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from '@temporalio/worker';
import { workflowsPath } from '../../workers/workflow-bundle.js';
import { controllerWorkflowId } from '../../workflows/shared.js';
import { WorkflowCluster, type ExtraActivities } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { closeTemporal } from '../support/temporal.js';

const BODY = `
lease: { ttl: 2000ms, margin: 50ms }
failover: { verifyTimeout: 2000ms }
defaults:
  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }
  healing: { startTimeout: 10s }
nodes:
  - { name: n1, addresses: [127.0.0.1], priority: 10 }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`;

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close();
  await closeTemporal();
});

test('an owner that loses the group while a false alarm is verified: the controller does not keep it "running" there', { timeout: 180_000 }, async () => {
  let loseOnPing = false;
  const lostDuringPing: { epoch?: number } = {};
  const extra: ExtraActivities = (node) => (node.name !== 'n1' ? ({} as ReturnType<ExtraActivities>) : {
    ping: async (req: { group?: string }) => {
      const held = req.group ? node.groups.holding(req.group) : undefined;
      const answer = { node: node.name, at: Date.now(), ...(held ? { holds: { epoch: held.epoch, state: held.state } } : {}) };
      if (loseOnPing && held && req.group) {
        loseOnPing = false;
        // The lease runs out right after the answer: the agent stops the group and says so.
        await node.groups.stopGroup(req.group, 'test: lease lost during the verification');
        lostDuringPing.epoch = held.epoch;
        await cluster!.link.reportLost({ group: req.group, node: node.name, epoch: held.epoch, at: Date.now(), detail: 'test: lease not confirmed for 2000ms: the controller is moving the group' });
      }
      return answer;
    },
  });
  cluster = await WorkflowCluster.start('lost-during-op', BODY, { extra });
  const n1 = cluster.node('n1');
  const before = await cluster.web();
  loseOnPing = true;
  await cluster.report('n1', 'suspect', 'n2', 'every link silent');
  await waitFor('the verification asked n1, which then lost the group', () => lostDuringPing.epoch !== undefined, 60_000, 50);
  await waitFor('the operation over', async () => ((await cluster!.web()).operation === undefined ? true : undefined), 60_000, 50);
  // Not "holds nothing": once fixed, the controller may already have started it there again (a newer epoch).
  assert.notEqual(n1.groups.holding('web')?.epoch, lostDuringPing.epoch, 'n1 let go of the group at the epoch it reported');
  // The partition heals: its peer hears n1 again (which ends the re-verifications of a false alarm).
  await cluster.report('n1', 'up', 'n2', 'heard again');
  // Whatever the controller decides, its view must come true: the group runs where it says.
  const ok = await waitFor('the group running where the controller says', async () => {
    const g = await cluster!.web();
    const holder = g.owner ? cluster!.node(g.owner).groups.holding('web') : undefined;
    return g.state === 'running' && g.operation === undefined && holder?.epoch === g.epoch ? g : undefined;
  }, 30_000, 200).catch(() => undefined);
  const g = await cluster.web();
  assert.ok(ok, `the controller says ${g.state} on ${g.owner} at epoch ${g.epoch} (before: ${before.owner} at ${before.epoch}), but n1 holds ${JSON.stringify(n1.groups.holding('web'))} and n2 ${JSON.stringify(cluster.node('n2').groups.holding('web'))}: the groupLost that came during the verification was dropped`);
  // The patch that keeps the report was asked for in the signal's task (or, since issue 9, the
  // controller authenticates reports and keeps it under that patch): the history replays.
  const { events } = await cluster.client.workflow.getHandle(controllerWorkflowId(cluster.name)).fetchHistory();
  const patches = (events ?? []).filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((e) => (JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details?.['patch-data']?.payloads?.[0]?.data ?? []).toString() || '{}') as { id?: string }).id);
  assert.ok(
    patches.includes('controller-lost-during-operation') || patches.includes('controller-authenticated-reports'),
    `the controller's history has the patch marker of workflows/controller.ts PATCH_LOST_DURING_OPERATION or PATCH_AUTHENTICATED_REPORTS: ${JSON.stringify(patches)}`,
  );
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, { events }, 'lost-during-operation');
});
