/**
 * Idle cost benchmark (issue 14 item 5): what a healthy two-node cluster costs while nothing
 * happens. The network lab of the failover tests (test/lab): two hosts with real agents (each with
 * its lease guard, a bash script), the VIP and a real HTTP service, the dev server and the workflow
 * worker on the root side. Once the group runs and both agents are up, and nothing has been written
 * to Temporal for a few seconds, it reads each process's CPU time (utime + stime, and those of the
 * children it reaped: an `ip` or a check it ran is its cost) and RSS from /proc at the start and the
 * end of each window, and the history events written in the window (they must be 0; the test is
 * test/lab/idle-history.test.ts).
 *
 * Usage: tsx bench/idle.ts [--seconds S (>= 10, default 60)] [--runs N (>= 3, default 3)] [--profile default|lab]
 * (`default`: the product's timing, heartbeat every 150 ms, lease confirmed every 200 ms;
 * `lab`: the lab tests' 2 s lease). Prints each window and the medians. Needs root. Not run by CI.
 */
import { parseArgs } from 'node:util';
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetLab } from '../test/lab/netlab.js';
import { LabCluster, type ClusterTiming } from '../test/lab/cluster.js';
import { namespacePids } from '../test/lab/commands.js';
import { eventsWritten, historyLengths, settledHistoryLengths } from '../test/support/history-growth.js';
import { median } from './stats.js';

const { values: opts } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    runs: { type: 'string', default: '3' },
    profile: { type: 'string', default: 'default' },
  },
  strict: true,
});
const SECONDS = Number(opts.seconds);
const RUNS = Number(opts.runs);
if (!Number.isFinite(SECONDS) || SECONDS < 10) throw new Error(`--seconds must be a number >= 10 (got '${opts.seconds}')`);
if (!Number.isInteger(RUNS) || RUNS < 3) throw new Error(`--runs must be an integer >= 3 (got '${opts.runs}')`);
const PROFILES: Record<string, ClusterTiming> = {
  default: {},
  lab: { heartbeat: { interval: '100ms', deadtime: '500ms' }, lease: { ttl: '2s', margin: '150ms' }, failover: { verifyTimeout: '500ms' } },
};
const timing = PROFILES[opts.profile!];
if (!timing) throw new Error(`--profile must be default or lab (got '${opts.profile}')`);

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ: 100 on every Linux this runs on). */
const TICKS = 100;

interface Sample {
  cpuTicks: number;
  /** Of cpuTicks, the children's it reaped (commands it ran). */
  childTicks: number;
  rssKb: number;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

function sample(pid: number): Sample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command's closing parenthesis: state is field 3, utime 14 ... cstime 17.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const cpuTicks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
    const childTicks = Number(fields[13]) + Number(fields[14]);
    const rss = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return { cpuTicks, childTicks, rssKb: rss ? Number(rss[1]) : 0 };
  } catch {
    return undefined;
  }
}

/** The processes measured, by role: each agent and lease guard by host, the worker, the dev server. */
function processes(cluster: LabCluster): Map<string, number> {
  const found = new Map<string, number>();
  for (const host of cluster.lab.hosts) {
    for (const pid of namespacePids(cluster.lab.ns(host))) {
      const line = cmdline(pid);
      if (line.includes('haoscar-guard')) found.set(`guard ${host}`, pid);
      else if (/haoscar\.js agent /.test(line) && !line.startsWith('/bin/sh') && !line.includes('with-cgroup')) found.set(`agent ${host}`, pid);
    }
  }
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    const line = cmdline(Number(entry));
    if (/haoscar\.js worker /.test(line) && line.includes(cluster.configFile)) found.set('worker', Number(entry));
    const port = cluster.frontends[0]?.split(':').at(-1);
    if (line.includes('start-dev') && port && line.includes(`--port ${port}`)) found.set('dev server', Number(entry));
  }
  return found;
}

const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: false });
const cluster = new LabCluster(lab, timing);
const stop = async () => {
  await cluster.close();
  await lab.close();
};
process.once('SIGINT', () => void stop().then(() => process.exit(130)));
try {
  process.stderr.write(`idle bench: profile ${opts.profile}, ${RUNS} windows of ${SECONDS} s; starting the lab\n`);
  await cluster.start();
  let before = await settledHistoryLengths(cluster.client);
  const pids = processes(cluster);
  for (const role of ['agent n1', 'agent n2', 'guard n1', 'guard n2', 'worker', 'dev server']) {
    if (!pids.has(role)) throw new Error(`could not find the ${role} process (found: ${[...pids.keys()].join(', ')})`);
  }
  const cpu = new Map<string, number[]>();
  const childCpu = new Map<string, number[]>();
  const rss = new Map<string, number[]>();
  const events: number[] = [];
  for (let run = 1; run <= RUNS; run++) {
    const start = new Map([...pids].map(([role, pid]) => [role, sample(pid)]));
    const started = performance.now();
    await sleep(SECONDS * 1000);
    const tookS = (performance.now() - started) / 1000;
    const after = await historyLengths(cluster.client);
    const written = await eventsWritten(cluster.client, before, after);
    before = after;
    events.push(written.reduce((n, w) => n + w.events.length, 0));
    const line: string[] = [];
    for (const [role, pid] of pids) {
      const a = start.get(role);
      const b = sample(pid);
      if (!a || !b) throw new Error(`the ${role} process (pid ${pid}) exited during the window`);
      const percent = ((b.cpuTicks - a.cpuTicks) / TICKS / tookS) * 100;
      cpu.set(role, [...(cpu.get(role) ?? []), percent]);
      childCpu.set(role, [...(childCpu.get(role) ?? []), ((b.childTicks - a.childTicks) / TICKS / tookS) * 100]);
      rss.set(role, [...(rss.get(role) ?? []), b.rssKb / 1024]);
      line.push(`${role} ${percent.toFixed(2)}%`);
    }
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    process.stdout.write(`window ${run}: ${line.join(', ')}; history events ${events.at(-1)}${written.length ? ` (${written.map((w) => `${w.run}: ${w.events.join(' ')}`).join('; ')})` : ''}; load ${load}\n`);
  }
  process.stdout.write(`\nmedians of ${RUNS} windows of ${SECONDS} s (profile ${opts.profile}; CPU in % of one core, RSS in MB):\n`);
  process.stdout.write(`${'process'.padEnd(12)} ${'CPU %'.padStart(7)} ${'of which commands it ran'.padStart(25)} ${'RSS MB'.padStart(8)}\n`);
  for (const role of pids.keys()) {
    process.stdout.write(`${role.padEnd(12)} ${median(cpu.get(role)!).toFixed(2).padStart(7)} ${median(childCpu.get(role)!).toFixed(2).padStart(25)} ${median(rss.get(role)!).toFixed(1).padStart(8)}\n`);
  }
  process.stdout.write(`history events per window: ${events.join(', ')} (must be 0)\n`);
  process.exitCode = events.some((n) => n > 0) ? 1 : 0;
} finally {
  await stop();
}
