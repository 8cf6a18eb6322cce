/**
 * The heals running now, for `haoscar status`: the cluster's running `healService` workflows
 * (listed by their search attributes), each asked for its state (the `healStatus` query) and
 * set beside the resource's healing policy from the configuration, so that an operator sees how
 * much of the heal's budget is used: "2 of 3 restarts in the 1m window".
 *
 * Listing goes through Temporal's visibility store, which the dev server and SQL stores update at
 * once and Elasticsearch within about a second: a heal that has just started may be missing from
 * one look. Every call has the status command's deadline; a heal that does not answer its query
 * is listed with the reason rather than dropped.
 */
import type { Client } from '@temporalio/client';
import type { Config } from '../config/types.js';
import { quoted } from '../history/fetch.js';
import { healStatusQuery, type HealStatus } from '../../workflows/shared.js';

/** At most this many running heals are asked for their state in one look. */
const MAX_HEALS = 50;

export interface RunningHeal {
  workflowId: string;
  group: string;
  resource: string;
  node: string;
  /** When this run started (ms since the epoch); a heal that continued as new counts from its last run. */
  since: number;
  /** What the heal does now (absent when its query went unanswered: see `error`). */
  phase?: HealStatus['phase'];
  /** Restarts within the healing window, counted against `maxRestarts`. */
  restartsInWindow?: number;
  /** The resource's healing policy, from this configuration (absent for a resource it does not know). */
  maxRestarts?: number;
  windowMs?: number;
  /** The last attempt's outcome and detail. */
  lastAttempt?: { at: number; outcome: string; detail: string };
  /** Why the heal's state is not known (its query failed or timed out). */
  error?: string;
}

/** The visibility query of `cluster`'s running heals. Pure. */
export function runningHealsQuery(cluster: string): string {
  return `HaCluster = ${quoted(cluster)} AND HaOperation = "heal" AND ExecutionStatus = "Running"`;
}

export async function runningHeals(client: Client, config: Config, deadline: number): Promise<RunningHeal[]> {
  const listed: Omit<RunningHeal, 'phase'>[] = [];
  await client.withDeadline(deadline, async () => {
    for await (const w of client.workflow.list({ query: runningHealsQuery(config.cluster), pageSize: MAX_HEALS })) {
      const memo = (w.memo ?? {}) as Record<string, unknown>;
      const text = (k: string) => (typeof memo[k] === 'string' ? memo[k] : '?');
      listed.push({ workflowId: w.workflowId, group: text('group'), resource: text('resource'), node: text('node'), since: w.startTime.getTime() });
      if (listed.length >= MAX_HEALS) break;
    }
  });
  return Promise.all(
    listed.map(async (heal): Promise<RunningHeal> => {
      const healing = config.groups.find((g) => g.name === heal.group)?.resources.find((r) => r.name === heal.resource)?.healing;
      const policy = healing ? { maxRestarts: healing.maxRestarts, windowMs: healing.windowMs } : {};
      try {
        const s = await client.withDeadline(deadline, () => client.workflow.getHandle(heal.workflowId).query(healStatusQuery));
        const last = s.attempts.at(-1);
        return { ...heal, ...policy, phase: s.phase, restartsInWindow: s.restartsInWindow, ...(last ? { lastAttempt: { at: last.at, outcome: last.outcome, detail: last.detail } } : {}) };
      } catch (err) {
        return { ...heal, ...policy, error: `no answer to its state query (${err instanceof Error ? err.message : String(err)})` };
      }
    }),
  );
}
