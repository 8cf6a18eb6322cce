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
} as const;
