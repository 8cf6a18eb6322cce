/**
 * The custom search attributes HA-OSCAR sets on its workflows, so that anyone can find a
 * heal (or later a failover) in the Temporal UI by cluster, node, group and resource, e.g.
 * `HaCluster = "lab" AND HaGroup = "web"`. `haoscar server` registers them on the embedded
 * dev server; on an external cluster, `haoscar setup-temporal` (or the docs' commands) does.
 */
export const SEARCH_ATTRIBUTES = {
  HaCluster: 'Keyword',
  HaNode: 'Keyword',
  HaGroup: 'Keyword',
  HaResource: 'Keyword',
  HaOperation: 'Keyword',
} as const;

export type SearchAttributeName = keyof typeof SEARCH_ATTRIBUTES;
