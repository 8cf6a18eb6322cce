/**
 * Data benchmark: what file-set replication costs, in the network lab (test/lab).
 *
 * 1. throughput: a resync of an empty standby copy (the `resync` workflow, timed from its
 *    start to its result) against plain `rsync -a` pulling the same data from the same
 *    daemon (the owner's agent's) into a scratch directory of the same host. Medians of the
 *    runs, alternated, and the ratio product/plain.
 * 2. lag: a small file written on the owner's copy every 300 ms; how long until it is in the
 *    standby's copy (polled every 5 ms from the root side), and the lag the agent reports.
 * 3. switchover: `haoscar switchover web --to OTHER`, back and forth, while a client polls the
 *    service through the VIP every 20 ms: the client-observed outage of each move (the longest
 *    gap between successful answers, one prober per run), and the failover child's phases.
 *
 * Every part uses the product's default timing (heartbeat 150ms/600ms, lease 600ms + 100ms,
 * file-set batch 200ms unless --batch).
 *
 * Usage: tsx bench/sync.ts [--part throughput|lag|switchover|all] [--runs N]
 *          [--files N] [--file-mib N] [--small N] [--writes N] [--every-ms N] [--batch DURATION]
 * Needs root (network namespaces). See bench/README.md.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { WorkflowIdConflictPolicy, type WorkflowHandle } from '@temporalio/client';
import { NetLab } from '../test/lab/netlab.js';
import { LabCluster, GROUP, type ClusterData } from '../test/lab/cluster.js';
import { waitFor } from '../test/support/wait.js';
import { loadConfig } from '../src/config/load.js';
import { moduleName } from '../src/sync/rsync.js';
import { clusterTaskQueue, failoverWorkflowId, resyncWorkflowId, switchoverWorkflowId, type FailoverResult, type ResyncResult, type SwitchoverResult } from '../workflows/shared.js';
import { median } from './stats.js';

const PARTS = ['throughput', 'lag', 'switchover'] as const;
type Part = (typeof PARTS)[number];

const { values: opts } = parseArgs({
  options: {
    part: { type: 'string', default: 'all' },
    runs: { type: 'string' },
    files: { type: 'string', default: '8' },
    'file-mib': { type: 'string', default: '16' },
    small: { type: 'string', default: '2000' },
    writes: { type: 'string', default: '60' },
    'every-ms': { type: 'string', default: '300' },
    batch: { type: 'string' },
  },
  strict: true,
});

function intOption(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min} (got '${value}')`);
  return n;
}
if (opts.part !== 'all' && !PARTS.includes(opts.part as Part)) throw new Error(`--part must be throughput, lag, switchover or all (got '${opts.part}')`);
const parts: Part[] = opts.part === 'all' ? [...PARTS] : [opts.part as Part];
const THROUGHPUT_RUNS = opts.runs === undefined ? 3 : intOption('runs', opts.runs, 1);
const SWITCHOVER_RUNS = opts.runs === undefined ? 5 : intOption('runs', opts.runs, 1);
const FILES = intOption('files', opts.files, 0);
const FILE_MIB = intOption('file-mib', opts['file-mib'], 1);
const SMALL = intOption('small', opts.small, 0);
const WRITES = intOption('writes', opts.writes, 1);
const EVERY_MS = intOption('every-ms', opts['every-ms'], 10);
if (opts.batch !== undefined && !/^\d+(ms|s)$/.test(opts.batch)) throw new Error(`--batch must be a duration such as 200ms or 1s (got '${opts.batch}')`);
if (FILES === 0 && SMALL === 0) throw new Error('--files and --small are both 0: nothing to copy');

const MIB = 1024 * 1024;
/** The lab cluster's one file set (test/lab/cluster.ts). */
const SET = 'www';
/** Small files per directory of the small-file tree. */
const PER_DIR = 100;

// ------------------------------------------------------------------------------ helpers

const sorted = (xs: readonly number[]) => [...xs].sort((a, b) => a - b);
/** Nearest-rank percentile. */
const pct = (xs: readonly number[], p: number) => {
  const s = sorted(xs);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};
const ms = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? '-' : `${Math.round(x)}`);
const log = (line: string) => process.stderr.write(`${line}\n`);

