/**
 * The resync workflow's checks before the pull (issue 14 item 4): the group from the layout,
 * its owner from the controller and the signed resyncGroup order come from one round of local
 * activities (describeCluster and resyncOrder, side by side), not two (then signOrder): a
 * round is a workflow activation and a local activity dispatch on the worker, paid by every
 * resync before its data moves. The order the node gets is the same one, and its MAC verifies
 * as the node's agent checks it; every refusal still comes before any order is sent.
 * On a real Temporal dev server (test/support/workflow-cluster.ts); `resyncGroup` is scripted.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { closeTemporal } from '../support/temporal.js';
import { recordHistory } from '../support/record.js';
import { TEST_KEY } from '../support/cluster-key.js';
import { WorkflowCluster } from '../support/workflow-cluster.js';
import { createNodeAuth } from '../../activities/auth.js';
import { silentLogger } from '../../src/log.js';
import { clusterTaskQueue, ERROR_TYPES, resyncWorkflowId, type ResyncResult } from '../../workflows/shared.js';

const BODY = `
lease: { ttl: 2s, margin: 50ms }
failover: { verifyTimeout: 1500ms }
defaults:
  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }
nodes:
  - { name: n1, addresses: [127.0.0.1], priority: 10 }
  - { name: n2, addresses: [127.0.0.2] }
  - { name: n3, addresses: [127.0.0.3] }
groups:
  - name: web
    nodes: [n1, n2]
    resources:
      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`;

let c: WorkflowCluster;
/** The orders the nodes' scripted resyncGroup received, and whether their MAC verified. */
const orders: { node: string; order: Record<string, unknown>; verified: string }[] = [];

before(async () => {
  c = await WorkflowCluster.start('resyncchecks', BODY, {
    extra: (node) => ({
      async resyncGroup(req: { group: string; source: string; epoch: number; mac?: string }): Promise<ResyncResult> {
        // As the node's agent checks it (activities/sync.ts): bound to this node, action and workflow run.
        let verified = 'yes';
        try {
          createNodeAuth({ cluster: c.name, node: node.name, key: TEST_KEY, logger: silentLogger }).checkOrder(req);
        } catch (err) {
          verified = String(err);
        }
        orders.push({ node: node.name, order: { ...req }, verified });
        return { group: req.group, node: node.name, source: req.source, steps: [], bytes: 0, durationMs: 1, attempts: 1 };
      },
    }),
  });
});

after(async () => {
  await c?.close();
  await closeTemporal();
});

function start(input: Record<string, unknown>, id: string): Promise<WorkflowHandle> {
  return c.client.workflow.start('resync', { workflowId: id, taskQueue: clusterTaskQueue(c.name), args: [{ cluster: c.name, group: 'web', reason: 'test', ...input }] });
}

type Events = NonNullable<Awaited<ReturnType<WorkflowHandle['fetchHistory']>>['events']>;

/** The local activities its history records (their markers' activity types), in order. */
function localActivities(events: Events): string[] {
  return events.flatMap((e) => {
    const m = e.markerRecordedEventAttributes;
    if (m?.markerName !== 'core_local_activity') return [];
    const data = m.details?.data?.payloads?.[0]?.data;
    return data ? [String((JSON.parse(Buffer.from(data).toString()) as { activity_type?: string }).activity_type)] : [];
  });
}

test('a resync: the group, its owner and the signed order in one round of local activities; the node gets the order it always got, and it verifies', async () => {
  const owner = (await c.settled('n1')).owner!;
  const { epoch } = await c.web();
  const handle = await start({ node: 'n2' }, resyncWorkflowId(c.name, 'web', 'n2'));
  const result = (await handle.result()) as ResyncResult;
  assert.equal(result.source, owner);
  assert.equal(orders.length, 1, JSON.stringify(orders));
  assert.equal(orders[0]!.node, 'n2');
  assert.equal(orders[0]!.verified, 'yes');
  const { mac, ...order } = orders[0]!.order;
  assert.deepEqual(order, { group: 'web', source: owner, epoch });
  assert.equal(typeof mac, 'string');

  const events = (await handle.fetchHistory()).events ?? [];
  assert.deepEqual(localActivities(events).sort(), ['describeCluster', 'resyncOrder'], 'the checks and the signature in one round: no signOrder after them');
  // One workflow task before the pull is scheduled, one after it: none added.
  const scheduled = events.findIndex((e) => e.activityTaskScheduledEventAttributes);
  assert.equal(events.slice(0, scheduled).filter((e) => e.workflowTaskStartedEventAttributes).length, 1);
  assert.equal(events.filter((e) => e.workflowTaskStartedEventAttributes).length, 2);
  await recordHistory(resyncWorkflowId(c.name, 'web', 'n2'), 'resync-one-round');
});

test('the refusals come before any order: toward the owner, a node that may not run the group, an unknown group', async () => {
  const owner = (await c.web()).owner!;
  const before = orders.length;
  for (const [input, type, pattern] of [
    [{ node: owner }, ERROR_TYPES.NodeOwnsGroup, /owns group 'web'.*never toward it/],
    [{ node: 'n3' }, ERROR_TYPES.NodeNotInGroup, /'n3' may not run group 'web'/],
    [{ node: 'n2', group: 'nope' }, ERROR_TYPES.UnknownGroup, /unknown group 'nope'|knows no group 'nope'/],
  ] as const) {
    const err = await (await start(input, `${c.name}-refused-${String(input.node)}-${'group' in input ? input.group : 'web'}`)).result().then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError, `refused: ${JSON.stringify(input)}`);
    assert.equal((err.cause as { type?: string } | undefined)?.type, type, `${JSON.stringify(input)}: ${err.cause?.message}`);
    assert.match(err.cause?.message ?? '', pattern);
  }
  assert.equal(orders.length, before, 'no node was given an order');
});
