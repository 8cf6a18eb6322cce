/**
 * Availability as a client sees it, summarised: requests made at a fixed rate to a service (by
 * `haoscar drill`'s prober, or the lab's), and what they add up to — the longest gap between
 * successful answers (the client-observed outage of a move), the failed requests, the first
 * and last failure. Pure: the requests are made elsewhere (probe.ts, test/lab/prober.ts).
 */

/** One request. Times are ms since the epoch, on the prober's clock. */
export interface ProbeSample {
  /** When the request started. */
  t: number;
  /** When it succeeded, failed or timed out. */
  end: number;
  ok: boolean;
  status?: number;
  /** The answer, trimmed and cut short (a service may say which node it is). */
  body?: string;
  /** `ECONNREFUSED`, `EHOSTUNREACH`, `timeout`, ... */
  error?: string;
}

/** An interval between two successful requests in which requests failed (or nothing was sent). */
export interface ProbeGap {
  /** Start of the last successful request before the gap. */
  from: number;
  /** Start of the first successful request after it, or the stop time while it is ongoing. */
  to: number;
  ms: number;
  /** Failed requests started within the gap. */
  failures: number;
  /** No success after it: the outage had not ended when the prober stopped. */
  ongoing: boolean;
}

export interface ProbeSummary {
  url: string;
  everyMs: number;
  startedAt: number;
  stoppedAt: number;
  requests: number;
  ok: number;
  failures: number;
  /** Failures before the first success (the service was not up yet): not counted as a gap. */
  failuresBeforeFirstOk: number;
  /**
   * The longest interval between the starts of two consecutive successful requests — or from
   * the last success to the stop, when requests failed after it. About `everyMs` when nothing
   * failed; the whole run when nothing ever succeeded.
   */
  longestGapMs: number;
  /** The intervals with failures, or longer than five periods, in time order. */
  gaps: ProbeGap[];
  /** The start of the first and of the last failed request (after the first success). */
  firstFailureAt?: number;
  lastFailureAt?: number;
}

/** The summary of a probe run (`input` in any order). Pure. */
export function summarizeProbeSamples(input: readonly ProbeSample[], o: { url: string; everyMs: number; startedAt: number; stoppedAt: number }): ProbeSummary {
  const results = [...input].sort((a, b) => a.t - b.t);
  const oks = results.filter((r) => r.ok);
  const gaps: ProbeGap[] = [];
  let longestGapMs = 0;
  const consider = (from: number, to: number, failures: number, ongoing: boolean) => {
    const ms = to - from;
    longestGapMs = Math.max(longestGapMs, ms);
    if (failures > 0 || ms > 5 * o.everyMs) gaps.push({ from, to, ms, failures, ongoing });
  };
  if (oks.length === 0) {
    longestGapMs = o.stoppedAt - o.startedAt;
    if (results.length > 0) gaps.push({ from: o.startedAt, to: o.stoppedAt, ms: longestGapMs, failures: results.length, ongoing: true });
  } else {
    let failures = 0;
    let prev: ProbeSample | undefined;
    for (const r of results) {
      if (!r.ok) {
        if (prev) failures += 1;
        continue;
      }
      if (prev) consider(prev.t, r.t, failures, false);
      prev = r;
      failures = 0;
    }
    if (failures > 0) consider(prev!.t, o.stoppedAt, failures, true);
  }
  const firstOk = oks[0];
  const failed = results.filter((r) => !r.ok && (firstOk === undefined || r.t > firstOk.t));
  return {
    ...o,
    requests: results.length,
    ok: oks.length,
    failures: results.length - oks.length,
    failuresBeforeFirstOk: firstOk ? results.filter((r) => r.t < firstOk.t).length : results.length,
    longestGapMs,
    gaps,
    ...(failed.length > 0 ? { firstFailureAt: failed[0]!.t, lastFailureAt: failed.at(-1)!.t } : {}),
  };
}
