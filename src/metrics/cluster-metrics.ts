/**
 * The cluster's metrics as a workflow worker sees them (`haoscar worker`, or an agent with
 * `agent.workflows: true`): the controller's view of groups and nodes (its `ownership` query, no
 * history written), and the operations that finished, counted from Temporal's visibility by
 * their search attributes (HaOperation, HaOutcome). Every answer within a deadline: a scrape
 * never hangs on Temporal; what it could not read is said by `haoscar_cluster_scrape_ok 0`.
 *
 * Why visibility, not a counter in the worker: a heal or failover may run on any worker, and
 * be replayed on another after a crash; Temporal's record of how it ended is the one count
 * that every worker agrees on. It covers what the namespace retains (its retention period),
 * so it is a gauge (`haoscar_operations`) that falls when old runs expire: `delta()` over a
 * window, not `increase()` (which would read the fall as a counter reset). Every worker reports
 * the same numbers: aggregate with `max`.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { Ownership } from '../../workflows/shared.js';
import { HA_KEYS } from '../../workflows/search-attributes.js';
import type { Labels, MetricFamily, Sample } from './exposition.js';

/** More finished operations than this in the namespace's retention: counted up to it (a cap on scrape cost). */
export const MAX_OPERATIONS_LISTED = 5000;

/** One finished operation: its kind, outcome and how its workflow closed. */
export interface FinishedOperation {
  operation: string;
  group: string;
  /** HaOutcome; `none` when the run set none (an older release, or it failed before knowing). */
  outcome: string;
  /** Temporal's execution status, lower case: completed, failed, terminated, timed_out, ... */
  status: string;
}

/** The visibility query for the closed operations of `cluster` (heals, failovers, switchovers, resyncs). */
export function finishedOperationsQuery(cluster: string): string {
  return `HaCluster = "${cluster.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}" AND ExecutionStatus != "Running" AND HaOperation != "controller"`;
}

/** A listed workflow as a finished operation, or undefined when it is not one of ours (no HaOperation). */
export function asFinishedOperation(w: Pick<WorkflowExecutionInfo, 'typedSearchAttributes' | 'status'>): FinishedOperation | undefined {
  const operation = w.typedSearchAttributes.get(HA_KEYS.HaOperation);
  if (operation === undefined) return undefined;
  return {
    operation,
    group: w.typedSearchAttributes.get(HA_KEYS.HaGroup) ?? '',
    outcome: w.typedSearchAttributes.get(HA_KEYS.HaOutcome) ?? 'none',
    status: w.status.name.toLowerCase(),
  };
}

/** What the worker read for one scrape; undefined parts could not be read within the deadline. */
export interface ClusterView {
  cluster: string;
  ownership?: Ownership;
  operations?: FinishedOperation[];
  /** Why a part is missing. */
  problems: string[];
}

const GROUP_STATES = ['unplaced', 'moving', 'running', 'down'] as const;
const NODE_STATES = ['up', 'suspect', 'unknown'] as const;

/** The cluster's metric families (pure). */
export function clusterFamilies(view: ClusterView): MetricFamily[] {
  const base: Labels = { cluster: view.cluster };
  const l = (labels: Record<string, string>): Labels => ({ ...base, ...labels });
  const gauge = (name: string, help: string, samples: Sample[]): MetricFamily => ({ name, help, type: 'gauge', samples });
  const groups = Object.entries(view.ownership?.groups ?? {});
  const nodes = Object.entries(view.ownership?.nodes ?? {});
  const maintenance = view.ownership?.maintenance;
  const counted = new Map<string, { labels: Labels; value: number }>();
  for (const op of view.operations ?? []) {
    const labels = l({ operation: op.operation, group: op.group, outcome: op.outcome, status: op.status });
    const k = JSON.stringify(labels);
    const c = counted.get(k) ?? { labels, value: 0 };
    c.value++;
    counted.set(k, c);
  }
  return [
    gauge('haoscar_cluster_scrape_ok', "1 when the controller's view and the operations could be read from Temporal for this scrape; 0 otherwise (the worker's log says why).", [
      { labels: l({ part: 'controller' }), value: view.ownership ? 1 : 0 },
      { labels: l({ part: 'operations' }), value: view.operations ? 1 : 0 },
    ]),
    gauge('haoscar_controller_group_state', "Each group's state in the controller (1 for its state, 0 for the others).",
      groups.flatMap(([group, g]) => GROUP_STATES.map((state) => ({ labels: l({ group, state }), value: g.state === state ? 1 : 0 })))),
    gauge('haoscar_controller_group_owner', "Each group's owner in the controller: 1, with the owner as a label (none: unowned).",
      groups.map(([group, g]) => ({ labels: l({ group, owner: g.owner ?? 'none' }), value: 1 }))),
    gauge('haoscar_controller_group_epoch', "Each group's epoch (fencing token) in the controller: raised on every change of owner.",
      groups.map(([group, g]) => ({ labels: l({ group }), value: g.epoch }))),
    gauge('haoscar_controller_group_operation', '1 while an operation (heal, failover, switchover, resync) holds the group, with its kind as a label.',
      groups.filter(([, g]) => g.operation).map(([group, g]) => ({ labels: l({ group, kind: g.operation!.kind }), value: 1 }))),
    gauge('haoscar_controller_node_state', "Each node's liveness in the controller (1 for its state, 0 for the others).",
      nodes.flatMap(([node, n]) => NODE_STATES.map((state) => ({ labels: l({ node, state }), value: n.state === state ? 1 : 0 })))),
    gauge('haoscar_controller_maintenance', '1 for each group or node in maintenance (haoscar maintenance).', [
      ...Object.keys(maintenance?.groups ?? {}).map((group) => ({ labels: l({ kind: 'group', name: group }), value: 1 })),
      ...Object.keys(maintenance?.nodes ?? {}).map((node) => ({ labels: l({ kind: 'node', name: node }), value: 1 })),
    ]),
    gauge('haoscar_operations', "Finished operations of the cluster (heal, failover, switchover, resync) that Temporal's visibility retains, by operation, group, outcome (HaOutcome) and how the workflow closed.",
      [...counted.values()]),
  ];
}

/**
 * Reads the cluster's view within `timeoutMs` (each part on its own: a controller that does not
 * answer does not hide the operations). Never throws.
 */
export async function readClusterView(client: Client, cluster: string, query: (client: Client, cluster: string) => Promise<Ownership>, timeoutMs: number): Promise<ClusterView> {
  const deadline = Date.now() + timeoutMs;
  const problems: string[] = [];
  const [ownership, operations] = await Promise.all([
    client.withDeadline(deadline, () => query(client, cluster)).catch((err: unknown) => {
      problems.push(`the controller's view: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }),
    client.withDeadline(deadline, async () => {
      const out: FinishedOperation[] = [];
      for await (const w of client.workflow.list({ query: finishedOperationsQuery(cluster) })) {
        const op = asFinishedOperation(w);
        if (op) out.push(op);
        if (out.length >= MAX_OPERATIONS_LISTED) break;
      }
      return out;
    }).catch((err: unknown) => {
      problems.push(`the finished operations: ${err instanceof Error ? err.message : String(err)}`);
      return undefined;
    }),
  ]);
  return { cluster, ...(ownership ? { ownership } : {}), ...(operations ? { operations } : {}), problems };
}
