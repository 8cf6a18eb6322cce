/**
 * Failover benchmark: the client-observed outage when the node that owns the group dies.
 *
 * The network lab (test/lab): two hosts with real agents, the VIP and a real HTTP service,
 * the dev server and the workflow worker on the root side, a client namespace that requests
 * the service through the VIP every 20 ms, and a sampler of who holds the VIP in every
 * namespace. Each run kills the owner (link down, SIGKILL everything in its namespace; its
 * addresses stay, the VIP included, as on a machine that lost power), waits until the client is
 * served by the other host, then boots the dead host again (its lease guard, its link, its
 * agent: test/lab/host-boot.ts); the next run kills the new owner. Reported per profile (the
 * product's defaults, and a tuned one): the median and worst outage (longest gap between
 * successful requests), the phases of each failover from its workflow history, and dual
 * ownership (must be 0): two LIVE holders of the VIP, in exact periods from the address events
 * and in 20 ms samples, from before the kill until the dead host is back up (its return
 * included), and the MACs that answer the client's ARP for the VIP after the failover.
 *
 * The baseline (`--baseline keepalived`, the default): per profile, Debian's keepalived in the
 * same lab, with the same client, VIP sampler, kill and bring-back: keepalived (VRRPv2, advert
 * 1 s for the default and lab profiles; VRRPv3, advert 0.1 s for the tuned one) moves the VIP in
 * front of the same service, running on both hosts (test/lab/keepalived.ts), and the ratio of the
 * outage medians HA-OSCAR/keepalived is printed.
 *
 * Phases of each failover, in the order they happen (the largest marked): detection (kill → the
 * failover workflow started; keepalived: kill → the VIP added on the new owner), verification,
 * lease wait, start (from the workflow), answer (the start's end, from the workflow history →
 * the client's first answer from the new owner; keepalived: the VIP added → that answer), and
 * `other`: what the kill → first answer time has beyond those (the workflow's own steps between
 * them: look-up, begin, claim, scheduling).
 *
 * `--temporal postgres` runs the same against a production-shaped Temporal: two server processes
 * on PostgreSQL (scripts/temporal-postgres.sh, as test/lab/temporal-pg-failover.test.ts), the
 * agents given both frontends; `--temporal both` measures the dev server and that one in the same
 * run, one after the other, for a fair comparison on the same machine.
 *
 * Usage: tsx bench/failover.ts [--runs N (>= 5, default 5)] [--profile default|tuned|lab|both] [--temporal dev|postgres|both] [--baseline keepalived|none]
 * (`lab`: the lab tests' longer lease, for a loaded machine; `both`: default and tuned.)
 * Needs root (network namespaces); `postgres` needs a local PostgreSQL, the Temporal server and
 * temporal-sql-tool (as .ci/run sets up); `keepalived` needs Debian's keepalived. See bench/README.md.
 */
import { parseArgs } from 'node:util';
import { rm } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetLab } from '../test/lab/netlab.js';
import { LabCluster, GROUP, type ClusterTiming } from '../test/lab/cluster.js';
import { waitFor } from '../test/support/wait.js';
import { TemporalPg, temporalPgSkipReason } from '../test/lab/temporal-pg.js';
import { bootHost } from '../test/lab/host-boot.js';
import { LabKeepalived, keepalivedSkipReason, type VrrpTiming } from '../test/lab/keepalived.js';
import type { Prober } from '../test/lab/prober.js';
import type { WorkflowHandle } from '@temporalio/client';
import { failoverWorkflowId, type FailoverResult } from '../workflows/shared.js';
import { median } from './stats.js';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    profile: { type: 'string', default: 'both' },
    temporal: { type: 'string', default: 'dev' },
    baseline: { type: 'string', default: 'keepalived' },
  },
  strict: true,
});
const RUNS = Number(opts.runs);
if (!Number.isInteger(RUNS) || RUNS < 5) throw new Error(`--runs must be an integer >= 5 (got '${opts.runs}')`);
if (!['default', 'tuned', 'lab', 'both'].includes(opts.profile!)) throw new Error(`--profile must be default, tuned, lab or both (got '${opts.profile}')`);
if (!['dev', 'postgres', 'both'].includes(opts.temporal!)) throw new Error(`--temporal must be dev, postgres or both (got '${opts.temporal}')`);
if (!['keepalived', 'none'].includes(opts.baseline!)) throw new Error(`--baseline must be keepalived or none (got '${opts.baseline}')`);
if (opts.baseline === 'keepalived') {
  const why = keepalivedSkipReason();
  if (why) throw new Error(`--baseline keepalived: ${why} (or --baseline none)`);
}
const TEMPORALS = opts.temporal === 'both' ? ['dev', 'postgres'] : [opts.temporal!];
if (TEMPORALS.includes('postgres')) {
  const why = temporalPgSkipReason();
  if (why) throw new Error(`--temporal postgres: ${why}`);
}

