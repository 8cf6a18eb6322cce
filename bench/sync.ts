/**
 * Data benchmark: what file-set replication costs, in the network lab (test/lab).
 *
 * 1. throughput: a resync of an empty standby copy (the `resync` workflow, timed from its
 *    start to its result) against plain `rsync -a` pulling the same data from the same
 *    daemon (the owner's agent's) into a scratch directory of the same host. Medians of the
 *    runs, order rotated, and the ratio product/plain; also rsync with the pull's own arguments
 *    (what its safety options cost, apart from the workflow). Once per data set (small files only, large
 *    files only, or both mixed).
 * 2. lag: a small file written on the owner's copy every 300 ms; how long until it is in the
 *    standby's copy (polled every 5 ms from the root side), and the lag the agent reports.
 * 3. switchover: `haoscar switchover web --to OTHER`, back and forth, while a client polls the
 *    service through the VIP every 20 ms: the client-observed outage of each move (the longest
 *    gap between successful answers, one prober per run), and the failover child's phases.
 *
 * Parts 2 and 3 use the product's default timing (heartbeat 150ms/600ms, lease 600ms + 100ms,
 * file-set batch 200ms unless --batch); part 1 a longer heartbeat deadtime and lease
 * (THROUGHPUT_TIMING), which it does not measure.
 *
 * Usage: tsx bench/sync.ts [--part throughput|lag|switchover|all] [--runs N] [--data small,large,mixed]
 *          [--files N] [--file-mib N] [--small N] [--writes N] [--every-ms N] [--batch DURATION]
 * Needs root (network namespaces). See bench/README.md.
 */
import { parseArgs } from 'node:util';
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { WorkflowIdConflictPolicy, type WorkflowHandle } from '@temporalio/client';
import { NetLab } from '../test/lab/netlab.js';
import { LabCluster, GROUP, type ClusterData, type ClusterTiming } from '../test/lab/cluster.js';
import { waitFor } from '../test/support/wait.js';
import { loadConfig } from '../src/config/load.js';
import { moduleName, pullSourceFor, rsyncPullArgs } from '../src/sync/rsync.js';
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
    small: { type: 'string', default: '10000' },
    data: { type: 'string', default: 'small,large' },
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
const DATA_SETS = ['small', 'large', 'mixed'] as const;
type DataSet = (typeof DATA_SETS)[number];
const dataSets = [...new Set(opts.data.split(','))] as DataSet[];
if (dataSets.some((d) => !DATA_SETS.includes(d))) throw new Error(`--data must be a comma-separated list of small, large and mixed (got '${opts.data}')`);
const FILES = intOption('files', opts.files, 0);
const FILE_MIB = intOption('file-mib', opts['file-mib'], 1);
const SMALL = intOption('small', opts.small, 0);
const WRITES = intOption('writes', opts.writes, 1);
const EVERY_MS = intOption('every-ms', opts['every-ms'], 10);
if (opts.batch !== undefined && !/^\d+(ms|s)$/.test(opts.batch)) throw new Error(`--batch must be a duration such as 200ms or 1s (got '${opts.batch}')`);
if (dataSets.some((d) => (d !== 'small' && FILES === 0) || (d !== 'large' && SMALL === 0))) throw new Error('a data set of --data has no files (--files or --small is 0)');

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

/** A lab with the cluster of test/lab/cluster.ts and the product's default timing (unless `timing`); `fn` runs with it started. */
async function withCluster<T>(what: string, data: ClusterData, fn: (lab: NetLab, cluster: LabCluster) => Promise<T>, timing: ClusterTiming = {}): Promise<T> {
  log(`\n== ${what}: building the lab (${Object.keys(timing).length === 0 ? 'product default timing' : JSON.stringify(timing)})`);
  // Kept for a look at the logs when something fails (HAOSCAR_LAB_KEEP=1 keeps every one).
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true, keepDir: true });
  const cluster = new LabCluster(lab, timing, data);
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

/**
 * plain: `rsync -a` (the goal's reference); args: rsync with the arguments the agent's pull
 * uses (rsyncPullArgs: --delay-updates, --hard-links, --backup-dir ...), which tells the cost of
 * those from the cost of the workflow around the pull; product: the resync workflow.
 */
const KINDS = ['plain', 'args', 'product'] as const;

interface ThroughputRun {
  kind: (typeof KINDS)[number];
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
  /** Of beforeMs: the first workflow task scheduled → picked up by the worker. */
  firstTaskQueueMs: number;
  /** resyncGroup scheduled → started (the activity task in the node's queue). */
  queueMs: number;
  /** resyncGroup started → completed (the node's agent pulling). */
  execMs: number;
  /** resyncGroup completed → workflow completed. */
  afterMs: number;
  /** Workflow started → completed, by the server's clock (the rest of the wall time is the client's calls). */
  totalMs: number;
  /** Workflow tasks in its history. */
  tasks: number;
}

