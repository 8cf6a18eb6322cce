/**
 * Typed keys of HA-OSCAR's search attributes (names and types in src/temporal/search-attributes.ts,
 * which `haoscar server` registers). `@temporalio/common` is deterministic and workflow-safe.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const HA_KEYS = {
  HaCluster: defineSearchAttributeKey('HaCluster', SearchAttributeType.KEYWORD),
  HaNode: defineSearchAttributeKey('HaNode', SearchAttributeType.KEYWORD),
  HaGroup: defineSearchAttributeKey('HaGroup', SearchAttributeType.KEYWORD),
  HaResource: defineSearchAttributeKey('HaResource', SearchAttributeType.KEYWORD),
  HaOperation: defineSearchAttributeKey('HaOperation', SearchAttributeType.KEYWORD),
  /** What started an operation (workflows/story.ts TRIGGERS), set by the workflow at its start. */
  HaTrigger: defineSearchAttributeKey('HaTrigger', SearchAttributeType.KEYWORD),
  /** What an operation came to (workflows/story.ts OUTCOMES), set by the workflow when it is known. */
  HaOutcome: defineSearchAttributeKey('HaOutcome', SearchAttributeType.KEYWORD),
} as const;

/** What an operation is about, as search attributes: the UI's filters find it by these. */
export interface HaTags {
  cluster: string;
  group: string;
  node?: string;
  resource?: string;
  operation: string;
}

/** The typed search attributes of an operation (for a start, a child, or an upsert). */
export function haTags(t: HaTags) {
  return [
    { key: HA_KEYS.HaCluster, value: t.cluster },
    { key: HA_KEYS.HaGroup, value: t.group },
    ...(t.node !== undefined ? [{ key: HA_KEYS.HaNode, value: t.node }] : []),
    ...(t.resource !== undefined ? [{ key: HA_KEYS.HaResource, value: t.resource }] : []),
    { key: HA_KEYS.HaOperation, value: t.operation },
  ];
}