/** `vrrp`: keepalived's timing for the same profile (issue 14: VRRPv2 at 1 s against the defaults, VRRPv3 at 0.1 s against the tuned one). */
const PROFILES: Record<string, { timing: ClusterTiming; goalMs: number; what: string; vrrp: VrrpTiming }> = {
  // The lab tests' timing (test/lab/failover-setup.ts): survives a loaded 2-core machine, where
  // lease confirmations take longer than the default 600 ms ttl.
  lab: {
    timing: { heartbeat: { interval: '100ms', deadtime: '500ms' }, lease: { ttl: '2s', margin: '150ms' }, failover: { verifyTimeout: '500ms' } },
    goalMs: 5000,
    what: 'the lab tests\' timing: heartbeat 100ms/500ms, lease 2s+150ms, verify 500ms',
    vrrp: { version: 2, advertSeconds: 1 },
  },
  default: { timing: {}, goalMs: 2000, what: 'product defaults: heartbeat 150ms/600ms, lease 600ms+100ms, verify 300ms', vrrp: { version: 2, advertSeconds: 1 } },
  tuned: {
    timing: {
      heartbeat: { interval: '50ms', deadtime: '250ms' },
      // A shorter ttl loses leases on this 2-core lab machine: its confirmations (queries) take
      // up to 1.6 s while agents start (see the closing note of issue 3).
      lease: { ttl: '500ms', margin: '80ms' },
      failover: { verifyTimeout: '200ms' },
      check: 'interval: 100ms, timeout: 80ms, rise: 1, fall: 2',
    },
    goalMs: 1000,
    what: 'heartbeat 50ms/250ms, lease 500ms+80ms, verify 200ms, checks every 100ms',
    vrrp: { version: 3, advertSeconds: 0.1 },
  },
};

interface Run {
  /** Why the failover workflow failed (its phases are then unknown). */
  failed?: string;
  outageMs: number;
  /** Kill → the controller started the failover (heartbeat deadtime + the edge's delivery). */
  detectionMs: number;
  phases: Partial<FailoverResult['phases']>;
  /** Kill → the first answer through the VIP from the new owner. */
  servedAfterMs: number;
  /** Kill → the VIP added on the new owner (address events); undefined when the sampler saw no add. */
  vipUpMs?: number;
  /**
   * The workflow's own steps before the start, beyond verification and lease wait: failover
   * started → the first startResource scheduled (history), minus those (look-up, begin, claim).
   */
  otherMs?: number;
  /** The first startResource scheduled (history) → the VIP added on the new owner: the VIP's order reaching the agent, `ip addr add`. */
  startVipMs?: number;
  /**
   * The VIP added on the new owner → the client's first answer from it: ARP (the new owner's
   * gratuitous ARP, the client's cache) and, for HA-OSCAR, the service's start, which follows the
   * VIP's (keepalived's service runs on both hosts all along).
   */
  answerMs?: number;
  /** The start's end (the last startResource completed, history) → the first answer: negative when the client was served before the workflow heard. */
  startDoneToAnswerMs?: number;
  /** Runs of the group's failover workflow after this kill's, until the dead host was back (a failed start's re-placement, a lost lease). */
  laterOperations?: number;
  /** Samples with two live holders of the VIP. */
  dualSamples: number;
  samples: number;
  /** Periods with two live holders of the VIP (exact, from address events), and their length. */
  dualPeriods: number;
  dualMs: number;
  /** Hosts whose MAC answered the client's ARP for the VIP after the failover (two or more: a duplicate address). */
  arpAnswers: string[];
}

