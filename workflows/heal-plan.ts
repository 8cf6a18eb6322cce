/**
 * Pure timing decisions of healService, unit-tested with exact numbers.
 */
import type { HealingPolicy } from '../src/config/types.js';

/** Restart times (ms) still inside the window that ends at `now`. */
export function restartsInWindow(restarts: readonly number[], now: number, windowMs: number): number[] {
  return restarts.filter((t) => now - t < windowMs);
}

/**
 * The delay before the next restart, given how many restarts are already in the window:
 * the first is immediate (most crashes are one-offs and every millisecond is outage), then
 * initial × multiplier^(n-1), capped at max.
 */
export function backoffDelay(restartsSoFar: number, backoff: HealingPolicy['backoff']): number {
  if (restartsSoFar <= 0) return 0;
  const delay = backoff.initialMs * Math.pow(backoff.multiplier, restartsSoFar - 1);
  return Math.min(Math.round(delay), backoff.maxMs);
}

export type HealDecision = { action: 'give-up'; restarts: number } | { action: 'restart'; delayMs: number };

/** What to do about a new failure: restart after a delay, or give up (escalate). */
export function decideOnFailure(restarts: readonly number[], now: number, policy: HealingPolicy): HealDecision {
  const recent = restartsInWindow(restarts, now, policy.windowMs);
  if (recent.length >= policy.maxRestarts) return { action: 'give-up', restarts: recent.length };
  return { action: 'restart', delayMs: backoffDelay(recent.length, policy.backoff) };
}

/**
 * How long the heal keeps watching before it completes: until its newest restart has left
 * the window. A crash in that time is counted against the same budget; completing earlier
 * would let a new heal start from zero and allow more than maxRestarts within one window.
 */
export function watchRemaining(restarts: readonly number[], now: number, windowMs: number): number {
  const recent = restartsInWindow(restarts, now, windowMs);
  if (recent.length === 0) return 0;
  return Math.max(0, Math.max(...recent) + windowMs - now);
}
