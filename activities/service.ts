/**
 * Activities that act on a service of this node: restart it, wait until it is healthy.
 * They run on the node's own task queue, so they always touch the node they are meant for.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Logger } from '../src/log.js';
import { NotHoldingError } from '../src/agent/groups.js';
import { restartManaged, supervisedIsRunning, type ServiceRegistry, type ManagedService } from '../src/agent/services.js';
import { ERROR_TYPES } from '../workflows/shared.js';
import { RECOVERY_POLL_MS, waitUntilHealthy } from '../src/agent/wait-healthy.js';

export interface ServiceRef {
  group: string;
  resource: string;
}

export interface RestartRequest extends ServiceRef {
  /** When the failure that asks for this restart was seen (the reporting node's clock). */
  failureSeenAt?: number;
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
  /**
   * Runs a restart in the group's queue only while this node holds the group under an
   * unexpired lease the guard has not released (GroupRuntime.whileHolding); throws
   * NotHoldingError otherwise. A heal never starts a group the node does not own.
   */
  whileHolding?: <T>(group: string, fn: () => Promise<T>) => Promise<T>;
}


export function createServiceActivities(deps: ServiceActivityDeps) {
  const { node, services, logger } = deps;
  const recoveryPollMs = deps.recoveryPollMs ?? RECOVERY_POLL_MS;

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
    /**
     * Stops (if needed) and starts the service. Idempotent: a retry just starts it again.
     * With `failureSeenAt`, a service that this agent has restarted since then and that
     * passes its check is left alone (`restarted: false`): the report is stale (a local heal
     * while Temporal was unreachable got there first).
     */
    async restartService(ref: RestartRequest): Promise<{ restarted: boolean; pid?: number }> {
      const service = lookup(ref);
      const { driver, check } = service;
      const log = logger.child({ group: ref.group, resource: ref.resource });
      const whileHolding = deps.whileHolding ?? (<T>(_group: string, fn: () => Promise<T>) => fn());
      try {
        return await whileHolding(ref.group, async () => {
          if (ref.failureSeenAt !== undefined && service.startedAt !== undefined && service.startedAt > ref.failureSeenAt) {
            const now = await check();
            if (now.ok) {
              log.info({ failureSeenAt: ref.failureSeenAt, startedAt: service.startedAt }, 'not restarting: restarted since the failure was seen, and healthy');
              return { restarted: false, pid: (await driver.status()).pid };
            }
          }
          log.info('restarting service');
          try {
            await restartManaged(service);
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
          return { restarted: true, pid: (await driver.status()).pid };
        });
      } catch (err) {
        if (!(err instanceof NotHoldingError)) throw err;
        throw ApplicationFailure.create({
          type: ERROR_TYPES.NodeNotInGroup,
          nonRetryable: true,
          message: `${err.message} (it was moved, stopped, or its lease ran out): not restarting ${ref.group}/${ref.resource} here`,
        });
      }
    },

    /**
     * Runs the service's check until it passes `rise` times in a row. Heartbeats every poll,
     * so a crashed agent is noticed within the heartbeat timeout rather than `timeoutMs`.
     */
    async waitForHealthy(req: WaitForHealthyRequest): Promise<{ checks: number; detail: string }> {
      return awaitHealthy(lookup(req), req.timeoutMs, node, recoveryPollMs);
    },
  };
}

export type ServiceActivities = ReturnType<typeof createServiceActivities>;

/**
 * Runs the resource's check until it passes `rise` times in a row, heartbeating every poll
 * (a crashed agent is then noticed within the heartbeat timeout rather than `timeoutMs`).
 * @throws a non-retryable `ServiceNotHealthy` when it does not within `timeoutMs`.
 */
export async function awaitHealthy(service: ManagedService, timeoutMs: number, node: string, recoveryPollMs = RECOVERY_POLL_MS): Promise<{ checks: number; detail: string }> {
  const { spec, check, group } = service;
  const ctx = Context.current();
  const result = await waitUntilHealthy({
    check,
    isRunning: supervisedIsRunning(service),
    rise: spec.check.rise,
    pollMs: Math.min(spec.check.intervalMs, recoveryPollMs),
    timeoutMs,
    signal: ctx.cancellationSignal,
    onPoll: (progress) => ctx.heartbeat(progress),
  });
  if (!result.healthy) {
    throw ApplicationFailure.create({
      type: ERROR_TYPES.ServiceNotHealthy,
      nonRetryable: true,
      message: `${group.name}/${spec.name} on node ${node} did not pass its ${spec.check.type} check ${spec.check.rise} time(s) in a row within ${timeoutMs}ms: ${result.detail}`,
    });
  }
  return { checks: result.checks, detail: result.detail };
}
