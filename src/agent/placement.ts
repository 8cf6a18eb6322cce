/**
 * Where a group runs. Until the cluster controller (failover) owns placement, a group runs on
 * its first-preference node only: the agents start it there, heals restart it there, and
 * nowhere else (restarting it elsewhere would run it twice). The one place that rule lives.
 */
import type { Config, GroupSpec } from '../config/types.js';

export function nodeRunning(group: GroupSpec): string {
  return group.nodes[0]!;
}

/** The groups a node's agent starts when it starts. */
export function groupsHomedOn(config: Config, node: string): GroupSpec[] {
  return config.groups.filter((g) => nodeRunning(g) === node);
}