/** Removes what a directory holds, not the directory itself (an agent's file set lives there). */
async function emptyDir(dir: string): Promise<void> {
  for (const name of await readdir(dir)) await rm(join(dir, name), { recursive: true, force: true });
}

/** Regular files and their bytes under `dir`. */
async function tree(dir: string): Promise<{ files: number; bytes: number }> {
  let files = 0;
  let bytes = 0;
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    files += 1;
    bytes += (await stat(join(e.parentPath, e.name))).size;
  }
  return { files, bytes };
}

/** Writes back what earlier runs left dirty, so that no run pays for another's writes. */
async function flush(): Promise<void> {
  await execa('sync', [], { reject: false });
}

/** A lab with the cluster of test/lab/cluster.ts and the product's default timing; `fn` runs with it started. */
async function withCluster<T>(what: string, data: ClusterData, fn: (lab: NetLab, cluster: LabCluster) => Promise<T>): Promise<T> {
  log(`\n== ${what}: building the lab (product default timing)`);
  // Kept for a look at the logs when something fails (HAOSCAR_LAB_KEEP=1 keeps every one).
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true, keepDir: true });
  const cluster = new LabCluster(lab, {}, data);
  let ok = false;
  try {
    await cluster.start();
    // n2 pulls the (empty) set once at its start: wait for it, so that nothing else transfers.
    await waitFor("n2's first pull", async () => ((await cluster.syncState('n2'))?.sets[0]?.lastSuccessAt ? true : undefined), 60_000, 100);
    const result = await fn(lab, cluster);
    ok = true;
    return result;
  } catch (err) {
    log(`   (lab kept for its logs: ${lab.dir})`);
    throw err;
  } finally {
    await cluster.close();
    await lab.close();
    // After the agents are gone (they write their state when they stop).
    if (ok && process.env.HAOSCAR_LAB_KEEP !== '1') await rm(lab.dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------ 1. throughput

interface ThroughputRun {
  kind: 'plain' | 'product';
  ms: number;
  /** Product: the activity's own duration (ResyncResult.durationMs). */
  activityMs?: number;
  /** Product: where the time went, from the workflow's history (server time stamps). */
  split?: ResyncSplit;
}

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

function eventMs(e: HistoryEvent | undefined): number {
  const t = e?.eventTime;
  if (!t) return NaN;
  return Number(String(t.seconds ?? 0)) * 1000 + (t.nanos ?? 0) / 1e6;
}

interface ResyncSplit {
  /** Workflow started → resyncGroup scheduled (the workflow's checks: local activities). */
  beforeMs: number;
  /** resyncGroup scheduled → started (the activity task in the node's queue). */
  queueMs: number;
  /** resyncGroup started → completed (the node's agent pulling). */
  execMs: number;
  /** resyncGroup completed → workflow completed. */
  afterMs: number;
}

function resyncSplit(events: readonly HistoryEvent[]): ResyncSplit {
  const started = events.find((e) => e.workflowExecutionStartedEventAttributes);
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'resyncGroup');
  const id = String(scheduled?.eventId ?? '');
  const actStarted = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId ?? '') === id);
  const actDone = events.find((e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? '') === id);
  const done = events.find((e) => e.workflowExecutionCompletedEventAttributes);
  return {
    beforeMs: eventMs(scheduled) - eventMs(started),
    queueMs: eventMs(actStarted) - eventMs(scheduled),
    execMs: eventMs(actDone) - eventMs(actStarted),
    afterMs: eventMs(done) - eventMs(actDone),
  };
}

interface Throughput {
  files: number;
  bytes: number;
  runs: ThroughputRun[];
}

async function generateData(dir: string): Promise<void> {
  for (let i = 0; i < FILES; i++) await writeFile(join(dir, `big-${i}.bin`), randomBytes(FILE_MIB * MIB));
  for (let i = 0; i < SMALL; i++) {
    const sub = join(dir, 'small', `d${String(Math.floor(i / PER_DIR)).padStart(3, '0')}`);
    if (i % PER_DIR === 0) await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `f${String(i).padStart(5, '0')}.dat`), randomBytes(256 + Math.floor(Math.random() * 3840)));
  }
}

