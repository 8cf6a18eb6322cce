/**
 * The postmortem timeline (src/history): what recorded histories (test/histories, real runs)
 * tell, a synthetic history for what only new runs record (HaTrigger/HaOutcome upserts,
 * summaries), the window and group filters, the renderers, and the visibility query.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { defaultPayloadConverter } from '@temporalio/common';
import { buildTimeline, operationStory, type FetchedRun } from '../../src/history/timeline.js';
import { renderMarkdown, renderOperation, renderText } from '../../src/history/render.js';
import { historyQuery } from '../../src/history/fetch.js';

const dir = fileURLToPath(new URL('../histories/', import.meta.url));
async function recorded(name: string, workflowId = `wf/${name}`): Promise<FetchedRun> {
  return { workflowId, runId: `run-${name}`, history: historyFromJSON(JSON.parse(await readFile(`${dir}${name}.json`, 'utf8'))) };
}

const cases: { file: string; want: Record<string, unknown>; phases?: string[] }[] = [
  { file: 'failover-authenticated', want: { operation: 'failover', trigger: 'node-lost', outcome: 'moved', from: 'n1', to: 'n2', epoch: 2, status: 'completed', falseAlarm: false, group: 'web' }, phases: ['verify', 'lease wait', 'start', 'total'] },
  { file: 'failover-verify-retried-task', want: { operation: 'failover', outcome: 'false-alarm', falseAlarm: true, from: 'n1', to: 'n1', epoch: 1 }, phases: ['verify', 'total'] },
  { file: 'failover-failed-stop', want: { trigger: 'operator', outcome: 'moved', from: 'n1', to: 'n2' }, phases: ['stop', 'blocked', 'start', 'total'] },
  { file: 'failover-cancelled', want: { status: 'cancelled', outcome: 'cancelled' } },
  { file: 'failover-switchover', want: { trigger: 'switchover', outcome: 'already-there', parent: 'switchover/fo-mx0kiywp-9xr7/web' } },
  { file: 'failover-v3', want: { status: 'failed', outcome: 'unchanged', failureType: 'NoNodeCouldRunGroup', trigger: 'node-lost' } },
  { file: 'heal-service-healed', want: { operation: 'heal', outcome: 'healed', group: 'a', resource: 'svc', node: 'n1', status: 'completed' }, phases: ['restart', 'wait healthy', 'back-off', 'watch', 'total'] },
  { file: 'heal-service-gave-up', want: { operation: 'heal', outcome: 'gave-up', failureType: 'HealGaveUp', status: 'failed' }, phases: ['restart', 'wait healthy', 'back-off', 'total'] },
];

for (const c of cases) {
  test(`operationStory: ${c.file}`, async () => {
    const s = operationStory(await recorded(c.file));
    for (const [k, v] of Object.entries(c.want)) assert.deepEqual(s[k as keyof typeof s], v, `${k} of ${c.file}`);
    if (c.phases) assert.deepEqual(s.phases.map((p) => p.name), c.phases);
    for (const p of s.phases) assert.ok(p.ms >= 0, `${p.name} ${p.ms}`);
    assert.ok(s.durationMs !== undefined && s.durationMs >= 0);
  });
}

test('operationStory: a failover\'s steps name their nodes and durations; the pause its answer beat is unfinished', async () => {
  const s = operationStory(await recorded('failover-authenticated'));
  const ping = s.steps.find((st) => st.name === 'ping');
  assert.equal(ping?.node, 'n1');
  assert.equal(ping?.outcome, 'completed');
  assert.equal(s.steps.find((st) => st.name === 'pause' && st.kind === 'activity')?.outcome, 'unfinished');
  assert.equal(s.steps.find((st) => st.name === 'startResource')?.node, 'n2');
  const lease = s.steps.find((st) => st.name === 'pause' && st.kind === 'local-activity');
  assert.ok(lease?.durationMs !== undefined && lease.durationMs > 1000, `the lease wait ${lease?.durationMs}`);
});

test('operationStory: the heal\'s failed attempts are listed with their details', async () => {
  const s = operationStory(await recorded('heal-service-gave-up'));
  assert.equal(s.attempts.length, 2);
  assert.ok(s.attempts.every((a) => a.outcome === 'failed' && /did not pass its process check/.test(a.detail)));
});

test('operationStory: a history that does not begin with its start is refused', () => {
  assert.throws(() => operationStory({ workflowId: 'x', runId: 'r', history: { events: [] } }), /does not begin with the workflow's start/);
});

// ------------------------------------------------------------------ what only new runs record

const p = (v: unknown) => defaultPayloadConverter.toPayload(v);
const ts = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });
const T0 = Date.UTC(2026, 11, 7, 1, 0, 0);

/** A failover that ended as a false alarm, as a run with PATCH_STORY records it. */
function syntheticFalseAlarm(): FetchedRun {
  return {
    workflowId: 'failover/lab/web',
    runId: 'run-1',
    // Plain numbers where the proto types say Long: what timestampMs() reads either way.
    history: {
      events: [
        {
          eventId: 1, eventTime: ts(T0), userMetadata: { summary: p('failover of web (node-lost)') },
          workflowExecutionStartedEventAttributes: {
            workflowType: { name: 'failover' },
            input: { payloads: [p({ cluster: 'lab', group: 'web', kind: 'node-lost', reason: 'node n1 suspect (n2: heartbeats lost)' })] },
            searchAttributes: { indexedFields: { HaCluster: p('lab'), HaGroup: p('web') } },
          },
        },
        { eventId: 5, eventTime: ts(T0 + 10), upsertWorkflowSearchAttributesEventAttributes: { searchAttributes: { indexedFields: { HaTrigger: p('node-lost') } } } },
        { eventId: 7, eventTime: ts(T0 + 20), userMetadata: { summary: p('ping n1 through its task queue') }, activityTaskScheduledEventAttributes: { activityType: { name: 'ping' }, taskQueue: { name: 'haoscar.lab.node.n1' } } },
        { eventId: 9, eventTime: ts(T0 + 320), activityTaskCompletedEventAttributes: { scheduledEventId: 7 } },
        { eventId: 12, eventTime: ts(T0 + 400), upsertWorkflowSearchAttributesEventAttributes: { searchAttributes: { indexedFields: { HaOutcome: p('false-alarm') } } } },
        { eventId: 14, eventTime: ts(T0 + 450), workflowExecutionCompletedEventAttributes: { result: { payloads: [p({ outcome: 'false-alarm', group: 'web', from: 'n1', to: 'n1', epoch: 3, phases: { verifyMs: 300, totalMs: 440 }, attempts: [] })] } } },
      ],
    } as unknown as FetchedRun['history'],
  };
}

