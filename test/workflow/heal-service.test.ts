/**
 * healService against a real Temporal dev server, real workers and the real activities; the
 * service itself is scripted (test/support/scripted-service.ts) so outcomes can be pinned.
 */
import { test, after, before } from 'node:test';
import { recordHistory } from '../support/record.js';
import assert from 'node:assert/strict';
import { waitFor as waitUntil } from '../support/wait.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { ServiceRegistry } from '../../src/agent/services.js';
import { createServiceActivities } from '../../activities/service.js';
import { createClusterActivities } from '../../activities/cluster.js';
import { requestHeal, requestHealAndAnswer } from '../../src/agent/heal-trigger.js';
import { clusterTaskQueue, healRequestUpdate, healStatusQuery, healWorkflowId, nodeTaskQueue, resetFailCountUpdate, serviceFailedSignal, ERROR_TYPES } from '../../workflows/shared.js';
import { silentLogger } from '../../src/log.js';
import { ScriptedService } from '../support/scripted-service.js';
import { testAuthActivities } from '../support/cluster-key.js';
import { closeTemporal, testClient, testWorkerConnection, testWorkflowBundle, uniqueName } from '../support/temporal.js';

const waitFor = (condition: () => Promise<boolean>, what: string, timeoutMs = 10_000) => waitUntil(what, condition, timeoutMs, 50);

const cluster = uniqueName('wf');
const config: Config = parseConfig(`
cluster: ${cluster}
defaults:
  healing: { maxRestarts: 2, window: 3s, startTimeout: 400ms, backoff: { initial: 300ms, max: 1s } }
  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }
nodes:
  - { name: n1, addresses: [127.0.0.1] }
  - { name: n2, addresses: [127.0.0.2] }
groups:
${['a', 'd', 'e', 'f', 'h', 'i']
  .map((g) => `  - name: ${g}\n    nodes: [n1]\n    resources:\n      - { type: service, name: svc, driver: process, command: [/bin/true] }`)
  .join('\n')}
  # These count restarts against the budget: a window no slow machine can outlast, so that a
  # restart never leaves it during the test (which would rightly allow one more).
  - name: b
    nodes: [n1]
    healing: { window: 10m, startTimeout: 2s }
    resources:
      - { type: service, name: svc, driver: process, command: [/bin/true] }
  - name: c
    nodes: [n1]
    healing: { window: 10m }
    resources:
      - { type: service, name: svc, driver: process, command: [/bin/true] }
  - name: k
    nodes: [n1]
    healing: { window: 10m }
    resources:
      - { type: service, name: svc, driver: process, command: [/bin/true] }
  - name: j
    nodes: [n1]
    healing: { maxRestarts: 500, window: 10m, backoff: { initial: 0ms, max: 0ms } }
    resources:
      - { type: service, name: svc, driver: process, command: [/bin/true] }
  - name: g
    nodes: [n1, n2]
    resources:
      - { type: service, name: svc, driver: process, command: [/bin/true] }
`);

const services = new Map<string, ScriptedService>();
const registry = new ServiceRegistry();
for (const group of config.groups) {
  const s = new ScriptedService();
  services.set(group.name, s);
  registry.add({ group, spec: group.resources[0]!, driver: s.driver, check: s.check });
}

let client: Client;
let stopWorkers: () => Promise<void> = async () => {};
after(async () => {
  await stopWorkers();
  await closeTemporal();
});
before(async () => {
  client = await testClient();
  const connection = await testWorkerConnection();
  const workers = await Promise.all([
    Worker.create({
      connection,
      taskQueue: clusterTaskQueue(cluster),
      workflowBundle: await testWorkflowBundle(),
      // The heal signs its "gave up" report to the controller with the worker's key (none runs here).
      activities: { ...createClusterActivities({ config }), ...testAuthActivities(config) },
    }),
    Worker.create({
      connection,
      taskQueue: nodeTaskQueue(cluster, 'n1'),
      activities: createServiceActivities({ node: 'n1', services: registry, logger: silentLogger, recoveryPollMs: 20 }),
    }),
  ]);
  const running = workers.map((w) => w.run());
  stopWorkers = async () => {
    workers.forEach((w) => w.shutdown());
    await Promise.all(running);
  };
});

const heal = (group: string, detail = 'test: crashed') =>
  requestHeal(client, { cluster, node: 'n1', group, resource: 'svc', failure: { at: Date.now(), detail, source: 'test' } });

async function failureOf(workflowId: string): Promise<ApplicationFailure> {
  const err = await client.workflow.getHandle(workflowId).result().then(
    () => assert.fail('the workflow should have failed'),
    (e: unknown) => e,
  );
  assert.ok(err instanceof WorkflowFailedError, `expected WorkflowFailedError, got ${String(err)}`);
  assert.ok(err.cause instanceof ApplicationFailure, `expected an ApplicationFailure cause, got ${String(err.cause)}`);
  return err.cause;
}