async function throughput(): Promise<Throughput> {
  return withCluster('throughput', { fileSet: 'continuous: false, verifyEvery: 1h' }, async (lab, cluster) => {
    const config = await loadConfig(cluster.configFile);
    const source = cluster.hostData('n1');
    const target = cluster.hostData('n2');
    // Outside the file set: n2's agent never looks there.
    const scratch = join(lab.dir, 'hosts', 'n2', 'scratch');
    await mkdir(scratch, { recursive: true });
    // The agent writes the daemon's client password file into <stateDir>/sync/ (file-sync.ts,
    // daemon.ts); n2's state dir is <lab>/hosts/n2/state on the root side.
    const passwordFile = join(lab.dir, 'hosts', 'n2', 'state', 'sync', 'password');
    const url = `rsync://haoscar@${lab.address('n1')}:${config.sync.port}/${moduleName(GROUP, SET, 0)}/`;

    log(`   writing ${FILES} x ${FILE_MIB} MiB + ${SMALL} small files on n1`);
    await generateData(source);
    const want = await tree(source);
    log(`   ${want.files} files, ${(want.bytes / MIB).toFixed(1)} MiB`);

    const check = async (dir: string, what: string) => {
      const got = await tree(dir);
      if (got.files !== want.files || got.bytes !== want.bytes) throw new Error(`${what}: ${got.files} files, ${got.bytes} bytes arrived; ${want.files} files, ${want.bytes} bytes expected`);
    };
    const plain = async (): Promise<ThroughputRun> => {
      await emptyDir(scratch);
      await flush();
      const t = performance.now();
      await lab.run('n2', [config.sync.rsync, '-a', `--password-file=${passwordFile}`, url, `${scratch}/`], { timeoutMs: 600_000 });
      const run: ThroughputRun = { kind: 'plain', ms: performance.now() - t };
      await check(scratch, 'plain rsync');
      return run;
    };
    const product = async (i: number): Promise<ThroughputRun> => {
      await emptyDir(target);
      await flush();
      const t = performance.now();
      const handle = await cluster.client.workflow.start('resync', {
        workflowId: resyncWorkflowId(cluster.cluster, GROUP, 'n2'),
        taskQueue: clusterTaskQueue(cluster.cluster),
        args: [{ cluster: cluster.cluster, group: GROUP, node: 'n2', reason: `bench: throughput run ${i + 1}` }],
        workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      });
      const result = (await handle.result()) as ResyncResult;
      const run: ThroughputRun = { kind: 'product', ms: performance.now() - t, activityMs: result.durationMs, split: resyncSplit((await handle.fetchHistory()).events ?? []) };
      await check(target, 'resync');
      return run;
    };

    const runs: ThroughputRun[] = [];
    for (let i = 0; i < THROUGHPUT_RUNS; i++) {
      // Alternated, so that neither always runs first after the other's writes.
      for (const kind of i % 2 === 0 ? (['plain', 'product'] as const) : (['product', 'plain'] as const)) {
        const run = kind === 'plain' ? await plain() : await product(i);
        runs.push(run);
        const sp = run.split;
        log(`   run ${i + 1} ${kind.padEnd(7)}: ${ms(run.ms)} ms, ${(want.bytes / MIB / (run.ms / 1000)).toFixed(1)} MiB/s${sp ? ` (history: checks ${ms(sp.beforeMs)}, queued ${ms(sp.queueMs)}, activity ${ms(sp.execMs)} [its own ${run.activityMs} ms], to the end ${ms(sp.afterMs)})` : ''}`);
      }
    }
    await emptyDir(scratch);
    return { ...want, runs };
  });
}

// ------------------------------------------------------------------------------ 2. lag

interface Lag {
  lags: number[];
  missing: number;
  /** lagMs of every pull n2's agent reported (sync-state.json, distinct lastSuccessAt). */
  agentLags: number[];
  /** The owner's generation at the end: batches its watcher reported. */
  batches: number;
}

