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
 * `--temporal postgres` runs the same against a production-shaped Temporal: two server processes
 * on PostgreSQL (scripts/temporal-postgres.sh, as test/lab/temporal-pg-failover.test.ts), the
 * agents given both frontends; `--temporal both` measures the dev server and that one in the same
 * run, one after the other, for a fair comparison on the same machine.
 *
 * Usage: tsx bench/failover.ts [--runs N (>= 5, default 5)] [--profile default|tuned|lab|both] [--temporal dev|postgres|both]
 * (`lab`: the lab tests' longer lease, for a loaded machine; `both`: default and tuned.)
 * Needs root (network namespaces); `postgres` needs a local PostgreSQL, the Temporal server and
 * temporal-sql-tool (as .ci/run sets up). See bench/README.md.
 */
import { parseArgs } from 'node:util';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetLab } from '../test/lab/netlab.js';
import { LabCluster, GROUP, type ClusterTiming } from '../test/lab/cluster.js';
import { waitFor } from '../test/support/wait.js';
import { TemporalPg, temporalPgSkipReason } from '../test/lab/temporal-pg.js';
import { bootHost } from '../test/lab/host-boot.js';
import { failoverWorkflowId, type FailoverResult } from '../workflows/shared.js';
import { median } from './stats.js';

const { values: opts } = parseArgs({
  options: {
    runs: { type: 'string', default: '5' },
    profile: { type: 'string', default: 'both' },
    temporal: { type: 'string', default: 'dev' },
  },
  strict: true,
});
const RUNS = Number(opts.runs);
if (!Number.isInteger(RUNS) || RUNS < 5) throw new Error(`--runs must be an integer >= 5 (got '${opts.runs}')`);
if (!['default', 'tuned', 'lab', 'both'].includes(opts.profile!)) throw new Error(`--profile must be default, tuned, lab or both (got '${opts.profile}')`);
if (!['dev', 'postgres', 'both'].includes(opts.temporal!)) throw new Error(`--temporal must be dev, postgres or both (got '${opts.temporal}')`);
const TEMPORALS = opts.temporal === 'both' ? ['dev', 'postgres'] : [opts.temporal!];
if (TEMPORALS.includes('postgres')) {
  const why = temporalPgSkipReason();
  if (why) throw new Error(`--temporal postgres: ${why}`);
}

const PROFILES: Record<string, { timing: ClusterTiming; goalMs: number; what: string }> = {
  // The lab tests' timing (test/lab/failover-setup.ts): survives a loaded 2-core machine, where
  // lease confirmations take longer than the default 600 ms ttl.
  lab: {
    timing: { heartbeat: { interval: '100ms', deadtime: '500ms' }, lease: { ttl: '2s', margin: '150ms' }, failover: { verifyTimeout: '500ms' } },
    goalMs: 5000,
    what: 'the lab tests\' timing: heartbeat 100ms/500ms, lease 2s+150ms, verify 500ms',
  },
  default: { timing: {}, goalMs: 2000, what: 'product defaults: heartbeat 150ms/600ms, lease 600ms+100ms, verify 300ms' },
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
      const vip = await lab.sampleVip(lab.vip);
      const client = await lab.probe(cluster.url, { everyMs: 20, timeoutMs: 300 });
      // The owner as the client sees it, asked again at each poll: the group may move before the
      // kill (on a loaded machine a lease is lost and the group placed again, on the other node),
      // and a wait for the node that owned it a moment ago then never ends (two runs ended so).
      const owner = await waitFor('the client is served by the group\'s owner', async () => {
        const g = await cluster.group();
        return g?.state === 'running' && g.owner !== null && client.lastOk()?.host === g.owner ? g.owner : undefined;
      }, WAIT_MS, 50);
      const other = owner === 'n1' ? 'n2' : 'n1';
      await sleep(500);
      const killedAt = Date.now();
      await lab.killHost(owner);
      await waitFor(`the client is served by ${other}`, async () => (client.lastOk()?.host === other ? true : undefined), WAIT_MS, 20);
      await sleep(300);
      const seen = await client.stop();
      const arp = await lab.arpingAddress();
      // The dead host back (its stale VIP must not be live again), watched by the same sampler.
      await bootHost(lab, cluster, owner);
      await waitFor(`${owner} up again`, async () => ((await cluster.ownership())?.nodes[owner]?.state === 'up' ? true : undefined), WAIT_MS, 100);
      await sleep(1000);
      const samples = await vip.stop();
      const handle = cluster.client.workflow.getHandle(failoverWorkflowId(cluster.cluster, GROUP));
      // A failover that failed (on a loaded machine: a start whose check timed out) is counted
      // and reported, and the bench goes on once the controller has the group running again.
      let failed: string | undefined;
      const result = (await handle.result().catch((err: unknown) => {
        failed = err instanceof Error && err.cause instanceof Error ? err.cause.message : String(err);
        return undefined;
      })) as FailoverResult | undefined;
      const started = (await handle.describe()).startTime.getTime();
      const run: Run = {
        ...(failed ? { failed } : {}),
        outageMs: seen.longestGapMs,
        detectionMs: started - killedAt,
        phases: result?.phases ?? {},
        servedAfterMs: seen.firstOkAfter(killedAt)!.t - killedAt,
        dualSamples: samples.dualSamples.length,
        samples: samples.samples.length,
        dualPeriods: samples.dualPeriods.length + samples.errors.length,
        dualMs: samples.dualPeriods.reduce((ms, p) => ms + p.to - p.from, 0),
        arpAnswers: arp.answers.map((a) => a.host ?? a.mac),
      };
      runs.push(run);
      if (samples.errors.length > 0) process.stderr.write(`  the VIP sampler failed (counted as dual): ${samples.errors.join('; ')}\n`);
      if (failed) process.stderr.write(`  run ${i + 1}: the failover failed (logs in ${lab.dir}): ${failed}\n`);
      process.stderr.write(`  run ${i + 1}: ${owner} killed → outage ${Math.round(run.outageMs)} ms (detection ${run.detectionMs}, verify ${run.phases.verifyMs}, lease wait ${run.phases.leaseWaitMs}, start ${run.phases.startMs}), dual: ${run.dualPeriods} periods (${Math.round(run.dualMs)} ms), ${run.dualSamples}/${run.samples} samples; ARP answered by ${run.arpAnswers.join('+') || 'nobody'}\n`);
    }
    if (runs.every((r) => !r.failed)) await rm(lab.dir, { recursive: true, force: true });
  } finally {
    await cluster.close();
    await pg?.close();
    await lab.close();
  }
  return runs;
}