/**
 * How long each wait for a condition may take (the group running, the client served, the dead
 * host up again): generous, because the bench polls and goes on as soon as the condition holds;
 * on a loaded 2-core machine a fixed 30 s ended two runs early (issue 10). A failover slower
 * than this is reported as a failure.
 */
const WAIT_MS = 180_000;

const fmt = (ms: number | undefined) => (ms === undefined ? '     -' : `${Math.round(ms).toString().padStart(6)}`);

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;
type HistoryEvent = NonNullable<History['events']>[number];

function eventMs(e: HistoryEvent): number | undefined {
  const t = e.eventTime;
  return t ? Number(String(t.seconds ?? 0)) * 1000 + (t.nanos ?? 0) / 1e6 : undefined;
}

/** The failover's start phase in its history (server time): its first startResource scheduled, its last completed. */
function startSpan(events: readonly HistoryEvent[]): { begun?: number; ended?: number } {
  const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'startResource');
  const ids = new Set(scheduled.map((e) => String(e.eventId)));
  const done = events.filter((e) => ids.has(String(e.activityTaskCompletedEventAttributes?.scheduledEventId ?? '')));
  const begun = scheduled[0] ? eventMs(scheduled[0]) : undefined;
  const ended = done.length > 0 ? eventMs(done.at(-1)!) : undefined;
  return { ...(begun !== undefined ? { begun } : {}), ...(ended !== undefined ? { ended } : {}) };
}

/** What one kill measured that both HA-OSCAR and the baseline have. */
interface Kill {
  killedAt: number;
  owner: string;
  other: string;
  /** The first answer from the other host (request start). */
  firstAnswerAt: number;
  /** The VIP added on the other host after the kill (address events), if seen. */
  vipUpAt?: number;
  run: Omit<Run, 'detectionMs' | 'phases'>;
}

/**
 * One node death, the same for HA-OSCAR and the baseline: once `owner()` names the host that
 * serves the client, it is killed; the outage ends when the client is served by the other host;
 * then the client's ARP check, the dead host brought back (`bringBack`) until `backUp`,
 * a second more, and the VIP sampler's verdict (it watched throughout).
 */
async function killOnce(
  lab: NetLab,
  url: string,
  owner: (client: Prober) => Promise<string | undefined>,
  bringBack: (host: string) => Promise<void>,
  backUp: (host: string) => Promise<boolean>,
): Promise<Kill> {
  const vip = await lab.sampleVip(lab.vip);
  const client = await lab.probe(url, { everyMs: 20, timeoutMs: 300 });
  const killed = await waitFor('the client is served by the owner', () => owner(client), WAIT_MS, 50);
  const other = killed === 'n1' ? 'n2' : 'n1';
  await sleep(500);
  const killedAt = Date.now();
  await lab.killHost(killed);
  await waitFor(`the client is served by ${other}`, async () => (client.lastOk()?.host === other ? true : undefined), WAIT_MS, 20);
  await sleep(300);
  const seen = await client.stop();
  const arp = await lab.arpingAddress();
  // The dead host back (its stale VIP must not be live again), watched by the same sampler.
  await bringBack(killed);
  await waitFor(`${killed} up again`, async () => ((await backUp(killed)) ? true : undefined), WAIT_MS, 100);
  await sleep(1000);
  const samples = await vip.stop();
  if (samples.errors.length > 0) process.stderr.write(`  the VIP sampler failed (counted as dual): ${samples.errors.join('; ')}\n`);
  const firstAnswerAt = seen.results.find((r) => r.ok && r.t >= killedAt && r.host === other)?.t ?? seen.firstOkAfter(killedAt)!.t;
  const vipUpAt = samples.changes.find((c) => c.host === other && c.added && c.at >= killedAt)?.at;
  return {
    killedAt,
    owner: killed,
    other,
    firstAnswerAt,
    ...(vipUpAt !== undefined ? { vipUpAt } : {}),
    run: {
      outageMs: seen.longestGapMs,
      servedAfterMs: firstAnswerAt - killedAt,
      ...(vipUpAt !== undefined ? { vipUpMs: vipUpAt - killedAt } : {}),
      dualSamples: samples.dualSamples.length,
      samples: samples.samples.length,
      dualPeriods: samples.dualPeriods.length + samples.errors.length,
      dualMs: samples.dualPeriods.reduce((ms, p) => ms + p.to - p.from, 0),
      arpAnswers: arp.answers.map((a) => a.host ?? a.mac),
    },
  };
}

