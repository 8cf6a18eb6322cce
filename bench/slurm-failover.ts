/**
 * Slurm head-node failover benchmark (issue 13 item 2; docs/hpc.md): the Slurm controller's
 * client-observed outage, the time during which `squeue` through the VIP gets no answer, over
 * several failovers of the head node.
 *
 * The lab of test/lab/slurm-head.ts (Debian's slurmctld, munge and dnsmasq in the group of n1 and
 * n2, slurmd on c1, the client asking through the VIP). Each run: a job running on c1, `squeue`
 * every 200 ms from the client, the owner killed (link down, SIGKILL everything in its
 * namespace); measured until `squeue` answers from the other host; then the dead host boots again
 * (its lease guard, its link, its agent: test/lab/host-boot.ts) and the next run kills the new
 * owner. Printed: each run's outage (the longest time between two answers of `squeue`, and how
 * many calls failed outright rather than waiting), the median and the worst, the machine's load
 * during each run, and every move of the group the kills do not explain (a false failover: an
 * owner that lost its lease under load), with the agents' lease messages.
 *
 * Usage: tsx bench/slurm-failover.ts [--runs N (>= 3, default 3)] [--lease-ttl D (default 4s, the
 * lab's)] [--lease-margin D (default 150ms)]; the product's default lease: --lease-ttl 600ms
 * --lease-margin 100ms.
 * Needs root (network namespaces) and the packages of .ci/run's HPC block. Not run in CI.
 */
import { parseArgs } from 'node:util';
import { loadavg } from 'node:os';
import { execa } from 'execa';
import { setUpSlurm, missingSlurmPrograms, sampleSqueue, queue, submit } from '../test/lab/slurm-head.js';
import { bootHost } from '../test/lab/host-boot.js';
import { waitFor } from '../test/support/wait.js';
import { parseDuration } from '../src/config/duration.js';
import { median } from './stats.js';

