/**
 * Looking a workflow's group (and node) up in the cluster's layout, with the typed failure a
 * workflow started from the UI with a wrong name ends with (nothing has been changed yet).
 */
import { ApplicationFailure, proxyLocalActivities, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { ClusterActivities, ClusterLayout } from '../activities/cluster.js';
import type { ControllerActivities } from '../activities/controller.js';
import { haTags, HA_KEYS, type HaTags } from './search-attributes.js';
import { ERROR_TYPES } from './shared.js';

export type LayoutGroup = ClusterLayout['groups'][number];

const local = proxyLocalActivities<ClusterActivities & ControllerActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200ms', maximumInterval: '2 seconds', maximumAttempts: 10, nonRetryableErrorTypes: [ERROR_TYPES.UnknownGroup, ERROR_TYPES.WrongCluster, ERROR_TYPES.ControllerNotRunning] },
});

/**
 * The group from the layout (checked as {@link groupOf} does) and its owner from the
 * controller, asked at once: each is a round trip, and operators wait on both.
 */
export async function groupAndOwner(cluster: string, name: string, node: string) {
  const [layout, owner] = await Promise.all([
    local.describeCluster.executeWithOptions({ summary: `look up group ${name} in the configuration` }, [{ cluster }]),
    local.groupOwner.executeWithOptions({ summary: `ask the controller who owns ${name}` }, [{ cluster, group: name }]),
  ]);
  return { group: groupOf(layout, name, node), owner };
}

/**
 * As {@link groupAndOwner}, with the resync's signed resyncGroup order for `node` from the same
 * local activity as the owner (activities/controller.ts resyncOrder): one round of local
 * activities before the pull instead of two. The order is there when the owner is not null
 * and not `node`; the caller still refuses the other cases, as before.
 */
export async function groupAndResyncOrder(cluster: string, name: string, node: string) {
  const [layout, { owner, order }] = await Promise.all([
    local.describeCluster.executeWithOptions({ summary: `look up group ${name} in the configuration` }, [{ cluster }]),
    local.resyncOrder.executeWithOptions({ summary: `ask the controller who owns ${name}, and sign the order for ${node} to pull from it` }, [{ cluster, group: name, node }]),
  ]);
  return { group: groupOf(layout, name, node), owner, order };
}

/** @throws UnknownGroup; NodeNotInGroup when `node` is given and may not run the group. */
export function groupOf(layout: ClusterLayout, name: string, node?: string): LayoutGroup {
  const group = layout.groups.find((g) => g.name === name);
  if (!group) {
    throw ApplicationFailure.create({ type: ERROR_TYPES.UnknownGroup, nonRetryable: true, message: `unknown group '${name}' (known: ${layout.groups.map((g) => g.name).join(', ') || 'none'}); nothing was changed` });
  }
  if (node !== undefined && !group.nodes.includes(node)) {
    throw ApplicationFailure.create({ type: ERROR_TYPES.NodeNotInGroup, nonRetryable: true, message: `node '${node}' may not run group '${group.name}' (its nodes: ${group.nodes.join(', ')}); nothing was changed` });
  }
  return group;
}

/** A workflow started from the UI has no search attributes: it sets its own, so filters find it. */
export function tagIfUntagged(tags: HaTags): void {
  if (workflowInfo().typedSearchAttributes.get(HA_KEYS.HaGroup) === undefined) upsertSearchAttributes(haTags(tags));
}