async function lag(cluster: LabCluster): Promise<Lag> {
  const source = cluster.hostData('n1');
  const target = cluster.hostData('n2');
  const written = new Map<string, number>();
  const seen = new Map<string, number>();
  const agent = new Map<number, number>();
  let done = false;

  // The standby's copy, every 5 ms: rsync writes a temporary name and renames it, so a name
  // appears when its file is complete.
  const poll = (async () => {
    while (!done) {
      const names = await readdir(target);
      const now = Date.now();
      for (const name of names) if (written.has(name) && !seen.has(name)) seen.set(name, now);
      await sleep(5);
    }
  })();
  // What the agent reports (it rewrites the file at most every 200 ms).
  const sample = (async () => {
    while (!done) {
      const s = (await cluster.syncState('n2').catch(() => undefined))?.sets[0];
      if (s?.lastSuccessAt !== undefined && s.lagMs !== undefined && !agent.has(s.lastSuccessAt)) agent.set(s.lastSuccessAt, s.lagMs);
      await sleep(50);
    }
  })();

  try {
    const start = Date.now() + 200;
    for (let i = 0; i < WRITES; i++) {
      const wait = start + i * EVERY_MS - Date.now();
      if (wait > 0) await sleep(wait);
      const name = `lag-${String(i).padStart(3, '0')}.txt`;
      written.set(name, Date.now());
      await writeFile(join(source, name), `${randomBytes(50).toString('hex')}`); // 100 bytes
      if (i % 10 === 9) log(`   ${i + 1} written, ${seen.size} arrived`);
    }
    await waitFor('every small file on n2', () => (seen.size === WRITES ? true : undefined), 10_000, 20).catch(() => undefined);
    await sleep(500); // the agent's last state write
  } finally {
    done = true;
    await Promise.all([poll, sample]);
  }
  const lags = [...written].filter(([name]) => seen.has(name)).map(([name, t]) => seen.get(name)! - t);
  const owner = (await cluster.syncState('n1'))?.sets[0];
  return { lags, missing: WRITES - lags.length, agentLags: [...agent.values()], batches: owner?.generation ?? 0 };
}

// ------------------------------------------------------------------------------ 3. switchover

interface SwitchRun {
  from: string;
  to: string;
  outageMs: number;
  failures: number;
  phases: FailoverResult['phases'];
  /** The CLI's wall time: its start, the pre-switchover resync, the move. */
  cliMs: number;
  resyncMs?: number;
  /** From the end of the switchover to the old owner's first pull as a standby. */
  standbyPullAfterMs?: number | undefined;
}

async function switchovers(lab: NetLab, cluster: LabCluster): Promise<SwitchRun[]> {
  const runs: SwitchRun[] = [];
  for (let i = 0; i < SWITCHOVER_RUNS; i++) {
    const owner = (await cluster.waitForGroup((g) => g.state === 'running' && g.owner !== null, 'the group running', 60_000)).owner!;
    const other = owner === 'n1' ? 'n2' : 'n1';
    await waitFor('both agents up', async () => ((await cluster.ownership())?.nodes[other]?.state === 'up' ? true : undefined), 60_000, 100);
    // One prober per run: its longest gap is this switchover's outage.
    const client = await lab.probe(cluster.url, { everyMs: 20, timeoutMs: 300 });
    let report;
    let cliMs = 0;
    let ended = 0;
    const before = Date.now();
    try {
      await waitFor(`the client is served by ${owner}`, async () => (client.lastOk()?.host === owner ? true : undefined), 30_000, 20);
      await sleep(500);
      const t = performance.now();
      const cli = await cluster.cli(['switchover', GROUP, '--to', other]);
      cliMs = performance.now() - t;
      ended = Date.now();
      if (cli.exitCode !== 0) throw new Error(`run ${i + 1}: haoscar switchover ${GROUP} --to ${other} failed (exit ${cli.exitCode}; logs in ${lab.dir}):\n${cli.all}`);
      await waitFor(`the client is served by ${other}`, async () => (client.lastOk()?.host === other ? true : undefined), 30_000, 20);
      await sleep(300);
    } finally {
      report = await client.stop();
    }
    const failover = (await cluster.client.workflow.getHandle(failoverWorkflowId(cluster.cluster, GROUP)).result()) as FailoverResult;
    const switched = (await cluster.client.workflow.getHandle(switchoverWorkflowId(cluster.cluster, GROUP)).result().catch(() => undefined)) as SwitchoverResult | undefined;
    const run: SwitchRun = {
      from: owner,
      to: other,
      outageMs: report.longestGapMs,
      failures: report.failures - report.failuresBeforeFirstOk,
      phases: failover.phases,
      cliMs,
      ...(switched?.resync ? { resyncMs: switched.resync.durationMs } : {}),
    };
    runs.push(run);
    const p = run.phases;
    log(`   run ${i + 1}: ${owner} → ${other}: outage ${ms(run.outageMs)} ms (${run.failures} failed requests); stop ${ms(p.stopMs)}, sync ${ms(p.syncMs)}, lease wait ${ms(p.leaseWaitMs)}, start ${ms(p.startMs)}, total ${ms(p.totalMs)}; resync before ${ms(run.resyncMs)}, CLI ${ms(run.cliMs)}`);
    // The old owner, now a standby, makes its first (full) pull from the new owner: waited
    // for, so that it does not fall into the next run. (It can take up to a minute: a node made
    // owner stays "halted" for pulls until HALT_MS after its start, even once it has left.)
    const s = await waitFor(`${owner} pulled from ${other}`, async () => {
      const st = (await cluster.syncState(owner))?.sets[0];
      return st?.source === other && (st.lastSuccessAt ?? 0) > before ? st : undefined;
    }, 90_000, 100).catch(() => undefined);
    run.standbyPullAfterMs = s ? s.lastSuccessAt! - ended : undefined;
    log(`   ${owner} pulled from ${other} ${s ? `${ms(run.standbyPullAfterMs)} ms after the switchover` : 'not within 90 s'}`);
    await sleep(1000);
  }
  return runs;
}