test('a crashed service is restarted once, then the heal completes after its window', async () => {
  const svc = services.get('a')!;
  svc.crash();
  const { workflowId } = await heal('a');
  const result = await client.workflow.getHandle(workflowId).result();
  assert.equal(result.outcome, 'healed');
  assert.equal(result.restarts, 1);
  assert.equal(svc.starts, 1);
  assert.equal(svc.running, true);
  await recordHistory(workflowId, 'heal-service-healed');
});

test('a service that never becomes healthy while its monitor keeps reporting it: maxRestarts restarts with backoff, then HealGaveUp, no loop', async () => {
  const svc = services.get('b')!;
  svc.behaviour.unhealthyAfterStart = true;
  svc.crash();
  const { workflowId, runId } = await heal('b');
  // Pinned to this run: a report after it has closed fails instead of starting a new heal.
  const run = client.workflow.getHandle(workflowId, runId);
  // Something keeps reporting the failure (and the service keeps failing) for as long as the
  // heal runs: every report is a reason to restart, and the budget must hold all the same.
  let delivered = 0;
  let reporting = true;
  const reporter = (async () => {
    for (let i = 0; reporting; i++) {
      svc.crash();
      await run.signal(serviceFailedSignal, { at: Date.now(), detail: `test: still failing (${i})`, source: 'test' }).then(
        () => delivered++,
        () => (reporting = false), // the run has closed
      );
      await sleep(50);
    }
  })();
  try {
    // A loop fails here: as soon as it restarts once too often, or by never closing.
    await waitFor(async () => {
      assert.ok(svc.starts <= 2, `restarted ${svc.starts} times: more than maxRestarts (2) while failures kept being reported`);
      return (await run.describe()).status.name !== 'RUNNING';
    }, 'the heal closes', 60_000);
  } finally {
    reporting = false;
    await reporter;
  }
  const failure = await failureOf(workflowId);
  assert.equal(failure.type, ERROR_TYPES.HealGaveUp);
  assert.match(failure.message, /b\/svc on node n1 failed again after 2 restart\(s\)/);
  assert.equal(svc.starts, 2, 'exactly maxRestarts restarts');
  // The reports reached the heal while it ran (a test whose reports all came too late would
  // prove nothing), and the run ordered exactly two restarts whatever they said.
  const events = (await run.fetchHistory()).events!;
  const signalled = events.filter((e) => e.workflowExecutionSignaledEventAttributes).length;
  assert.ok(delivered >= 3 && signalled >= delivered, `reports delivered: ${delivered}, signals in the history: ${signalled}`);
  const restarts = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'restartService');
  assert.equal(restarts.length, 2, 'restartService was scheduled exactly maxRestarts times');
  // The second restart waited out the backoff (300 ms) on a durable timer.
  const timers = events.filter((e) => e.timerStartedEventAttributes);
  assert.equal(timers.length, 1);
  assert.equal(Number(timers[0]!.timerStartedEventAttributes!.startToFireTimeout!.seconds ?? 0) * 1000 + (timers[0]!.timerStartedEventAttributes!.startToFireTimeout!.nanos ?? 0) / 1e6, 300);
  await recordHistory(workflowId, 'heal-service-gave-up');
});

test('a new failure while the heal watches counts against the same budget', async () => {
  const svc = services.get('c')!;
  svc.crash();
  const { workflowId } = await heal('c');
  const handle = client.workflow.getHandle(workflowId);
  await waitFor(async () => (await handle.query(healStatusQuery)).phase === 'watching', 'the first restart succeeded');
  svc.crash();
  await handle.signal(serviceFailedSignal, { at: Date.now(), detail: 'test: crashed again', source: 'test' });
  await waitFor(async () => (await handle.query(healStatusQuery)).attempts.length === 2, 'the second restart');
  // A malformed signal (anyone can send JSON from the UI) is ignored, not counted.
  await waitFor(async () => (await handle.query(healStatusQuery)).phase === 'watching', 'the second restart succeeded');
  const before = await handle.query(healStatusQuery);
  const signalsBefore = (await handle.fetchHistory()).events!.filter((e) => e.workflowExecutionSignaledEventAttributes).length;
  await handle.signal('serviceFailed', { at: 'yesterday', detail: 7 });
  // Not a pause: the history shows the signal received and a workflow task completed after
  // it (its handler has run), so the query below sees what the signal did.
  await waitFor(async () => {
    const events = (await handle.fetchHistory()).events!;
    const signals = events.flatMap((e, i) => (e.workflowExecutionSignaledEventAttributes ? [i] : []));
    const last = signals.at(-1);
    return signals.length === signalsBefore + 1 && last !== undefined && events.slice(last).some((e) => e.workflowTaskCompletedEventAttributes);
  }, 'the malformed signal is in the history and a workflow task has handled it');
  const afterMalformed = await handle.query(healStatusQuery);
  assert.equal(afterMalformed.phase, 'watching');
  assert.deepEqual(afterMalformed.failures, before.failures, 'the malformed report was not recorded as a failure');
  assert.equal(afterMalformed.attempts.length, 2, 'nor did it cause a restart');
  assert.equal(svc.starts, 2);
  svc.crash();
  await heal('c', 'test: third crash'); // joins the running heal (signal-with-start)
  const failure = await failureOf(workflowId);
  assert.equal(failure.type, ERROR_TYPES.HealGaveUp);
  assert.equal(svc.starts, 2);
});