const ms = (x: number | undefined) => (x === undefined ? '-' : String(Math.round(x)));

function runLine(i: number, k: Kill, r: Run, baseline = false): string {
  const later = r.laterOperations ? `; ${r.laterOperations} more failover run(s) after it` : '';
  const phases = baseline
    ? `detection ${ms(r.detectionMs)}, VIP → answer ${ms(r.answerMs)}`
    : `detection ${ms(r.detectionMs)}, verify ${ms(r.phases.verifyMs)}, lease wait ${ms(r.phases.leaseWaitMs)}, other ${ms(r.otherMs)}, start → VIP ${ms(r.startVipMs)}, VIP → answer ${ms(r.answerMs)}; start (workflow) ${ms(r.phases.startMs)}, its end → answer ${ms(r.startDoneToAnswerMs)}${later}`;
  return `  run ${i + 1}: ${k.owner} killed → outage ${Math.round(r.outageMs)} ms, served after ${ms(r.servedAfterMs)} (${phases}), dual: ${r.dualPeriods} periods (${Math.round(r.dualMs)} ms), ${r.dualSamples}/${r.samples} samples; ARP answered by ${r.arpAnswers.join('+') || 'nobody'}\n`;
}

async function runProfile(name: string, temporal: string): Promise<Run[]> {
  const profile = PROFILES[name]!;
  process.stderr.write(`\n== ${name}, Temporal: ${temporal === 'dev' ? 'the dev server' : 'two server processes on PostgreSQL'}: ${profile.what}\n`);
  // Kept for a look at the logs (HAOSCAR_LAB_KEEP=1 keeps every one).
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true, keepDir: true });
  let pg: TemporalPg | undefined;
  const cluster = new LabCluster(lab, profile.timing, undefined, temporal === 'postgres' ? {
    temporal: async () => {
      pg = await TemporalPg.start(lab.bridgeIp);
      return pg.frontends;
    },
  } : {});
  const runs: Run[] = [];
  try {
    await cluster.start();
    for (let i = 0; i < RUNS; i++) {
      await cluster.waitForGroup((g) => g.state === 'running' && g.owner !== null, 'the group running', WAIT_MS);
      const workflowId = failoverWorkflowId(cluster.cluster, GROUP);
      const kill = await killOnce(
        lab,
        cluster.url,
        // The owner as the client sees it, asked again at each poll: the group may move before the
        // kill (on a loaded machine a lease is lost and the group placed again, on the other node),
        // and a wait for the node that owned it a moment ago then never ends (two runs ended so).
        async (client) => {
          const g = await cluster.group();
          return g?.state === 'running' && g.owner !== null && client.lastOk()?.host === g.owner ? g.owner : undefined;
        },
        (host) => bootHost(lab, cluster, host),
        async (host) => (await cluster.ownership())?.nodes[host]?.state === 'up',
      );
      // This kill's failover: the first run of the group's failover workflow after the kill. On a
      // loaded machine more may follow under the same id (a failed start undone and the group
      // placed again, a lost lease): the latest run is not it, and the later ones are counted.
      const after: { runId: string; startedAt: number }[] = [];
      for await (const w of cluster.client.workflow.list({ query: `WorkflowId = "${workflowId}"` })) {
        if (w.startTime.getTime() >= kill.killedAt) after.push({ runId: w.runId, startedAt: w.startTime.getTime() });
      }
      after.sort((a, b) => a.startedAt - b.startedAt);
      const handle = cluster.client.workflow.getHandle(workflowId, after[0]?.runId);
      // A failover that failed (on a loaded machine: a start whose check timed out) is counted
      // and reported, and the bench goes on once the controller has the group running again.
      let failed: string | undefined;
      const result = (await handle.result().catch((err: unknown) => {
        failed = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
        return undefined;
      })) as FailoverResult | undefined;
      const started = (await handle.describe()).startTime.getTime();
      const start = startSpan((await handle.fetchHistory()).events ?? []);
      const phases: Partial<FailoverResult['phases']> = result?.phases ?? {};
      const run: Run = {
        ...(failed ? { failed } : {}),
        ...kill.run,
        detectionMs: started - kill.killedAt,
        phases,
        ...(start.begun !== undefined ? { otherMs: start.begun - started - (phases.verifyMs ?? 0) - (phases.leaseWaitMs ?? 0) } : {}),
        ...(start.begun !== undefined && kill.vipUpAt !== undefined ? { startVipMs: kill.vipUpAt - start.begun } : {}),
        ...(kill.vipUpAt !== undefined ? { answerMs: kill.firstAnswerAt - kill.vipUpAt } : {}),
        ...(start.ended !== undefined ? { startDoneToAnswerMs: kill.firstAnswerAt - start.ended } : {}),
        ...(after.length > 1 ? { laterOperations: after.length - 1 } : {}),
      };
      runs.push(run);
      if (failed) process.stderr.write(`  run ${i + 1}: the failover failed (logs in ${lab.dir}): ${failed}\n`);
      process.stderr.write(runLine(i, kill, run));
    }
    if (runs.every((r) => !r.failed)) await rm(lab.dir, { recursive: true, force: true });
  } finally {
    await cluster.close();
    await pg?.close();
    await lab.close();
  }
  return runs;
}

