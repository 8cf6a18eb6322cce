/**
 * Runs a service's check until it passes `rise` times in a row, or time runs out. Shared by
 * the waitForHealthy activity and the agent's local healing, so both judge "healthy again"
 * the same way.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Check } from '../checks/check.js';

/**
 * While a restarted service comes up, check it often (like HAProxy's `fastinter`): the
 * configured interval is for steady state, and here every poll interval is outage.
 */
export const RECOVERY_POLL_MS = 100;

export interface WaitHealthyOptions {
  check: Check;
  rise: number;
  pollMs: number;
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * For services only the agent starts (`process`): a service that is not running cannot
   * become healthy by itself, so the wait ends at once instead of at its timeout.
   */
  isRunning?: () => Promise<boolean>;
  /** Called after every check that did not finish the wait (activities heartbeat here). */
  onPoll?: (progress: { checks: number; passes: number; detail: string }) => void;
}

export interface WaitHealthyResult {
  healthy: boolean;
  checks: number;
  detail: string;
}

/** @throws only if `signal` aborts (the AbortError of the sleep). */
export async function waitUntilHealthy(o: WaitHealthyOptions): Promise<WaitHealthyResult> {
  const deadline = Date.now() + o.timeoutMs;
  let passes = 0;
  let checks = 0;
  for (;;) {
    const result = await o.check();
    checks++;
    passes = result.ok ? passes + 1 : 0;
    if (passes >= o.rise) return { healthy: true, checks, detail: result.detail };
    if (!result.ok && o.isRunning && !(await o.isRunning())) {
      return { healthy: false, checks, detail: `${result.detail} (the process is no longer running)` };
    }
    o.onPoll?.({ checks, passes, detail: result.detail });
    if (Date.now() + o.pollMs > deadline) return { healthy: false, checks, detail: result.detail };
    await sleep(o.pollMs, undefined, { signal: o.signal });
  }
}
