/**
 * Memory and CPU checks: what a process uses, read from /proc — Monit's `if totalmem > 2 GB`
 * and `if cpu > 80%`. The process is the one in a pid file, else the service's own supervised
 * process. Linux only.
 *
 * Memory is the resident set (VmRSS of /proc/PID/status), not the cgroup's memory.current:
 * HA-OSCAR's cgroups enable no controllers (src/cgroup.ts), so they have no memory.current, and
 * enabling the memory controller for a check would change how the kernel accounts and reclaims
 * the service's memory. memory.current also counts the page cache the service's file reads fill,
 * which the kernel drops on demand: a database reading its files would "grow past 2 GB" and be
 * restarted for nothing. VmRSS also works for processes in pid files, outside any cgroup of ours.
 */
import { readdir, readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatSize, trimNumber } from '../config/size.js';
import type { CheckContext, Probe, ProbeOutcome } from './check.js';
import { readPidFile } from './process.js';

/**
 * /proc reports CPU times in USER_HZ ticks (sysconf(_SC_CLK_TCK)), which the kernel fixes at
 * 100 on every architecture Node runs on, whatever its internal HZ.
 */
const USER_HZ = 100;
/** The longest the first run of a cpu check measures (it has no earlier sample to compare with). */
const FIRST_WINDOW_MAX_MS = 1000;

/** The process to measure: the pid file's, else the service's; or why there is none. */
export async function targetPid(pidFile: string | undefined, ctx: CheckContext, signal: AbortSignal): Promise<{ pid: number } | { problem: string }> {
  if (pidFile !== undefined) {
    const read = await readPidFile(pidFile, signal);
    return 'problem' in read ? { problem: `pid file ${pidFile}: ${read.problem}` } : read;
  }
  if (!ctx.servicePid) return { problem: "no process to look at: set 'pidFile'" };
  const pid = await ctx.servicePid();
  return pid === undefined ? { problem: 'the service has no process (not running)' } : { pid };
}

/** VmRSS of `pid` in bytes; undefined when it is gone or has no memory (a zombie). */
export async function readRss(pid: number, signal?: AbortSignal): Promise<number | undefined> {
  let status: string;
  try {
    status = await readFile(`/proc/${pid}/status`, { encoding: 'utf8', signal });
  } catch (err) {
    if (isGone(err)) return undefined;
    throw err;
  }
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** `pid` and every live descendant of it, from the parent pids in /proc/*\/stat. */
export async function withDescendants(pid: number): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry)).map(Number);
  const children = new Map<number, number[]>();
  await Promise.all(
    pids.map(async (p) => {
      const stat = await readStat(p);
      if (!stat) return;
      const list = children.get(stat.ppid) ?? [];
      list.push(p);
      children.set(stat.ppid, list);
    }),
  );
  const tree: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    tree.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return tree;
}

export async function probeMemory(
  spec: { maxBytes: number; pidFile?: string; children: boolean },
  ctx: CheckContext,
  signal: AbortSignal,
): Promise<ProbeOutcome> {
  const target = await targetPid(spec.pidFile, ctx, signal);
  if ('problem' in target) return { ok: false, detail: target.problem };
  const { pid } = target;
  const own = await readRss(pid, signal);
  if (own === undefined) return { ok: false, detail: `pid ${pid} is not running (or is a zombie)` };
  let total = own;
  let what = `pid ${pid} uses ${formatSize(own)}`;
  if (spec.children) {
    const tree = await withDescendants(pid);
    const rss = await Promise.all(tree.slice(1).map((p) => readRss(p, signal)));
    total += rss.reduce<number>((sum, r) => sum + (r ?? 0), 0);
    what = `pid ${pid} and its ${tree.length - 1} ${tree.length === 2 ? 'descendant' : 'descendants'} use ${formatSize(total)}`;
  }
  signal.throwIfAborted();
  const ok = total <= spec.maxBytes;
  return { ok, detail: `${what} (VmRSS), ${ok ? 'at most' : 'over'} ${formatSize(spec.maxBytes)}` };
}

interface CpuSample {
  pid: number;
  /** The process's start time in ticks since boot: with the pid, tells a new process from the old. */
  startTime: number;
  /** utime + stime, in ticks: CPU time of all the process's threads (not of its children). */
  ticks: number;
  /** performance.now() at the read. */
  at: number;
}

/**
 * The cpu check's probe. It keeps the last sample between runs: each run reports the process's
 * CPU use since the previous run (as Monit does, per cycle). A run with no earlier sample of the
 * same process — the first one, or the first after a restart — measures over a short window of
 * its own (half the check's timeout, at most 1 s) rather than reporting nothing, so that every
 * run counts towards rise and fall with a real figure.
 */
export function createCpuProbe(spec: { maxPercent: number; pidFile?: string; timeoutMs: number }, ctx: CheckContext): Probe {
  let last: CpuSample | undefined;
  return async (signal) => {
    const target = await targetPid(spec.pidFile, ctx, signal);
    if ('problem' in target) return { ok: false, detail: target.problem };
    const { pid } = target;
    let now = await sampleCpu(pid);
    if (!now) return { ok: false, detail: `pid ${pid} is not running (or is a zombie)` };
    let before = last;
    if (!before || before.pid !== now.pid || before.startTime !== now.startTime || now.at - before.at <= 0) {
      before = now;
      await sleep(Math.min(spec.timeoutMs / 2, FIRST_WINDOW_MAX_MS), undefined, { signal });
      now = await sampleCpu(pid);
      if (!now || now.startTime !== before.startTime) return { ok: false, detail: `pid ${pid} exited while measured` };
    }
    last = now;
    const seconds = (now.at - before.at) / 1000;
    const percent = ((now.ticks - before.ticks) / USER_HZ / seconds) * 100;
    const ok = percent <= spec.maxPercent;
    return {
      ok,
      detail: `pid ${pid} used ${trimNumber(percent)}% CPU over the last ${trimNumber(seconds)}s, ${ok ? 'at most' : 'over'} ${spec.maxPercent}%`,
    };
  };
}

async function sampleCpu(pid: number): Promise<CpuSample | undefined> {
  const stat = await readStat(pid);
  if (!stat || stat.state === 'Z' || stat.state === 'X') return undefined;
  return { pid, startTime: stat.startTime, ticks: stat.utime + stat.stime, at: performance.now() };
}

/** The fields of /proc/PID/stat we use; undefined when the process is gone. */
async function readStat(pid: number): Promise<{ state: string; ppid: number; utime: number; stime: number; startTime: number } | undefined> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if (isGone(err)) return undefined;
    throw err;
  }
  // "pid (comm) state ppid ..."; comm may contain spaces and parentheses. After it, fields
  // count from state (field 3 of proc(5)): utime is field 14, stime 15, starttime 22.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: f[0] ?? '?', ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]), startTime: Number(f[19]) };
}

/** ENOENT/ESRCH: the process exited (or never existed). */
function isGone(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'ENOENT' || code === 'ESRCH';
}