// ------------------------------------------------------------------------------ main

const results: { throughput?: Throughput; lag?: Lag; switchover?: SwitchRun[] } = {};
const errors: string[] = [];
const attempt = async (what: string, fn: () => Promise<void>) => {
  try {
    await fn();
  } catch (err) {
    const text = err instanceof Error ? (err.stack ?? err.message) : String(err);
    errors.push(`${what}: ${text}`);
    log(`   ${what} FAILED: ${text}`);
  }
};

if (parts.includes('throughput')) await attempt('throughput', async () => void (results.throughput = await throughput()));
if (parts.includes('lag') || parts.includes('switchover')) {
  // Both need a continuous set; one lab serves both. The switchover's data: the lag files.
  await attempt(parts.includes('lag') ? 'lag' : 'switchover', () =>
    withCluster(parts.filter((p) => p !== 'throughput').join(' + '), opts.batch ? { fileSet: `batch: ${opts.batch}` } : {}, async (lab, cluster) => {
      if (parts.includes('lag')) results.lag = await lag(cluster);
      if (parts.includes('switchover')) {
        if (!parts.includes('lag')) for (let i = 0; i < 20; i++) await writeFile(join(cluster.hostData('n1'), `page-${i}.html`), randomBytes(512).toString('hex'));
        await attempt('switchover', async () => void (results.switchover = await switchovers(lab, cluster)));
      }
    }),
  );
}

