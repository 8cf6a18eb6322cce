/**
 * Issue 9, item 3: "Retried or replayed updates apply once" across the controller's
 * continue-as-new. A failover sends each controller update with an update ID of its own
 * (activities/controller.ts withUpdateId: workflow, run, activity), and Temporal answers a repeat
 * of an ID with the first outcome — but only within one run of the controller (the server keeps
 * update IDs per workflow execution; temporalio/sdk-typescript#1317: "server side dedup is
 * per-workflow-execution"). The controller continues as new past 2000 events, so a retried
 * `claimGroup` that reaches the next run was refused StaleEpoch (the first one had raised the
 * epoch; the failover then leaves the group `moving` on a node that runs nothing), and a retried
 * `endOperation` was applied again: it ended the NEXT operation of the group.
 *
 * Here the updates are sent as the activity sends them (fixed update IDs), the controller is
 * made to continue as new by the events of ordinary signals (a stale `groupLost` it ignores), and
 * the same IDs are sent again to the new run.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { beginOperationUpdate, claimGroupUpdate, controllerWorkflowId, endOperationUpdate, healGaveUpSignal, ownershipQuery } from '../../workflows/shared.js';
import { Worker } from '@temporalio/worker';
import { workflowsPath } from '../../workers/workflow-bundle.js';
import { PATCH_APPLIED_UPDATES } from '../../workflows/controller.js';
import { WorkflowCluster, twoNodeWeb } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { signedUpdate } from '../support/cluster-key.js';
import { closeTemporal } from '../support/temporal.js';
import { recordHistory } from '../support/record.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close();
  await closeTemporal();
});

/** Signals the controller ignores (a report on a group it does not have) until it has continued as new. */
async function continueAsNew(handle: WorkflowHandle, firstRunId: string): Promise<{ runId: string; signals: number }> {
  let signals = 0;
  const runId = await waitFor('the controller continued as new', async () => {
    const d = await handle.describe();
    if (d.runId !== firstRunId) return d.runId;
    await Promise.all(Array.from({ length: 10 }, () => {
      signals += 1;
      return handle.signal(healGaveUpSignal, { group: 'nope', resource: 'none', node: 'n1', at: Date.now(), detail: 'test: fills the history' });
    }));
    return undefined;
  }, 150_000, 10);
  return { runId, signals };
}

function outcome<T>(p: Promise<T>): Promise<{ ok: T | null } | { refused: string }> {
  return p.then((ok) => ({ ok: ok ?? null }), (err: unknown) => ({ refused: err instanceof WorkflowUpdateFailedError ? `${err.cause?.message ?? err.message}` : String(err) }));
}

test('a claimGroup or endOperation retried after the controller continued as new gets its first answer and is not applied again', { timeout: 240_000 }, async () => {
  cluster = await WorkflowCluster.start('update-dedup', twoNodeWeb({ lease: '{ ttl: 2000ms, margin: 50ms }' }));
  const handle = cluster.client.workflow.getHandle(controllerWorkflowId(cluster.name));
  // The operation's workflow: one that runs for the whole test, so the controller's 2-minute check
  // of an operation's workflow (releaseAbandoned) finds it running, whatever the machine's load.
  const op = controllerWorkflowId(cluster.name);
  const first = await handle.describe();
  const before = await cluster.web();

  await handle.executeUpdate(beginOperationUpdate, { args: [{ group: 'web', workflowId: op, kind: 'operator' }], updateId: 'op1/begin' });
  // Signed as the failover's local activity signs them (the controller checks the MAC: docs/security.md).
  const claimReq = signedUpdate(cluster.name, 'claimGroup', 'op1/claim', 'run-1', { group: 'web', workflowId: op, expectEpoch: before.epoch, owner: 'n1' });
  const claimed = await handle.executeUpdate(claimGroupUpdate, { args: [claimReq], updateId: 'op1/claim' });
  assert.equal(claimed.epoch, before.epoch + 1);
  // Within the run, Temporal answers a repeat with the first outcome.
  assert.deepEqual(await handle.executeUpdate(claimGroupUpdate, { args: [claimReq], updateId: 'op1/claim' }), claimed, 'a repeat within the run');
  const endReq = signedUpdate(cluster.name, 'endOperation', 'op1/end', 'run-1', { group: 'web', workflowId: op, outcome: 'running' as const, detail: 'test: started' });
  await handle.executeUpdate(endOperationUpdate, { args: [endReq], updateId: 'op1/end' });

  const t = Date.now();
  const { runId, signals } = await continueAsNew(handle, first.runId!);
  process.stderr.write(`continued as new after ${signals} signals in ${Date.now() - t} ms\n`);
  // The new run answers once its handlers are registered (after its first local activity).
  await waitFor('the new run answers the ownership query', () => handle.query(ownershipQuery).then((o) => o.groups.web, () => undefined), 60_000, 50);

  // The next operation of the group (an operator's failover under the same workflow ID).
  await handle.executeUpdate(beginOperationUpdate, { args: [{ group: 'web', workflowId: op, kind: 'operator' }], updateId: 'op2/begin' });
  const claimAgain = await outcome(handle.executeUpdate(claimGroupUpdate, { args: [claimReq], updateId: 'op1/claim' }));
  const endAgain = await outcome(handle.executeUpdate(endOperationUpdate, { args: [endReq], updateId: 'op1/end' }));
  const after = (await handle.query(ownershipQuery)).groups.web!;
  await recordHistory(controllerWorkflowId(cluster.name), 'controller-continued-as-new', runId);
  process.stderr.write(`after continue-as-new: claimGroup again ${JSON.stringify(claimAgain)}, endOperation again ${JSON.stringify(endAgain)}, the group ${JSON.stringify({ epoch: after.epoch, operation: after.operation?.workflowId ?? null })}\n`);

  assert.deepEqual(claimAgain, { ok: claimed }, `the retried claimGroup gets its first answer (epoch ${claimed.epoch}) in the new run`);
  assert.deepEqual(endAgain, { ok: null }, 'the retried endOperation gets its first answer in the new run');
  assert.equal(after.operation?.workflowId, op, `the retried endOperation did not end the next operation: ${JSON.stringify(after)}`);
  assert.equal(after.epoch, claimed.epoch, 'the epoch was raised once');
  // The patch was asked for in the repeats' handlers: the new run's history has its marker, and replays.
  const { events } = await cluster.client.workflow.getHandle(controllerWorkflowId(cluster.name), runId).fetchHistory();
  const patches = (events ?? []).filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((e) => (JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details?.['patch-data']?.payloads?.[0]?.data ?? []).toString() || '{}') as { id?: string }).id);
  assert.ok(patches.includes(PATCH_APPLIED_UPDATES), `the new run's history has the marker of ${PATCH_APPLIED_UPDATES}: ${JSON.stringify(patches)}`);
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, { events }, 'update-dedup');
});
