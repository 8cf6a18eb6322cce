/**
 * The agent's side of the conversation with its cluster's controller: edges go in as
 * signals (the first one starts the controller if it is not running), ownership comes out of
 * the controller's lease memo (readLeaseMemo), or of the `ownership` query when the memo cannot confirm. Edges are delivered in the order they were seen and retried until
 * Temporal takes them: an edge lost would be a failover never started.
 *
 * With the cluster's message key, the ownership question is a lease renewal that only this
 * cluster's workflow worker can answer (src/auth/ownership-answer.ts, docs/security.md): asked
 * with a fresh nonce, of the controller run Temporal says is running, and accepted only with the
 * worker's MAC; anything else counts as no answer (logged, rate-limited). Without a key (a
 * one-node cluster, no secret) it is the plain query.
 *
 * With the key, every report (edge, lost group, announcement) is signed (src/auth/messages.ts
 * controllerReportMac): bound to the controller, the signal, the sending node, this agent's
 * heartbeat incarnation and a counter of it (1, 2, ... in the order the reports are sent; a retry
 * keeps its number), sent as the signal's second argument. The controller refuses a report without
 * a valid MAC or not newer than the node's newest (docs/security.md). The incarnation is given by
 * `identify()` once the heartbeat has started (its state file holds it); reports wait for it.
 *
 * The link exists before Temporal is reached (an agent starts while Temporal is down, and
 * waits for it): edges seen meanwhile are queued and delivered once `attach()` gives it a
 * client; the query fails at once with NotConnectedError until then.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowIdConflictPolicy, WorkflowNotFoundError, type Client } from '@temporalio/client';
import { controllerReportMac, newNonce, type MessageKey } from '../auth/messages.js';
import { checkLeaseMemo, checkOwnershipAnswer, extendLeaseMemoTrail, nonceArgument, type LeaseMemoTrail, type LeaseMemoVerdict, type MemoEvent } from '../auth/ownership-answer.js';
import type { LeaseView } from '../../workflows/lease-memo.js';
import type { Logger } from '../log.js';
import { LogRateLimiter } from '../heartbeat/rate-limit.js';
import type { ControllerInput } from '../../workflows/inputs.js';
import type { controller } from '../../workflows/controller.js';
import { HA_KEYS } from '../../workflows/search-attributes.js';
import type { Payload, SignalDefinition } from '@temporalio/common';
import {
  clusterTaskQueue,
  controllerWorkflowId,
  groupLostSignal,
  nodeAnnounceSignal,
  nodeEdgeSignal,
  ownershipQuery,
  type GroupLostReport,
  type NodeAnnounce,
  type NodeEdge,
  type Ownership,
  type ReportAuth,
  type ReportSignal,
} from '../../workflows/shared.js';

/** The controller's view of the cluster (the `ownership` query: no history is written). */
export function queryOwnership(client: Client, cluster: string): Promise<Ownership> {
  return client.workflow.getHandle(controllerWorkflowId(cluster)).query(ownershipQuery);
}

/**
 * The controller's view, as an answer to this question signed by the cluster's workflow worker.
 * @throws WorkflowNotFoundError when no controller run is running (none, or its latest run closed:
 * a closed run's last state confirms nothing); UnauthenticatedAnswerError when the answer does not
 * verify; the client's errors otherwise.
 */