/**
 * The baseline: keepalived in the same lab, with the same client, sampler, kill and bring-back
 * (keepalived first, as the lease guard: a host whose link is down enters FAULT and removes
 * its VIPs; then the link; then the service), the VRRP timing of the profile.
 */
async function runKeepalived(name: string): Promise<Run[]> {
  const { vrrp } = PROFILES[name]!;
  process.stderr.write(`\n== ${name}, baseline: keepalived, VRRPv${vrrp.version}, advert_int ${vrrp.advertSeconds} s, both hosts BACKUP, priority 100, nopreempt\n`);
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true, keepDir: true });
  const keepalived = new LabKeepalived(lab, vrrp);
  const runs: Run[] = [];
  try {
    await keepalived.start();
    for (let i = 0; i < RUNS; i++) {
      const kill = await killOnce(
        lab,
        keepalived.url,
        async (client) => {
          const host = client.lastOk()?.host;
          return host !== undefined && (await keepalived.state(host)) === 'MASTER' ? host : undefined;
        },
        async (host) => {
          await keepalived.startKeepalived(host);
          await keepalived.waitForStartup(host, WAIT_MS);
          await lab.reviveHost(host);
          keepalived.startService(host);
        },
        async (host) => (await keepalived.state(host)) === 'BACKUP',
      );
      const run: Run = {
        ...kill.run,
        // Kill → the VIP on the new owner: the master-down timer (3 adverts + skew) and the transition.
        detectionMs: kill.run.vipUpMs ?? kill.run.servedAfterMs,
        phases: {},
        ...(kill.vipUpAt !== undefined ? { answerMs: kill.firstAnswerAt - kill.vipUpAt } : {}),
      };
      runs.push(run);
      process.stderr.write(runLine(i, kill, run, true));
    }
    await rm(lab.dir, { recursive: true, force: true });
  } finally {
    await lab.close();
  }
  return runs;
}

