/**
 * Health checks: one small probe per check type (`process.ts`, `tcp.ts`, `http.ts`,
 * `command.ts`, and Monit's resource tests: `disk.ts`, `usage.ts` for memory and cpu, `file.ts`,
 * `icmp.ts`), wrapped here so that every check behaves the same way:
 *
 * - it never throws — any error becomes `ok: false` with a detail naming what failed;
 * - it is bounded by `spec.timeoutMs`: the probe gets an AbortSignal that fires at the
 *   deadline, and the wrapper stops waiting at the deadline even if a probe ignored it;
 * - its detail starts with what was checked (`tcp 127.0.0.1:8080: connection refused`).
 *
 * Levels only: turning results into healthy/failing edges is the monitor's job
 * (`src/monitor/hysteresis.ts`).
 */
import type { CheckSpec } from '../config/types.js';
import type { Exec } from '../exec.js';
import { probeCommand } from './command.js';
import { probeDisk } from './disk.js';
import { createFileProbe } from './file.js';
import { probeHttp } from './http.js';
import { probeIcmp } from './icmp.js';
import { probeProcess } from './process.js';
import { probeTcp } from './tcp.js';
import { createCpuProbe, probeMemory } from './usage.js';

export interface CheckResult {
  ok: boolean;
  detail: string;
  durationMs: number;
}

export interface CheckContext {
  exec: Exec;
  /**
   * The pid of the supervised service, or undefined when it is not running. Used by a
   * process, memory or cpu check with neither `name` nor `pidFile`.
   */
  servicePid?: () => Promise<number | undefined>;
  /** The resource's own status (its driver's), used by a `status` check. */
  resourceStatus?: () => Promise<{ running: boolean; detail: string }>;
}

/** Runs the check once. Never throws (see {@link createCheck}). */
export type Check = () => Promise<CheckResult>;

/** What a probe found; `detail` excludes the check's label, which the wrapper adds. */
export interface ProbeOutcome {
  ok: boolean;
  detail: string;
}

/**
 * A probe may throw (the wrapper describes the error); it should stop its work when
 * `signal` aborts, whose reason is a {@link CheckTimeoutError}.
 */
export type Probe = (signal: AbortSignal) => Promise<ProbeOutcome>;

/** The reason a check's AbortSignal fires: the check's own deadline. */
export class CheckTimeoutError extends Error {
  constructor(readonly timeoutMs: number) {
    super(`timed out after ${timeoutMs}ms`);
    this.name = 'CheckTimeoutError';
  }
}

/**
 * Builds the check a spec describes. Building never does I/O and never throws; the
 * returned check never throws either. Build one check per resource and keep it: the cpu and
 * file checks keep state between runs (the last CPU sample, the reference checksum).
 */
export function createCheck(spec: CheckSpec, ctx: CheckContext): Check {
  const label = checkLabel(spec);
  const probe = probeFor(spec, ctx);
  return async () => {
    const started = performance.now();
    let outcome: ProbeOutcome;
    try {
      outcome = await runWithin(spec.timeoutMs, probe);
    } catch (err) {
      outcome = { ok: false, detail: describeError(err) };
    }
    return { ok: outcome.ok, detail: `${label}: ${outcome.detail}`, durationMs: Math.round(performance.now() - started) };
  };
}

function probeFor(spec: CheckSpec, ctx: CheckContext): Probe {
  switch (spec.type) {
    case 'process':
      return (signal) => probeProcess({ name: spec.name, pidFile: spec.pidFile }, ctx, signal);
    case 'tcp':
      return (signal) => probeTcp(spec.host, spec.port, signal);
    case 'http':
      return (signal) => probeHttp(spec.url, spec.expectStatus, signal);
    case 'command':
      return (signal) => probeCommand(spec.command, spec.timeoutMs, ctx.exec, signal);
    case 'status':
      return async () => {
        if (!ctx.resourceStatus) return { ok: false, detail: 'this resource has no status of its own to check' };
        const status = await ctx.resourceStatus();
        return { ok: status.running, detail: status.detail };
      };
    case 'disk':
      return (signal) => probeDisk(spec.path, spec, signal);
    case 'memory':
      return (signal) => probeMemory(spec, ctx, signal);
    case 'cpu':
      return createCpuProbe(spec, ctx);
    case 'file':
      return createFileProbe(spec);
    case 'icmp':
      return (signal) => probeIcmp(spec.host, spec.timeoutMs, ctx.exec, signal);
  }
}

/** What the check looks at, as the first words of its detail. */
export function checkLabel(spec: CheckSpec): string {
  switch (spec.type) {
    case 'process':
      if (spec.pidFile) return `process pidfile ${spec.pidFile}`;
      if (spec.name) return `process ${spec.name}`;
      return 'process (service)';
    case 'tcp':
      return `tcp ${spec.host.includes(':') ? `[${spec.host}]` : spec.host}:${spec.port}`;
    case 'http':
      return `http ${spec.url}`;
    case 'status':
      return 'status';
    case 'command':
      return `command ${truncate(spec.command.join(' '), 80)}`;
    case 'disk':
      return `disk ${spec.path}`;
    case 'memory':
      return `memory of ${spec.pidFile ? `pidfile ${spec.pidFile}` : 'the service'}`;
    case 'cpu':
      return `cpu of ${spec.pidFile ? `pidfile ${spec.pidFile}` : 'the service'}`;
    case 'file':
      return `file ${spec.path}`;
    case 'icmp':
      return `icmp ${spec.host}`;
  }
}

/**
 * Runs `probe` with a signal that aborts after `timeoutMs`, and stops waiting for it then.
 * A probe that ignores the signal keeps running in the background, but its late result or
 * rejection is dropped (Promise.race has already attached handlers to it).
 */
async function runWithin(timeoutMs: number, probe: Probe): Promise<ProbeOutcome> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const reason = new CheckTimeoutError(timeoutMs);
      controller.abort(reason);
      reject(reason);
    }, timeoutMs);
  });
  try {
    return await Promise.race([probe(controller.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

const errorCodes: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed (EAI_AGAIN)',
  ETIMEDOUT: 'connection timed out',
  EPIPE: 'connection closed (EPIPE)',
  ENOENT: 'no such file',
  EACCES: 'permission denied',
};

/**
 * Words for an error: our timeout, a known errno code, or the message — following
 * `cause` because fetch reports every network error as "fetch failed" with the real one
 * in its cause.
 */
export function describeError(err: unknown): string {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    if (e instanceof CheckTimeoutError) return e.message;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && errorCodes[code]) return errorCodes[code];
    const cause = (e as { cause?: unknown }).cause;
    if (cause === undefined || cause === null) break;
    e = cause;
  }
  const messages: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
    messages.push(e instanceof Error ? e.message : String(e));
    e = (e as { cause?: unknown }).cause;
  }
  return truncate(messages.filter((m) => m !== '').join(': ') || 'unknown error', 300);
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
