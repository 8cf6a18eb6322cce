/**
 * Healing without Temporal: when the control plane does not take a failure report in time,
 * the agent restarts the service itself, under the same policy as healService (the same pure
 * planner: immediate first restart, backoff, at most maxRestarts within the window). A
 * control-plane outage must not become a service outage. These heals are in the agent's log
 * only, not in any workflow history; the log says so.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import { NotHoldingError } from './groups.js';
import { restartManaged, supervisedIsRunning, type ManagedService } from './services.js';
import { decideOnFailure, restartsInWindow } from '../../workflows/heal-plan.js';
import { RECOVERY_POLL_MS, waitUntilHealthy } from './wait-healthy.js';

export type LocalHealOutcome = 'healthy' | 'gave-up' | 'stopped';

export class LocalHealer {
  /** Local restarts, kept across heals so that the window counts them all. */
  private restarts: number[] = [];
  private running: Promise<LocalHealOutcome> | undefined;

  /**
   * @param whileHolding runs a restart only while the node holds the group under a lease the
   *   guard has not released (GroupRuntime.whileHolding); it throws NotHoldingError otherwise.
   */
  constructor(
    private readonly service: ManagedService,
    private readonly logger: Logger,
    private readonly whileHolding: (fn: () => Promise<void>) => Promise<void> = (fn) => fn(),
  ) {}

  /** Heals unless a local heal is already under way (then joins it). */
  heal(reason: string, signal: AbortSignal): Promise<LocalHealOutcome> {
    this.running ??= this.run(reason, signal).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async run(reason: string, signal: AbortSignal): Promise<LocalHealOutcome> {
    const { spec, check, group } = this.service;
    const log = this.logger.child({ group: group.name, resource: spec.name, localHeal: true });
    const policy = spec.healing;
    for (;;) {
      if (signal.aborted) return 'stopped';
      const decision = decideOnFailure(this.restarts, Date.now(), policy);
      this.restarts = restartsInWindow(this.restarts, Date.now(), policy.windowMs);
      if (decision.action === 'give-up') {
        log.error({ restarts: decision.restarts, reason }, 'local heal gave up: maxRestarts within the window used up; the service stays down');
        return 'gave-up';
      }
      if (decision.delayMs > 0) await sleep(decision.delayMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return 'stopped';
      this.restarts.push(Date.now());
      log.warn({ reason, restartsInWindow: this.restarts.length }, 'restarting the service locally (Temporal did not take the failure report)');
      try {
        await this.whileHolding(() => restartManaged(this.service));
        const result = await waitUntilHealthy({
          check,
          isRunning: supervisedIsRunning(this.service),
          rise: spec.check.rise,
          pollMs: Math.min(spec.check.intervalMs, RECOVERY_POLL_MS),
          timeoutMs: policy.startTimeoutMs,
          signal,
        });
        if (result.healthy) {
          log.warn({ detail: result.detail }, 'service healed locally; this heal is in this log only, not in a workflow history');
          return 'healthy';
        }
        reason = result.detail;
      } catch (err) {
        if (signal.aborted) return 'stopped';
        if (err instanceof NotHoldingError) {
          log.warn({ detail: err.message }, 'local heal ends: this node no longer holds the group');
          return 'stopped';
        }
        reason = err instanceof Error ? err.message : String(err);
      }
      log.warn({ detail: reason }, 'local restart did not make the service healthy');
    }
  }
}
