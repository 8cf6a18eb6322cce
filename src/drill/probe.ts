/**
 * The drill's client: GETs a URL every `everyMs` from this process (fixed rate: a slow request
 * does not delay the next one), each on a new TCP connection as a new client would open after a
 * move, each failing after `timeoutMs`. The results are summarised by probe-summary.ts.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { summarizeProbeSamples, type ProbeSample, type ProbeSummary } from './probe-summary.js';

/** The longest answer kept per request (a service may say which node it is). */
const BODY_LIMIT = 200;

/** One request: resolves with its sample, never rejects. */
export function probeOnce(url: URL, timeoutMs: number): Promise<ProbeSample> {
  const t = Date.now();
  return new Promise((resolve) => {
    let done = false;
    const finish = (fields: Omit<ProbeSample, 't' | 'end'>) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve({ t, end: Date.now(), ...fields });
    };
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    // agent: false: a new connection each time.
    const req = request(url, { method: 'GET', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < BODY_LIMIT) body += chunk;
      });
      res.on('end', () => {
        const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
        const text = body.trim().slice(0, BODY_LIMIT);
        finish({ ok, ...(res.statusCode !== undefined ? { status: res.statusCode } : {}), ...(text ? { body: text } : {}) });
      });
      res.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, error: e.code ?? e.message }));
    });
    req.on('error', (e: NodeJS.ErrnoException) => finish({ ok: false, error: e.code ?? e.message }));
    const timer = setTimeout(() => {
      finish({ ok: false, error: 'timeout' });
      req.destroy();
    }, timeoutMs);
    req.end();
  });
}

export class HttpProber {
  readonly samples: ProbeSample[] = [];
  readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private next = Date.now();

  constructor(
    readonly url: URL,
    readonly everyMs: number,
    readonly timeoutMs: number,
  ) {
    this.tick();
  }

  private tick(): void {
    const p = probeOnce(this.url, this.timeoutMs).then((s) => void this.samples.push(s));
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    // Drift-free; a process that fell behind catches up without a burst.
    this.next = Math.max(this.next + this.everyMs, Date.now());
    this.timer = setTimeout(() => this.tick(), this.next - Date.now());
  }

  /** Successful answers so far. */
  okCount(): number {
    return this.samples.filter((s) => s.ok).length;
  }

  /** The last sample to finish. */
  latest(): ProbeSample | undefined {
    return this.samples.at(-1);
  }

  /** Stops sending; requests in flight finish (within the timeout) and count. */
  async stop(): Promise<{ summary: ProbeSummary; samples: ProbeSample[] }> {
    clearTimeout(this.timer);
    const stoppedAt = Date.now();
    await Promise.all([...this.inFlight]);
    const samples = this.samples.filter((s) => s.t <= stoppedAt).sort((a, b) => a.t - b.t);
    return { summary: summarizeProbeSamples(samples, { url: this.url.href, everyMs: this.everyMs, startedAt: this.startedAt, stoppedAt }), samples };
  }
}
