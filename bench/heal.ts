/**
 * Heal benchmark: how long a SIGKILLed service stays down under HA-OSCAR, and where that
 * time goes. One real `haoscar agent` (test/support/lab.ts) supervises the http-service
 * fixture with the process driver; the benchmark kills the service N times and times
 * kill → a new pid answers HTTP, then splits each heal with the heal workflow's history.
 *
 * Baseline, measured in the same run: the service's own start time (spawn the fixture by
 * hand, time until it answers). The goal is healing within 0.5 s plus that start time.
 *
 * Usage: tsx bench/heal.ts [--runs N (>= 10, default 15)] [--warmup N (default 1)] [--address HOST:PORT] [--timeline]
 * Without --address (or HAOSCAR_TEST_TEMPORAL) it starts a private in-memory dev server.
 * See bench/README.md for what each figure means.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Client, Connection, WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';
import { startDevServer } from '../src/temporal/dev-server.js';
import { silentLogger } from '../src/log.js';
import { healWorkflowId } from '../workflows/shared.js';
import { HTTP_SERVICE, Lab, freePort, httpServiceYaml, probe, waitFor } from '../test/support/lab.js';
import { uniqueName } from '../test/support/temporal.js';

// ---------------------------------------------------------------------------------------
// Options

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '15' },
    warmup: { type: 'string', default: '1' },
    address: { type: 'string' },
    timeline: { type: 'boolean', default: false },
  },
  strict: true,
});
const RUNS = Number(opts.runs);
const WARMUP = Number(opts.warmup);
if (!Number.isInteger(RUNS) || RUNS < 10) throw new Error(`--runs must be an integer >= 10 (got '${opts.runs}')`);
if (!Number.isInteger(WARMUP) || WARMUP < 0) throw new Error(`--warmup must be an integer >= 0 (got '${opts.warmup}')`);

/** The goal: healed within this much more than the service's own start time. */
const GOAL_OVERHEAD_MS = 500;
/** How often we probe the service while it is down (the resolution of every total). */
const POLL_MS = 5;
const GROUP = 'web';
const RESOURCE = 'httpd';

/** Wall-clock epoch ms with sub-ms resolution (comparable with Temporal's event times: same machine). */
const now = (): number => performance.timeOrigin + performance.now();

// ---------------------------------------------------------------------------------------
// Cleanup: everything we start registers its undo here; run newest first, once, even on error.

