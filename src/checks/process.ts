/**
 * Process check: is a process alive — present in /proc and not a zombie. The process is
 * found by pid file, by name (/proc/PID/comm), or else is the supervised service itself.
 * Linux only: it reads /proc.
 */
import { readdir, readFile } from 'node:fs/promises';
import type { CheckContext, ProbeOutcome } from './check.js';

/** Linux truncates /proc/PID/comm to 15 characters (TASK_COMM_LEN - 1). */
const COMM_MAX = 15;

export type ProcState =
  | { kind: 'absent' }
  | { kind: 'zombie'; state: string }
  | { kind: 'alive'; state: string; comm: string };

/**
 * The state of `pid` from /proc/PID/stat. A process that exits between our reads is
 * `absent`; a zombie ('Z') or dead ('X') task counts as not alive — its pid still shows in
 * /proc until its parent reaps it.
 */
export async function readProcState(pid: number, signal?: AbortSignal): Promise<ProcState> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, { encoding: 'utf8', signal });
  } catch (err) {
    if (isGone(err)) return { kind: 'absent' };
    throw err;
  }
  // "PID (COMM) STATE ..." — COMM may itself contain spaces and parentheses, so the state
  // is the first field after the LAST ')'.
  const open = stat.indexOf('(');
  const close = stat.lastIndexOf(')');
  const state = stat.slice(close + 1).trim().split(/\s+/)[0] ?? '?';
  const comm = open >= 0 && close > open ? stat.slice(open + 1, close) : '';
  if (state === 'Z' || state === 'X' || state === 'x') return { kind: 'zombie', state };
  return { kind: 'alive', state, comm };
}

export async function probeProcess(
  target: { name?: string; pidFile?: string },
  ctx: CheckContext,
  signal: AbortSignal,
): Promise<ProbeOutcome> {
  if (target.pidFile !== undefined) return probePidFile(target.pidFile, target.name, signal);
  if (target.name !== undefined) return probeName(target.name, signal);
  if (!ctx.servicePid) return { ok: false, detail: "no process to look at: set 'name' or 'pidFile'" };
  const pid = await ctx.servicePid();
  if (pid === undefined) return { ok: false, detail: 'the service has no process (not running)' };
  return describePid(pid, undefined, signal);
}

async function probePidFile(pidFile: string, name: string | undefined, signal: AbortSignal): Promise<ProbeOutcome> {
  const read = await readPidFile(pidFile, signal);
  if ('problem' in read) return { ok: false, detail: read.problem };
  return describePid(read.pid, name, signal);
}

/**
 * The pid a pid file holds, or what is wrong with it (missing, unreadable, no pid in it).
 * Rejects only when `signal` aborted.
 */
export async function readPidFile(pidFile: string, signal: AbortSignal): Promise<{ pid: number } | { problem: string }> {
  let text: string;
  try {
    text = await readFile(pidFile, { encoding: 'utf8', signal });
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT') return { problem: 'pid file does not exist' };
    if (signal.aborted) throw err;
    return { problem: `cannot read pid file: ${typeof code === 'string' ? code : String(err)}` };
  }
  // Daemons write "PID\n"; some add more lines (nginx does not, postgres does).
  const first = text.trim().split(/\s+/)[0] ?? '';
  const pid = /^\d+$/.test(first) ? Number(first) : NaN;
  if (!Number.isSafeInteger(pid) || pid <= 0) {
    return { problem: `pid file holds no pid (${JSON.stringify(text.slice(0, 40))})` };
  }
  return { pid };
}

/**
 * @param name when given, the process must also have this comm — a stale pid file may name
 *   a pid the kernel has since given to another process.
 */
async function describePid(pid: number, name: string | undefined, signal: AbortSignal): Promise<ProbeOutcome> {
  if (!Number.isSafeInteger(pid) || pid <= 0) return { ok: false, detail: `invalid pid ${pid}` };
  const proc = await readProcState(pid, signal);
  switch (proc.kind) {
    case 'absent':
      return { ok: false, detail: `pid ${pid} is not running` };
    case 'zombie':
      return { ok: false, detail: `pid ${pid} is a zombie (state ${proc.state})` };
    case 'alive':
      if (name !== undefined && proc.comm !== name.slice(0, COMM_MAX)) {
        return { ok: false, detail: `pid ${pid} is ${JSON.stringify(proc.comm)}, not ${JSON.stringify(name)} (stale pid file?)` };
      }
      return { ok: true, detail: `pid ${pid} is running (state ${proc.state})` };
  }
}

async function probeName(name: string, signal: AbortSignal): Promise<ProbeOutcome> {
  const wanted = name.slice(0, COMM_MAX);
  const pids = (await readdir('/proc')).filter((entry) => /^\d+$/.test(entry)).map(Number);
  signal.throwIfAborted();
  // In parallel: reading a few hundred comm files one by one takes a noticeable part of a
  // short check timeout. libuv's thread pool bounds the real concurrency.
  const states = await Promise.all(
    pids.map(async (pid): Promise<ProcState> => {
      let comm: string;
      try {
        comm = (await readFile(`/proc/${pid}/comm`, 'utf8')).replace(/\n$/, '');
      } catch (err) {
        if (isGone(err)) return { kind: 'absent' }; // exited while we scanned
        throw err;
      }
      return comm === wanted ? readProcState(pid) : { kind: 'absent' };
    }),
  );
  const alive = pids.filter((_, i) => states[i]?.kind === 'alive');
  const zombies = pids.filter((_, i) => states[i]?.kind === 'zombie');
  if (alive.length > 0) return { ok: true, detail: `running as ${pidList(alive)}` };
  if (zombies.length > 0) return { ok: false, detail: `only zombies: ${pidList(zombies)}` };
  return { ok: false, detail: `no process named ${JSON.stringify(name)}` };
}

function pidList(pids: number[]): string {
  const shown = pids.slice(0, 5).join(', ');
  const more = pids.length > 5 ? ` (+${pids.length - 5} more)` : '';
  return `${pids.length === 1 ? 'pid' : 'pids'} ${shown}${more}`;
}

/** ENOENT/ESRCH: the process exited (or never existed). */
function isGone(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'ENOENT' || code === 'ESRCH';
}
