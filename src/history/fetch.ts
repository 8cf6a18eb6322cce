/**
 * Reading a cluster's workflow histories for the postmortem: listed by search attributes
 * (HaCluster, HaGroup, HaOperation), each run's history fetched whole. Every call has a
 * deadline; what Temporal does not answer in time is a clear error, never a partial timeline.
 */
import { ServiceError, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { CliError, EXIT } from '../cli/errors.js';
import { formatDuration } from '../config/duration.js';
import type { FetchedRun } from './timeline.js';

/** More runs than this in one window: narrow it (--since, a group) rather than wait for all. */
export const MAX_RUNS = 2000;

/** A visibility query string literal (quotes and backslashes escaped). */
export function quoted(v: string): string {
  return `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * The visibility query for the runs of `cluster` that overlap the window from `since`: started
 * in it, closed in it, or still running (a controller run that began long ago); with `group`,
 * the group's operations and the controller's runs. Pure.
 */
export function historyQuery(cluster: string, since: number, group?: string): string {
  const from = quoted(new Date(since).toISOString());
  return [
    `HaCluster = ${quoted(cluster)}`,
    `(StartTime >= ${from} OR CloseTime >= ${from} OR ExecutionStatus = "Running")`,
    ...(group !== undefined ? [`(HaGroup = ${quoted(group)} OR HaOperation = "controller")`] : []),
  ].join(' AND ');
}

function noAnswer(what: string, timeoutMs: number, err: unknown): CliError {
  const said = err instanceof Error ? err.message : String(err);
  return new CliError(`Temporal did not answer ${what} within ${formatDuration(timeoutMs)} (${said}); is it running, and is temporal.address right? (--timeout to wait longer)`, EXIT.unavailable);
}

/** Runs `fn` under the deadline; a failed or late call becomes a CliError saying `what`. */
async function answered<T>(client: Client, deadline: number, timeoutMs: number, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await client.withDeadline(deadline, fn);
  } catch (err) {
    if (err instanceof CliError || err instanceof WorkflowNotFoundError) throw err;
    if (err instanceof ServiceError || Date.now() >= deadline) throw noAnswer(what, timeoutMs, err);
    throw err;
  }
}

/**
 * Every run of `cluster`'s workflows overlapping the window, with its history, all within
 * `timeoutMs`. @throws CliError (exit 4) when Temporal does not answer in time; (exit 1) when the
 * window holds more than MAX_RUNS runs.
 */
export async function fetchRuns(client: Client, opts: { cluster: string; group?: string; since: number; timeoutMs: number }): Promise<FetchedRun[]> {
  const deadline = Date.now() + opts.timeoutMs;
  const query = historyQuery(opts.cluster, opts.since, opts.group);
  const listed = await answered(client, deadline, opts.timeoutMs, `the list of workflows (${query})`, async () => {
    const out: { workflowId: string; runId: string }[] = [];
    for await (const w of client.workflow.list({ query })) {
      out.push({ workflowId: w.workflowId, runId: w.runId });
      if (out.length > MAX_RUNS) throw new CliError(`more than ${MAX_RUNS} workflow runs in this window: narrow it (--since, a group)`, EXIT.failure);
    }
    return out;
  });
  const runs: FetchedRun[] = [];
  // A few at a time: a long window holds many small histories.
  for (let i = 0; i < listed.length; i += 8) {
    const batch = listed.slice(i, i + 8);
    runs.push(...(await Promise.all(batch.map((w) => answered(client, deadline, opts.timeoutMs, `the history of ${w.workflowId}`, async () => ({
      ...w,
      history: await client.workflow.getHandle(w.workflowId, w.runId).fetchHistory(),
    }))))));
  }
  return runs;
}

/**
 * One run (default: the latest of `workflowId`) with its history. @throws CliError (exit 1)
 * when there is no such workflow; (exit 4) when Temporal does not answer in time.
 */
export async function fetchRun(client: Client, opts: { workflowId: string; runId?: string; timeoutMs: number }): Promise<FetchedRun> {
  const deadline = Date.now() + opts.timeoutMs;
  try {
    return await answered(client, deadline, opts.timeoutMs, `the history of ${opts.workflowId}`, async () => {
      const handle = client.workflow.getHandle(opts.workflowId, opts.runId);
      const { runId } = await handle.describe();
      return { workflowId: opts.workflowId, runId, history: await client.workflow.getHandle(opts.workflowId, runId).fetchHistory() };
    });
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      throw new CliError(`no workflow ${opts.workflowId}${opts.runId ? ` run ${opts.runId}` : ''} in this namespace (\`haoscar history\` lists the operations and their workflow IDs)`, EXIT.failure);
    }
    throw err;
  }
}