export async function queryOwnershipAuthenticated(client: Client, cluster: string, key: MessageKey, onVerified?: (signedWith: Buffer) => void): Promise<Ownership> {
  const workflowId = controllerWorkflowId(cluster);
  const nonce = newNonce();
  const ask = (runId: string | undefined) =>
    client.workflowService.queryWorkflow({
      namespace: client.options.namespace,
      execution: { workflowId, ...(runId !== undefined ? { runId } : {}) },
      query: { queryType: ownershipQuery.name, queryArgs: { payloads: [nonceArgument(nonce)] } },
    });
  // Both after the question's send time (the lease counts from before them), at once (one round
  // trip): which run is running now, and the answer. An answer from that run, however late,
  // reflects its state after this moment (a run closed since answers with its last state, from
  // after it too). The question without a run goes to the latest run, the one described unless a
  // continue-as-new came between the two: then it is asked again, of the described run.
  // The description's failure first (WorkflowNotFoundError: no controller, which callers act on).
  const [describing, asking] = await Promise.allSettled([client.workflow.getHandle(workflowId).describe(), ask(undefined)]);
  if (describing.status === 'rejected') throw describing.reason;
  if (asking.status === 'rejected') throw asking.reason;
  const described = describing.value;
  const first = asking.value;
  if (described.status.name !== 'RUNNING') throw new WorkflowNotFoundError(`the controller of cluster '${cluster}' is not running (its latest run is ${described.status.name})`, workflowId, described.runId);
  const expected = { cluster, nonce, runId: described.runId };
  const verdictOf = (res: Awaited<ReturnType<typeof ask>>) => {
    if (res.queryRejected) throw new Error(`the controller rejected the ownership query (${String(res.queryRejected.status)})`);
    return checkOwnershipAnswer(key, expected, res.queryResult?.payloads?.[0]);
  };
  let verdict = verdictOf(first);
  if (!verdict.ok && verdict.otherRun) verdict = verdictOf(await ask(described.runId));
  if (!verdict.ok) throw new UnauthenticatedAnswerError(verdict.why);
  onVerified?.(verdict.signedWith);
  return verdict.ownership;
}

/** temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED: a memo upsert. */
const EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED = 46;
/** More history than this since the last read: the query answers instead (the controller continues-as-new long before). */
const MEMO_HISTORY_READ_MAX = 10_000;
/**
 * More history than this to read within a confirmation (an agent's first read of a controller
 * run, or one after a long pause): the query answers this one, and the history is read meanwhile,
 * so that a new owner's first confirmation is not slowed by it.
 */
const MEMO_HISTORY_READ_INLINE = 200;

/**
 * The controller's lease view from its memo (workflows/lease-memo.ts): DescribeWorkflowExecution,
 * and the controller's history since `trail` was read (GetWorkflowExecutionHistoryReverse, none
 * when nothing happened), both answered by Temporal from the run's state without running workflow
 * code, so a busy workflow worker does not delay them. The lease counts from before them, as for
 * the query.
 * @returns the verdict on the memo (not ok: the caller asks the query instead), the trail read (to
 * pass next time; once the history did not check out, it says so, and that run's memo is refused),
 * and `unread`: more history than `maxEvents` was left unread (read it with a larger one).
 * @throws WorkflowNotFoundError when no controller run is running; the client's errors otherwise.
 */
export async function readLeaseMemo(client: Client, cluster: string, key: MessageKey, trail: LeaseMemoTrail | undefined, maxEvents = MEMO_HISTORY_READ_MAX): Promise<{ verdict: LeaseMemoVerdict; trail: LeaseMemoTrail; unread?: true }> {
  const workflowId = controllerWorkflowId(cluster);
  const described = await client.workflow.getHandle(workflowId).describe();
  if (described.status.name !== 'RUNNING') throw new WorkflowNotFoundError(`the controller of cluster '${cluster}' is not running (its latest run is ${described.status.name})`, workflowId, described.runId);
  const expected = { cluster, runId: described.runId };
  const fields = described.raw.workflowExecutionInfo?.memo?.fields as Record<string, Payload> | null | undefined;
  const upTo = described.historyLength;
  let known: LeaseMemoTrail = trail?.runId === described.runId ? trail : { runId: described.runId, upTo: 0, entries: new Map() };
  if (known.refused !== undefined) return { verdict: { ok: false, why: known.refused }, trail: known };
  // Nothing happened since the last accepted read: the memo changes only with the history.
  if (upTo === known.upTo && known.accepted) return { verdict: known.accepted, trail: known };
  if (upTo > known.upTo) {
    if (upTo - known.upTo > Math.min(maxEvents, MEMO_HISTORY_READ_MAX)) return { verdict: { ok: false, why: `${upTo - known.upTo} events of the controller's history to read` }, trail: known, unread: true };
    const extended = extendLeaseMemoTrail(key, expected, known, await memoEventsSince(client, workflowId, described.runId, known.upTo, upTo), upTo);
    // A replay: this run's memo is not trusted again (nor its history read again at every confirmation).
    if (!extended.ok) return { verdict: extended, trail: { ...known, refused: extended.why } };
    known = extended.trail;
  }
  const verdict = checkLeaseMemo(key, expected, fields, known);
  return { verdict, trail: verdict.ok ? { ...known, accepted: verdict } : known };
}

