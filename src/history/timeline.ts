/**
 * The postmortem (issue 11 item 3): what the histories of a cluster's workflows say happened,
 * as plain data. `operationStory` reads one run's history (a heal, failover, switchover or
 * resync, or a run of the controller); `buildTimeline` puts the runs of a window in order, with
 * the nodes' liveness edges the controller recorded. Pure: the histories are fetched elsewhere
 * (fetch.ts) and the result is rendered elsewhere (render.ts), so both are tested on recorded
 * histories (test/histories).
 */
import {
  detailsOf,
  eventMs,
  failureDetails,
  failureText,
  failureType,
  firstValue,
  keywords,
  payloadValue,
  summaryOf,
  timestampMs,
  type History,
  type HistoryEvent,
} from './events.js';

/** One run of a workflow, as fetched. */
export interface FetchedRun {
  workflowId: string;
  runId: string;
  history: History;
}

export type RunStatus = 'running' | 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed-out' | 'continued-as-new';
export type OperationKind = 'heal' | 'failover' | 'switchover' | 'resync' | 'controller' | 'other';

/** One step of an operation: an activity (regular or local), a timer, a child workflow. */
export interface Step {
  at: number;
  durationMs?: number;
  kind: 'activity' | 'local-activity' | 'timer' | 'child';
  /** The activity or workflow type, or `timer`. */
  name: string;
  /** The line the Temporal UI shows for it (user metadata). */
  summary?: string;
  /** The node whose task queue ran it (regular activities on a node's queue). */
  node?: string;
  /** unfinished: the workflow closed before it did (a pause raced by an answer is left so). */
  outcome: 'completed' | 'failed' | 'timed-out' | 'cancelled' | 'running' | 'unfinished';
  detail?: string;
}

/** A message the operation received (signals and accepted updates), for `history show`. */
export interface Message {
  at: number;
  kind: 'signal' | 'update';
  name: string;
  args?: unknown;
}

export interface Phase {
  name: string;
  ms: number;
}

/** What one run of a workflow tells. */
export interface OperationStory {
  workflowId: string;
  runId: string;
  type: string;
  operation: OperationKind;
  /** The workflow's summary (user metadata of its start), if it was given one. */
  summary?: string;
  details?: string;
  cluster?: string;
  group?: string;
  resource?: string;
  /** The node a heal or resync is about, or a switchover's target. */
  node?: string;
  startedAt: number;
  endedAt?: number;
  durationMs?: number;
  status: RunStatus;
  /** What started it: HaTrigger, else the memo's trigger, else the input's kind. */
  trigger?: string;
  reason?: string;
  /** What it came to: HaOutcome, else read from its result or failure. */
  outcome?: string;
  falseAlarm: boolean;
  from?: string | null;
  to?: string | null;
  epoch?: number;
  phases: Phase[];
  /** A failover's candidates, a heal's attempts: node or time, outcome, detail. */
  attempts: { node?: string; at?: number; outcome: string; detail: string }[];
  /** Why it failed (the failure's message), when it did. */
  failure?: string;
  failureType?: string;
  /** The workflow that started it (a controller's failover, a switchover's resync). */
  parent?: string;
  steps: Step[];
  messages: Message[];
}

/** A node's liveness edge, as the controller received it. */
export interface NodeEvent {
  at: number;
  node: string;
  to: string;
  reporter?: string;
  detail?: string;
  /** The controller run that recorded it. */
  runId: string;
}

export interface Timeline {
  cluster?: string;
  group?: string;
  since: number;
  until: number;
  /** Operations and controller runs, oldest first. */
  operations: OperationStory[];
  nodeEvents: NodeEvent[];
  counts: { operations: number; byOutcome: Record<string, number>; falseAlarms: number; running: number };
}

const OPERATION_OF: Record<string, OperationKind> = { healService: 'heal', failover: 'failover', switchover: 'switchover', resync: 'resync', controller: 'controller' };

/** The node a task queue belongs to (`haoscar.<cluster>.node.<node>`). */
function nodeOfQueue(queue: string | null | undefined): string | undefined {
  const m = /\.node\.([^.]+)$/.exec(queue ?? '');
  return m?.[1];
}

function record(v: unknown): Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

