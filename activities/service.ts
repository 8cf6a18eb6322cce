/**
 * Activities that act on a service of this node: restart it, wait until it is healthy.
 * They run on the node's own task queue, so they always touch the node they are meant for.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../src/log.js';
import type { ServiceRegistry, ManagedService } from '../src/agent/services.js';
import { ERROR_TYPES } from '../workflows/shared.js';

export interface ServiceRef {
  group: string;
  resource: string;
}

export interface WaitForHealthyRequest extends ServiceRef {
  /** Give up after this long; the attempt then counts as failed. */
  timeoutMs: number;
}

export interface ServiceActivityDeps {
  node: string;
  services: ServiceRegistry;
  logger: Logger;
  /** Upper bound of the interval between checks while waiting for a restarted service. */
  recoveryPollMs?: number;
}

export function createServiceActivities(deps: ServiceActivityDeps) {
  const { node, services, logger } = deps;
  // While a restarted service comes up, check it often (like HAProxy's `fastinter`): the
  // configured interval is for steady state, and here every poll interval is outage.
  const recoveryPollMs = deps.recoveryPollMs ?? 100;

  function lookup(ref: ServiceRef): ManagedService {
    const service = services.get(ref.group, ref.resource);
    if (!service) {
      throw ApplicationFailure.create({
        type: ERROR_TYPES.UnknownResource,
        nonRetryable: true,
        message: `resource ${ref.group}/${ref.resource} is not configured on node ${node}: make sure every node runs the same haoscar.yaml`,
      });
    }
    return service;
  }

  return {
    /** Stops (if needed) and starts the service. Idempotent: a retry just starts it again. */
    async restartService(ref: ServiceRef): Promise<{ pid?: number }> {
      const { driver } = lookup(ref);
      const log = logger.child({ group: ref.group, resource: ref.resource });
      log.info('restarting service');
      try {
        await driver.stop();
        await driver.start();
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        log.error({ err: message }, 'service restart failed');
        throw ApplicationFailure.create({
          type: ERROR_TYPES.ServiceStartFailed,
          nonRetryable: true,
          message: `could not restart ${ref.group}/${ref.resource} on node ${node}: ${message}`,
          cause: err instanceof Error ? err : undefined,
        });
      }
      const status = await driver.status();
      return { pid: status.pid };
    },

    /**
     * Runs the service's check until it passes `rise` times in a row. Heartbeats every poll,
     * so a crashed agent is noticed within the heartbeat timeout rather than `timeoutMs`.
     */
    async waitForHealthy(req: WaitForHealthyRequest): Promise<{ checks: number; detail: string }> {
      const { spec, check } = lookup(req);
      const ctx = Context.current();
      const pollMs = Math.min(spec.check.intervalMs, recoveryPollMs);
      const deadline = Date.now() + req.timeoutMs;
      let passes = 0;
      let checks = 0;
      let detail = 'not checked yet';
      for (;;) {
        const result = await check();
        checks++;
        detail = result.detail;
        passes = result.ok ? passes + 1 : 0;
        if (passes >= spec.check.rise) return { checks, detail };
        ctx.heartbeat({ checks, passes, detail });
        if (Date.now() + pollMs > deadline) {
          throw ApplicationFailure.create({
            type: ERROR_TYPES.ServiceNotHealthy,
            nonRetryable: true,
            message: `${req.group}/${req.resource} on node ${node} did not pass its ${spec.check.type} check ${spec.check.rise} time(s) in a row within ${req.timeoutMs}ms: ${detail}`,
          });
        }
        await sleep(pollMs, undefined, { signal: ctx.cancellationSignal });
      }
    },
  };
}

export type ServiceActivities = ReturnType<typeof createServiceActivities>;
