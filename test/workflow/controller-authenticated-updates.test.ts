/**
 * Issue 9, item 9: "Access to Temporal alone does not take a group". The controller's updates that
 * can move ownership (claimGroup, endOperation, operationBlocked, confirmDown) are applied only
 * with a MAC under the cluster's message key, bound to this controller, the update's name and ID,
 * the sending run and the request (epochs included); the controller checks it in a local activity
 * before anything changes. Before, anyone with Temporal access could record a running group as
 * owned by nobody and `down` (the controller then places it with no old owner to wait for: the
 * old owner serves beside the new one for up to ttl + margin), or confirm a blocked node down.
 *
 * Here a client without the key sends them (refused `Unauthenticated`, nothing changes), a holder
 * of the key replays signed ones (answered as the first time under their own ID, refused under
 * another ID, another run or a past epoch), and an operator's signed confirm-down unblocks.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { deriveMessageKey } from '../../src/auth/messages.js';
import {
  beginOperationUpdate,
  claimGroupUpdate,
  confirmDownUpdate,
  controllerWorkflowId,
  endOperationUpdate,
  ERROR_TYPES,
  operationBlockedUpdate,
  ownershipQuery,
} from '../../workflows/shared.js';
import { WorkflowCluster, twoNodeWeb } from '../support/workflow-cluster.js';
import { signedUpdate } from '../support/cluster-key.js';
import { closeTemporal } from '../support/temporal.js';
import { recordHistory } from '../support/record.js';
import { Worker } from '@temporalio/worker';
import { workflowsPath } from '../../workers/workflow-bundle.js';
import { PATCH_AUTHENTICATED_UPDATES } from '../../workflows/controller.js';

let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close();
  await closeTemporal();
});

/** One cluster for the three tests (its lease long enough that nothing expires while they look). */
async function theCluster(): Promise<{ c: WorkflowCluster; handle: WorkflowHandle }> {
  cluster ??= await WorkflowCluster.start('ctl-auth', twoNodeWeb({ lease: '{ ttl: 20s, margin: 50ms }' }));
  return { c: cluster, handle: cluster.client.workflow.getHandle(controllerWorkflowId(cluster.name)) };
}

/** 'accepted: <answer>' or the refusal's type and message. */
function outcome(p: Promise<unknown>): Promise<string> {
  return p.then(
    (ok) => `accepted: ${JSON.stringify(ok ?? null)}`,
    (err: unknown) => {
      if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure) return `refused ${err.cause.type}: ${err.cause.message}`;
      return `failed: ${String(err)}`;
    },
  );
}

function refusedAs(got: string, type: string, what: string): void {
  assert.ok(got.startsWith(`refused ${type}:`), `${what}: refused ${type}, got ${got}`);
}

test('a forged claim for nobody and end `down`, sent without the cluster secret, are refused (Unauthenticated) and change nothing', { timeout: 180_000 }, async () => {
  const { c, handle } = await theCluster();
  const before = await c.settled('n1');
  const intruder = 'intruder/web';
  // beginOperation is not signed: it only blocks the owner's renewals (denial of service).
  await handle.executeUpdate(beginOperationUpdate, { args: [{ group: 'web', workflowId: intruder, kind: 'operator' }] });

  const claim = await outcome(handle.executeUpdate(claimGroupUpdate, { args: [{ group: 'web', workflowId: intruder, expectEpoch: before.epoch, owner: null }] }));
  refusedAs(claim, ERROR_TYPES.Unauthenticated, 'an unsigned claim of the running group for nobody');
  const end = await outcome(handle.executeUpdate(endOperationUpdate, { args: [{ group: 'web', workflowId: intruder, outcome: 'down', detail: 'forged' }] }));
  refusedAs(end, ERROR_TYPES.Unauthenticated, 'an unsigned end `down`');
  // Signed, but under another secret (an impostor's, or a node not rotated yet).
  const other = deriveMessageKey(randomBytes(32));
  const otherClaim = signedUpdate(c.name, 'claimGroup', 'intruder/claim', 'run-x', { group: 'web', workflowId: intruder, expectEpoch: before.epoch, owner: null }, other);
  refusedAs(await outcome(handle.executeUpdate(claimGroupUpdate, { args: [otherClaim], updateId: 'intruder/claim' })), ERROR_TYPES.Unauthenticated, 'a claim signed under another secret');
  const blocked = await outcome(handle.executeUpdate(operationBlockedUpdate, { args: [{ group: 'web', workflowId: intruder, node: 'n1', epoch: before.epoch, detail: 'forged', waitingFor: ['confirm-down'] }] }));
  refusedAs(blocked, ERROR_TYPES.Unauthenticated, 'an unsigned operationBlocked');

  const g = await c.web();
  assert.deepEqual({ owner: g.owner, epoch: g.epoch, state: g.state, operation: g.operation?.workflowId, blocked: g.operation?.blocked }, { owner: 'n1', epoch: before.epoch, state: 'running', operation: intruder, blocked: undefined }, 'nothing changed but the (unsigned) begin');
  assert.equal(c.node('n1').groups.holding('web')?.state, 'running', 'n1 still runs the group');
  // Over: a holder of the key gives the group back; n1 keeps it, renewed again.
  await handle.executeUpdate(endOperationUpdate, { args: [signedUpdate(c.name, 'endOperation', 'intruder/end', 'run-x', { group: 'web', workflowId: intruder, outcome: 'unchanged' as const, detail: 'test over' })], updateId: 'intruder/end' });
  const settled = await c.settled('n1');
  assert.equal(settled.epoch, before.epoch, 'no claim was applied');
});