/** Phase names of a failover's result (`verifyMs` → `verify`), in the order they happen. */
const FAILOVER_PHASES = ['syncCheckMs', 'verifyMs', 'stopMs', 'syncMs', 'fenceMs', 'blockedMs', 'leaseWaitMs', 'startMs', 'totalMs'] as const;
const PHASE_NAMES: Record<string, string> = { syncCheckMs: 'sync check', verifyMs: 'verify', stopMs: 'stop', syncMs: 'final sync', fenceMs: 'fence', blockedMs: 'blocked', leaseWaitMs: 'lease wait', startMs: 'start', totalMs: 'total' };

function failoverPhases(phases: unknown): Phase[] {
  const p = record(phases);
  return FAILOVER_PHASES.flatMap((k) => (num(p[k]) !== undefined ? [{ name: PHASE_NAMES[k]!, ms: num(p[k])! }] : []));
}

/** A failover's result (from its completion, or the details of its failure) onto the story. */
function applyFailoverResult(s: OperationStory, result: unknown): void {
  const r = record(result);
  if (Object.keys(r).length === 0) return;
  if (str(r.outcome)) s.outcome ??= str(r.outcome);
  if ('from' in r) s.from = str(r.from) ?? null;
  if ('to' in r) s.to = str(r.to) ?? null;
  if (num(r.epoch) !== undefined) s.epoch = num(r.epoch);
  s.phases = failoverPhases(r.phases);
  if (Array.isArray(r.attempts)) {
    s.attempts = r.attempts.map((a) => record(a)).map((a) => ({ node: str(a.node), outcome: str(a.outcome) ?? '?', detail: str(a.detail) ?? '' }));
  }
}

/** Heal phases from its steps: time restarting, waiting to be healthy, backing off, then watching. */
function healPhases(s: OperationStory): Phase[] {
  const sum = (pred: (st: Step) => boolean) => s.steps.filter(pred).reduce((t, st) => t + (st.durationMs ?? 0), 0);
  const out: Phase[] = [];
  const restart = sum((st) => st.name === 'restartService');
  const healthy = sum((st) => st.name === 'waitForHealthy');
  const backoff = sum((st) => st.kind === 'timer');
  if (restart > 0) out.push({ name: 'restart', ms: restart });
  if (healthy > 0) out.push({ name: 'wait healthy', ms: healthy });
  if (backoff > 0) out.push({ name: 'back-off', ms: backoff });
  const last = s.steps.filter((st) => st.name === 'waitForHealthy' && st.durationMs !== undefined).at(-1);
  if (last && s.endedAt !== undefined && s.outcome === 'healed') out.push({ name: 'watch', ms: Math.max(0, s.endedAt - (last.at + last.durationMs!)) });
  if (s.durationMs !== undefined) out.push({ name: 'total', ms: s.durationMs });
  return out;
}

function closeOf(e: HistoryEvent): { status: RunStatus; result?: unknown; failure?: HistoryEvent['workflowExecutionFailedEventAttributes'] } | undefined {
  if (e.workflowExecutionCompletedEventAttributes) return { status: 'completed', result: firstValue(e.workflowExecutionCompletedEventAttributes.result) };
  if (e.workflowExecutionFailedEventAttributes) return { status: 'failed', failure: e.workflowExecutionFailedEventAttributes };
  if (e.workflowExecutionCanceledEventAttributes) return { status: 'cancelled' };
  if (e.workflowExecutionTerminatedEventAttributes) return { status: 'terminated' };
  if (e.workflowExecutionTimedOutEventAttributes) return { status: 'timed-out' };
  if (e.workflowExecutionContinuedAsNewEventAttributes) return { status: 'continued-as-new' };
  return undefined;
}

/**
 * What one run's history tells. @throws Error when the history does not begin with its
 * workflow's start (not a whole history).
 */
