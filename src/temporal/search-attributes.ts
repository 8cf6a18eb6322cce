/**
 * The custom search attributes HA-OSCAR sets on its workflows, so that anyone can find a
 * heal (or later a failover) in the Temporal UI by cluster, node, group and resource, e.g.
 * `HaCluster = "lab" AND HaGroup = "web"`. `haoscar server` registers them on the embedded
 * dev server; on an external cluster, docs/temporal.md gives the commands.
 *
 * The keys themselves are defined once, in workflows/search-attributes.ts.
 */
import { HA_KEYS } from '../../workflows/search-attributes.js';

export type SearchAttributeName = keyof typeof HA_KEYS;

/** Name → type as the Temporal CLI spells it (`--search-attribute HaGroup=Keyword`). */
export const SEARCH_ATTRIBUTES = Object.fromEntries(
  Object.values(HA_KEYS).map((key) => [key.name, key.type === 'KEYWORD' ? 'Keyword' : key.type]),
) as Record<SearchAttributeName, string>;