/** One row of the report: HA-OSCAR on a Temporal, or the baseline, for a profile. */
interface Result {
  label: string;
  profile: string;
  baseline: boolean;
  runs: Run[];
  /** The machine's 1-minute load average when the row's runs began and ended (the machine is shared). */
  load: [number, number];
  /** Why the row has no runs (on a loaded machine the tuned profile's cluster may not even start): the other rows are still measured. */
  error?: string;
}

async function measured(label: string, profile: string, baseline: boolean, runs: () => Promise<Run[]>): Promise<Result> {
  const before = loadavg()[0]!;
  try {
    return { label, profile, baseline, runs: await runs(), load: [before, loadavg()[0]!] };
  } catch (err) {
    const error = err instanceof Error ? err.message : String(err);
    process.stderr.write(`  ${label}: not measured: ${error}\n`);
    return { label, profile, baseline, runs: [], load: [before, loadavg()[0]!], error };
  }
}

const results: Result[] = [];
const profiles = opts.profile === 'both' ? ['default', 'tuned'] : [opts.profile!];
// Each profile's baseline right after HA-OSCAR's runs of it: the same load, as far as a shared machine allows.
for (const name of profiles) {
  for (const temporal of TEMPORALS) {
    results.push(await measured(TEMPORALS.length > 1 || temporal !== 'dev' ? `${temporal}/${name}` : name, name, false, () => runProfile(name, temporal)));
  }
  if (opts.baseline === 'keepalived') results.push(await measured(`keepalived/${name}`, name, true, () => runKeepalived(name)));
}

const sum = (runs: Run[], f: (r: Run) => number) => runs.reduce((s, r) => s + f(r), 0);
const medianOf = (runs: Run[], f: (r: Run) => number | undefined) => median(runs.map(f).filter((x): x is number => x !== undefined));
const width = Math.max(9, ...results.map((r) => r.label.length));

process.stdout.write(`\nFailover on node death, ${RUNS} runs per profile (ms; client polls the VIP every 20 ms)\n`);
if (TEMPORALS.length > 1) process.stdout.write('(dev: the Temporal dev server; postgres: two Temporal server processes on PostgreSQL)\n');
process.stdout.write(`${'profile'.padEnd(width)} outage median  worst  goal | served-after | dual periods (ms), samples | ARP dup | failed | load\n`);
for (const { label, profile, baseline, runs, load, error } of results) {
  if (error) {
    process.stdout.write(`${label.padEnd(width)} not measured: ${error} | load ${load.map((l) => l.toFixed(1)).join(' → ')}\n`);
    continue;
  }
  const outages = runs.map((r) => r.outageMs);
  process.stdout.write(
    `${label.padEnd(width)} ${fmt(median(outages))}        ${fmt(Math.max(...outages))} ${fmt(baseline ? undefined : PROFILES[profile]!.goalMs)} | ${fmt(medianOf(runs, (r) => r.servedAfterMs))}       | ${sum(runs, (r) => r.dualPeriods)} (${Math.round(sum(runs, (r) => r.dualMs))}), ${sum(runs, (r) => r.dualSamples)} of ${sum(runs, (r) => r.samples)} | ${runs.filter((r) => r.arpAnswers.length > 1).length}       | ${`${runs.filter((r) => r.failed).length}${sum(runs, (r) => r.laterOperations ?? 0) > 0 ? ` (+${sum(runs, (r) => r.laterOperations ?? 0)})` : ''}`.padEnd(6)} | ${load.map((l) => l.toFixed(1)).join(' → ')}\n`,
  );
}
process.stdout.write('(dual: two LIVE holders of the VIP, from before the kill until the dead host was back up; a dead host keeps its addresses but reaches nobody. ARP dup: runs in which two or more MACs answered the client’s ARP for the VIP)\n');