function resyncSplit(events: readonly HistoryEvent[]): ResyncSplit {
  const started = events.find((e) => e.workflowExecutionStartedEventAttributes);
  const firstTask = events.find((e) => e.workflowTaskStartedEventAttributes);
  const scheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'resyncGroup');
  const id = String(scheduled?.eventId ?? '');
  const actStarted = events.find((e) => String(e.activityTaskStartedEventAttributes?.scheduledEventId ?? '') === id);
  const actDone = events.find((e) => String(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? '') === id);
  const done = events.find((e) => e.workflowExecutionCompletedEventAttributes);
  return {
    beforeMs: eventMs(scheduled) - eventMs(started),
    firstTaskQueueMs: eventMs(firstTask) - eventMs(started),
    queueMs: eventMs(actStarted) - eventMs(scheduled),
    execMs: eventMs(actDone) - eventMs(actStarted),
    afterMs: eventMs(done) - eventMs(actDone),
    totalMs: eventMs(done) - eventMs(started),
    tasks: events.filter((e) => e.workflowTaskStartedEventAttributes).length,
  };
}

interface Throughput {
  data: DataSet;
  /** Small files, big files. */
  small: number;
  big: number;
  files: number;
  bytes: number;
  runs: ThroughputRun[];
  /** The 1-minute load average before and after this data set's runs. */
  load: [number, number];
}

async function generateData(dir: string, data: DataSet): Promise<{ small: number; big: number }> {
  const big = data === 'small' ? 0 : FILES;
  const small = data === 'large' ? 0 : SMALL;
  for (let i = 0; i < big; i++) await writeFile(join(dir, `big-${i}.bin`), randomBytes(FILE_MIB * MIB));
  for (let i = 0; i < small; i++) {
    const sub = join(dir, 'small', `d${String(Math.floor(i / PER_DIR)).padStart(3, '0')}`);
    if (i % PER_DIR === 0) await mkdir(sub, { recursive: true });
    await writeFile(join(sub, `f${String(i).padStart(5, '0')}.dat`), randomBytes(256 + Math.floor(Math.random() * 3840)));
  }
  return { small, big };
}

/**
 * The throughput lab's timing: what it measures (a resync, rsync) does not depend on the
 * heartbeat or the lease, and on a loaded machine the product's defaults (deadtime 600 ms, lease
 * 600 ms) let the group move during the runs (seen with a load average of 13 on 2 cores): the
 * standby then pulls on its own, beside the measured copies.
 */
const THROUGHPUT_TIMING: ClusterTiming = { heartbeat: { interval: '250ms', deadtime: '3s' }, lease: { ttl: '8s', margin: '300ms' } };

async function throughput(): Promise<Throughput[]> {
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
    const results: Throughput[] = [];
    let workflowRun = 0;

    for (const data of dataSets) {
      await emptyDir(source);
      log(`   ${data}: writing ${data === 'small' ? 0 : FILES} x ${FILE_MIB} MiB + ${data === 'large' ? 0 : SMALL} small files on n1`);
      const counts = await generateData(source, data);
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
      const set = config.groups.find((g) => g.name === GROUP)!.fileSets.find((f) => f.name === SET)!;
      const argsBackup = join(lab.dir, 'hosts', 'n2', 'scratch-backup');
      const args = async (): Promise<ThroughputRun> => {
        await emptyDir(scratch);
        await rm(argsBackup, { recursive: true, force: true });
        await flush();
        const argv = rsyncPullArgs({
          set: { ...set, checksum: false },
          source: pullSourceFor(config.sync, { host: lab.address('n1'), group: GROUP, set: SET, index: 0, path: set.paths[0]!, passwordFile }),
          destination: scratch,
          backupDir: argsBackup,
        });
        const t = performance.now();
        await lab.run('n2', [config.sync.rsync, ...argv], { timeoutMs: 600_000 });
        const run: ThroughputRun = { kind: 'args', ms: performance.now() - t };
        await check(scratch, "rsync with the pull's arguments");
        return run;
      };
      const product = async (i: number): Promise<ThroughputRun> => {
        await emptyDir(target);
        await flush();
        const t = performance.now();
        const handle = await cluster.client.workflow.start('resync', {
          workflowId: resyncWorkflowId(cluster.cluster, GROUP, 'n2'),
          taskQueue: clusterTaskQueue(cluster.cluster),
          args: [{ cluster: cluster.cluster, group: GROUP, node: 'n2', reason: `bench: throughput ${data} run ${i + 1}` }],
          workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
        });
        const result = (await handle.result()) as ResyncResult;
        const run: ThroughputRun = { kind: 'product', ms: performance.now() - t, activityMs: result.durationMs, split: resyncSplit((await handle.fetchHistory()).events ?? []) };
        await check(target, 'resync');
        return run;
      };

      const held = await cluster.ownership();
      const heldBy = `${held?.groups[GROUP]?.owner ?? 'nobody'} at epoch ${held?.groups[GROUP]?.epoch ?? '?'}`;
      /** A run in which the group moved is not a measure of a copy: the standby pulls on its own then. */
      const unmoved = async (what: string) => {
        const now = await cluster.ownership();
        const nowBy = `${now?.groups[GROUP]?.owner ?? 'nobody'} at epoch ${now?.groups[GROUP]?.epoch ?? '?'}`;
        if (nowBy !== heldBy) throw new Error(`${what}: the group moved during the run (held by ${heldBy}, now ${nowBy}): the machine is too loaded for this lab's timing; nothing measured is kept`);
      };
      if (held?.groups[GROUP]?.owner !== 'n1') throw new Error(`the group is held by ${heldBy}, not n1`);
      const load0 = loadavg()[0]!;
      const runs: ThroughputRun[] = [];
      for (let i = 0; i < THROUGHPUT_RUNS; i++) {
        // Rotated, so that none always runs first after another's writes.
        for (let j = 0; j < KINDS.length; j++) {
          const kind = KINDS[(i + j) % KINDS.length]!;
          const run = kind === 'plain' ? await plain() : kind === 'args' ? await args() : await product(workflowRun++);
          await unmoved(`${data} run ${i + 1} ${kind}`);
          runs.push(run);
          const sp = run.split;
          log(`   ${data} run ${i + 1} ${kind.padEnd(7)}: ${ms(run.ms)} ms, ${(want.bytes / MIB / (run.ms / 1000)).toFixed(1)} MiB/s${sp ? ` (history: checks ${ms(sp.beforeMs)} [first task queued ${ms(sp.firstTaskQueueMs)}], ${sp.tasks} workflow tasks, queued ${ms(sp.queueMs)}, activity ${ms(sp.execMs)} [its own ${run.activityMs} ms], to the end ${ms(sp.afterMs)}; client ${ms(run.ms - sp.totalMs)})` : ''}`);
        }
      }
      await emptyDir(scratch);
      await rm(argsBackup, { recursive: true, force: true });
      results.push({ data, ...counts, ...want, runs, load: [load0, loadavg()[0]!] });
    }
    return results;
  }, THROUGHPUT_TIMING);
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