export function operationStory(run: FetchedRun): OperationStory {
  const events = run.history.events ?? [];
  const first = events[0];
  const start = first?.workflowExecutionStartedEventAttributes;
  if (!first || !start) throw new Error(`the history of ${run.workflowId} (run ${run.runId}) does not begin with the workflow's start`);
  const type = start.workflowType?.name ?? '?';
  const input = record(firstValue(start.input));
  const memo = record(Object.fromEntries(Object.entries(start.memo?.fields ?? {}).map(([k, p]) => [k, payloadValue(p)])));
  const attrs = keywords(start.searchAttributes?.indexedFields);
  const s: OperationStory = {
    workflowId: run.workflowId,
    runId: run.runId,
    type,
    operation: OPERATION_OF[type] ?? 'other',
    startedAt: eventMs(first),
    status: 'running',
    falseAlarm: false,
    phases: [],
    attempts: [],
    steps: [],
    messages: [],
  };
  const summary = summaryOf(first);
  if (summary !== undefined) s.summary = summary;
  const details = detailsOf(first);
  if (details !== undefined) s.details = details;
  s.cluster = str(input.cluster) ?? attrs.HaCluster;
  s.group = str(input.group) ?? attrs.HaGroup;
  s.resource = str(input.resource) ?? attrs.HaResource;
  s.node = str(input.node) ?? (type === 'switchover' ? str(input.to) : undefined) ?? attrs.HaNode;
  s.reason = str(input.reason) ?? str(memo.detail);
  if (start.parentWorkflowExecution?.workflowId) s.parent = start.parentWorkflowExecution.workflowId;
  // A failover or switchover started without a kind (or trigger) is an operator's.
  let trigger = attrs.HaTrigger ?? str(memo.trigger) ?? str(input.kind) ?? str(input.trigger) ?? (type === 'failover' || type === 'switchover' ? 'operator' : undefined);
  let outcome = attrs.HaOutcome;

  /** Steps by the event that scheduled them. */
  const scheduled = new Map<string, Step>();
  const children = new Map<string, Step>();
  for (const e of events) {
    const id = String(e.eventId ?? '');
    const at = eventMs(e);
    const sa = e.activityTaskScheduledEventAttributes;
    if (sa) {
      const step: Step = { at, kind: 'activity', name: sa.activityType?.name ?? '?', outcome: 'running' };
      const sum = summaryOf(e);
      if (sum !== undefined) step.summary = sum;
      const node = nodeOfQueue(sa.taskQueue?.name);
      if (node !== undefined) step.node = node;
      scheduled.set(id, step);
      s.steps.push(step);
      continue;
    }
    const done = e.activityTaskCompletedEventAttributes ?? e.activityTaskFailedEventAttributes ?? e.activityTaskTimedOutEventAttributes ?? e.activityTaskCanceledEventAttributes;
    if (done) {
      const step = scheduled.get(String(done.scheduledEventId ?? ''));
      if (step) {
        step.durationMs = at - step.at;
        step.outcome = e.activityTaskCompletedEventAttributes ? 'completed' : e.activityTaskFailedEventAttributes ? 'failed' : e.activityTaskTimedOutEventAttributes ? 'timed-out' : 'cancelled';
        const f = e.activityTaskFailedEventAttributes?.failure ?? e.activityTaskTimedOutEventAttributes?.failure;
        const why = failureText(f);
        if (why !== undefined) step.detail = why;
      }
      continue;
    }
    const cancelAsked = e.activityTaskCancelRequestedEventAttributes;
    if (cancelAsked) {
      // The workflow withdrew it (a ping's deadline passed, an answer came first): no completion may follow.
      const step = scheduled.get(String(cancelAsked.scheduledEventId ?? ''));
      if (step?.outcome === 'running') {
        step.outcome = 'cancelled';
        step.durationMs = at - step.at;
      }
      continue;
    }
    const marker = e.markerRecordedEventAttributes;
    if (marker?.markerName === 'core_local_activity') {
      const data = record(firstValue(marker.details?.data));
      const completeAt = timestampMs(record(data.complete_time) as { seconds?: unknown; nanos?: number });
      const scheduledAt = timestampMs(record(data.original_schedule_time) as { seconds?: unknown; nanos?: number });
      const step: Step = { at: scheduledAt ?? at, kind: 'local-activity', name: str(data.activity_type) ?? '?', outcome: marker.failure ? 'failed' : 'completed' };
      if (completeAt !== undefined && scheduledAt !== undefined) step.durationMs = Math.max(0, completeAt - scheduledAt);
      const sum = summaryOf(e);
      if (sum !== undefined) step.summary = sum;
      const why = failureText(marker.failure);
      if (why !== undefined) step.detail = why;
      s.steps.push(step);
      continue;
    }
    const ts = e.timerStartedEventAttributes;
    if (ts) {
      const step: Step = { at, kind: 'timer', name: 'timer', outcome: 'running' };
      const sum = summaryOf(e);
      if (sum !== undefined) step.summary = sum;
      scheduled.set(id, step);
      s.steps.push(step);
      continue;
    }
    const tf = e.timerFiredEventAttributes ?? e.timerCanceledEventAttributes;
    if (tf) {
      const step = scheduled.get(String(tf.startedEventId ?? ''));
      if (step) {
        step.durationMs = at - step.at;
        step.outcome = e.timerFiredEventAttributes ? 'completed' : 'cancelled';
      }
      continue;
    }
    const child = e.startChildWorkflowExecutionInitiatedEventAttributes;
    if (child) {
      const step: Step = { at, kind: 'child', name: child.workflowType?.name ?? '?', outcome: 'running', detail: child.workflowId ?? '' };
      const sum = summaryOf(e);
      if (sum !== undefined) step.summary = sum;
      children.set(id, step);
      s.steps.push(step);
      continue;
    }
    const childEnd = e.childWorkflowExecutionCompletedEventAttributes ?? e.childWorkflowExecutionFailedEventAttributes ?? e.childWorkflowExecutionCanceledEventAttributes
      ?? e.childWorkflowExecutionTerminatedEventAttributes ?? e.childWorkflowExecutionTimedOutEventAttributes;
    if (childEnd) {
      const step = children.get(String(childEnd.initiatedEventId ?? ''));
      if (step) {
        step.durationMs = at - step.at;
        step.outcome = e.childWorkflowExecutionCompletedEventAttributes ? 'completed' : e.childWorkflowExecutionTimedOutEventAttributes ? 'timed-out' : e.childWorkflowExecutionCanceledEventAttributes ? 'cancelled' : 'failed';
      }
      continue;
    }
    const childFailedToStart = e.startChildWorkflowExecutionFailedEventAttributes;
    if (childFailedToStart) {
      const step = children.get(String(childFailedToStart.initiatedEventId ?? ''));
      if (step) {
        step.outcome = 'failed';
        step.detail = `${step.detail ?? ''}: not started (${String(childFailedToStart.cause ?? 'already running')})`;
      }
      continue;
    }
    const signal = e.workflowExecutionSignaledEventAttributes;
    if (signal) {
      s.messages.push({ at, kind: 'signal', name: signal.signalName ?? '?', args: firstValue(signal.input) });
      continue;
    }
    const update = e.workflowExecutionUpdateAcceptedEventAttributes;
    if (update) {
      const req = update.acceptedRequest?.input;
      s.messages.push({ at, kind: 'update', name: req?.name ?? '?', args: firstValue(req?.args) });
      continue;
    }
    const upsert = e.upsertWorkflowSearchAttributesEventAttributes;
    if (upsert) {
      const set = keywords(upsert.searchAttributes?.indexedFields);
      if (set.HaTrigger) trigger = set.HaTrigger;
      if (set.HaOutcome) outcome = set.HaOutcome;
      continue;
    }
    const close = closeOf(e);
    if (close) {
      s.status = close.status;
      s.endedAt = at;
      s.durationMs = at - s.startedAt;
      if (close.failure) {
        s.failure = failureText(close.failure.failure) ?? 'failed';
        const t = failureType(close.failure.failure);
        if (t !== undefined) s.failureType = t;
      }
      const result = close.result ?? failureDetails(close.failure?.failure);
      if (s.operation === 'failover') applyFailoverResult(s, result);
      else if (s.operation === 'switchover') {
        const r = record(result);
        // Completed: its result carries the failover's; failed: the details are the failover's result.
        applyFailoverResult(s, s.status === 'completed' ? r.failover : result);
        delete s.outcome; // the failover's; the switchover's own is below
        const resynced = record(r.resync);
        if (num(resynced.durationMs) !== undefined) s.phases.unshift({ name: 'resync', ms: num(resynced.durationMs)! });
        if (s.status === 'completed') outcome ??= str(r.outcome);
      } else if (s.operation === 'resync' && s.status === 'completed') {
        const r = record(result);
        outcome ??= 'synced';
        if (num(r.durationMs) !== undefined) s.phases = [{ name: 'pull', ms: num(r.durationMs)! }];
        if (str(r.source)) s.from = str(r.source);
        s.to = s.node;
      } else if (s.operation === 'heal') {
        // Healed: the result lists the attempts; gave up: the failure's details are the heal's status.
        const r = record(result);
        if (Array.isArray(r.attempts)) s.attempts = r.attempts.map((a) => record(a)).map((a) => ({ at: num(a.at), outcome: str(a.outcome) ?? '?', detail: str(a.detail) ?? '' }));
        if (s.status === 'completed') outcome ??= str(r.outcome);
        else if (s.failureType === 'HealGaveUp') outcome ??= 'gave-up';
      }
    }
  }
  if (s.operation === 'failover' && outcome === undefined && s.outcome !== undefined) outcome = s.outcome;
  if (outcome === undefined && (s.status === 'failed' || s.status === 'terminated' || s.status === 'timed-out' || s.status === 'cancelled') && s.operation !== 'controller') outcome = s.status === 'cancelled' ? 'cancelled' : 'failed';
  if (outcome !== undefined) s.outcome = outcome;
  else delete s.outcome;
  if (s.operation === 'heal') s.phases = healPhases(s);
  if (s.status !== 'running') for (const st of s.steps) if (st.outcome === 'running') st.outcome = 'unfinished';
  if (trigger !== undefined) s.trigger = trigger;
  s.falseAlarm = s.outcome === 'false-alarm';
  for (const k of ['cluster', 'group', 'resource', 'node', 'reason'] as const) if (s[k] === undefined) delete s[k];
  return s;
}