test('operationStory: HaTrigger and HaOutcome upserts and the summaries of a new run', () => {
  const s = operationStory(syntheticFalseAlarm());
  assert.equal(s.summary, 'failover of web (node-lost)');
  assert.equal(s.trigger, 'node-lost');
  assert.equal(s.outcome, 'false-alarm');
  assert.equal(s.falseAlarm, true);
  assert.deepEqual(s.steps.map((st) => ({ name: st.name, summary: st.summary, node: st.node, ms: st.durationMs })), [{ name: 'ping', summary: 'ping n1 through its task queue', node: 'n1', ms: 300 }]);
  assert.deepEqual(s.phases, [{ name: 'verify', ms: 300 }, { name: 'total', ms: 440 }]);
});

test('buildTimeline: the window, the group filter, the counts and the node edges', async () => {
  const runs = [syntheticFalseAlarm(), await recorded('failover-authenticated'), await recorded('heal-service-healed'), await recorded('controller', 'controller/lab')];
  const all = buildTimeline(runs, { since: 0, until: T0 + 60_000, cluster: 'lab' });
  assert.equal(all.counts.operations, 3);
  assert.equal(all.counts.falseAlarms, 1);
  assert.deepEqual(all.counts.byOutcome, { 'false-alarm': 1, moved: 1, healed: 1 });
  assert.deepEqual(all.operations.map((s) => s.startedAt), [...all.operations.map((s) => s.startedAt)].sort((a, b) => a - b), 'oldest first');
  assert.ok(all.nodeEvents.length >= 5, 'the controller\'s nodeEdge signals');
  assert.ok(all.nodeEvents.some((e) => e.node === 'n2' && e.to === 'suspect'));
  const onlyWeb = buildTimeline(runs, { since: 0, until: T0 + 60_000, group: 'a' });
  assert.deepEqual(onlyWeb.operations.map((s) => s.operation).sort(), ['controller', 'heal']);
  const recent = buildTimeline(runs, { since: T0 - 1000, until: T0 + 60_000 });
  // The recorded controller run never closed: it is still running, so it overlaps every window.
  assert.deepEqual(recent.operations.map((s) => s.workflowId), ['controller/lab', 'failover/lab/web']);
  assert.equal(recent.nodeEvents.length, 0);
});

test('renderers: text, markdown and one operation say the same story, printable', async () => {
  const fa = syntheticFalseAlarm();
  const start = fa.history.events![0]!.workflowExecutionStartedEventAttributes!;
  start.input = { payloads: [p({ cluster: 'lab', group: 'web', kind: 'node-lost', reason: 'evil \u001b[2J detail' })] };
  const t = buildTimeline([fa, await recorded('heal-service-gave-up')], { since: 0, until: T0 + 60_000, cluster: 'lab' });
  const text = renderText(t);
  assert.match(text, /failover web {2}\(node-lost\) {2}n1 → n1, epoch 3 {2}FALSE ALARM/);
  assert.match(text, /phases: verify 300 ms · total 440 ms/);
  assert.match(text, /heal b\/svc on n1 .* gave-up/);
  assert.ok(!text.includes('\u001b'), 'control characters are escaped');
  const md = renderMarkdown(t);
  assert.match(md, /^# HA-OSCAR history: cluster lab$/m);
  assert.match(md, /\| failover web \| node-lost \| n1 → n1, epoch 3 \| \*\*false alarm\*\* \| 450 ms \| verify 300 ms \|/);
  assert.match(md, /2 operation\(s\): (1 gave-up, 1 false-alarm|1 false-alarm, 1 gave-up); 1 false alarm\(s\)/);
  const one = renderOperation(operationStory(fa), 'text');
  assert.match(one, /ping n1 through its task queue \(300 ms\)/);
  assert.match(renderOperation(operationStory(fa), 'markdown'), /^## Steps$/m);
  assert.match(renderText(buildTimeline([], { since: 0, until: 1 })), /nothing happened in this window/);
});

test('historyQuery: cluster, window (started, closed or still running) and group (with the controller)', () => {
  assert.equal(historyQuery('lab', Date.UTC(2026, 11, 6)), 'HaCluster = "lab" AND (StartTime >= "2026-12-06T00:00:00.000Z" OR CloseTime >= "2026-12-06T00:00:00.000Z" OR ExecutionStatus = "Running")');
  assert.match(historyQuery('lab', 0, 'web'), / AND \(HaGroup = "web" OR HaOperation = "controller"\)$/);
  assert.match(historyQuery('a"b', 0), /^HaCluster = "a\\"b"/);
});