test('a start that throws counts as a failed attempt; the error text reaches the history', async () => {
  const svc = services.get('d')!;
  svc.behaviour.startError = 'command not found: /usr/sbin/nosuchd';
  svc.crash();
  const { workflowId } = await heal('d');
  const failure = await failureOf(workflowId);
  assert.equal(failure.type, ERROR_TYPES.HealGaveUp);
  const status = (failure.details?.[0] ?? {}) as { attempts: { detail: string }[] };
  assert.match(status.attempts[0]!.detail, /could not restart d\/svc on node n1: command not found/);
});

test('malformed input from the UI fails at once with every problem named, and touches nothing', async () => {
  const svc = services.get('e')!;
  const inputs: [unknown, RegExp][] = [
    [{ cluster, node: 'n1', group: 'e' }, /resource: required|resource: expected the resource name/],
    [{ cluster, node: 'n1', group: 'e', resource: 'svc', extra: 1 }, /unknown key extra/],
    [{ cluster, node: 'N 1', group: 'e', resource: 'svc' }, /node: expected a node name/],
    ['heal it please', /\(input\)/],
  ];
  for (const [input, expected] of inputs) {
    const workflowId = uniqueName('bad-input');
    await client.workflow.start('healService', { taskQueue: clusterTaskQueue(cluster), workflowId, args: [input] });
    const failure = await failureOf(workflowId);
    assert.equal(failure.type, ERROR_TYPES.InvalidWorkflowInput);
    assert.match(failure.message, expected);
  }
  assert.equal(svc.starts + svc.stops, 0);
});

