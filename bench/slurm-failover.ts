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
 * many calls failed outright rather than waiting), the median and the worst.
 *
 * Usage: tsx bench/slurm-failover.ts [--runs N (>= 3, default 3)]
 * Needs root (network namespaces) and the packages of .ci/run's HPC block. Not run in CI.
 */
import { parseArgs } from 'node:util';
import { setUpSlurm, missingSlurmPrograms, sampleSqueue, queue, submit } from '../test/lab/slurm-head.js';
import { bootHost } from '../test/lab/host-boot.js';
import { waitFor } from '../test/support/wait.js';

const { values: opts } = parseArgs({ options: { runs: { type: 'string', default: '3' } }, strict: true });
const RUNS = Number(opts.runs);
if (!Number.isInteger(RUNS) || RUNS < 3) throw new Error(`--runs must be an integer >= 3 (got '${opts.runs}')`);
const missing = missingSlurmPrograms();
if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: apt-get install slurmctld slurmd slurm-client munge dnsmasq-base busybox`);

const cleanups: (() => Promise<void>)[] = [];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

try {
  const s = await setUpSlurm((fn) => cleanups.push(fn));
  const { lab, cluster } = s;
  const outages: number[] = [];
  for (let run = 1; run <= RUNS; run++) {
    const owner = (await cluster.group())!.owner!;
    const other = lab.hosts.find((h) => h !== owner)!;
    const job = await submit(s, `run${run}`, 60);
    await waitFor(`job ${job} running`, async () => ((await queue(s))?.get(String(job)) === 'R' ? true : undefined), 60_000, 200);
    const squeue = sampleSqueue(s);
    await waitFor('squeue answers', () => squeue.calls.some((c) => c.ok) || undefined, 30_000, 50);
    const killedAt = Date.now();
    await lab.killHost(owner);
    await cluster.waitForGroup((g) => g.owner === other && g.state === 'running', `${other} owns the group`, 120_000);
    await waitFor('squeue answers after the kill', () => squeue.calls.some((c) => c.ok && c.start > killedAt) || undefined, 120_000, 50);
    const { longestGapMs, failed } = await squeue.stop(killedAt);
    outages.push(longestGapMs);
    process.stdout.write(`run ${run}: ${owner} killed, ${other} took over; squeue without an answer for ${longestGapMs} ms (${failed} calls failed)\n`);
    await s.slurm(['/usr/bin/scancel', String(job)]);
    await bootHost(lab, cluster, owner);
    await waitFor(`${owner} up again`, async () => ((await cluster.ownership())?.nodes[owner]?.state === 'up' ? true : undefined), 120_000, 200);
  }
  process.stdout.write(`squeue outage over ${RUNS} failovers: median ${median(outages)} ms, worst ${Math.max(...outages)} ms (lab timing: lease ttl 4s)\n`);
} finally {
  for (const c of cleanups.reverse()) await c();
}
