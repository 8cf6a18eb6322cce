/**
 * A point in time on ONE process's monotonic clock, so that a wait can be counted from it
 * without comparing two machines' (or two processes') clocks.
 *
 * The failover waits out an old owner's lease: ttl + margin after the owner stopped being able to
 * renew it. That moment is when the controller committed the block, and the failover learns of
 * it when its update returns, in the worker process that sent it: that process marks it there
 * (`markNow`), on its monotonic clock (`performance.now()`: not stepped, not slewed backwards).
 * The pause that waits out the lease counts from the mark only in that same process; any other
 * process (the worker restarted meanwhile, another worker took the task) waits the whole
 * ttl + margin from its own now, which is later than the mark: never shorter.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';

export interface MonotonicMark {
  /** The process whose clock `at` is on (random per process start). */
  process: string;
  /** `performance.now()` in that process, ms. */
  at: number;
}

/** This process's identity for marks: random, so a restarted process (same pid) is another. */
const THIS_PROCESS = randomUUID();

/** Now, on this process's monotonic clock. */
export function markNow(): MonotonicMark {
  return { process: THIS_PROCESS, at: performance.now() };
}

/**
 * How much of a wait of `ms` counted from `since` is left at `now` in process `here`: all of it
 * unless `since` is on this process's clock; never negative, never more than `ms` (a mark "in
 * the future" cannot shorten anything). Pure.
 */
export function remainingMs(ms: number, since: MonotonicMark | undefined, now: MonotonicMark): number {
  const total = Math.max(0, ms);
  if (!since || since.process !== now.process) return total;
  const elapsed = now.at - since.at;
  if (!(elapsed >= 0)) return total;
  return Math.max(0, total - elapsed);
}