// Whether the node holds the group now is for the node to say (restartService refuses: see
// test/workflow/failover.test.ts); here no controller runs.
test('an unknown node or resource fails at once with a clear message, and touches nothing', async () => {
  const cases: [Record<string, string>, string, RegExp][] = [
    [{ node: 'n9', group: 'e', resource: 'svc' }, ERROR_TYPES.UnknownNode, /unknown node 'n9' .*known: n1, n2/],
    [{ node: 'n2', group: 'e', resource: 'svc' }, ERROR_TYPES.NodeNotInGroup, /node 'n2' may not run group 'e'/],
    [{ node: 'n1', group: 'e', resource: 'nope' }, ERROR_TYPES.UnknownResource, /unknown resource 'nope' in group 'e'/],
    [{ node: 'n1', group: 'zz', resource: 'svc' }, ERROR_TYPES.UnknownGroup, /unknown group 'zz'/],
  ];
  for (const [fields, type, expected] of cases) {
    const workflowId = healWorkflowId(cluster, fields.group!, fields.resource!) + uniqueName('-x');
    await client.workflow.start('healService', { taskQueue: clusterTaskQueue(cluster), workflowId, args: [{ cluster, ...fields }] });
    const err = await client.workflow.getHandle(workflowId).result().catch((e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError);
    const cause = err.cause?.cause ?? err.cause;
    assert.ok(cause instanceof ApplicationFailure, String(cause));
    assert.equal(cause.type, type);
    assert.match(cause.message, expected);
  }
  assert.equal(services.get('e')!.starts, 0);
});

test('a heal started from the UI without search attributes adds them, so it can be found', async () => {
  const svc = services.get('f')!;
  svc.crash();
  const workflowId = uniqueName('ui-heal');
  await client.workflow.start('healService', { taskQueue: clusterTaskQueue(cluster), workflowId, args: [{ cluster, node: 'n1', group: 'f', resource: 'svc' }] });
  await waitFor(async () => {
    for await (const wf of client.workflow.list({ query: `HaCluster = "${cluster}" AND HaGroup = "f" AND HaResource = "svc"` })) {
      if (wf.workflowId === workflowId) return true;
    }
    return false;
  }, 'the heal is listed by its search attributes', 15_000);
  await client.workflow.getHandle(workflowId).terminate('test done');
});

test('an operator request (update-with-start) is answered with the outcome of the heal', async () => {
  const svc = services.get('h')!;
  svc.crash();
  const req = { cluster, node: 'n1', group: 'h', resource: 'svc', failure: { at: Date.now(), detail: 'operator', source: 'test' } };
  const { workflowId, outcome } = await requestHealAndAnswer(client, req, true);
  assert.deepEqual(outcome, { outcome: 'healthy', attempts: 1, detail: 'scripted: healthy' });
  assert.equal(svc.starts, 1);
  // A malformed request is rejected by the validator and leaves no trace in the history.
  const handle = client.workflow.getHandle(workflowId);
  const eventsBefore = (await handle.fetchHistory()).events!.length;
  await assert.rejects(handle.executeUpdate(healRequestUpdate, { args: [{ at: -1, detail: 'x', source: 'test' }] }), (err: unknown) => {
    assert.ok(err instanceof WorkflowUpdateFailedError);
    assert.match(String(err.cause?.message), /invalid heal request: at:/);
    return true;
  });
  assert.equal((await handle.fetchHistory()).events!.length, eventsBefore);
  assert.equal(svc.starts, 1);
  await handle.terminate('test done');
});

test('an operator request to a heal that gives up is answered gave-up before the heal fails', async () => {
  const svc = services.get('i')!;
  svc.behaviour.unhealthyAfterStart = true;
  svc.crash();
  const req = { cluster, node: 'n1', group: 'i', resource: 'svc', failure: { at: Date.now(), detail: 'operator', source: 'test' } };
  const { workflowId, outcome } = await requestHealAndAnswer(client, req, true);
  assert.equal(outcome?.outcome, 'gave-up');
  assert.equal(outcome?.attempts, 2);
  assert.equal((await failureOf(workflowId)).type, ERROR_TYPES.HealGaveUp);
});

test('after 100 attempts the heal continues as new, keeping its restarts in the window', async () => {
  const svc = services.get('j')!;
  svc.crash();
  const { workflowId, runId: firstRun } = await heal('j');
  const handle = client.workflow.getHandle(workflowId);
  for (let i = 1; i <= 100; i++) {
    await waitFor(async () => svc.starts === i && svc.running, `attempt ${i}`);
    svc.crash();
    await handle.signal(serviceFailedSignal, { at: Date.now(), detail: `crash ${i}`, source: 'test' });
  }
  await waitFor(async () => svc.starts === 101 && svc.running, 'attempt 101, in the new run');
  const first = await client.workflow.getHandle(workflowId, firstRun).describe();
  assert.equal(first.status.name, 'CONTINUED_AS_NEW');
  const latest = await handle.describe();
  assert.notEqual(latest.runId, firstRun);
  const status = await handle.query(healStatusQuery);
  assert.equal(status.restartsInWindow, 101, 'the restarts of the first run still count');
  await handle.terminate('test done');
});


test('haoscar cleanup: resetFailCount forgets the restarts in the window, so the failure after maxRestarts is restarted instead of giving up', async () => {
  const svc = services.get('k')!;
  svc.crash();
  const { workflowId } = await heal('k');
  const handle = client.workflow.getHandle(workflowId);
  await waitFor(async () => (await handle.query(healStatusQuery)).phase === 'watching', 'the first restart succeeded');
  svc.crash();
  await handle.signal(serviceFailedSignal, { at: Date.now(), detail: 'test: crashed again', source: 'test' });
  await waitFor(async () => {
    const s = await handle.query(healStatusQuery);
    return s.phase === 'watching' && s.attempts.length === 2;
  }, 'the second restart succeeded: maxRestarts (2) used up');
  assert.equal((await handle.query(healStatusQuery)).restartsInWindow, 2);
  // Bad input is refused and changes nothing.
  const bad = await handle.executeUpdate(resetFailCountUpdate, { args: [{ operator: '', extra: 1 } as never] }).then(() => undefined, (e: unknown) => e);
  assert.ok(bad instanceof WorkflowUpdateFailedError && bad.cause instanceof ApplicationFailure && bad.cause.type === ERROR_TYPES.InvalidWorkflowInput, String(bad));
  assert.equal((await handle.query(healStatusQuery)).restartsInWindow, 2);
  assert.deepEqual(await handle.executeUpdate(resetFailCountUpdate, { args: [{ operator: 'test', reason: 'fixed the config' }] }), { cleared: 2, phase: 'watching' });
  assert.equal((await handle.query(healStatusQuery)).restartsInWindow, 0);
  // Without the reset this failure gives up; after it, a restart.
  svc.crash();
  await handle.signal(serviceFailedSignal, { at: Date.now(), detail: 'test: crashed a third time', source: 'test' });
  await waitFor(async () => {
    const s = await handle.query(healStatusQuery);
    return s.phase === 'watching' && s.attempts.length === 3;
  }, 'the third failure was restarted');
  assert.equal(svc.starts, 3);
  assert.equal((await handle.query(healStatusQuery)).restartsInWindow, 1);
  await handle.terminate('test over');
});
