/**
 * The old owner's step of a failover, as pure functions: may the group be taken from the node
 * that held it, and if not, what does the failover do or wait for. Pacemaker's rule: a failed
 * stop is not a stop (docs/failover.md#a-failed-stop-is-not-a-stop).
 *
 * - A node that let go of the group (it stopped it, answered holding nothing, or there was none)
 *   is safe at once.
 * - A node that is silent (no answer, or a stop that did not end in time) is covered by its
 *   lease: it stops renewing from `blockedSince`, and its agent and its lease guard let go of the
 *   group by `blockedSince + ttl + margin`. A fence agent, when configured, is run first (once).
 * - A node whose stop FAILED (or that answered holding the group in state 'failed') still holds
 *   the group, and its lease running out does not change that: the guard's release is what has
 *   already failed, or may. It is safe only after a successful fence, an armed watchdog's timeout
 *   on top of the lease (the guard stops feeding the watchdog when a release fails, and the node
 *   resets), or an operator's confirm-down. Until then the failover is blocked.
 */
import type { BlockedOn, LeaseTiming, Unblocker } from './shared.js';

/**
 * The lease a failover waits out: the largest (ttl + margin) of the worker's configured lease and
 * every lease the nodes announced they enforce (undefined: that node has not announced), so that a
 * rolling change of `lease` (agents on 3 s, the worker already on 600 ms, or the other way round)
 * neither shortens the wait below what a holder really enforces nor blocks a failover. Of equal
 * sums, the configured one. Pure.
 */
export function leaseToWaitOut(configured: LeaseTiming, announced: readonly (LeaseTiming | undefined)[]): LeaseTiming {
  let best = configured;
  for (const a of announced) {
    if (a !== undefined && a.ttlMs + a.marginMs > best.ttlMs + best.marginMs) best = { ttlMs: a.ttlMs, marginMs: a.marginMs };
  }
  return best === configured ? { ttlMs: configured.ttlMs, marginMs: configured.marginMs } : best;
}

/** What the failover learned of the old owner. */
export type OldOwnerReport =
  /** There was none, it stopped the group, or it answered (or reported) that it holds nothing. */
  | 'let-go'
  /** It neither answered nor stopped the group (gone, hung, a stop that did not end in time). */
  | 'silent'
  /** Its stop failed (`StopFailed`), or it answered holding the group in state 'failed'. */
  | 'stop-failed';

export interface OldOwnerFacts {
  report: OldOwnerReport;
  /** The old owner's fence agent, when one is configured: attempts so far, when the last one ended, whether one succeeded. */
  fence?: { attempts: number; lastAt?: number; succeeded: boolean };
  /** Whether a failed fence may be tried again while blocked (false once the history is long). */
  fenceRetries: boolean;
  /** The armed watchdog's timeout, when the cluster has one (`guard.watchdog`). */
  watchdogTimeoutMs?: number;
  /** The lease to wait out (leaseToWaitOut: the largest configured or announced). */
  lease: LeaseTiming;
  /** Workflow time since which the old owner's lease has not been renewed. */
  blockedSince: number;
  /** An operator confirmed the node down, for this block. */
  confirmed: boolean;
  /** Workflow time now. */
  now: number;
}

export type OldOwnerStep =
  /** Safe: the group may be claimed for a new node now. */
  | { step: 'go'; why: 'let-go' | 'fenced' | 'watchdog' | 'confirmed-down' }
  /** Run the fence agent (then ask again). */
  | { step: 'fence' }
  /**
   * Claim, then wait `ms` (the old lease plus margin), counted on one process's monotonic clock
   * from when the block was committed, before starting anything. `until` (blockedSince + ms, the
   * controller's time compared with the failover's) is what failovers started before patch
   * `failover-monotonic-lease-wait` waited for, and still do on replay.
   */
  | { step: 'wait-lease'; until: number; ms: number }
  /**
   * Do not claim: wait for any of `waitingFor` (a confirm-down at any time; the watchdog at
   * `until`; the next fence attempt at `fenceAt`), then ask again.
   */
  | { step: 'blocked'; waitingFor: Unblocker[]; until?: number; fenceAt?: number };

/** The first retry of a failed fence while blocked; each next one waits twice as long, up to the maximum. */
export const FENCE_RETRY_FIRST_MS = 30_000;
export const FENCE_RETRY_MAX_MS = 600_000;

/** How long after the `attempts`-th failed fence the next one is run. */
export function fenceRetryDelay(attempts: number): number {
  return Math.min(FENCE_RETRY_FIRST_MS * 2 ** Math.max(0, attempts - 1), FENCE_RETRY_MAX_MS);
}

/** What the failover does next about the old owner. Pure. */
export function oldOwnerStep(f: OldOwnerFacts): OldOwnerStep {
  if (f.report === 'let-go') return { step: 'go', why: 'let-go' };
  if (f.fence?.succeeded) return { step: 'go', why: 'fenced' };
  if (f.confirmed) return { step: 'go', why: 'confirmed-down' };
  if (f.fence && f.fence.attempts === 0) return { step: 'fence' };
  const leaseEnd = f.blockedSince + f.lease.ttlMs + f.lease.marginMs;
  // Its agent and its guard let go when the lease runs out (and the handshake stops a start
  // while its heartbeats still claim the group).
  if (f.report === 'silent') return { step: 'wait-lease', until: leaseEnd, ms: f.lease.ttlMs + f.lease.marginMs };
  // A failed stop: the lease running out does not make it safe.
  const until = f.watchdogTimeoutMs !== undefined ? leaseEnd + f.watchdogTimeoutMs : undefined;
  if (until !== undefined && f.now >= until) return { step: 'go', why: 'watchdog' };
  let fenceAt: number | undefined;
  if (f.fence && f.fenceRetries) {
    fenceAt = (f.fence.lastAt ?? f.now) + fenceRetryDelay(f.fence.attempts);
    if (f.now >= fenceAt) return { step: 'fence' };
  }
  const waitingFor: Unblocker[] = [];
  if (fenceAt !== undefined) waitingFor.push('fencing');
  if (until !== undefined) waitingFor.push('watchdog');
  waitingFor.push('confirm-down');
  return { step: 'blocked', waitingFor, ...(until !== undefined ? { until } : {}), ...(fenceAt !== undefined ? { fenceAt } : {}) };
}

/**
 * One line for an operator: what is blocked and what unblocks it, e.g. "node n1 failed to stop
 * group web (…); waiting for fencing, the watchdog (in 12s) or `haoscar confirm-down n1`". Pure.
 */
export function describeBlock(group: string, b: BlockedOn, now: number): string {
  const what = b.waitingFor.map((w) => {
    if (w === 'fencing') return 'fencing (retried)';
    if (w === 'watchdog') return b.until !== undefined ? `the watchdog (in ${Math.max(0, Math.ceil((b.until - now) / 1000))}s)` : 'the watchdog';
    return `\`haoscar confirm-down ${b.node}\``;
  });
  const list = what.length > 1 ? `${what.slice(0, -1).join(', ')} or ${what[what.length - 1]}` : what.join('');
  const confirmed = b.confirmed ? `; confirmed down by ${b.confirmed.operator}, moving on` : '';
  return `node ${b.node} failed to stop group ${group} (${b.detail}); waiting for ${list}${confirmed}`;
}