/** The liveness edges a controller run received (its `nodeEdge` signals). */
export function nodeEvents(story: OperationStory): NodeEvent[] {
  if (story.operation !== 'controller') return [];
  return story.messages.flatMap((m) => {
    if (m.name !== 'nodeEdge') return [];
    // Read leniently: a signed report may wrap the edge (docs/security.md).
    const a = record(m.args);
    const edge = typeof a.node === 'string' ? a : record(a.edge ?? a.report);
    const node = str(edge.node);
    const to = str(edge.to);
    if (node === undefined || to === undefined) return [];
    const ev: NodeEvent = { at: m.at, node, to, runId: story.runId };
    if (str(edge.reporter)) ev.reporter = str(edge.reporter);
    if (str(edge.detail)) ev.detail = str(edge.detail);
    return [ev];
  });
}

/**
 * The timeline of `runs` between `since` and `until` (ms): every run that overlaps the window,
 * oldest first, and the node edges inside it; `group` keeps the operations of that group (and
 * the controller's runs). Pure.
 */
export function buildTimeline(runs: readonly FetchedRun[], opts: { since: number; until: number; cluster?: string; group?: string }): Timeline {
  const stories = runs.map(operationStory);
  const inWindow = (s: OperationStory) => s.startedAt <= opts.until && (s.endedAt ?? Infinity) >= opts.since;
  const operations = stories
    .filter(inWindow)
    .filter((s) => opts.group === undefined || s.operation === 'controller' || s.group === opts.group)
    .sort((a, b) => a.startedAt - b.startedAt || a.workflowId.localeCompare(b.workflowId));
  const nodeEventList = stories.flatMap(nodeEvents).filter((e) => e.at >= opts.since && e.at <= opts.until).sort((a, b) => a.at - b.at);
  const counted = operations.filter((s) => s.operation !== 'controller');
  const byOutcome: Record<string, number> = {};
  for (const s of counted) {
    const k = s.outcome ?? s.status;
    byOutcome[k] = (byOutcome[k] ?? 0) + 1;
  }
  const t: Timeline = {
    since: opts.since,
    until: opts.until,
    operations,
    nodeEvents: nodeEventList,
    counts: { operations: counted.length, byOutcome, falseAlarms: counted.filter((s) => s.falseAlarm).length, running: counted.filter((s) => s.status === 'running').length },
  };
  if (opts.cluster !== undefined) t.cluster = opts.cluster;
  if (opts.group !== undefined) t.group = opts.group;
  return t;
}