test('a replayed signed update is answered as the first time under its own ID, and refused under another ID, from another run or at a past epoch', { timeout: 180_000 }, async () => {
  const { c, handle } = await theCluster();
  const before = await c.settled('n1');
  // The operation's workflow: one that runs for the whole test (the controller's check of an operation finds it running).
  const op = controllerWorkflowId(c.name);
  await handle.executeUpdate(beginOperationUpdate, { args: [{ group: 'web', workflowId: op, kind: 'operator' }] });
  const claimReq = { group: 'web', workflowId: op, expectEpoch: before.epoch, owner: 'n1' };
  const claimA = signedUpdate(c.name, 'claimGroup', 'A/claim', 'run-A', claimReq);
  const claimed = await handle.executeUpdate(claimGroupUpdate, { args: [claimA], updateId: 'A/claim' });
  assert.equal(claimed.epoch, before.epoch + 1);

  // The recorded update (MAC included, as the history shows it) sent again:
  assert.equal(await outcome(handle.executeUpdate(claimGroupUpdate, { args: [claimA], updateId: 'A/claim' })), `accepted: ${JSON.stringify(claimed)}`, 'under its own ID: the first answer');
  // Signed anew for a past epoch (what a recorded claim of an earlier operation is): the epoch rules refuse it.
  const stale = signedUpdate(c.name, 'claimGroup', 'A/claim-again', 'run-A', claimReq);
  refusedAs(await outcome(handle.executeUpdate(claimGroupUpdate, { args: [stale], updateId: 'A/claim-again' })), ERROR_TYPES.StaleEpoch, 'a claim from a past epoch');
  const endA = signedUpdate(c.name, 'endOperation', 'A/end', 'run-A', { group: 'web', workflowId: op, outcome: 'running' as const, detail: 'test: started' });
  await handle.executeUpdate(endOperationUpdate, { args: [endA], updateId: 'A/end' });

  // The next operation of the group, by a later run (B) of the same workflow ID.
  await handle.executeUpdate(beginOperationUpdate, { args: [{ group: 'web', workflowId: op, kind: 'operator' }] });
  const blockB = signedUpdate(c.name, 'operationBlocked', 'B/blocked', 'run-B', { group: 'web', workflowId: op, node: 'n1', epoch: claimed.epoch, detail: 'test: a failed stop', waitingFor: ['confirm-down' as const] });
  await handle.executeUpdate(operationBlockedUpdate, { args: [blockB], updateId: 'B/blocked' });
  assert.equal(await outcome(handle.executeUpdate(endOperationUpdate, { args: [endA], updateId: 'A/end' })), 'accepted: null', "A's end again under its own ID: the first answer");
  refusedAs(await outcome(handle.executeUpdate(endOperationUpdate, { args: [endA], updateId: 'replay/end' })), ERROR_TYPES.Unauthenticated, "A's recorded end under another update ID");
  // An end run A signed and never sent (or one the record no longer holds): not B's operation.
  const laterA = signedUpdate(c.name, 'endOperation', 'A/end-later', 'run-A', { group: 'web', workflowId: op, outcome: 'down' as const, detail: 'test: run A again' });
  refusedAs(await outcome(handle.executeUpdate(endOperationUpdate, { args: [laterA], updateId: 'A/end-later' })), ERROR_TYPES.OperationInProgress, "run A's end while run B holds the group");
  const g = await c.web();
  assert.deepEqual({ owner: g.owner, epoch: g.epoch, operation: g.operation?.workflowId, runId: g.operation?.runId, blocked: g.operation?.blocked?.node }, { owner: 'n1', epoch: claimed.epoch, operation: op, runId: 'run-B', blocked: 'n1' }, 'no replay changed anything');

  const endB = signedUpdate(c.name, 'endOperation', 'B/end', 'run-B', { group: 'web', workflowId: op, outcome: 'running' as const, detail: 'test over' });
  await handle.executeUpdate(endOperationUpdate, { args: [endB], updateId: 'B/end' });
  await c.settled('n1');
});

