/**
 * The custom search attributes HA-OSCAR sets on its workflows, so that anyone can find a
 * heal (or later a failover) in the Temporal UI by cluster, node, group and resource, e.g.
 * `HaCluster = "lab" AND HaGroup = "web"`. `haoscar server` registers them on the embedded
 * dev server; on an external cluster, docs/temporal.md gives the commands.
 *
 * The keys themselves are defined once, in workflows/search-attributes.ts.
 */
import type { Client } from '@temporalio/client';
import { HA_KEYS } from '../../workflows/search-attributes.js';

export type SearchAttributeName = keyof typeof HA_KEYS;

/** Name → type as the Temporal CLI spells it (`--search-attribute HaGroup=Keyword`). */
export const SEARCH_ATTRIBUTES = Object.fromEntries(
  Object.values(HA_KEYS).map((key) => [key.name, key.type === 'KEYWORD' ? 'Keyword' : key.type]),
) as Record<SearchAttributeName, string>;

/**
 * The search attributes of SEARCH_ATTRIBUTES that `namespace` lacks. Workflows set `HaTrigger`
 * and `HaOutcome` themselves (workflows/story.ts): on a namespace without them their workflow
 * tasks would fail again and again, a failover would hang, so the workflow worker refuses to
 * start instead (checkSearchAttributes). @returns undefined when Temporal did not say (a
 * credential that may not list them): the caller cannot tell, and goes on.
 */
export async function missingSearchAttributes(client: Client, namespace: string): Promise<string[] | undefined> {
  try {
    const { customAttributes } = await client.connection.operatorService.listSearchAttributes({ namespace });
    return Object.keys(SEARCH_ATTRIBUTES).filter((name) => !(name in (customAttributes ?? {})));
  } catch {
    return undefined;
  }
}

/** The commands that register `missing` on an external Temporal (docs/temporal.md). */
export function registerCommands(namespace: string, missing: readonly string[]): string {
  return missing.map((name) => `temporal operator search-attribute create --namespace ${namespace} --name ${name} --type ${SEARCH_ATTRIBUTES[name as SearchAttributeName] ?? 'Keyword'}`).join('; ');
}
