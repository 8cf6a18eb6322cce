/**
 * Activities that change what this node runs: start or stop a group's resources under an
 * epoch, answer "are you there?", fence a peer. They run on the node's own task queue. An
 * epoch older than one this node has seen is refused (`StaleEpoch`, not retryable): a newer
 * operation owns the group.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Config } from '../src/config/types.js';
import type { Exec } from '../src/exec.js';
import type { Logger } from '../src/log.js';
import { PeerStillClaimsError, StaleEpochError, StopFailedError, type GroupRuntime } from '../src/agent/groups.js';
import type { LeaseKeeper } from '../src/agent/lease.js';
import type { ServiceRegistry } from '../src/agent/services.js';
import { awaitHealthy } from './service.js';
import { runFenceAgent } from '../src/fence.js';
import { ERROR_TYPES, type LeaseTiming } from '../workflows/shared.js';
import type { MessageKey } from '../src/auth/messages.js';
import { createNodeAuth } from './auth.js';

export interface OwnershipActivityDeps {
  node: string;
  config: Config;
  groups: GroupRuntime;
  services: ServiceRegistry;
  lease?: LeaseKeeper;
  exec: Exec;
  logger: Logger;
  /** Runs before a resource of a group is started here (file sets stop pulling into it). */
  beforeStart?: (group: string) => Promise<void>;
  /**
   * The message key (deriveMessageKey of the cluster secret): answers are signed with it and
   * orders refused unless they carry its MAC (activities/auth.ts). Undefined only in a one-node
   * cluster, which loads no secret.
   */
  key: MessageKey | undefined;
}

/** How often a starting resource's check runs while a failover waits for it (at most its interval). */
const VERIFY_POLL_MS = 20;

/**
 * How often a start or stop order tells Temporal that this agent is still at it. The failover
 * gives up on an order after NODE_HEARTBEAT_TIMEOUT_MS (10 s) without one: an agent that died or
 * hung mid-order is noticed then, not at the order's timeout (a minute or more).
 */
const ORDER_HEARTBEAT_MS = 1000;

/** Runs `order` heartbeating every ORDER_HEARTBEAT_MS (the SDK throttles what it sends). */
async function heartbeating<T>(order: () => Promise<T>): Promise<T> {
  const ctx = Context.current();
  ctx.heartbeat();
  const timer = setInterval(() => ctx.heartbeat(), ORDER_HEARTBEAT_MS);
  try {
    return await order();
  } finally {
    clearInterval(timer);
  }
}

export interface ResourceOrder {
  group: string;
  resource: string;
  epoch: number;
  /** The workflow worker's MAC over the order (activities/auth.ts). */
  mac?: string;
}

