/**
 * Pure decisions about the agents' authenticated reports to the controller (`nodeEdge`,
 * `nodeAnnounce`, `groupLost`; docs/security.md): who signs a report, whether its (incarnation,
 * counter) is newer than the newest applied from that node, and what is kept of a refusal. The
 * MAC itself is checked by an activity of the workflow worker (activities/auth.ts checkControllerReport): workflow
 * code cannot hold the key.
 */
import type { GroupLostReport, NodeAnnounce, NodeEdge, RefusedReport, ReportSignal, ReportsRecord } from './shared.js';

/** How many refusals the ownership answer keeps (their count is kept in full). */
export const MAX_REFUSED_REPORTS = 20;

/** The node whose agent sends (and signs) a report: an edge's reporter, the announcing or losing node. */
export function reportSender(signal: ReportSignal, report: NodeEdge | NodeAnnounce | GroupLostReport): string {
  return signal === 'nodeEdge' ? (report as NodeEdge).reporter : (report as NodeAnnounce | GroupLostReport).node;
}

/** Where a report stands in its sender's order. */
export interface ReportPosition {
  incarnation: number;
  counter: number;
}

export type ReportFreshness =
  | { fresh: true }
  /** `duplicate`: the newest one applied, delivered again (an agent's retry, or its replay): nothing to do, not a refusal. */
  | { fresh: false; duplicate: boolean; why: string };

/**
 * Whether a signed report comes after the newest one applied from its sender: a later incarnation
 * (the agent restarted; its counter starts again), or a larger counter within the same one.
 * Anything else is a replay of a recorded report, or a report of an incarnation that has ended.
 */
export function reportFreshness(last: ReportPosition | undefined, got: ReportPosition): ReportFreshness {
  if (last === undefined || got.incarnation > last.incarnation || (got.incarnation === last.incarnation && got.counter > last.counter)) return { fresh: true };
  if (got.incarnation === last.incarnation && got.counter === last.counter) {
    return { fresh: false, duplicate: true, why: `report ${got.counter} of incarnation ${got.incarnation} was applied already` };
  }
  const why = got.incarnation < last.incarnation
    ? `its incarnation ${got.incarnation} is older than ${last.incarnation}, the sender's newest (a recorded report replayed, or an agent that has restarted since)`
    : `report ${got.counter} of incarnation ${got.incarnation} is not newer than report ${last.counter}, the newest applied (a recorded report replayed)`;
  return { fresh: false, duplicate: false, why };
}

/** The record with `refusal` counted and kept (the oldest dropped past {@link MAX_REFUSED_REPORTS}). */
export function withRefusal(record: ReportsRecord | undefined, refusal: RefusedReport): ReportsRecord {
  const base = record ?? { nodes: {}, refused: 0, lastRefused: [] };
  return { ...base, refused: base.refused + 1, lastRefused: [...base.lastRefused, refusal].slice(-MAX_REFUSED_REPORTS) };
}

/** The record with `position` as the sender's newest report, applied at `at`. */
export function withAccepted(record: ReportsRecord | undefined, sender: string, position: ReportPosition, at: number): ReportsRecord {
  const base = record ?? { nodes: {}, refused: 0, lastRefused: [] };
  return { ...base, nodes: { ...base.nodes, [sender]: { incarnation: position.incarnation, counter: position.counter, at } } };
}

/** A report waiting in the controller's queue: who sent it and, when it has a MAC, where it stands. */
export interface QueuedPosition {
  sender: string;
  position?: ReportPosition;
}

/**
 * Which queued report to check and apply next: the first one, unless its sender has one queued
 * that comes before it in that sender's order (a smaller incarnation, or a smaller counter of the
 * same one): then the first of those. Reports come in the order each agent sent them, except at a
 * run's start: the SDK hands the signals that came before the handlers were set to each handler as
 * it is set, so by signal name, not by arrival (an `up` edge before the announcement sent ahead of
 * it). @returns an index into `queue` (0 when it is empty).
 */
export function nextReport(queue: readonly QueuedPosition[]): number {
  const first = queue[0];
  if (first?.position === undefined) return 0;
  let best = 0;
  for (let i = 1; i < queue.length; i++) {
    const q = queue[i]!;
    const b = queue[best]!.position!;
    if (q.sender === first.sender && q.position && (q.position.incarnation < b.incarnation || (q.position.incarnation === b.incarnation && q.position.counter < b.counter))) best = i;
  }
  return best;
}

/** At most this many reports are checked in one activity (its input stays far below Temporal's payload limit). */
export const MAX_REPORT_BATCH = 64;

/**
 * The reports to check in one activity, taken out of `queue` in the order they are to be applied
 * (nextReport, one after the other): the next one and, unless it is a heal's `healGaveUp` (checked
 * on its own), the agents' reports after it up to the next `healGaveUp`, at most `max`. A report
 * that comes while the batch is checked goes into the next batch: an agent sends its reports one
 * after the other (each once the one before was delivered), so none comes before one of its own
 * already taken.
 */
export function takeReportBatch<T extends QueuedPosition & { signal: string }>(queue: T[], max = MAX_REPORT_BATCH): T[] {
  const batch: T[] = [];
  while (queue.length > 0 && batch.length < max) {
    const i = nextReport(queue);
    if (batch.length > 0 && queue[i]!.signal === 'healGaveUp') break;
    batch.push(queue.splice(i, 1)[0]!);
    if (batch[0]!.signal === 'healGaveUp') break;
  }
  return batch;
}

/**
 * A heal's "gave up" report's place in that heal's order: its `at` (the heal workflow's time,
 * under the MAC), as an incarnation with a single report. Undefined for none.
 */
export function healPosition(at: number | undefined): ReportPosition | undefined {
  return at === undefined ? undefined : { incarnation: at, counter: 1 };
}

/** The record with `at` as the newest "gave up" report applied from the heal `healId`. */
export function withAcceptedHeal(record: ReportsRecord | undefined, healId: string, at: number): ReportsRecord {
  const base = record ?? { nodes: {}, refused: 0, lastRefused: [] };
  return { ...base, heals: { ...base.heals, [healId]: at } };
}
