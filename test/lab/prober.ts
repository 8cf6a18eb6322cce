/**
 * Availability as a client sees it: prober.mjs runs inside the lab's client namespace and
 * requests a URL (the VIP) at a fixed rate; this side collects its results and measures the
 * longest gap between successful requests — the client-observed outage of a failover.
 * Times are the prober's Date.now() (same machine, same clock as the VIP sampler).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';
import type { Logger } from '../../src/log.js';
import { summarizeProbeSamples, type ProbeSample, type ProbeSummary } from '../../src/drill/probe-summary.js';

export type { ProbeGap } from '../../src/drill/probe-summary.js';

export const PROBER_SCRIPT = fileURLToPath(new URL('./prober.mjs', import.meta.url));

export interface ProbeResult extends ProbeSample {
  /** The pid in an `ok <pid>` answer. */
  pid?: number;
  /** The lab host whose namespace that pid runs in, when it could be told. */
  host?: string;
}

export interface ProbeReport extends ProbeSummary {
  results: ProbeResult[];
  /** The first successful request started at or after `t`. */
  firstOkAfter(t: number): ProbeResult | undefined;
  /** The last successful request started before `t`. */
  lastOkBefore(t: number): ProbeResult | undefined;
  /** Successful answers per host (or per pid when the host is unknown), in order of first answer. */
  answeredBy(): Map<string, number>;
}

function firstOkAfter(results: readonly ProbeResult[], t: number): ProbeResult | undefined {
  return results.find((r) => r.ok && r.t >= t);
}

function lastOkBefore(results: readonly ProbeResult[], t: number): ProbeResult | undefined {
  for (let i = results.length - 1; i >= 0; i--) if (results[i]!.ok && results[i]!.t < t) return results[i];
  return undefined;
}

/** The report of a probe run: the product's summary (src/drill/probe-summary.ts) with the lab's look-ups. */
export function summarizeProbes(input: readonly ProbeResult[], o: { url: string; everyMs: number; startedAt: number; stoppedAt: number }): ProbeReport {
  const results = [...input].sort((a, b) => a.t - b.t);
  return {
    ...summarizeProbeSamples(results, o),
    results,
    firstOkAfter: (t) => firstOkAfter(results, t),
    lastOkBefore: (t) => lastOkBefore(results, t),
    answeredBy: () => {
      const by = new Map<string, number>();
      for (const r of results.filter((x) => x.ok)) {
        const key = r.host ?? (r.pid !== undefined ? `pid ${r.pid}` : 'unknown');
        by.set(key, (by.get(key) ?? 0) + 1);
      }
      return by;
    },
  };
}

/** What a prober needs from its lab. */
export interface ProberContext {
  logger: Logger;
  /** The namespace to run in. */
  namespace: string;
  hostOfPid(pid: number): string | undefined;
  addInfraPid(pid: number): void;
  removeInfraPid(pid: number): void;
}

export interface ProbeOptions {
  /** Period between request starts; default 20 ms. */
  everyMs?: number;
  /** A request that has not answered after this long fails with `timeout`; default 500 ms. */
  timeoutMs?: number;
}

export class Prober {
  /** Every result so far, in the order they finished. */
  readonly results: ProbeResult[] = [];
  private readonly startedAt = Date.now();
  private stderr = '';
  private readonly closed: Promise<void>;
  private report?: ProbeReport;
  private firstLine!: () => void;
  /** Settles at the first result. */
  readonly started: Promise<void>;

  private constructor(
    readonly url: string,
    readonly everyMs: number,
    private readonly child: ChildProcess,
    private readonly ctx: ProberContext,
  ) {
    this.started = new Promise<void>((res) => (this.firstLine = res));
    this.closed = new Promise<void>((res) => child.once('close', () => res()));
    child.stderr?.on('data', (d: Buffer) => {
      if (this.stderr.length < 4096) this.stderr += d.toString();
    });
    createInterface({ input: child.stdout!, crlfDelay: Infinity }).on('line', (line) => {
      let r: ProbeResult;
      try {
        r = JSON.parse(line) as ProbeResult;
      } catch {
        return;
      }
      if (r.pid !== undefined) r.host = ctx.hostOfPid(r.pid);
      this.results.push(r);
      this.firstLine();
    });
  }

  /**
   * Starts prober.mjs in the context's namespace and waits for its first result.
   * @throws Error when it produces none within 10 s (it is stopped first).
   */
  static async start(url: string, opts: ProbeOptions, ctx: ProberContext): Promise<Prober> {
    const everyMs = opts.everyMs ?? 20;
    const timeoutMs = opts.timeoutMs ?? 500;
    const argv = ['netns', 'exec', ctx.namespace, process.execPath, PROBER_SCRIPT, url, String(everyMs), String(timeoutMs)];
    ctx.logger.debug({ command: ['ip', ...argv] }, 'starting the lab prober');
    const child = spawn('ip', argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid) ctx.addInfraPid(child.pid);
    const prober = new Prober(url, everyMs, child, ctx);
    const first = await Promise.race([
      prober.started.then(() => true),
      prober.closed.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(false), 10_000).unref()),
    ]);
    if (!first) {
      await prober.stop();
      throw new Error(`the prober in ${ctx.namespace} produced no result within 10 s${prober.stderr ? `: ${prober.stderr.trim()}` : ''}`);
    }
    return prober;
  }

  /** The last result to finish. */
  latest(): ProbeResult | undefined {
    return this.results.at(-1);
  }

  /** The last successful result to finish. */
  lastOk(): ProbeResult | undefined {
    return lastOkBefore(this.results, Infinity);
  }

  /** The first successful request started at or after `t`, so far. */
  firstOkAfter(t: number): ProbeResult | undefined {
    return firstOkAfter(this.results, t);
  }

  /** Stops the prober (idempotent) and summarizes the run. Never throws. */
  async stop(): Promise<ProbeReport> {
    if (this.report) return this.report;
    const stoppedAt = Date.now();
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2_000);
    await this.closed;
    clearTimeout(t);
    if (this.child.pid) this.ctx.removeInfraPid(this.child.pid);
    // Requests still in flight at the stop are not counted.
    const finished = this.results.filter((r) => r.t <= stoppedAt);
    this.report = summarizeProbes(finished, { url: this.url, everyMs: this.everyMs, startedAt: this.startedAt, stoppedAt });
    return this.report;
  }
}