const results: [string, Run[]][] = [];
for (const temporal of TEMPORALS) {
  for (const name of opts.profile === 'both' ? ['default', 'tuned'] : [opts.profile!]) {
    results.push([TEMPORALS.length > 1 || temporal !== 'dev' ? `${temporal}/${name}` : name, await runProfile(name, temporal)]);
  }
}

process.stdout.write(`\nFailover on node death, ${RUNS} runs per profile (ms; client polls the VIP every 20 ms)\n`);
process.stdout.write(`${TEMPORALS.length > 1 ? '(dev: the Temporal dev server; postgres: two Temporal server processes on PostgreSQL)\n' : ''}profile   outage median  worst  goal | detection  verify  lease-wait  start  total(wf) | served-after | dual periods (ms), samples | ARP dup | failed\n`);
for (const [name, runs] of results) {
  const m = (f: (r: Run) => number | undefined) => median(runs.map(f).filter((x): x is number => x !== undefined));
  const outages = runs.map((r) => r.outageMs);
  process.stdout.write(
    `${name.padEnd(9)} ${fmt(median(outages))}        ${fmt(Math.max(...outages))} ${fmt(PROFILES[name.split('/').at(-1)!]!.goalMs)} | ${fmt(m((r) => r.detectionMs))}    ${fmt(m((r) => r.phases.verifyMs))}  ${fmt(m((r) => r.phases.leaseWaitMs))}      ${fmt(m((r) => r.phases.startMs))} ${fmt(m((r) => r.phases.totalMs))}    | ${fmt(m((r) => r.servedAfterMs))}       | ${runs.reduce((s, r) => s + r.dualPeriods, 0)} (${Math.round(runs.reduce((s, r) => s + r.dualMs, 0))}), ${runs.reduce((s, r) => s + r.dualSamples, 0)} of ${runs.reduce((s, r) => s + r.samples, 0)} | ${runs.filter((r) => r.arpAnswers.length > 1).length}       | ${runs.filter((r) => r.failed).length}\n`,
  );
}
process.stdout.write('(dual: two LIVE holders of the VIP, from before the kill until the dead host was back up; a dead host keeps its addresses but reaches nobody. ARP dup: runs in which two or more MACs answered the client’s ARP for the VIP)\n');
process.stdout.write('(phases: medians over the runs, from the failover workflow: detection = kill → failover started; lease-wait counts from when the owner was suspected, overlapping verification)\n');
if (TEMPORALS.length > 1) {
  // The same profile on both: the PostgreSQL-backed Temporal's outage over the dev server's.
  for (const [name, runs] of results.filter(([n]) => n.startsWith('dev/'))) {
    const other = results.find(([n]) => n === name.replace(/^dev\//, 'postgres/'))?.[1];
    if (other) process.stdout.write(`${name.slice(4)}: outage median postgres/dev = ${(median(other.map((r) => r.outageMs)) / median(runs.map((r) => r.outageMs))).toFixed(2)}\n`);
  }
}
process.stdout.write('(failed: runs whose failover workflow failed; their outage is what the client saw until the group was served again)\n');
const bad = results.some(([, runs]) => runs.some((r) => r.failed || r.dualSamples > 0 || r.dualPeriods > 0 || r.arpAnswers.length > 1));
process.exit(bad ? 1 : 0);