const out = (line = '') => process.stdout.write(`${line}\n`);
out(`\nbench:sync (product default timing: heartbeat 150ms/600ms, lease 600ms+100ms, file-set batch ${opts.batch ?? '200ms'})`);
if (results.throughput) {
  const r = results.throughput;
  const mibs = (kind: ThroughputRun['kind']) => r.runs.filter((x) => x.kind === kind).map((x) => r.bytes / MIB / (x.ms / 1000));
  const plain = median(mibs('plain'));
  const product = median(mibs('product'));
  const n = r.runs.length / 2;
  out(`\n1. Resync of an empty copy, n1 → n2: ${r.files} files, ${(r.bytes / MIB).toFixed(1)} MiB (${FILES} x ${FILE_MIB} MiB + ${SMALL} small); medians of ${n} runs each, alternated`);
  out('                          MiB/s   (runs)                   median time');
  out(`   plain rsync -a         ${plain.toFixed(1).padStart(6)}   (${mibs('plain').map((x) => x.toFixed(1)).join(', ')})   ${ms(median(r.runs.filter((x) => x.kind === 'plain').map((x) => x.ms)))} ms`);
  out(`   resync workflow        ${product.toFixed(1).padStart(6)}   (${mibs('product').map((x) => x.toFixed(1)).join(', ')})   ${ms(median(r.runs.filter((x) => x.kind === 'product').map((x) => x.ms)))} ms (activity ${ms(median(r.runs.flatMap((x) => (x.activityMs === undefined ? [] : [x.activityMs]))))} ms)`);
  out(`   ratio product/plain    ${(product / plain).toFixed(2).padStart(6)}   goal >= 0.90: ${product / plain >= 0.9 ? 'MET' : 'NOT MET'}`);
  const splits = r.runs.flatMap((x) => (x.split ? [x.split] : []));
  const sm = (f: (x: ResyncSplit) => number) => ms(median(splits.map(f)));
  const execRatio = median(r.runs.filter((x) => x.kind === 'plain').map((x) => x.ms)) / median(splits.map((x) => x.execMs));
  out(`   resync, from its history (medians): checks ${sm((x) => x.beforeMs)} ms, activity queued ${sm((x) => x.queueMs)} ms, activity ${sm((x) => x.execMs)} ms, to the end ${sm((x) => x.afterMs)} ms; the activity alone vs plain: ${execRatio.toFixed(2)}`);
}
if (results.lag) {
  const r = results.lag;
  out(`\n2. Continuous-sync lag: ${WRITES} files of 100 bytes written on n1 every ${EVERY_MS} ms, until each is in n2's copy (polled every 5 ms)`);
  out('                          p50    p90    p99    max    (ms)');
  out(`   observed               ${ms(pct(r.lags, 50)).padStart(4)}   ${ms(pct(r.lags, 90)).padStart(4)}   ${ms(pct(r.lags, 99)).padStart(4)}   ${ms(Math.max(...r.lags)).padStart(4)}   ${r.missing ? `(${r.missing} never arrived)` : ''}   goal p99 <= 1000: ${r.missing === 0 && pct(r.lags, 99) <= 1000 ? 'MET' : 'NOT MET'}`);
  out(`   agent's lagMs          ${ms(pct(r.agentLags, 50)).padStart(4)}   ${ms(pct(r.agentLags, 90)).padStart(4)}   ${ms(pct(r.agentLags, 99)).padStart(4)}   ${ms(Math.max(...r.agentLags)).padStart(4)}   (${r.agentLags.length} pulls seen in sync-state.json; ${r.batches} batches on n1)`);
}
if (results.switchover) {
  const r = results.switchover;
  const outages = r.map((x) => x.outageMs);
  const m = (f: (x: SwitchRun) => number | undefined) => median(r.map(f).filter((x): x is number => x !== undefined));
  out(`\n3. Planned switchover (haoscar switchover web --to OTHER, alternately n1 → n2 → n1 ...), ${r.length} runs; client polls the VIP every 20 ms (300 ms timeout)`);
  out(`   outage median ${ms(median(outages))} ms, worst ${ms(Math.max(...outages))} ms (runs: ${outages.map(ms).join(', ')})   goal <= 1000 ms: ${Math.max(...outages) <= 1000 ? 'MET' : median(outages) <= 1000 ? 'MET by the median, not the worst' : 'NOT MET'}`);
  out(`   phases (medians, failover child): stop ${ms(m((x) => x.phases.stopMs))}  sync ${ms(m((x) => x.phases.syncMs))}  lease-wait ${ms(m((x) => x.phases.leaseWaitMs))}  start ${ms(m((x) => x.phases.startMs))}  total ${ms(m((x) => x.phases.totalMs))} ms`);
  out(`   before the outage: resync ${ms(m((x) => x.resyncMs))} ms (median); whole CLI call ${ms(m((x) => x.cliMs))} ms`);
  out(`   after it: the old owner's first pull as a standby came ${r.map((x) => (x.standbyPullAfterMs === undefined ? '>90000' : ms(x.standbyPullAfterMs))).join(', ')} ms after each switchover`);
}
if (errors.length > 0) {
  out(`\nFAILED: ${errors.map((e) => e.split('\n')[0]).join('; ')}`);
  process.exit(1);
}
process.exit(0);