test('a confirm-down without the cluster secret is refused (Unauthenticated); signed by the operator it unblocks, and its replay changes nothing', { timeout: 180_000 }, async () => {
  const { c, handle } = await theCluster();
  const before = await c.settled('n1');
  const op = controllerWorkflowId(c.name);
  await handle.executeUpdate(beginOperationUpdate, { args: [{ group: 'web', workflowId: op, kind: 'operator' }] });
  const block = signedUpdate(c.name, 'operationBlocked', 'C/blocked', 'run-C', { group: 'web', workflowId: op, node: 'n1', epoch: before.epoch, detail: 'test: a failed stop', waitingFor: ['confirm-down' as const] });
  await handle.executeUpdate(operationBlockedUpdate, { args: [block], updateId: 'C/blocked' });

  const forged = await outcome(handle.executeUpdate(confirmDownUpdate, { args: [{ node: 'n1', operator: 'intruder', detail: 'forged' }] }));
  refusedAs(forged, ERROR_TYPES.Unauthenticated, 'an unsigned confirm-down');
  const unconfirmed = await handle.query(ownershipQuery);
  assert.equal(unconfirmed.groups.web!.operation?.blocked?.confirmed, undefined, 'the block is not confirmed');
  assert.equal((unconfirmed.confirmedDown ?? []).length, 0, 'no confirm-down recorded');

  const signed = signedUpdate(c.name, 'confirmDown', 'cd-1', undefined, { node: 'n1', operator: 'test@here', detail: 'powered off' });
  const result = await handle.executeUpdate(confirmDownUpdate, { args: [signed], updateId: 'cd-1' });
  assert.deepEqual(result.unblocked, [{ group: 'web', workflowId: op, epoch: before.epoch }], 'the signed confirm-down unblocks the operation');
  assert.equal(await outcome(handle.executeUpdate(confirmDownUpdate, { args: [signed], updateId: 'cd-1' })), `accepted: ${JSON.stringify(result)}`, 'its repeat gets the first answer');
  refusedAs(await outcome(handle.executeUpdate(confirmDownUpdate, { args: [signed], updateId: 'cd-replayed' })), ERROR_TYPES.Unauthenticated, 'the signed confirm-down under another update ID');
  assert.equal((await handle.query(ownershipQuery)).confirmedDown?.length, 1, 'recorded once');

  const end = signedUpdate(c.name, 'endOperation', 'C/end', 'run-C', { group: 'web', workflowId: op, outcome: 'unchanged' as const, detail: 'test over' });
  await handle.executeUpdate(endOperationUpdate, { args: [end], updateId: 'C/end' });
  await c.settled('n1');

  // The controller's history (refused and applied signed updates, their checks, the patch marker) replays.
  await recordHistory(controllerWorkflowId(c.name), 'controller-authenticated-updates');
  const { events } = await handle.fetchHistory();
  const patches = (events ?? []).filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch')
    .map((e) => (JSON.parse(Buffer.from(e.markerRecordedEventAttributes!.details?.['patch-data']?.payloads?.[0]?.data ?? []).toString() || '{}') as { id?: string }).id);
  assert.ok(patches.includes(PATCH_AUTHENTICATED_UPDATES), `the history has the marker of ${PATCH_AUTHENTICATED_UPDATES}: ${JSON.stringify(patches)}`);
  await Worker.runReplayHistory({ workflowsPath: workflowsPath() }, (await handle.fetchHistory()), 'authenticated-updates');
});
