/**
 * The controller's lease view, published in its memo (docs/security.md, "Lease renewals"), so that
 * an owner confirms its lease with DescribeWorkflowExecution: answered by Temporal's history service
 * from the run's mutable state, without running workflow code. A confirmation then no longer waits
 * for the workflow worker's CPU (issue 14 item 2); the `ownership` query stays as the fallback.
 *
 * Workflow-safe. The controller writes one memo entry per group (`haoscar-lease/<group>`: owner,
 * epoch, state, renewable) and one for the cluster (`haoscar-lease`: the leases it waits out and
 * maintenance), each only when its content changes, in the same workflow task as the change: an
 * idle cluster writes nothing, and a block is committed together with the memo that says so, so a
 * read that comes before the commit can extend a lease only up to (its send time + ttl).
 *
 * Each entry is an envelope built here (cluster, workflow and run IDs as Temporal gives them to
 * the workflow, the key it is stored under, and this run's publication counter) and marked; the
 * workflow worker's payload codec signs marked entries on their way out (src/auth/ownership-answer.ts),
 * as it signs the query's answers. The agent accepts an entry only with a MAC for its cluster's
 * controller, from the run Temporal describes as running, under its own key, and not older than
 * an entry of that key it has already seen from that run.
 */
import { defaultPayloadConverter, workflowInfo } from '@temporalio/workflow';
import { RawValue } from '@temporalio/common';
import { z } from 'zod';
import type { GroupOwnership, Ownership } from './shared.js';
import { ANSWER_MARK_KEY, asciiBytes } from './ownership-answer.js';

/** The mark of a lease memo entry (payload metadata ANSWER_MARK_KEY; the query's answers carry ANSWER_MARK). */
export const LEASE_MEMO_MARK = 'lease-memo-v1';
/** The memo key of the cluster-wide entry; a group's is LEASE_MEMO_KEY + '/' + group. */
export const LEASE_MEMO_KEY = 'haoscar-lease';

export function leaseMemoGroupKey(group: string): string {
  return `${LEASE_MEMO_KEY}/${group}`;
}

/** What an owner's lease needs of a group: the part of GroupOwnership that changes only when ownership does. */
export type LeaseGroupView = Pick<GroupOwnership, 'owner' | 'epoch' | 'state' | 'renewable'>;

/**
 * What an agent's lease round reads from the controller: an `Ownership` is one (the query's
 * answer), and so is what the memo holds.
 */
export interface LeaseView {
  cluster: string;
  groups: Record<string, LeaseGroupView>;
  leases?: Ownership['leases'];
  maintenance?: Ownership['maintenance'];
}

/** The content of each memo entry the controller publishes for `state`, by memo key. Pure. */
export function leaseMemoContents(state: Pick<Ownership, 'groups' | 'leases' | 'maintenance'>): Map<string, unknown> {
  const contents = new Map<string, unknown>();
  // Maintenance without `moves` (when a standby's switchover was last started): not the lease's business.
  const maintenance = state.maintenance ? { groups: state.maintenance.groups, nodes: state.maintenance.nodes } : null;
  contents.set(LEASE_MEMO_KEY, { leases: state.leases ?? null, maintenance });
  for (const [name, g] of Object.entries(state.groups)) {
    contents.set(leaseMemoGroupKey(name), { owner: g.owner, epoch: g.epoch, state: g.state, renewable: g.renewable });
  }
  return contents;
}

/**
 * The entries whose content differs from what was published last (`published`: memo key →
 * JSON of its content), in key order. Pure.
 */
export function leaseMemoChanges(published: ReadonlyMap<string, string>, contents: ReadonlyMap<string, unknown>): [key: string, json: string, content: unknown][] {
  const changed: [string, string, unknown][] = [];
  for (const [key, content] of contents) {
    const json = JSON.stringify(content);
    if (published.get(key) !== json) changed.push([key, json, content]);
  }
  return changed.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

/** One memo entry as published (and signed by the worker's codec). */
export interface LeaseMemoEntry {
  kind: typeof LEASE_MEMO_MARK;
  cluster: string;
  workflowId: string;
  runId: string;
  /** The memo key it was written under: an entry moved under another key is refused. */
  key: string;
  /** This run's publication counter (1, 2, ...): an entry older than one already seen is refused. */
  version: number;
  content: unknown;
}

const leaseTimingSchema = z.object({ ttlMs: z.number(), marginMs: z.number() }).passthrough();

/** A group's entry's content as the agent accepts it. */
export const leaseGroupContentSchema = z.object({
  owner: z.string().nullable(),
  epoch: z.number().int().nonnegative(),
  state: z.enum(['unplaced', 'moving', 'running', 'down']),
  renewable: z.boolean(),
});

/** The cluster entry's content as the agent accepts it. */
export const leaseClusterContentSchema = z.object({
  leases: z.object({ worker: leaseTimingSchema, nodes: z.record(z.string(), leaseTimingSchema.extend({ at: z.number() })) }).nullable(),
  maintenance: z.object({ groups: z.record(z.string(), z.unknown()), nodes: z.record(z.string(), z.unknown()) }).passthrough().nullable(),
});

export const leaseMemoEntrySchema = z.object({
  kind: z.literal(LEASE_MEMO_MARK),
  cluster: z.string(),
  workflowId: z.string(),
  runId: z.string(),
  key: z.string(),
  version: z.number().int().positive(),
  content: z.unknown(),
});

/** The marked payload of an entry (JSON, as the default converter writes it, plus the mark). */
export function leaseMemoPayload(entry: LeaseMemoEntry): RawValue<LeaseMemoEntry> {
  const payload = defaultPayloadConverter.toPayload(entry);
  return RawValue.fromPayload({ ...payload, metadata: { ...payload.metadata, [ANSWER_MARK_KEY]: asciiBytes(LEASE_MEMO_MARK) } }) as RawValue<LeaseMemoEntry>;
}

/** The memo upsert for `changes` (leaseMemoChanges) as publication `version` of this run. */
export function leaseMemoUpsert(cluster: string, version: number, changes: [key: string, json: string, content: unknown][]): Record<string, RawValue<LeaseMemoEntry>> {
  const { workflowId, runId } = workflowInfo();
  return Object.fromEntries(changes.map(([key, , content]) => [key, leaseMemoPayload({ kind: LEASE_MEMO_MARK, cluster, workflowId, runId, key, version, content })]));
}