export function createOwnershipActivities(deps: OwnershipActivityDeps) {
  const { node, groups, logger } = deps;
  const auth = createNodeAuth({ cluster: deps.config.cluster, node, key: deps.key, logger });

  /** Our errors, typed for the workflow: none of them is fixed by retrying on this node. */
  const typed = (err: unknown, what: string): never => {
    if (err instanceof StaleEpochError) throw ApplicationFailure.create({ type: ERROR_TYPES.StaleEpoch, nonRetryable: true, message: err.message });
    if (err instanceof StopFailedError) throw ApplicationFailure.create({ type: ERROR_TYPES.StopFailed, nonRetryable: true, message: `${what} on node ${node}: ${err.message}` });
    const message = err instanceof Error ? err.message : String(err);
    throw ApplicationFailure.create({
      type: err instanceof PeerStillClaimsError ? ERROR_TYPES.StaleEpoch : ERROR_TYPES.ResourceStartFailed,
      nonRetryable: true,
      message: `${what} on node ${node}: ${message}`,
      cause: err instanceof Error ? err : undefined,
    });
  };

  /** The started resource passes its check `rise` times; then its monitor watches it. */
  async function verifyResource(req: ResourceOrder & { timeoutMs: number }): Promise<{ checks: number; detail: string }> {
    const service = deps.services.get(req.group, req.resource);
    if (!service) typed(new Error(`resource ${req.group}/${req.resource} is not configured here: make sure every node runs the same haoscar.yaml`), 'verifying');
    // Polled often: a failover waits on this, and the checks are local and cheap.
    const healthy = await awaitHealthy(service!, req.timeoutMs, node, VERIFY_POLL_MS);
    try {
      await groups.watch(req.group, req.resource, req.epoch);
    } catch (err) {
      typed(err, `watching ${req.group}/${req.resource} at epoch ${req.epoch}`);
    }
    return healthy;
  }

  return {
    /**
     * "Are you there?": answered only by this node's agent, so an answer proves it is up and
     * reaches Temporal. A group it holds comes with the lease this node enforces (its own
     * configuration: what a failover must wait out, whatever the worker's says), under the MAC.
     */
    async ping(req: { group?: string; nonce?: string }): Promise<{ node: string; at: number; holds?: { epoch: number; state: string; failure?: string; lease: LeaseTiming }; mac?: string }> {
      const held = req.group ? groups.holding(req.group) : undefined;
      const lease = { ttlMs: deps.config.lease.ttlMs, marginMs: deps.config.lease.marginMs };
      // Signed over the asking failover's nonce: an impostor polling this queue cannot answer for us.
      return auth.signAnswer({ node, at: Date.now(), ...(held ? { holds: { epoch: held.epoch, state: held.state, ...(held.failure ? { failure: held.failure } : {}), lease } } : {}) }, req.nonce);
    },

    /**
     * Starts the resource under `epoch`, then (with `verifyTimeoutMs`) waits until it passes its
     * check `rise` times and has its monitor watch it. A resource that does not pass is stopped
     * again before the failure is returned: the workflow compensates only what succeeded.
     */
    startResource: (req: ResourceOrder & { verifyTimeoutMs?: number }): Promise<{ checks?: number; detail?: string }> => heartbeating(async () => {
      auth.checkOrder(req);
      try {
        if (groups.holding(req.group) === undefined) await deps.beforeStart?.(req.group);
        await groups.startResource(req.group, req.resource, req.epoch);
        // The controller recorded this node as owner before the order was sent.
        deps.lease?.granted(req.group, req.epoch);
      } catch (err) {
        typed(err, `starting ${req.group}/${req.resource} at epoch ${req.epoch}`);
      }
      if (req.verifyTimeoutMs === undefined) return {};
      try {
        return await verifyResource({ ...req, timeoutMs: req.verifyTimeoutMs });
      } catch (err) {
        await groups.stopResource(req.group, req.resource, req.epoch).catch((e: unknown) =>
          logger.error({ group: req.group, resource: req.resource, err: String(e) }, 'could not stop a resource that failed its start'),
        );
        throw err;
      }
    }),

    verifyResource,

    stopResource: (req: ResourceOrder): Promise<void> => heartbeating(async () => {
      auth.checkOrder(req);
      try {
        await groups.stopResource(req.group, req.resource, req.epoch);
      } catch (err) {
        typed(err, `stopping ${req.group}/${req.resource}`);
      }
    }),

    /** A planned stop of the whole group, in reverse order (the old owner of a failover). */
    stopGroup: (req: { group: string; epoch: number; reason: string; mac?: string }): Promise<void> => heartbeating(async () => {
      auth.checkOrder(req);
      try {
        await groups.stopGroup(req.group, req.reason, req.epoch);
      } catch (err) {
        typed(err, `stopping group ${req.group}`);
      }
    }),

    /** Runs the fence agent configured for `victim` from this node. */
    async fence(req: { victim: string; mac?: string }): Promise<{ fenced: boolean; detail: string }> {
      auth.checkOrder(req);
      const spec = deps.config.nodes.find((n) => n.name === req.victim)?.fence;
      if (!spec) return { fenced: false, detail: `no fence agent is configured for node ${req.victim}` };
      logger.warn({ victim: req.victim, agent: spec.command[0] }, 'fencing a node');
      return runFenceAgent(spec, req.victim, { exec: deps.exec, logger });
    },
  };
}

export type OwnershipActivities = ReturnType<typeof createOwnershipActivities>;