// Each phase's median, in the order the phases happen, the largest marked.
process.stdout.write('\nPhases, kill → first answer from the new owner (medians over the runs, ms; <<< the largest):\n');
for (const { label, baseline, runs } of results.filter((r) => !r.error)) {
  const phases: [string, number][] = baseline
    ? [
        ['detection (master-down timer → VIP added)', medianOf(runs, (r) => r.detectionMs)],
        ['ARP/first answer (VIP added → answer)', medianOf(runs, (r) => r.answerMs)],
      ]
    : [
        ['detection', medianOf(runs, (r) => r.detectionMs)],
        ['verify', medianOf(runs, (r) => r.phases.verifyMs)],
        ['lease wait', medianOf(runs, (r) => r.phases.leaseWaitMs)],
        ['other', medianOf(runs, (r) => r.otherMs)],
        ['start → VIP added', medianOf(runs, (r) => r.startVipMs)],
        ['service start + ARP/first answer (VIP added → answer)', medianOf(runs, (r) => r.answerMs)],
      ];
  const known = phases.filter(([, v]) => !Number.isNaN(v));
  const largest = Math.max(...known.map(([, v]) => v));
  const parts = phases.map(([what, v]) => `${what} ${Number.isNaN(v) ? '-' : Math.round(v)}${v === largest ? ' <<<' : ''}`);
  const workflowStart = baseline ? '' : `; start (workflow) ${Math.round(medianOf(runs, (r) => r.phases.startMs))}, its end → answer ${Math.round(medianOf(runs, (r) => r.startDoneToAnswerMs))}`;
  process.stdout.write(`${label.padEnd(width)} ${parts.join(' | ')} | = served after ${Math.round(medianOf(runs, (r) => r.servedAfterMs))}${workflowStart}\n`);
}
process.stdout.write('(HA-OSCAR: detection = kill → failover workflow started; verify and lease wait from its result (the lease wait is what was left of ttl + margin after the verification, which it overlaps); other = started → first startResource scheduled (history) minus those two: look-up, begin, claim; start → VIP added (address events); VIP added → the first answer: the service\'s start after the VIP, then ARP. The workflow\'s start phase ends after the first answer (its end → answer < 0): the service answers before its check has passed and been reported)\n');
for (const name of profiles) {
  const baseline = results.find((r) => r.baseline && r.profile === name && !r.error);
  if (!baseline) continue;
  const theirs = median(baseline.runs.map((r) => r.outageMs));
  for (const ours of results.filter((r) => !r.baseline && r.profile === name && !r.error)) {
    const mine = median(ours.runs.map((r) => r.outageMs));
    process.stdout.write(`${ours.label}: outage median HA-OSCAR/keepalived = ${(mine / theirs).toFixed(2)} (${Math.round(mine)} / ${Math.round(theirs)} ms; keepalived VRRPv${PROFILES[name]!.vrrp.version}, advert ${PROFILES[name]!.vrrp.advertSeconds} s)\n`);
  }
}
if (TEMPORALS.length > 1) {
  // The same profile on both: the PostgreSQL-backed Temporal's outage over the dev server's.
  for (const name of profiles) {
    const dev = results.find((r) => r.label === `dev/${name}`);
    const pg = results.find((r) => r.label === `postgres/${name}`);
    if (dev && pg && !dev.error && !pg.error) process.stdout.write(`${name}: outage median postgres/dev = ${(median(pg.runs.map((r) => r.outageMs)) / median(dev.runs.map((r) => r.outageMs))).toFixed(2)}\n`);
  }
}
process.stdout.write(`(failed: runs whose failover workflow (the first after the kill) failed, (+N): more failover runs after those, before the dead host was back; the outage is what the client saw until the group was served again. load: the 1-minute load average when the row's runs began → ended, on a machine of ${cpus().length} cores)\n`);
// HA-OSCAR's dual ownership fails the bench; the baseline's is reported, not the product's.
const bad = results.some(({ baseline, runs, error }) => error !== undefined || (!baseline && runs.some((r) => r.failed || r.dualSamples > 0 || r.dualPeriods > 0 || r.arpAnswers.length > 1)));
process.exit(bad ? 1 : 0);