const cleanups: { what: string; run: () => Promise<unknown> }[] = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const c = cleanups.pop()!;
      await c.run().catch((err: unknown) => process.stderr.write(`cleanup (${c.what}) failed: ${String(err)}\n`));
    }
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: cleaning up\n`);
    void cleanup().finally(() => process.exit(130));
  });
}

/** Service pids we have seen, so none outlives the benchmark even if the agent died. */
const servicePids = new Set<number>();
function killLeftoverServices(): void {
  for (const pid of servicePids) {
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue; // gone
    }
    if (!cmdline.includes('http-service.mjs')) continue; // pid reused by something else
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* exited meanwhile */
    }
  }
}

// ---------------------------------------------------------------------------------------
// Statistics

function quantile(values: readonly number[], q: number): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
const median = (v: readonly number[]) => quantile(v, 0.5);
const p90 = (v: readonly number[]) => quantile(v, 0.9);
const fmt = (ms: number) => (Number.isFinite(ms) ? ms.toFixed(1).padStart(8) : '     n/a');

// ---------------------------------------------------------------------------------------
// Heal workflow history → phases

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

function eventMs(e: HistoryEvent): number {
  const t = e.eventTime;
  if (!t) throw new Error(`history event ${String(e.eventId)} has no eventTime`);
  const seconds: unknown = t.seconds;
  const s = typeof seconds === 'number' ? seconds : Number(String(seconds ?? 0));
  return s * 1000 + (t.nanos ?? 0) / 1e6;
}
const idOf = (v: unknown): string => String(v ?? '');

interface ActivitySpan {
  scheduled: number;
  started: number;
  completed: number;
}

/** The first scheduled activity of this type, with its started and completed times (undefined until it completed). */
function activitySpan(events: readonly HistoryEvent[], type: string): ActivitySpan | undefined {
  const sched = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === type);
  if (!sched) return undefined;
  const schedId = idOf(sched.eventId);
  const started = events.find((e) => idOf(e.activityTaskStartedEventAttributes?.scheduledEventId) === schedId);
  const completed = events.find((e) => idOf(e.activityTaskCompletedEventAttributes?.scheduledEventId) === schedId);
  const failed = events.find(
    (e) =>
      idOf(e.activityTaskFailedEventAttributes?.scheduledEventId) === schedId ||
      idOf(e.activityTaskTimedOutEventAttributes?.scheduledEventId) === schedId,
  );
  if (failed) throw new Error(`activity ${type} of the heal failed or timed out (event ${idOf(failed.eventId)}): not a clean heal`);
  if (!started || !completed) return undefined;
  return { scheduled: eventMs(sched), started: eventMs(started), completed: eventMs(completed) };
}

interface Run {
  total: number;
  detection: number;
  orchestration: number;
  restartExec: number;
  waitHealthyExec: number;
  /**
   * Part of orchestration: the resolveHealTarget activity (cluster config lookup) when it is a
   * regular activity; NaN when it is a local activity (it then runs inside a workflow task).
   */
  resolveExec: number;
  /** Part of orchestration: workflow tasks waiting in their queue (scheduled → started), summed. */
  wftQueue: number;
  /** Part of orchestration: workflow tasks executing in the worker (started → completed), summed. */
  wftExec: number;
  /** Part of orchestration: activity tasks waiting in their queue (scheduled → started), summed. */
  activityQueue: number;
  /** Part of orchestration: heal start → restartService started (what precedes the restart). */
  toRestart: number;
  /** restartService completed (process spawned) → the new pid answered our probe. */
  spawnedToAnswer: number;
  /** kill → waitForHealthy completed (the heal's own view of "healthy again"). */
  killToHealed: number;
  /** Each history event up to waitForHealthy's completion, ms after the kill (for --timeline). */
  timeline: string[];
}

/** "ActivityTaskScheduled (restartService)" from the attributes field the event carries. */
function eventName(e: HistoryEvent): string {
  const key = Object.keys(e).find((k) => k.endsWith('EventAttributes') && (e as Record<string, unknown>)[k] != null);
  const name = key ? key[0]!.toUpperCase() + key.slice(1, -'EventAttributes'.length) : `event type ${String(e.eventType)}`;
  const activity = e.activityTaskScheduledEventAttributes?.activityType?.name;
  return activity ? `${name} (${activity})` : name;
}

function phases(events: readonly HistoryEvent[], killAt: number, answerAt: number): Run | undefined {
  const startedEvent = events.find((e) => e.workflowExecutionStartedEventAttributes);
  if (!startedEvent) return undefined;
  const healStart = eventMs(startedEvent);
  // resolveHealTarget: a regular activity in 0.1.0, a local one since (a MarkerRecorded event).
  const resolveScheduled = events.some((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'resolveHealTarget');
  const resolve = activitySpan(events, 'resolveHealTarget');
  const restart = activitySpan(events, 'restartService');
  const healthy = activitySpan(events, 'waitForHealthy');
  if ((resolveScheduled && !resolve) || !restart || !healthy) return undefined;
  const inHeal = (e: HistoryEvent) => eventMs(e) <= healthy.completed;
  const byId = new Map(events.map((e) => [idOf(e.eventId), e]));
  const gap = (fromId: unknown, to: HistoryEvent) => {
    const from = byId.get(idOf(fromId));
    return from ? eventMs(to) - eventMs(from) : 0;
  };
  let wftQueue = 0;
  let wftExec = 0;
  let activityQueue = 0;
  for (const e of events.filter(inHeal)) {
    if (e.workflowTaskStartedEventAttributes) wftQueue += gap(e.workflowTaskStartedEventAttributes.scheduledEventId, e);
    if (e.workflowTaskCompletedEventAttributes) wftExec += gap(e.workflowTaskCompletedEventAttributes.startedEventId, e);
    if (e.activityTaskStartedEventAttributes) activityQueue += gap(e.activityTaskStartedEventAttributes.scheduledEventId, e);
  }
  const healSpan = healthy.completed - healStart;
  const restartExec = restart.completed - restart.started;
  const waitHealthyExec = healthy.completed - healthy.started;
  return {
    total: answerAt - killAt,
    detection: healStart - killAt,
    orchestration: healSpan - restartExec - waitHealthyExec,
    restartExec,
    waitHealthyExec,
    resolveExec: resolve ? resolve.completed - resolve.started : Number.NaN,
    wftQueue,
    wftExec,
    activityQueue,
    toRestart: restart.started - healStart,
    spawnedToAnswer: answerAt - restart.completed,
    killToHealed: healthy.completed - killAt,
    timeline: [
      `${(0).toFixed(1).padStart(8)}  kill (SIGKILL sent)`,
      ...events
        .filter((e) => eventMs(e) <= healthy.completed)
        .map((e) => `${(eventMs(e) - killAt).toFixed(1).padStart(8)}  ${eventName(e)}`),
      `${(answerAt - killAt).toFixed(1).padStart(8)}  new pid answers HTTP`,
    ].sort((a, b) => Number.parseFloat(a) - Number.parseFloat(b)),
  };
}

// ---------------------------------------------------------------------------------------
// Baseline: the service's own start time, no HA-OSCAR involved

async function baselineStart(port: number): Promise<number> {
  const t0 = now();
  const child = spawn(process.execPath, [HTTP_SERVICE, String(port)], { stdio: 'ignore' });
  if (child.pid !== undefined) servicePids.add(child.pid);
  const exited = once(child, 'exit');
  try {
    for (;;) {
      const pid = await probe(port);
      if (pid === child.pid) return now() - t0;
      if (child.exitCode !== null) throw new Error(`baseline service exited with code ${child.exitCode} before answering`);
      if (now() - t0 > 10_000) throw new Error('baseline service did not answer within 10 s');
      await sleep(POLL_MS);
    }
  } finally {
    child.kill('SIGKILL');
    await exited;
  }
}

// ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  // Temporal: given, or a private in-memory dev server.
  let address = opts.address ?? process.env.HAOSCAR_TEST_TEMPORAL;
  if (!address) {
    const cli = await ensureTemporalCli({ logger: silentLogger, onProgress: (m) => process.stderr.write(`${m}\n`) });
    process.stderr.write('starting a Temporal dev server (in memory, headless)…\n');
    const server = await startDevServer({ cli, uiPort: false, logger: silentLogger });
    cleanups.push({ what: 'dev server', run: () => server.stop() });
    address = server.address;
  }
  const connection = await Connection.connect({ address });
  cleanups.push({ what: 'client connection', run: () => connection.close() });
  const client = new Client({ connection });

  // The agent.
  const lab = await Lab.create();
  cleanups.push({
    what: 'lab (agent, its service, temp dir)',
    run: async () => {
      await lab.close();
      killLeftoverServices();
    },
  });
  const cluster = uniqueName('bench');
  const port = await freePort();
  // maxRestarts: never the limit here. The window hardly matters either: every run
  // terminates its heal (see below), so each kill starts a fresh heal, whose first
  // restart is immediate (no backoff).
  const config = await lab.writeOneNodeConfig('haoscar.yaml', {
    cluster,
    address,
    groups: {
      [GROUP]: [
        httpServiceYaml(RESOURCE, port, {
          check: 'interval: 1s, timeout: 500ms, rise: 1, fall: 2',
          healing: 'maxRestarts: 1000, window: 1m, startTimeout: 10s',
        }),
      ],
    },
  });
  process.stderr.write(`starting the agent (cluster ${cluster}, service port ${port})…\n`);
  const agent = lab.startAgent(config, 'n1');
  const agentPid = agent.pid;
  if (agentPid === undefined) throw new Error(`the agent did not start:\n${await lab.agentLog('n1')}`);
  let agentExited = false;
  void agent.then(() => {
    agentExited = true;
  });

  /** Healthy edges the agent's monitor has logged: a kill only requests a heal if the monitor saw the service healthy since the last one. */
  const healthyEdges = async () =>
    (await lab.agentLog('n1')).split('\n').filter((l) => l.includes(`"msg":"resource ${GROUP}/${RESOURCE} is healthy"`)).length;
  const alive = () => {
    if (agentExited) throw new Error('the agent exited');
  };

  const firstPid = await waitFor('the service answers (agent started it)', async () => (alive(), probe(port)), 120_000).catch(
    async (err: Error) => Promise.reject(new Error(`${err.message}\nagent log:\n${await lab.agentLog('n1')}`)),
  );
  servicePids.add(firstPid);
  await waitFor('the agent sees the service healthy', async () => (alive(), (await healthyEdges()) >= 1), 30_000);

  // Baseline, with the agent up and idle (same machine load as the heal runs).
  const baselinePort = await freePort();
  const baseline: number[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    const ms = await baselineStart(baselinePort);
    if (i >= WARMUP) baseline.push(ms);
  }

  // Heal runs.
  const workflowId = healWorkflowId(cluster, GROUP, RESOURCE);
  const runs: Run[] = [];
  const rows: string[] = [];
  for (let i = 0; i < WARMUP + RUNS; i++) {
    alive();
    const oldPid = await waitFor('the service answers', () => probe(port), 30_000);
    servicePids.add(oldPid);
    const edgesBefore = await healthyEdges();

    process.kill(oldPid, 'SIGKILL');
    const killAt = now();
    let answerAt: number;
    for (;;) {
      const pid = await probe(port);
      if (pid !== undefined && pid !== oldPid) {
        answerAt = now();
        servicePids.add(pid);
        break;
      }
      if (now() - killAt > 30_000) throw new Error(`run ${i}: the service did not come back within 30 s\n${await lab.agentLog('n1')}`);
      await sleep(POLL_MS);
    }

    // The heal's history, once its waitForHealthy has completed.
    const handle = client.workflow.getHandle(workflowId);
    let lastEvents: HistoryEvent[] = [];
    const run = await waitFor(
      `run ${i}: the heal's waitForHealthy completes`,
      async () => {
        try {
          lastEvents = (await handle.fetchHistory()).events ?? [];
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return undefined;
          throw err;
        }
        return phases(lastEvents, killAt, answerAt);
      },
      30_000,
      20,
    ).catch(async (err: Error) => {
      const events = lastEvents.map((e) => `  ${(eventMs(e) - killAt).toFixed(1)} ${eventName(e)}`).join('\n');
      const log = (await lab.agentLog('n1')).split('\n').slice(-40).join('\n');
      throw new Error(`${err.message}\nheal history (ms after the kill):\n${events || '  (none)'}\nagent log tail:\n${log}`);
    });
    if (run.detection < -5) throw new Error(`run ${i}: the heal started ${-run.detection} ms before the kill: a stale heal, not this one`);

    // Fresh heal for the next run. A heal stays open for `window` after its restart and a
    // second kill would signal the same run, whose next restart backs off (initial 1 s, then
    // doubling): that measures the backoff policy, not healing. Terminating the heal makes the
    // next kill start a new one (signal-with-start), i.e. the common case of a one-off crash.
    // A short window would do the same, but the heal must then be left to close on its own
    // (window >= 1 s, plus its timer), and the measured path would depend on that timing.
    await handle.terminate('heal benchmark: the next run starts a fresh heal');
    // And the next kill must be a failing *edge*: wait until the monitor has seen the
    // restarted service healthy (its next 1 s poll), or the kill would not request a heal.
    await waitFor(`run ${i}: the agent sees the restarted service healthy`, async () => (alive(), (await healthyEdges()) > edgesBefore), 30_000, 20);

    const warm = i < WARMUP;
    if (!warm) runs.push(run);
    rows.push(
      `${warm ? `warmup ${i + 1}` : `run ${i - WARMUP + 1}`}`.padEnd(10) +
        [run.total, run.detection, run.orchestration, run.restartExec, run.waitHealthyExec].map((v) => fmt(v).padStart(10)).join(''),
    );
  }

  // Agent memory, while it still runs.
  const status = readFileSync(`/proc/${agentPid}/status`, 'utf8');
  const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim() ?? 'n/a';

  // Report.
  const col = (v: readonly number[]) => `${fmt(median(v))}${fmt(p90(v))}`;
  const pick = (k: Exclude<keyof Run, 'timeline'>) => runs.map((r) => r[k]);
  const out: string[] = [];
  out.push('');
  out.push(`${'run (ms)'.padEnd(10)}${['total', 'detection', 'orchestr.', 'restart', 'waitHlthy'].map((h) => h.padStart(10)).join('')}`);
  out.push(...rows);
  out.push('');
  out.push(`heal of a SIGKILLed service: ${RUNS} runs (+${WARMUP} warmup, not counted), probe every ${POLL_MS} ms`);
  out.push(`${'(ms)'.padEnd(44)}  median     p90`);
  const line = (label: string, v: readonly number[]) => out.push(`${label.padEnd(44)}${col(v)}`);
  line('kill -> new pid answers (total)', pick('total'));
  line('  detection (kill -> heal started)', pick('detection'));
  line('  orchestration (in the heal, not activities)', pick('orchestration'));
  line('    workflow tasks queued (sched. -> started)', pick('wftQueue'));
  line('    workflow tasks executing (started -> done)', pick('wftExec'));
  line('    activity tasks queued (sched. -> started)', pick('activityQueue'));
  line('    resolveHealTarget (regular activity) exec.', pick('resolveExec'));
  line('    heal started -> restartService started', pick('toRestart'));
  line('  restartService execution', pick('restartExec'));
  line('  waitForHealthy execution', pick('waitHealthyExec'));
  line('restartService completed -> answer', pick('spawnedToAnswer'));
  line('kill -> waitForHealthy completed', pick('killToHealed'));
  line('baseline: service own start (spawn -> answer)', baseline);
  const overhead = median(pick('total')) - median(baseline);
  out.push('');
  out.push(`overhead = median total - median baseline = ${overhead.toFixed(1)} ms`);
  out.push(
    `goal "healed within ${GOAL_OVERHEAD_MS} ms + the service's own start time": ${overhead <= GOAL_OVERHEAD_MS ? 'MET' : 'NOT MET'} ` +
      `(${median(pick('total')).toFixed(1)} ms vs ${(GOAL_OVERHEAD_MS + median(baseline)).toFixed(1)} ms)`,
  );
  if (opts.timeline) {
    const byTotal = [...runs].sort((a, b) => a.total - b.total);
    const mid = byTotal[Math.floor((byTotal.length - 1) / 2)]!;
    out.push('');
    out.push(`timeline of the median run (ms after the kill; server event times):`);
    out.push(...mid.timeline);
  }
  out.push(`agent (pid ${agentPid}) memory at the end: VmRSS ${field('VmRSS')}, peak VmHWM ${field('VmHWM')}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

let exitCode = 0;
try {
  await main();
} catch (err) {
  process.stderr.write(`heal benchmark failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
