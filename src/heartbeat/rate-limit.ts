/**
 * At most one log line per kind of event per period. A flood of bad packets (a misconfigured
 * node, a scan, an attack) must not flood the journal or cost the agent its CPU, but the
 * operator must still learn that it happens and how much: each line says how many were
 * dropped since the previous one. Pure: the clock is passed in.
 */
export class LogRateLimiter {
  private readonly last = new Map<string, { at: number; suppressed: number }>();

  constructor(private readonly periodMs: number) {}

  /**
   * Whether to log this occurrence of `key` now. When it is, `suppressed` says how many
   * occurrences were not logged since the last line for this key.
   */
  allow(key: string, now: number): { log: true; suppressed: number } | { log: false } {
    const entry = this.last.get(key);
    if (entry !== undefined && now - entry.at < this.periodMs) {
      entry.suppressed++;
      return { log: false };
    }
    this.last.set(key, { at: now, suppressed: 0 });
    return { log: true, suppressed: entry?.suppressed ?? 0 };
  }
}
