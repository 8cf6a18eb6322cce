/**
 * The data policy of unplanned failovers (issue 9 item 8, docs/failover.md#the-data-policy),
 * against a real Temporal dev server, the real controller and failover workflows and two nodes in
 * this process (test/support/workflow-cluster.ts): the owner n1 dies while its only standby n2 is
 * 8 of n1's announced change generations behind, with failover.maxSyncLag 1. n2's answer to
 * `syncState` is scripted (what its FileSync would say: it last pulled generation 2 of n1's 10).
 *
 * Before the policy, n2 was started at once and n1's writes since generation 2 were lost (and
 * deleted from n1 by its first pull when it came back). Now the group is left down, saying why;
 * the controller's retries refuse n2 again; `haoscar failover web --accept-data-loss` (an
 * operator failover with acceptDataLoss) starts it on n2.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { closeTemporal } from '../support/temporal.js';
import { Context } from '@temporalio/activity';
import { signedSyncState, twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { clusterTaskQueue, ERROR_TYPES, failoverWorkflowId, type CandidateSyncState, type FailoverResult } from '../../workflows/shared.js';
import type { FailoverInput } from '../../workflows/inputs.js';

/** The two-node web group with a file set and the data policy under test. */
const YAML = `${twoNodeWeb({ lease: '{ ttl: 1000ms, margin: 50ms }', verifyTimeout: '500ms' })}    fileSets:
      - { name: www, paths: [/srv/haoscar-test-www] }
    failover: { maxSyncLag: 1 }
`;

const clusters: WorkflowCluster[] = [];
/** The cluster of the node activity running now (its queue is haoscar.<cluster>.node.<node>). */
const clusterOf = () => /^haoscar\.(.+)\.node\.[^.]+$/.exec(Context.current().info.taskQueue)![1]!;
after(async () => {
  for (const c of clusters) await c.close().catch(() => undefined);
  await closeTemporal();
});

test('the only standby is further behind than maxSyncLag: not promoted (the group is down, saying why); promoted with --accept-data-loss', async () => {
  /** n1's epoch while it owned the group (the series n2 followed). */
  let ownerEpoch = -1;
  const asked: string[] = [];
  const c = await WorkflowCluster.start('sync-lag', YAML, {
    extra: (node) => ({
      syncState: (req: { group: string; nonce?: string }): Promise<CandidateSyncState> => {
        asked.push(node.name);
        return Promise.resolve(signedSyncState(clusterOf(), node.name, { node: node.name, group: req.group, sets: [{ set: 'www', record: { owner: 'n1', epoch: ownerEpoch, announced: 10, pulled: 2 } }] }, req.nonce));
      },
    }),
  });
  clusters.push(c);
  const before = await c.settled('n1');
  ownerEpoch = before.epoch;

  await c.kill('n1');
  await c.report('n1', 'suspect', 'n2', 'every link silent (n1 died)');
  // The node-lost failover ends: down, not moved.
  const down = await waitFor('web down', async () => {
    const g = await c.web();
    return g.state === 'down' && g.operation === undefined ? g : undefined;
  }, 60_000, 50);
  assert.equal(down.owner, null);
  assert.equal(c.node('n2').startOrders.length, 0, 'n2 was not ordered to start anything');
  assert.ok(asked.includes('n2'), 'n2 was asked for its sync state');
  // The latest failover run (the node-lost one, or a placement retry that refused n2 again).
  const failure = await c.failoverResult().then((r) => ({ result: r }), (err: unknown) => ({ err }));
  assert.ok('err' in failure && failure.err instanceof WorkflowFailedError && failure.err.cause instanceof ApplicationFailure, `the failover failed: ${JSON.stringify(failure)}`);
  const cause = failure.err.cause;
  assert.equal(cause.type, ERROR_TYPES.StandbyBehind);
  assert.match(cause.message, /n2 is 8 generation\(s\) behind \(more than failover\.maxSyncLag 1 of group 'web': www: 8 behind n1 \(announced generation 10, pulled 2\)\)/);
  assert.match(cause.message, /--accept-data-loss/);

  // The operator accepts the loss (what `haoscar failover web --accept-data-loss` starts). The
  // controller may be retrying the placement (refused again) under the same workflow ID.
  const handle = await waitFor('the operator failover started', async () => {
    try {
      return await c.client.workflow.start('failover', {
        workflowId: failoverWorkflowId(c.name, 'web'),
        taskQueue: clusterTaskQueue(c.name),
        args: [{ cluster: c.name, group: 'web', kind: 'operator', reason: 'test: accept the loss', acceptDataLoss: true } satisfies FailoverInput],
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return undefined;
      throw err;
    }
  }, 60_000, 100);
  const moved = (await handle.result()) as FailoverResult;
  assert.equal(moved.outcome, 'moved');
  assert.equal(moved.to, 'n2');
  assert.ok(c.node('n2').startOrders.length > 0);
  await c.settled('n2');
});