/** The run's memo upserts with an event ID in (after, upTo], newest first as Temporal reads them backwards. */
async function memoEventsSince(client: Client, workflowId: string, runId: string, after: number, upTo: number): Promise<MemoEvent[]> {
  const events: MemoEvent[] = [];
  let nextPageToken: Uint8Array | undefined;
  for (;;) {
    const page = await client.workflowService.getWorkflowExecutionHistoryReverse({
      namespace: client.options.namespace,
      execution: { workflowId, runId },
      maximumPageSize: Math.min(1000, upTo - after + 16),
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    let reached = false;
    for (const e of page.history?.events ?? []) {
      const eventId = Number(e.eventId);
      if (eventId <= after) {
        reached = true;
        break;
      }
      if (eventId > upTo || e.eventType !== EVENT_TYPE_WORKFLOW_PROPERTIES_MODIFIED) continue;
      events.push({ eventId, fields: (e.workflowPropertiesModifiedEventAttributes?.upsertedMemo?.fields ?? {}) as Record<string, Payload> });
    }
    if (reached || !page.nextPageToken?.length) return events;
    nextPageToken = page.nextPageToken;
  }
}

/** The answer to an ownership question did not verify: it counts as no answer. */
export class UnauthenticatedAnswerError extends Error {
  constructor(readonly why: string) {
    super(`the ownership answer is not authenticated: ${why}`);
    this.name = 'UnauthenticatedAnswerError';
  }
}

/** How often an ignored answer is logged (every one still counts as no answer). */
const IGNORED_LOG_EVERY_MS = 5000;

/** Thrown by the link's query before the agent has reached Temporal. */
export class NotConnectedError extends Error {
  constructor() {
    super('not connected to Temporal yet');
    this.name = 'NotConnectedError';
  }
}

export class ControllerLink {
  private queue: Promise<void>;
  private readonly stopped = new AbortController();
  private client: Client | undefined;
  private attached: (() => void) | undefined;
  private readonly ignoredLog = new LogRateLimiter(IGNORED_LOG_EVERY_MS);
  /** This agent's heartbeat incarnation, once known (identify()). */
  private incarnation: number | undefined;
  private identified: (() => void) | undefined;
  private readonly identifiedYet: Promise<void>;
  /** The last counter used per sending node (one in an agent: its own), within this incarnation. */
  private readonly counters = new Map<string, number>();
  /** The controller's lease memo entries as its history has been read so far (readLeaseMemo). */
  private memoTrail: LeaseMemoTrail | undefined;
  /** Whether the history is being read in the background (readHistoryMeanwhile). */
  private readingHistory = false;
  /** Why the memo last could not confirm (logged once per reason). */
  private memoFallback: string | undefined;
  /** The message key the last authenticated ownership answer was signed under, and when (Date.now()). */
  private lastAnswer: { signedWith: Buffer; at: number } | undefined;

  /**
   * Without a client (undefined), edges wait in order for attach(). `auth.key`: the message key
   * (deriveMessageKey of the cluster secret); undefined in a one-node cluster. `auth.incarnation`:
   * the heartbeat incarnation reports are signed with, if known now (otherwise identify()).
   */
  constructor(
    client: Client | undefined,
    private readonly cluster: string,
    private readonly logger: Logger,
    private readonly auth: { key: MessageKey | undefined; incarnation?: number } = { key: undefined },
  ) {
    this.client = client;
    this.queue = client
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          this.attached = resolve;
        });
    this.incarnation = auth.incarnation;
    this.identifiedYet = auth.incarnation !== undefined || auth.key === undefined
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          this.identified = resolve;
        });
  }

  /**
   * This agent's heartbeat incarnation (persisted, larger at every start): the reports queued and
   * to come are signed with it. Given once; a second call is ignored.
   */
  identify(incarnation: number): void {
    if (this.incarnation !== undefined) return;
    this.incarnation = incarnation;
    this.identified?.();
  }

  /** Temporal is reached: queued edges go out, in order. */
  attach(client: Client): void {
    if (this.client) return;
    this.client = client;
    this.attached?.();
  }

  /** Sends the edge after those before it; retried until delivered or the agent stops. */
  report(edge: NodeEdge): Promise<void> {
    this.queue = this.queue.then(() => this.deliver(nodeEdgeSignal, 'nodeEdge', edge.reporter, edge, `${edge.node} ${edge.to}`));
    return this.queue;
  }

  /** This node stopped a group by itself; in order with the edges, retried the same way. */
  reportLost(report: GroupLostReport): Promise<void> {
    this.queue = this.queue.then(() => this.deliver(groupLostSignal, 'groupLost', report.node, report, `${report.group} lost by ${report.node}`));
    return this.queue;
  }

  /**
   * What this node holds, has seen and enforces, again (announcer.ts); in order with the edges,
   * retried the same way. Starts the controller if it is not running (Temporal's data was lost).
   */
  announce(a: NodeAnnounce): Promise<void> {
    this.queue = this.queue.then(() => this.deliver(nodeAnnounceSignal, 'nodeAnnounce', a.node, a, `${a.node} announces`));
    return this.queue;
  }

  /**
   * The controller's view; rejects after `timeoutMs` or when it is not running, and (with a key)
   * with UnauthenticatedAnswerError when the answer is not the worker's signed answer to this
   * question, logged loudly at most every 5 s.
   */
  ownership(timeoutMs: number): Promise<LeaseView> {
    const client = this.client;
    if (!client) return Promise.reject(new NotConnectedError());
    const key = this.auth.key;
    if (key === undefined) return client.withDeadline(Date.now() + timeoutMs, () => queryOwnership(client, this.cluster));
    return client.withDeadline(Date.now() + timeoutMs, async () => {
      // The memo first: no workflow code runs for it. The query when it cannot confirm (a
      // controller older than it, a run that has not published yet, an entry that does not verify).
      const memo = await readLeaseMemo(client, this.cluster, key, this.memoTrail, MEMO_HISTORY_READ_INLINE);
      this.memoTrail = memo.trail;
      // Not evidence of the secret the worker signs with now: an entry keeps the signature it was
      // written with until its content changes (refreshWorkerKey asks for that).
      if (memo.verdict.ok) {
        this.memoFallback = undefined;
        return memo.verdict.view;
      }
      if (memo.unread) this.readHistoryMeanwhile(client, key);
      else this.noteMemoFallback(memo.verdict.why);
      return queryOwnershipAuthenticated(client, this.cluster, key, this.noteAnswerKey);
    }).catch((err: unknown) => {
      if (err instanceof UnauthenticatedAnswerError) this.noteIgnored(err.why);
      throw err;
    });
  }

  /** Reads the controller's history up to now in the background (one read at a time), for the next confirmations. */
  private readHistoryMeanwhile(client: Client, key: MessageKey): void {
    if (this.readingHistory) return;
    this.readingHistory = true;
    void readLeaseMemo(client, this.cluster, key, this.memoTrail).then(
      (read) => {
        this.memoTrail = read.trail;
        if (!read.verdict.ok) this.noteMemoFallback(read.verdict.why);
      },
      () => undefined,
    ).finally(() => {
      this.readingHistory = false;
    });
  }

  /** The memo could not confirm: said once per reason (a controller older than it is not an error), the query answers instead. */
  private noteMemoFallback(why: string): void {
    if (this.memoFallback === why) return;
    this.memoFallback = why;
    // A controller older than the memo, or a run that has just begun, is expected; anything else is not.
    const expected = /has no lease memo|not the running one|is of run/.test(why);
    this.logger[expected ? 'info' : 'error']({ why }, `lease confirmations use the controller's ownership query: its lease memo cannot confirm${expected ? '' : ' (docs/security.md)'}`);
  }

  /**
   * Asks the workflow worker's signed query now, not the memo, so that lastAnswerKey() says which
   * secret the worker signs with at this moment (a secret rotation's check, before a node stops
   * accepting a secret). An answer that does not come in `timeoutMs` leaves the last one.
   */
  async refreshWorkerKey(timeoutMs: number): Promise<void> {
    const client = this.client;
    const key = this.auth.key;
    if (!client || key === undefined) return;
    await client.withDeadline(Date.now() + timeoutMs, () => queryOwnershipAuthenticated(client, this.cluster, key, this.noteAnswerKey)).catch(() => undefined);
  }

  /** A signed query answer verified under `signedWith`: the secret the worker signs with now. */
  private readonly noteAnswerKey = (signedWith: Buffer): void => {
    this.lastAnswer = { signedWith, at: Date.now() };
  };

  /**
   * Under which message key the workflow worker signed the last authenticated answer, and when:
   * which secret it signs with, for the checks of a secret rotation step.
   */
  lastAnswerKey(): { signedWith: Buffer; at: number } | undefined {
    return this.lastAnswer;
  }

  private noteIgnored(why: string): void {
    const verdict = this.ignoredLog.allow('ignored', performance.now());
    if (!verdict.log) return;
    this.logger.error(
      { why, ignoredSinceLastLine: verdict.suppressed + 1 },
      `IGNORED an ownership answer from the controller's queue that is not authenticated (${why}): it counts as no answer, so no lease is renewed by it. Someone with access to Temporal may be polling the cluster queue, or the workflow worker is older than this agent or has another secret (docs/security.md)`,
    );
  }


  close(): void {
    this.stopped.abort();
    // Edges still waiting for a connection (or for identify()) are dropped with the agent.
    this.attached?.();
    this.identified?.();
  }

  /**
   * The report's MAC with the next counter of `sender` (undefined without a key: a one-node
   * cluster); taken once per report, so that its retries carry the same number.
   */
  private sign(name: ReportSignal, sender: string, report: unknown): ReportAuth | undefined {
    const key = this.auth.key;
    const incarnation = this.incarnation;
    if (key === undefined || incarnation === undefined) return undefined;
    const counter = (this.counters.get(sender) ?? 0) + 1;
    this.counters.set(sender, counter);
    const mac = controllerReportMac(key, { cluster: this.cluster, controllerId: controllerWorkflowId(this.cluster), signal: name, sender, incarnation, counter, report });
    return { incarnation, counter, mac };
  }

  private async deliver<T>(signalDef: SignalDefinition<[T, ReportAuth?]>, name: ReportSignal, sender: string, arg: T, what: string): Promise<void> {
    const signal = this.stopped.signal;
    const client = this.client;
    if (!client) return; // closed before Temporal was reached
    await this.identifiedYet;
    if (signal.aborted) return;
    const auth = this.sign(name, sender, arg);
    // The MAC as the signal's second argument: a controller older than it ignores it.
    const signalArgs: [T, ReportAuth?] = auth === undefined ? [arg] : [arg, auth];
    let delay = 200;
    for (let attempt = 1; !signal.aborted; attempt++) {
      // A signal of its own per call, aborted with the link: the client adds a listener to the
      // signal of every call and never removes it, so the link's own signal would collect one per
      // report for the agent's whole life.
      const call = new AbortController();
      const abortCall = () => call.abort();
      signal.addEventListener('abort', abortCall, { once: true });
      try {
        await client.withAbortSignal(call.signal, () =>
          client.workflow.signalWithStart<typeof controller, [T, ReportAuth?]>('controller', {
            workflowId: controllerWorkflowId(this.cluster),
            taskQueue: clusterTaskQueue(this.cluster),
            args: [{ cluster: this.cluster } satisfies ControllerInput],
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
            typedSearchAttributes: [
              { key: HA_KEYS.HaCluster, value: this.cluster },
              { key: HA_KEYS.HaOperation, value: 'controller' },
            ],
            staticSummary: `controller of cluster ${this.cluster}: who runs each group, under which epoch`,
            signal: signalDef,
            signalArgs,
          }),
        );
        this.logger.info({ what, attempt }, 'reported to the controller');
        return;
      } catch (err) {
        if (signal.aborted) return;
        this.logger.error({ what, attempt, retryInMs: delay, err: err instanceof Error ? err.message : String(err) }, 'cannot report to the controller (retrying)');
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        delay = Math.min(delay * 2, 5000);
      } finally {
        signal.removeEventListener('abort', abortCall);
      }
    }
  }
}