const { values: opts } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, 'lease-ttl': { type: 'string', default: '4s' }, 'lease-margin': { type: 'string', default: '150ms' } },
  strict: true,
});
const RUNS = Number(opts.runs);
if (!Number.isInteger(RUNS) || RUNS < 3) throw new Error(`--runs must be an integer >= 3 (got '${opts.runs}')`);
// Checked here for a clear message; the agents' configuration loader checks the bounds.
for (const key of ['lease-ttl', 'lease-margin'] as const) {
  if (parseDuration(opts[key]) === undefined) throw new Error(`--${key} must be a duration such as 600ms or 4s (got '${opts[key]}')`);
}
const LEASE = { ttl: opts['lease-ttl'], margin: opts['lease-margin'] };
const missing = missingSlurmPrograms();
if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: apt-get install slurmctld slurmd slurm-client munge dnsmasq-base busybox`);

const cleanups: (() => Promise<void>)[] = [];

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
/** The busiest processes of the machine (this benchmark's lab among them), for the report. */
async function busiest(): Promise<string> {
  const ps = await execa('ps', ['-eo', 'pcpu,args', '--sort=-pcpu'], { reject: false });
  return ps.stdout.split('\n').slice(1, 7).map((l) => `    ${l.trim().slice(0, 140)}`).join('\n');
}
/** The agents' lines about lost leases and released groups (a false failover's trace). */
const LEASE_TROUBLE = /lease has expired|released the group at its deadline|lease guard is not running|lost its lease|could not renew|not confirmed/i;

/** The figures, the group's moves and the agents' lease messages: after the runs, or after a failure. */
let report = async (): Promise<void> => undefined;
// The poll of the group's moves (below); stopped before the lab's cleanup closes its client.
let watching = true;
let watcher: Promise<void> | undefined;
/** The run's `squeue` sampler while it runs; stopped before the cleanup on a failure. */
let sampler: ReturnType<typeof sampleSqueue> | undefined;
let kills = 0;
try {
  process.stdout.write(`lease ttl ${LEASE.ttl}, margin ${LEASE.margin}; load average at the start ${load()}; busiest processes:\n${await busiest()}\n`);
  const s = await setUpSlurm((fn) => cleanups.push(fn), { lease: LEASE });
  const { lab, cluster } = s;
  // Every change of the group's epoch or owner, polled; a kill explains exactly one.
  const moves: { at: number; epoch: number; owner: string | null; state: string }[] = [];
  watcher = (async () => {
    while (watching) {
      const g = await cluster.group();
      const last = moves.at(-1);
      if (g && (!last || last.epoch !== g.epoch || last.owner !== g.owner)) moves.push({ at: Date.now(), epoch: g.epoch, owner: g.owner, state: g.state });
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const outages: number[] = [];
  const loads: string[] = [];
  report = async () => {
    watching = false;
    await watcher;
    process.stdout.write(`squeue outage over ${RUNS} failovers: median ${median(outages)} ms, worst ${Math.max(...outages)} ms (lease ttl ${LEASE.ttl}, margin ${LEASE.margin}; load averages after each kill: ${loads.join(' | ')})\n`);
    // The first epoch is the start on n1; each kill makes one more (a failover); any other is a move
    // no kill explains.
    const extra = new Set(moves.map((m) => m.epoch)).size - 1 - kills;
    process.stdout.write(`group moves seen: ${moves.map((m) => `epoch ${m.epoch} ${m.owner ?? '-'} (${m.state})`).join(' -> ')}\n`);
    process.stdout.write(extra > 0 ? `FALSE FAILOVERS: ${extra} epoch(s) of the group besides the ${kills} kills\n` : `no false failover: ${kills} new epochs for ${kills} kills\n`);
    for (const h of lab.hosts) {
      const trouble = (await cluster.agentLog(h)).split('\n').filter((l) => LEASE_TROUBLE.test(l));
      process.stdout.write(`${h}'s agent: ${trouble.length} lease message(s)${trouble.length ? `:\n${trouble.slice(-8).map((l) => `    ${l.slice(0, 300)}`).join('\n')}` : ''}\n`);
    }
    process.stdout.write(`load average at the end ${load()}; busiest processes:\n${await busiest()}\n`);
  };
  for (let run = 1; run <= RUNS; run++) {
    const owner = (await cluster.group())!.owner!;
    const other = lab.hosts.find((h) => h !== owner)!;
    const job = await submit(s, `run${run}`, 60);
    await waitFor(`job ${job} running`, async () => ((await queue(s))?.get(String(job)) === 'R' ? true : undefined), 60_000, 200);
    const squeue = (sampler = sampleSqueue(s));
    await waitFor('squeue answers', () => squeue.calls.some((c) => c.ok) || undefined, 30_000, 50);
    const killedAt = Date.now();
    await lab.killHost(owner);
    kills += 1;
    await cluster.waitForGroup((g) => g.owner === other && g.state === 'running', `${other} owns the group`, 120_000);
    await waitFor('squeue answers after the kill', () => squeue.calls.some((c) => c.ok && c.start > killedAt) || undefined, 120_000, 50);
    const { longestGapMs, failed } = await squeue.stop(killedAt);
    sampler = undefined;
    outages.push(longestGapMs);
    loads.push(load());
    process.stdout.write(`run ${run}: ${owner} killed, ${other} took over; squeue without an answer for ${longestGapMs} ms (${failed} calls failed); load average ${load()}\n`);
    await s.slurm(['/usr/bin/scancel', String(job)]);
    await bootHost(lab, cluster, owner);
    await waitFor(`${owner} up again`, async () => ((await cluster.ownership())?.nodes[owner]?.state === 'up' ? true : undefined), 120_000, 200);
  }
  await report();
} catch (err) {
  process.stdout.write(`the benchmark stopped: ${(err as Error).message}\n`);
  process.exitCode = 1;
  await report().catch((e: unknown) => process.stdout.write(`(no report: ${String(e)})\n`));
} finally {
  watching = false;
  await watcher;
  await sampler?.stop(0);
  for (const c of cleanups.reverse()) await c();
}
