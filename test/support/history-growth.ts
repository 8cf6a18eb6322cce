/**
 * What a cluster writes to Temporal while nothing happens (issue 14 item 5): the history length of
 * every workflow run a server holds, and the events written between two such readings. Used by
 * test/lab/idle-history.test.ts (a healthy cluster writes none in a minute) and bench/idle.ts.
 * Meant for a server that holds one cluster's workflows (a lab's own dev server).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client } from '@temporalio/client';
// A CommonJS package whose names node's ESM loader cannot see: its default export is the module.
import proto from '@temporalio/proto';

const EVENT_TYPE = proto.temporal.api.enums.v1.EventType;

/** `${workflowId} ${runId}` (ids may hold '/', never a space) → history length. */
export type HistoryLengths = Map<string, number>;

export async function historyLengths(client: Client): Promise<HistoryLengths> {
  const lengths: HistoryLengths = new Map();
  for await (const execution of client.workflow.list()) {
    const described = await client.workflow.getHandle(execution.workflowId, execution.runId).describe();
    lengths.set(`${execution.workflowId} ${execution.runId}`, described.historyLength);
  }
  return lengths;
}

/**
 * Waits until what a cluster's start began has settled (an agent's join, its first announcements
 * and the ends of the start's workflows are events too): three readings 2 s apart that are all the
 * same. Returns the last one.
 */
export async function settledHistoryLengths(client: Client): Promise<HistoryLengths> {
  let before = await historyLengths(client);
  for (let unchanged = 0; unchanged < 3;) {
    await sleep(2_000);
    const now = await historyLengths(client);
    const same = now.size === before.size && [...now].every(([run, length]) => before.get(run) === length);
    unchanged = same ? unchanged + 1 : 0;
    before = now;
  }
  return before;
}

/** Each run that grew or appeared between the readings, with the types of the events it wrote. */
export async function eventsWritten(client: Client, before: HistoryLengths, after: HistoryLengths): Promise<{ run: string; events: string[] }[]> {
  const written: { run: string; events: string[] }[] = [];
  for (const [run, length] of after) {
    const was = before.get(run) ?? 0;
    if (length === was) continue;
    const [workflowId, runId] = run.split(' ') as [string, string];
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    const events = (history.events ?? []).slice(was).map((e) => EVENT_TYPE[e.eventType ?? 0]?.replace(/^EVENT_TYPE_/, '') ?? String(e.eventType));
    written.push({ run, events });
  }
  return written;
}