const results: { throughput?: Throughput[]; lag?: Lag; switchover?: SwitchRun[] } = {};
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
for (const r of results.throughput ?? []) {
  const mibs = (kind: ThroughputRun['kind']) => r.runs.filter((x) => x.kind === kind).map((x) => r.bytes / MIB / (x.ms / 1000));
  const plain = median(mibs('plain'));
  const product = median(mibs('product'));
  const args = median(mibs('args'));
  const n = r.runs.length / KINDS.length;
  out(`\n1. Resync of an empty copy, n1 → n2 (lab timing ${JSON.stringify(THROUGHPUT_TIMING)}), ${r.data} files: ${r.files} files, ${(r.bytes / MIB).toFixed(1)} MiB (${r.big} x ${FILE_MIB} MiB + ${r.small} small); medians of ${n} runs each, order rotated; load average ${r.load[0].toFixed(2)} before, ${r.load[1].toFixed(2)} after`);
  out('                          MiB/s   (runs)                   median time');
  out(`   plain rsync -a         ${plain.toFixed(1).padStart(6)}   (${mibs('plain').map((x) => x.toFixed(1)).join(', ')})   ${ms(median(r.runs.filter((x) => x.kind === 'plain').map((x) => x.ms)))} ms`);
  out(`   rsync, pull's arguments${args.toFixed(1).padStart(6)}   (${mibs('args').map((x) => x.toFixed(1)).join(', ')})   ${ms(median(r.runs.filter((x) => x.kind === 'args').map((x) => x.ms)))} ms`);
  out(`   resync workflow        ${product.toFixed(1).padStart(6)}   (${mibs('product').map((x) => x.toFixed(1)).join(', ')})   ${ms(median(r.runs.filter((x) => x.kind === 'product').map((x) => x.ms)))} ms (activity ${ms(median(r.runs.flatMap((x) => (x.activityMs === undefined ? [] : [x.activityMs]))))} ms)`);
  out(`   ratio product/plain    ${(product / plain).toFixed(2).padStart(6)}   goal >= 0.95: ${product / plain >= 0.95 ? 'MET' : 'NOT MET'}   (product/pull's arguments ${(product / args).toFixed(2)}, pull's arguments/plain ${(args / plain).toFixed(2)})`);
  const splits = r.runs.flatMap((x) => (x.split ? [x.split] : []));
  const sm = (f: (x: ResyncSplit) => number) => ms(median(splits.map(f)));
  const execRatio = median(r.runs.filter((x) => x.kind === 'plain').map((x) => x.ms)) / median(splits.map((x) => x.execMs));
  const client = median(r.runs.flatMap((x) => (x.split ? [x.ms - x.split.totalMs] : [])));
  out(`   resync, from its history (medians): checks ${sm((x) => x.beforeMs)} ms (of which the first task queued ${sm((x) => x.firstTaskQueueMs)} ms), activity queued ${sm((x) => x.queueMs)} ms, activity ${sm((x) => x.execMs)} ms, to the end ${sm((x) => x.afterMs)} ms; the client's calls ${ms(client)} ms; the activity alone vs plain: ${execRatio.toFixed(2)}`);
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
