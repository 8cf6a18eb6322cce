/**
 * Issue 9 item 9 (security), lease renewals: an owner renews its lease by asking the controller's
 * `ownership` query, which whoever polls the cluster queue `haoscar.<cluster>` answers. A process
 * with Temporal access but without the cluster secret polled that queue and answered "n1 still owns
 * web at epoch e" after the controller had moved web to n2 (epoch e+1): n1's lease was renewed and
 * it served web beside n2 (two owners). Renewal answers are now signed by the workflow worker's
 * payload codec (src/auth/ownership-answer.ts), bound to the agent's fresh nonce and the running
 * controller run; an answer without a valid MAC counts as no answer, and n1 stops web within ttl.
 *
 * Against a real Temporal dev server: the real controller and failover workflows, two nodes in this
 * process (test/support/workflow-cluster.ts), n1's real LeaseKeeper and ControllerLink (with the
 * cluster's key, as the agent has it), and a forger written against Temporal's gRPC API that polls
 * the cluster queue and answers queries (no SDK worker: it replays nothing, it just lies). Seen
 * failing before the fix: n1 still served web at epoch e, 4 ttl after the forger took over.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setMaxListeners } from 'node:events';
import { pino } from 'pino';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { testLink } from '../support/cluster-key.js';
import { LeaseKeeper } from '../../src/agent/lease.js';
import { clusterTaskQueue, controllerWorkflowId, type Ownership } from '../../workflows/shared.js';
import { leaseMemoGroupKey } from '../../workflows/lease-memo.js';

const TTL_MS = 1500;
/** temporal.api.enums.v1: TASK_QUEUE_KIND_NORMAL, QUERY_RESULT_TYPE_ANSWERED. */
const TASK_QUEUE_KIND_NORMAL = 1;
const QUERY_RESULT_TYPE_ANSWERED = 1;
/** temporal.api.enums.v1.CommandType: a memo upsert. */
const COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES = 16;

let cluster: WorkflowCluster | undefined;
const stops: (() => Promise<void>)[] = [];
after(async () => {
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
});

function capture() {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, new Writable({ write(chunk, _enc, cb) { lines.push(String(chunk)); cb(); } }));
  return { logger, lines };
}

/**
 * Someone with Temporal access and no secret: polls the cluster queue and answers every
 * `ownership` query with `forged`, echoing a renewal's nonce and run ID (in the envelope the real
 * controller uses, with a made-up MAC); completes any other workflow task with no commands.
 */
function startForger(client: Client, cluster: string, forged: Ownership, republish: Record<string, Payload>): { answered: () => number; republished: () => number; stop: () => Promise<void> } {
  const abort = new AbortController();
  // Each poll listens on it for as long as it waits.
  setMaxListeners(100, abort.signal);
  const namespace = client.options.namespace;
  let answered = 0;
  let republished = 0;
  const answer = (args: Payload[] | null | undefined, runId: string): Payload => {
    const nonce = args?.[0] ? defaultPayloadConverter.fromPayload<unknown>(args[0]) : undefined;
    if (typeof nonce !== 'string') return defaultPayloadConverter.toPayload(forged);
    const envelope = defaultPayloadConverter.toPayload({ kind: 'ownership-v1', cluster, workflowId: controllerWorkflowId(cluster), runId, nonce, ownership: forged });
    return { ...envelope, metadata: { ...envelope.metadata, 'haoscar-answer': Buffer.from('ownership-v1'), 'haoscar-mac': Buffer.from('A'.repeat(43)) } };
  };
  const loop = (async () => {
    while (!abort.signal.aborted) {
      const task = await client
        .withAbortSignal(abort.signal, () => client.withDeadline(Date.now() + 20_000, () => client.workflowService.pollWorkflowTaskQueue({ namespace, identity: 'forger', taskQueue: { name: clusterTaskQueue(cluster), kind: TASK_QUEUE_KIND_NORMAL } })))
        .catch(() => undefined);
      if (!task?.taskToken?.length) continue;
      const runId = task.workflowExecution?.runId ?? '';
      if (task.query) {
        answered += 1;
        await client.workflowService.respondQueryTaskCompleted({ namespace, taskToken: task.taskToken, completedType: QUERY_RESULT_TYPE_ANSWERED, queryResult: { payloads: [answer(task.query.queryArgs?.payloads, runId)] } }).catch(() => undefined);
        continue;
      }
      const queryResults: Record<string, { resultType: number; answer: { payloads: Payload[] } }> = {};
      for (const [id, q] of Object.entries(task.queries ?? {})) {
        answered += 1;
        queryResults[id] = { resultType: QUERY_RESULT_TYPE_ANSWERED, answer: { payloads: [answer(q.queryArgs?.payloads, runId)] } };
      }
      // And the controller's lease memo entries as they were before the move (signed by the real
      // worker then), upserted again: the memo says n1 owns web at epoch e once more.
      const commands = [{ commandType: COMMAND_TYPE_MODIFY_WORKFLOW_PROPERTIES, modifyWorkflowPropertiesCommandAttributes: { upsertedMemo: { fields: republish } } }];
      await client.workflowService.respondWorkflowTaskCompleted({ namespace, identity: 'forger', taskToken: task.taskToken, commands, queryResults }).then(() => (republished += 1), () => undefined);
    }
  })();
  return {
    answered: () => answered,
    republished: () => republished,
    stop: async () => {
      abort.abort();
      await loop;
    },
  };
}

