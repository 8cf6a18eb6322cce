/**
 * Two holders of a group, from the nodes' own reports: what each node answered the failover's
 * orders in its workflow history. A node holds the group from the moment it was ordered to start
 * a resource (it may have started it at any time after the order was sent) until it reported
 * every resource it started stopped again (a completed `stopResource`, or a start that failed:
 * the node stops what failed itself); the owner before the move holds it from the drill's start
 * until it reported the group stopped (a completed `stopGroup`). A `ping` answered with the group
 * held is a holding at that instant. Two nodes holding at once is what the failover must never
 * allow (docs/drill.md). Pure: reads a fetched history (src/history).
 */
import { eventMs, firstValue, type History } from '../history/events.js';

export interface HoldInterval {
  node: string;
  from: number;
  /** Absent: still held when the history ends. */
  to?: number;
  epoch?: number;
  /** How the history says so (the activity that began and that ended it). */
  began: string;
  ended?: string;
}

export interface HolderOverlap {
  nodes: [string, string];
  from: number;
  to: number;
  ms: number;
}

export interface NodeReports {
  intervals: HoldInterval[];
  overlaps: HolderOverlap[];
  /** What the reports cannot say (an old owner that never reported its stop: the move relied on its lease or a fence). */
  notes: string[];
}

function record(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

/** The node a task queue belongs to (`haoscar.<cluster>.node.<node>`). */
function nodeOfQueue(queue: string | null | undefined): string | undefined {
  return /\.node\.([^.]+)$/.exec(queue ?? '')?.[1];
}

/** An order's epoch, read leniently (a signed order may wrap it). */
function epochOf(input: unknown): number | undefined {
  const r = record(input);
  const e = r.epoch ?? record(r.order).epoch ?? record(r.request).epoch;
  return typeof e === 'number' ? e : undefined;
}

/**
 * The holding intervals the failover's history reports, and where two nodes overlap.
 * `owner`: the node that held the group when the drill began (the controller's view then), at
 * `since` (ms); undefined when nobody did.
 */
export function nodeReports(history: History, opts: { group: string; owner?: string; ownerEpoch?: number; since: number }): NodeReports {
  const intervals: HoldInterval[] = [];
  const notes: string[] = [];
  /** Per node: the open interval, and the resources ordered started and not reported stopped. */
  const open = new Map<string, { interval: HoldInterval; resources: Set<string>; wholeGroup: boolean }>();
  const begin = (node: string, at: number, began: string, epoch: number | undefined) => {
    let o = open.get(node);
    if (!o) {
      const interval: HoldInterval = { node, from: at, began, ...(epoch !== undefined ? { epoch } : {}) };
      intervals.push(interval);
      o = { interval, resources: new Set(), wholeGroup: false };
      open.set(node, o);
    }
    return o;
  };
  const end = (node: string, at: number, ended: string) => {
    const o = open.get(node);
    if (!o) return;
    o.interval.to = at;
    o.interval.ended = ended;
    open.delete(node);
  };
  if (opts.owner !== undefined) begin(opts.owner, opts.since, 'owner when the drill began', opts.ownerEpoch).wholeGroup = true;

  const scheduled = new Map<string, { name: string; node: string; input: unknown }>();
  for (const e of history.events ?? []) {
    const at = eventMs(e);
    const sa = e.activityTaskScheduledEventAttributes;
    if (sa) {
      const node = nodeOfQueue(sa.taskQueue?.name);
      const name = sa.activityType?.name ?? '?';
      if (node === undefined) continue;
      const input = firstValue(sa.input);
      scheduled.set(String(e.eventId ?? ''), { name, node, input });
      if (name === 'startResource') {
        const resource = String(record(input).resource ?? '?');
        begin(node, at, `ordered to start ${resource}`, epochOf(input)).resources.add(resource);
      }
      continue;
    }
    const done = e.activityTaskCompletedEventAttributes;
    const failed = e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
    const step = scheduled.get(String((done ?? failed)?.scheduledEventId ?? ''));
    if (!step) continue;
    const { name, node, input } = step;
    if (done && name === 'stopGroup') {
      end(node, at, 'reported the group stopped');
      continue;
    }
    if (done && name === 'stopResource') {
      const o = open.get(node);
      o?.resources.delete(String(record(input).resource ?? '?'));
      if (o && o.resources.size === 0 && !o.wholeGroup) end(node, at, 'reported what it started stopped');
      continue;
    }
    if (failed && name === 'startResource') {
      // A start that failed was stopped by the node before it answered (activities/ownership.ts).
      const o = open.get(node);
      o?.resources.delete(String(record(input).resource ?? '?'));
      if (o && o.resources.size === 0 && !o.wholeGroup) end(node, at, 'its start failed (stopped by the node)');
      continue;
    }
    if (done && name === 'ping') {
      const holds = record(record(firstValue(done.result)).holds);
      if (typeof holds.epoch === 'number' && !open.has(node)) {
        intervals.push({ node, from: at, to: at, epoch: holds.epoch, began: 'answered a ping holding the group', ended: 'same answer' });
      }
    }
  }
  if (opts.owner !== undefined) {
    const first = intervals.find((i) => i.node === opts.owner && i.began === 'owner when the drill began');
    if (first && first.to === undefined && intervals.some((i) => i.node !== opts.owner)) {
      notes.push(`${opts.owner} never reported the group stopped in this history: the move relied on waiting out its lease (or on a fence), which its reports cannot show`);
    }
  }
  return { intervals, overlaps: overlapsOf(intervals, notes, opts.owner), notes };
}

/** Overlaps of two different nodes' intervals; an old owner with no reported stop is left out (see notes). */
function overlapsOf(intervals: readonly HoldInterval[], notes: readonly string[], owner: string | undefined): HolderOverlap[] {
  const silentOwner = notes.length > 0 ? owner : undefined;
  const counted = intervals.filter((i) => !(i.node === silentOwner && i.to === undefined && i.began === 'owner when the drill began'));
  const out: HolderOverlap[] = [];
  for (let a = 0; a < counted.length; a++) {
    for (let b = a + 1; b < counted.length; b++) {
      const x = counted[a]!;
      const y = counted[b]!;
      if (x.node === y.node) continue;
      const from = Math.max(x.from, y.from);
      const to = Math.min(x.to ?? Infinity, y.to ?? Infinity);
      // An instant (a ping answer) inside another's interval counts; touching ends do not.
      const instant = x.from === x.to || y.from === y.to;
      if (to > from || (instant && to >= from && to !== Infinity)) out.push({ nodes: [x.node, y.node], from, to, ms: to - from });
    }
  }
  return out;
}
