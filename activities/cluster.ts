/**
 * Cluster-wide lookups in the configuration. They run on the cluster's shared queue (any
 * agent may answer: all nodes run the same haoscar.yaml) and let a workflow started from the
 * UI learn, from its name alone, where a resource lives and how it is to be healed — or fail
 * at once with a clear message when the name is unknown.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/activity';
import type { Config, HealingPolicy, CheckTiming } from '../src/config/types.js';
import { ERROR_TYPES, nodeTaskQueue } from '../workflows/shared.js';
import type { CloneFacts } from '../workflows/clone-plan.js';
import { markNow, remainingMs, type MonotonicMark } from '../src/monotonic-mark.js';

export interface HealTargetRequest {
  cluster: string;
  node: string;
  group: string;
  resource: string;
}

export interface HealTarget {
  nodeTaskQueue: string;
  healing: HealingPolicy;
  check: CheckTiming & { type: string };
}

/** What the controller and failovers need to know of the configuration. */
export interface ClusterLayout {
  nodes: { name: string; priority: number; fenced: boolean; fenceTimeoutMs?: number }[];
  groups: {
    name: string;
    nodes: string[];
    resources: { name: string; type: string; startTimeoutMs: number }[];
    /** Names of its file sets (absent in histories recorded before file sets existed). */
    fileSets?: string[];
    failback?: { policy: 'manual' | 'auto'; stableForMs: number; stickinessMs: number };
    /** The data policy of unplanned failovers (absent in histories recorded before it existed). */
    failover?: { maxSyncLag: number };
  }[];
  lease: { ttlMs: number; marginMs: number };
  failover: { verifyTimeoutMs: number };
  /**
   * The lease guard (absent in histories recorded before it existed). `watchdogTimeoutMs`: every
   * node has an armed watchdog that resets it this long after its guard stops feeding it (on a
   * failed release), so a failed stop is safe after the lease, its margin and this timeout.
   */
  guard?: { enabled: boolean; watchdogTimeoutMs?: number };
}

export function createClusterActivities(deps: { config: Config }) {
  const { config } = deps;
  const fail = (type: string, message: string) => ApplicationFailure.create({ type, nonRetryable: true, message });

  const checkCluster = (cluster: string) => {
    if (cluster !== config.cluster) {
      throw fail(ERROR_TYPES.WrongCluster, `this workflow names cluster '${cluster}' but runs on the queue of cluster '${config.cluster}'`);
    }
  };

  return {
    /** The cluster as this worker's haoscar.yaml describes it. */
    async describeCluster(req: { cluster: string }): Promise<ClusterLayout> {
      checkCluster(req.cluster);
      return {
        nodes: config.nodes.map((n) => ({ name: n.name, priority: n.priority, fenced: n.fence !== undefined, ...(n.fence ? { fenceTimeoutMs: n.fence.timeoutMs } : {}) })),
        groups: config.groups.map((g) => ({
          name: g.name,
          nodes: g.nodes,
          resources: g.resources.map((r) => ({ name: r.name, type: r.type, startTimeoutMs: r.healing.startTimeoutMs })),
          fileSets: g.fileSets.map((f) => f.name),
          failback: g.failback,
          failover: g.failover,
        })),
        lease: config.lease,
        failover: config.failover,
        // The guard feeds the watchdog: without the guard, nothing arms it.
        guard: { enabled: config.guard.enabled, ...(config.guard.enabled && config.guard.watchdog ? { watchdogTimeoutMs: config.guard.watchdog.timeoutMs } : {}) },
      };
    },

    /** What a clone's planner needs (workflows/clone-plan.ts): addresses, the agent's state, group mounts, `clone:`. */
    async describeCloneFacts(req: { cluster: string }): Promise<CloneFacts & { sourceAddress: Record<string, string>; checksumSample: number }> {
      checkCluster(req.cluster);
      return {
        nodes: config.nodes.map((n) => ({ name: n.name, addresses: n.addresses })),
        // The first address is the one a node is reached on (as the file sets' pulls do).
        sourceAddress: Object.fromEntries(config.nodes.map((n) => [n.name, n.addresses[0]!])),
        stateDir: config.agent.stateDir,
        groupMountpoints: config.groups.flatMap((g) => g.resources.flatMap((r) => (r.type === 'filesystem' ? [r.mountpoint] : []))),
        clone: { include: config.clone.include, exclude: config.clone.exclude },
        checksumSample: config.clone.checksumSample,
      };
    },

    /**
     * Sleeps for this long in the worker's process (a server timer may fire late). With `since`
     * (a mark taken in some worker process), the wait counts from the mark when it was taken in
     * this process, and whole otherwise (src/monotonic-mark.ts): it is never shortened by
     * comparing two clocks.
     */
    async pause(req: { ms: number; since?: MonotonicMark }): Promise<void> {
      await sleep(remainingMs(req.ms, req.since, markNow()));
    },

    async resolveHealTarget(req: HealTargetRequest): Promise<HealTarget> {
      checkCluster(req.cluster);
      const known = (names: string[]) => names.join(', ') || '(none)';
      if (!config.nodes.some((n) => n.name === req.node)) {
        throw fail(ERROR_TYPES.UnknownNode, `unknown node '${req.node}' in cluster '${config.cluster}' (known: ${known(config.nodes.map((n) => n.name))})`);
      }
      const group = config.groups.find((g) => g.name === req.group);
      if (!group) {
        throw fail(ERROR_TYPES.UnknownGroup, `unknown group '${req.group}' (known: ${known(config.groups.map((g) => g.name))})`);
      }
      const resource = group.resources.find((r) => r.name === req.resource);
      if (!resource) {
        throw fail(ERROR_TYPES.UnknownResource, `unknown resource '${req.resource}' in group '${group.name}' (known: ${known(group.resources.map((r) => r.name))})`);
      }
      if (!group.nodes.includes(req.node)) {
        throw fail(ERROR_TYPES.NodeNotInGroup, `node '${req.node}' may not run group '${group.name}' (its nodes: ${known(group.nodes)})`);
      }
      const { type, intervalMs, timeoutMs, rise, fall } = resource.check;
      return {
        nodeTaskQueue: nodeTaskQueue(config.cluster, req.node),
        healing: resource.healing,
        check: { type, intervalMs, timeoutMs, rise, fall },
      };
    },
  };
}

export type ClusterActivities = ReturnType<typeof createClusterActivities>;