test('a process without the cluster secret polling the cluster queue cannot renew an old owner\'s lease: it stops within ttl', async (t) => {
  const c = await WorkflowCluster.start('rogue-lease', twoNodeWeb({ lease: `{ ttl: ${TTL_MS}ms, margin: 300ms }`, verifyTimeout: '2s' }));
  cluster = c;
  const n1 = c.node('n1');
  const before = await c.web();
  assert.equal(before.owner, 'n1');
  const e = before.epoch;
  const truthBefore = await c.ownership();
  // The controller's lease memo as the real worker signed it, before the move.
  const memoBefore = (await c.client.workflow.getHandle(controllerWorkflowId(c.name)).describe()).raw.workflowExecutionInfo?.memo?.fields as Record<string, Payload>;
  assert.ok(memoBefore[leaseMemoGroupKey('web')], 'the controller publishes its lease memo');

  // n1's agent renews through the real workflow worker (its codec signs the answers): kept.
  const first = capture();
  const link1 = testLink(c.client, c.name, first.logger);
  const keeper1 = new LeaseKeeper({ node: 'n1', ttlMs: TTL_MS, groups: n1.groups, queryOwnership: (ms) => link1.ownership(ms), logger: first.logger });
  keeper1.granted('web', e);
  keeper1.start();
  stops.push(async () => keeper1.stop());
  const keptUntil = Date.now() + 3 * TTL_MS;
  await waitFor('three ttl of renewals', () => Date.now() > keptUntil || n1.groups.holding('web') === undefined, 30_000, 50);
  assert.deepEqual(n1.groups.holding('web'), { epoch: e, state: 'running' }, `renewed by the legitimate worker's signed answers; log: ${first.lines.filter((l) => l.includes('"level":50')).join(' | ')}`);
  assert.ok(!first.lines.some((l) => l.includes('IGNORED')), 'no legitimate answer was ignored');
  keeper1.stop();

  // The controller moves web to n2 while n1's agent is away (its node queue silent, what it ran
  // still held, as a frozen agent would): epoch e+1 on n2.
  await c.kill('n1');
  await c.report('n1', 'suspect', 'n2', 'every link silent');
  const moved = await c.settled('n2');
  assert.ok(moved.epoch > e);
  assert.deepEqual(n1.groups.holding('web'), { epoch: e, state: 'running' }, 'n1 still holds what it ran');

  // The legitimate workflow worker stops; the forger takes the cluster queue and says n1 still owns web at e.
  await c.stopWorkflowWorker();
  const forger = startForger(c.client, c.name, truthBefore, memoBefore);
  stops.push(forger.stop);
  await waitFor('the forger answers the controller\'s queries', async () => (await c.ownership().catch(() => undefined))?.groups.web?.owner === 'n1', 60_000, 200);
  // A report gives the forger a workflow task: it re-publishes the old memo entries.
  await c.report('n2', 'up', 'n2', 'a report the forger takes');
  await waitFor('the memo says n1 owns web again', async () => {
    const fields = (await c.client.workflow.getHandle(controllerWorkflowId(c.name)).describe()).raw.workflowExecutionInfo?.memo?.fields as Record<string, Payload> | undefined;
    return forger.republished() > 0 && Buffer.from(fields?.[leaseMemoGroupKey('web')]?.data ?? []).equals(Buffer.from(memoBefore[leaseMemoGroupKey('web')]!.data!));
  }, 60_000, 100);

  // n1's agent comes back to its lease: it asks for renewals, the forger answers them.
  const second = capture();
  const link2 = testLink(c.client, c.name, second.logger);
  const keeper2 = new LeaseKeeper({ node: 'n1', ttlMs: TTL_MS, groups: n1.groups, queryOwnership: (ms) => link2.ownership(ms), logger: second.logger });
  const answeredBefore = forger.answered();
  const t0 = Date.now();
  keeper2.granted('web', e);
  keeper2.start();
  stops.push(async () => keeper2.stop());
  const window = 4 * TTL_MS;
  await waitFor('n1 stops web, or 4 ttl pass', () => n1.groups.holding('web') === undefined || Date.now() - t0 > window, 60_000, 20);
  const stoppedAfterMs = Date.now() - t0;
  const renewalsForged = forger.answered() - answeredBefore;
  t.diagnostic(`forged renewal answers: ${renewalsForged}, memo re-publications: ${forger.republished()}; n1 ${n1.groups.holding('web') ? 'still serves web' : `stopped web after ${stoppedAfterMs} ms`}`);
  assert.ok(renewalsForged > 0, 'the forger answered n1\'s renewals');
  assert.equal(n1.groups.holding('web'), undefined, `n1 still serves web at epoch ${e} ${window} ms after the forger took over, while n2 owns it at epoch ${moved.epoch}: a forged renewal was accepted`);
  assert.ok(stoppedAfterMs < TTL_MS + 2500, `stopped within ttl (took ${stoppedAfterMs} ms)`);
  assert.ok(second.lines.some((l) => l.includes('IGNORED an ownership answer')), 'the ignored answer is logged');
  assert.ok(second.lines.some((l) => l.includes('lost the lease')), 'n1 says why it stopped');
  assert.ok(second.lines.some((l) => l.includes('its lease memo cannot confirm') && l.includes('an older entry re-published')), 'the re-published memo entry is refused, and said so');
});
