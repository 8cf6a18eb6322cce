/**
 * controller: one per cluster (workflow ID `controller/<cluster>`), started by the first agent
 * that comes up. It owns the truth: which node runs each group, under which epoch.
 *
 * Agents send it edges (a peer went silent on every link, came back, an agent restarted, a
 * heal gave up), never levels. It starts at most one operation per group (a failover child
 * workflow), which asks it for the group (`beginOperation`), raises the epoch for each node
 * it tries (`claimGroup`) and gives the group back (`endOperation`). Owners confirm their
 * lease from its memo (lease-memo.ts, written only when ownership changes) or, failing that, with
 * the `ownership` query, which writes no history.
 *
 * From the moment a group's owner is suspected (or an operation begins) the owner's lease is
 * no longer renewed: a failover then only has to wait until `blockedSince + ttl + margin`,
 * and that wait overlaps the verification of the old owner.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  currentUpdateInfo,
  getExternalWorkflowHandle,
  log,
  ParentClosePolicy,
  patched,
  proxyLocalActivities,
  setHandler,
  startChild,
  upsertMemo,
  WorkflowIdReusePolicy,
  workflowInfo,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError, type UpdateDefinition } from '@temporalio/common';
import type { ClusterActivities, ClusterLayout } from '../activities/cluster.js';
import type { ControllerActivities } from '../activities/controller.js';
import { checkControllerReport, checkControllerReports, checkControllerUpdate, checkHealGaveUp } from './auth.js';
import { healPosition, nextReport, reportFreshness, reportSender, takeReportBatch, withAccepted, withAcceptedHeal, withRefusal, type ReportPosition } from './report-plan.js';
import {
  controllerInputSchema,
  controllerInputSchemaV0,
  describeIssues,
  groupLostSchema,
  healGaveUpSchema,
  nodeAnnounceSchema,
  nodeEdgeSchema,
  parseWorkflowInput,
  reportAuthSchema,
  type FailoverInput,
  type SwitchoverInput,
} from './inputs.js';
import {
  deferredIsCurrent,
  deferStart,
  groupStep,
  healGaveUpTakers,
  lostIsCurrent,
  retryAfter,
  START_CONFLICT_FIRST_MS,
  startConflictDelay,
  startConflictStep,
  type ControllerGroup,
  type ControllerKind,
  type GroupStep,
} from './group-plan.js';
import { announceStep, describeLeaseMismatch, leaseMismatches } from './announce-plan.js';
import { applyMaintenance, groupMaintenance, inStandby, maintenanceRefusal, outOfStandby, setMaintenanceRefusal, standbyMoves, type MaintenanceFacts } from './maintenance-plan.js';
import { leaseToWaitOut } from './old-owner-plan.js';
import { HA_KEYS, haTags } from './search-attributes.js';
import { alertSummary, alertWorkflowId, nextAlertSequence, type AlertEvent } from './alert-event.js';
import { AppliedUpdates, type AppliedUpdate } from './applied-updates.js';
import { answerOwnership, ownershipRenewalQuery } from './ownership-answer.js';
import { leaseMemoChanges, leaseMemoContents, leaseMemoUpsert } from './lease-memo.js';
import {
  beginOperationRefusal,
  claimGroupRefusal,
  confirmDownRefusal,
  endOperationRefusal,
  operationBlockedRefusal,
  type Refusal,
  type RefusalState,
} from './controller-refusals.js';
import {
  beginOperationUpdate,
  claimGroupUpdate,
  confirmDownUpdate,
  confirmedDownSignal,
  endOperationUpdate,
  failoverWorkflowId,
  groupLostSignal,
  healGaveUpSignal,
  healWorkflowId,
  nodeAnnounceSignal,
  nodeEdgeSignal,
  operationBlockedUpdate,
  setMaintenanceUpdate,
  switchoverWorkflowId,
  type ConfirmDownResult,
  type ConfirmedDown,
  type GroupLostReport,
  type HealGaveUpReport,
  type GroupOwnership,
  type LeaseTiming,
  type NodeAnnounce,
  type NodeEdge,
  type ReportSignal,
  type NodeAnnouncement,
  type Ownership,
  type SetMaintenanceResult,
  type UpdateAuth,
  ERROR_TYPES,
} from './shared.js';

const cluster = proxyLocalActivities<ClusterActivities & ControllerActivities>({
  startToCloseTimeout: '5 seconds',
  retry: { initialInterval: '200ms', maximumInterval: '5 seconds' },
});

/** Continue as new past this many events: a controller runs for months. */
const MAX_HISTORY_EVENTS = 2000;
/** How long a group that runs nowhere waits for its preferred node's agent after the controller starts. */
const PLACEMENT_GRACE_MS = 5000;
/** An operation holding a group this long is checked for having ended without giving it back. */
const OPERATION_CHECK_MS = 120_000;
/** A suspect owner that answered is asked again after this, doubling up to the maximum. */
const REVERIFY_FIRST_MS = 5000;
const REVERIFY_MAX_MS = 60_000;
/** Kept for the postmortem in the query answer. */
const MAX_FALSE_ALARMS = 20;
const MAX_CONFIRMED_DOWN = 20;

/**
 * A `groupLost` that comes while an operation holds the group is kept and looked at when the
 * operation ends (workflows/group-plan.ts); recorded histories dropped it. Asked for in the
 * signal's handler, so that its marker is in the workflow task of the signal, on replay too.
 */
export const PATCH_LOST_DURING_OPERATION = 'controller-lost-during-operation';
/**
 * A group an operation leaves down is tried again, backing off, while a node of it is up
 * (group-plan.ts); recorded histories only tried it when a node came up after it went down.
 * Asked for in the endOperation update's handler, so that its marker is in the update's task.
 */
export const PATCH_RETRY_DOWN = 'controller-retry-down';
/**
 * A request whose start meets a workflow of the same ID that did not begin the group (most likely
 * the operation that has just given it back, its run still closing) is kept and tried again
 * (group-plan.ts startConflictStep); recorded histories kept the lock for that workflow, which
 * never used it, and lost the request. Asked for where the failed start is handled: its marker is
 * in the workflow task of the StartChildWorkflowExecutionFailed event, on replay too.
 */
export const PATCH_START_CONFLICT = 'controller-start-conflict';
/**
 * A heal that gave up while no other node of the group is up starts no failover (group-plan.ts
 * healGaveUpTakers). Asked in the signal's handler, only when that is so: recorded histories
 * started one, which blocked the owner's renewals for nothing.
 */
export const PATCH_HEAL_GAVE_UP_NEEDS_TAKER = 'controller-heal-gave-up-needs-taker';
/**
 * An update whose ID was applied before, in this run or an earlier one (the record is carried over
 * continue-as-new), gets its first answer and is not applied again (applied-updates.ts). Asked in
 * the update's handler, only when it meets such a repeat.
 */
export const PATCH_APPLIED_UPDATES = 'controller-applied-updates';
/**
 * The carried state is checked against its schema (inputs.ts carriedStateSchema): a malformed one
 * (a controller started by hand or copied in the UI) fails the run at once with InvalidWorkflowInput
 * naming the field, before anything is done. Recorded histories used it as it was.
 */
export const PATCH_CARRIED_SCHEMA = 'controller-carried-schema';
/**
 * The updates that can move ownership (claimGroup, endOperation, operationBlocked, confirmDown)
 * are applied only with a valid MAC under the cluster's message key (docs/security.md), checked by
 * a local activity of the worker (activities/auth.ts checkControllerUpdate) before anything
 * changes; their validators run again after that await. Asked in the update's handler, before its
 * first await, so that its marker is in the update's workflow task; recorded histories applied
 * them at once.
 */
export const PATCH_AUTHENTICATED_UPDATES = 'controller-authenticated-updates';
/**
 * The agents' reports (nodeEdge, nodeAnnounce, groupLost) are applied only with a valid MAC of
 * their sending node (docs/security.md), checked by an ordinary activity of the worker (activities/
 * auth.ts checkControllerReport), and only when newer than that node's newest (incarnation,
 * counter): a recorded one sent again is refused. They are queued and applied one after the other
 * in the order they came (an edge must not overtake the one before it). Asked at the run's start,
 * before the first await (the first signal is handled right after an awaited local activity, where
 * a patch is not asked: controller-replay-split-first-task.test.ts); a run that began before it asks
 * in each report's handler, before any await there, so that its marker is in the signal's workflow
 * task. Recorded histories applied reports at once.
 */
export const PATCH_AUTHENTICATED_REPORTS = 'controller-authenticated-reports';
/**
 * A heal's "gave up" report (healGaveUp) is acted on only with the workflow worker's MAC for that
 * heal (heal-service.ts PATCH_SIGNED_GAVE_UP signs it), checked by an ordinary activity
 * (checkHealGaveUp), and only when newer (its `at`) than the newest applied from that heal; it goes
 * through the reports' queue. Asked as PATCH_AUTHENTICATED_REPORTS is, for the same reasons.
 */
export const PATCH_SIGNED_HEAL_REPORTS = 'controller-signed-heal-reports';
/**
 * Maintenance (`haoscar maintenance`, maintenance-plan.ts): the setMaintenance update sets
 * `state.maintenance`, which the automatic requests, placements, fail-backs and the nodes offered
 * to a failover look at. Asked in that update's handler, before its first await: recorded histories
 * never had the update, so they have no maintenance and replay unchanged.
 */
export const PATCH_MAINTENANCE = 'controller-maintenance';
/**
 * Alerts (docs/alerts.md): the controller starts an `alert` workflow (not awaited, abandoned on
 * close) for each node edge that changes a node's state, each operation's begin and end, a heal
 * that gave up and each maintenance change. Asked once at the run's start, before the first await
 * (as PATCH_AUTHENTICATED_REPORTS, for the same reason): recorded histories started none, and a
 * run begun before it sends none until its next continue-as-new.
 */
export const PATCH_ALERTS = 'controller-alerts';
/**
 * An alert's sequence (and so its child workflow ID) from the run's start time and a counter,
 * not from the workflow clock: an update handler (a failover's end) reads the clock of a
 * speculative workflow task, whose time the history may record differently, so a worker that
 * replayed the run computed another ID and the controller stopped on a nondeterminism error
 * (found by the chaos suite: a false alarm, then the worker killed). Asked before the first await.
 */
export const PATCH_ALERT_SEQUENCE = 'controller-alert-sequence';
/**
 * The agents' reports that queued up while the one before was checked are checked together, in
 * one activity (checkControllerReports; report-plan.ts takeReportBatch), then applied one after the
 * other as before. When k of N nodes die, each of the N-k survivors reports each of them: one
 * activity per report made the events of a failover grow with the cluster (k(N-k) activities in a
 * row, every one a round trip through Temporal before the next report was looked at; bench/scale.ts).
 * Asked once at the run's start, before the first await (as PATCH_ALERTS): recorded histories
 * checked each report on its own, and a run begun before it does so until its next continue-as-new.
 */
export const PATCH_BATCHED_REPORT_CHECKS = 'controller-batched-report-checks';
/**
 * A request made while the run waited for its handlers to finish before continuing as new (a
 * report applied then: a peer's "suspect" of an owner) is started before the run continues as new.
 * Recorded histories continued as new at once and lost it: the group stayed on its dead owner,
 * renewals blocked, with no operation, until another edge of that node (bench/scale.ts, half of
 * 32 nodes dying at once: three groups never failed over). Asked only when a request is waiting
 * there, in that workflow task.
 */
export const PATCH_REQUESTS_BEFORE_CONTINUE = 'controller-requests-before-continue-as-new';

interface Pending {
  group: string;
  kind: ControllerKind;
  reason: string;
}

/**
 * The controller publishes its lease view in its memo (lease-memo.ts), so that owners confirm
 * their leases without a query. Before, the query alone.
 */
export const PATCH_LEASE_MEMO = 'controller-lease-memo';

/**
 * Keeps the memo's lease view equal to `state`'s, for the whole run: a condition checked at the end
 * of every activation (after every signal, update and timer), so each change is upserted in the
 * same workflow task as the change itself and committed with it, whatever code path made it
 * (lease-memo.ts). Entries that did not change are not written again: an idle cluster writes none.
 */
function publishLeaseMemo(state: ControllerState): void {
  const published = new Map<string, string>();
  let version = 0;
  const changes = () => leaseMemoChanges(published, leaseMemoContents(state));
  void (async () => {
    for (;;) {
      await condition(() => changes().length > 0);
      const changed = changes();
      version += 1;
      upsertMemo(leaseMemoUpsert(state.cluster, version, changed));
      for (const [key, json] of changed) published.set(key, json);
    }
  })();
}

/** The controller's state: the ownership query's answer, carried over continue-as-new. */
type ControllerState = Omit<Ownership, 'groups'> & { groups: Record<string, ControllerGroup> };

export async function controller(rawInput: unknown): Promise<void> {
  // Asked at the start, before the first await (as the next one, see there): recorded histories took any carried state.
  const carriedChecked = patched(PATCH_CARRIED_SCHEMA);
  const input = parseWorkflowInput(carriedChecked ? controllerInputSchema : controllerInputSchemaV0, rawInput, 'controller');
  // Before the first await: a patch asked for after it lands in whichever workflow task the
  // awaited local activity completes in, and replays as unpatched when that task is not the one
  // that recorded the marker (a loaded worker splits them; found by the chaos suite).
  const failbackEnabled = patched('auto-failback');
  // Also here, before the first await: the signal that started the controller (signal-with-start)
  // is handled right after describeCluster below, where asking a patch is not safe (as above). A run
  // that began before signed reports asks it in each report's handler instead (reportHandler).
  const reportsAuthenticatedFromStart = patched(PATCH_AUTHENTICATED_REPORTS);
  const healReportsSignedFromStart = patched(PATCH_SIGNED_HEAL_REPORTS);
  const alertsOn = patched(PATCH_ALERTS);
  const alertSequenceFromRunStart = patched(PATCH_ALERT_SEQUENCE);
  const leaseMemoPublished = patched(PATCH_LEASE_MEMO);
  const reportChecksBatched = patched(PATCH_BATCHED_REPORT_CHECKS);
  const layout: ClusterLayout = await cluster.describeCluster({ cluster: input.cluster });
  const state = restore(input.carried, input.cluster, layout);
  // The worker's lease (this run's configuration), and what the nodes announced they enforce.
  const leases = state.leases = { worker: { ttlMs: layout.lease.ttlMs, marginMs: layout.lease.marginMs }, nodes: state.leases?.nodes ?? {} };
  /**
   * The lease a failover of the group waits out: the largest of the worker's and every one its
   * nodes announced (old-owner-plan.ts leaseToWaitOut). Without announcements, the worker's: what
   * recorded histories used.
   */
  const groupLease = (name: string): LeaseTiming => leaseToWaitOut(layout.lease, (groupOf(name)?.nodes ?? []).map((n) => leases.nodes[n]));
  /** A down group's retry is never due before the lease (and margin) of the claim that left it down has run out. */
  const retryMinMs = (name: string) => {
    const l = groupLease(name);
    return l.ttlMs + l.marginMs;
  };
  const pending: Pending[] = [];
  const now = () => Date.now();
  const groupOf = (name: string) => layout.groups.find((g) => g.name === name);

  /** The last alert's sequence number (CRM_alert_node_sequence), and the alert starts not yet answered. */
  let alertSequence = 0;
  let alertStarts = 0;
  /**
   * Tells the configured alerts of an event: an `alert` child workflow, started and not awaited
   * (its start is a command of this task; nothing here waits for it), abandoned when this run
   * closes, so that a slow or failing alert never delays a failover nor this controller. A start
   * that fails is logged. Only a continue-as-new waits for the starts in flight (milliseconds).
   */
  function raiseAlert(e: Omit<AlertEvent, 'cluster' | 'at' | 'sequence' | 'source'>): void {
    if (!alertsOn) return;
    alertSequence = nextAlertSequence(alertSequence, alertSequenceFromRunStart ? workflowInfo().runStartTime.getTime() : now());
    const event: AlertEvent = { ...e, cluster: input.cluster, at: now(), sequence: alertSequence, source: 'controller' };
    const workflowId = alertWorkflowId(input.cluster, event);
    alertStarts += 1;
    void startChild('alert', {
      workflowId,
      args: [{ event }],
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: HA_KEYS.HaCluster, value: input.cluster },
        ...(event.group !== undefined ? [{ key: HA_KEYS.HaGroup, value: event.group }] : []),
        ...(event.node !== undefined ? [{ key: HA_KEYS.HaNode, value: event.node }] : []),
        { key: HA_KEYS.HaOperation, value: 'alert' },
      ],
      staticSummary: alertSummary(event),
      staticDetails: event.detail,
    }).then(
      () => log.info('alert started', { event: event.event, workflowId }),
      (err: unknown) => log.error('could not start an alert', { event: event.event, workflowId, err: err instanceof Error ? err.message : String(err) }),
    ).finally(() => {
      alertStarts -= 1;
    });
  }

  /** Groups whose operation the controller is starting, and whether a workflow began the group (beginOperation) meanwhile. */
  const starting = new Map<string, boolean>();
  /** Counts node edges and ended operations (wakes the loop to plan fail-backs). */
  let changes = 0;
  const request = (group: string, kind: ControllerKind, reason: string) => {
    const g = state.groups[group]!;
    if (g.operation || pending.some((p) => p.group === group)) return;
    // In maintenance: nothing is started, the renewals go on; the request is kept and done when maintenance ends, if it still stands.
    const held = maintenanceRefusal(state.maintenance, group, `${kind} failover`);
    if (held) {
      g.deferred = { kind, reason, owner: g.owner, epoch: g.epoch, at: now(), delayMs: START_CONFLICT_FIRST_MS / 2 };
      return log.warn(`${held.message} (asked for: ${reason}); kept until maintenance ends`, { group, kind, type: held.type });
    }
    // The owner's lease stops being renewed now, so the wait for it overlaps the verification.
    blockRenewals(g);
    pending.push({ group, kind, reason });
  };

  /** The updates applied (by update ID), carried over continue-as-new: see applied-updates.ts. */
  const applied = new AppliedUpdates(appliedOf(input.carried));
  /**
   * `handler`, applied once per update ID: an update whose ID was applied before (its failover's
   * activity retried, in this run or, past a continue-as-new, an earlier one) gets the first answer
   * and changes nothing. Temporal itself answers such a repeat only within the run that applied it.
   */
  function once<R, A extends unknown[]>(def: UpdateDefinition<R, A>, handler: (...args: A) => R): (...args: A) => R {
    return (...args: A) => {
      const id = currentUpdateInfo()?.id;
      const first = applied.get(id);
      // Asked only for a repeat: recorded histories never met one (their runs kept no record).
      if (first && patched(PATCH_APPLIED_UPDATES)) {
        log.info('an update applied before came again (a retry): answered as the first time, not applied again', { update: def.name, id, appliedAt: first.at });
        return first.result as R;
      }
      const result = handler(...args);
      if (id !== undefined) applied.add({ id, update: def.name, at: now(), ...(result !== undefined ? { result } : {}) });
      return result;
    };
  }
  /**
   * `handler` for an update that can move ownership: applied once per update ID (as once()), and
   * only when the request carries a valid MAC for this controller, the update's name and ID, its
   * sending run and content (checked by a local activity: workflow code cannot hold the key).
   * The validator has let it in, but other handlers may have run during the check: `refusalOf` is
   * asked again on the state as it is now. An operation's updates must come from one run of its
   * workflow: the first authenticated one (or the controller's own start of it) records the run,
   * and another run's is refused, so that an earlier run's recorded update does not end or block
   * a later run's operation of the same workflow ID. A refused update changes nothing.
   */
  function authenticatedOnce<R, Q extends { group?: string; workflowId?: string; auth?: UpdateAuth }>(
    def: UpdateDefinition<R, [Q]>,
    refusalOf: (state: RefusalState, req: unknown) => Refusal | undefined,
    handler: (req: Q) => R,
  ): (req: Q) => Promise<R> {
    return async (req: Q) => {
      const id = currentUpdateInfo()?.id;
      const first = applied.get(id);
      if (first && patched(PATCH_APPLIED_UPDATES)) {
        log.info('an update applied before came again (a retry): answered as the first time, not applied again', { update: def.name, id, appliedAt: first.at });
        return first.result as R;
      }
      if (patched(PATCH_AUTHENTICATED_UPDATES)) {
        const check = await checkControllerUpdate(input.cluster, def.name, id ?? '', req);
        if (!check.ok) {
          log.error(`REFUSED a ${def.name} update that is not authenticated: ${check.why}; nothing changed (docs/security.md)`, { update: def.name, id, workflowId: req.workflowId, group: req.group });
          throw ApplicationFailure.create({ type: ERROR_TYPES.Unauthenticated, nonRetryable: true, message: `the controller refused ${def.name}: ${check.why}; nothing changed (docs/security.md)` });
        }
        refuseIf(refusalOf(state, req));
        const op = req.group !== undefined ? state.groups[req.group]?.operation : undefined;
        const runId = req.auth?.runId;
        if (op && check.signed && runId !== undefined) {
          if (op.runId !== undefined && op.runId !== runId) {
            throw ApplicationFailure.create({
              type: ERROR_TYPES.OperationInProgress,
              nonRetryable: true,
              message: `the operation on group '${req.group}' is held by run ${op.runId} of workflow ${op.workflowId}, not by run ${runId}; nothing changed`,
            });
          }
          op.runId = runId;
        }
      }
      const result = handler(req);
      if (id !== undefined) applied.add({ id, update: def.name, at: now(), ...(result !== undefined ? { result } : {}) });
      return result;
    };
  }
  /** A validator that lets an applied update's repeat through (its handler answers it, see once()). */
  function unlessApplied(validator: (req: unknown) => void): (req: unknown) => void {
    return (req) => {
      if (applied.get(currentUpdateInfo()?.id)) return;
      validator(req);
    };
  }

  // With a nonce (a lease renewal): the marked answer the workflow worker's codec signs (ownership-answer.ts).
  setHandler(ownershipRenewalQuery, (nonce?: unknown) => answerOwnership(state, nonce));
  if (leaseMemoPublished) publishLeaseMemo(state);

  /** A report as it came, waiting for its check (PATCH_AUTHENTICATED_REPORTS). */
  interface QueuedReport {
    signal: ReportSignal | 'healGaveUp';
    report: NodeEdge | NodeAnnounce | GroupLostReport | HealGaveUpReport;
    /** The sending node, or for healGaveUp the heal workflow it is signed for. */
    sender: string;
    /** Where its MAC says it stands in its sender's order (absent: no MAC, or a malformed one). */
    position?: ReportPosition;
    auth: unknown;
    apply: () => void;
  }
  /** Reports checked and applied one at a time, in the order they came (reportHandler). */
  const reports: QueuedReport[] = [];
  let applyingReports = false;

  /**
   * The handler of an agent's report: `parse` gives the report (undefined: malformed or about an
   * unknown node, logged and ignored as before) and `apply` applies it. Histories recorded before
   * PATCH_AUTHENTICATED_REPORTS apply it at once. Now it is queued; the handler that finds nobody
   * applying the queue applies it, in order: each report's MAC is checked (an ordinary activity: workflows/auth.ts says why),
   * then whether it is newer than its sender's newest, and only then is it applied. A refused one
   * is logged, counted (Ownership.reports) and changes nothing.
   */
  function reportHandler<T extends NodeEdge | NodeAnnounce | GroupLostReport>(
    signal: ReportSignal,
    parse: (raw: unknown) => T | undefined,
    apply: (report: T, authenticated: boolean) => void,
  ): (raw: unknown, auth?: unknown) => Promise<void> {
    return async (raw, auth) => {
      const report = parse(raw);
      if (report === undefined) return;
      // A run that began with signed reports never asks again. One that began before them asks here,
      // in the signal's own workflow task (it was past its start when the worker was upgraded).
      if (!reportsAuthenticatedFromStart && !patched(PATCH_AUTHENTICATED_REPORTS)) return apply(report, false);
      const position = reportAuthSchema.safeParse(auth);
      await queueReport({ signal, report, sender: reportSender(signal, report), ...(position.success ? { position: { incarnation: position.data.incarnation, counter: position.data.counter } } : {}), auth, apply: () => apply(report, true) });
    };
  }

  /** Queues a report; the handler that finds nobody applying the queue applies it, in order. */
  async function queueReport(q: QueuedReport): Promise<void> {
    reports.push(q);
    if (applyingReports) return; // the handler applying the queue takes this one in its turn
    applyingReports = true;
    try {
      // At a run's start the reports that came before the handlers were set are handed over
      // handler by handler, all before the run's first await: let them all in before choosing.
      await Promise.resolve();
      while (reports.length > 0) {
        if (!reportChecksBatched) {
          await checkAndApply(reports.splice(nextReport(reports), 1)[0]!);
          continue;
        }
        const batch = takeReportBatch(reports);
        if (batch.length === 1) await checkAndApply(batch[0]!);
        else await checkAndApplyBatch(batch);
      }
    } finally {
      applyingReports = false;
    }
  }

  type ReportCheck = { ok: true; signed: boolean } | { ok: false; why: string };
  const couldNotCheck = (err: unknown) => ({ ok: false as const, why: `it could not be checked (${err instanceof Error ? err.message : String(err)})` });
  function refuseReport(q: QueuedReport, why: string): void {
    state.reports = withRefusal(state.reports, { at: now(), signal: q.signal, sender: q.sender, why });
    log.error(`REFUSED a ${q.signal} report from ${q.sender}: ${why}; nothing changed (docs/security.md)`, { signal: q.signal, sender: q.sender, report: q.report, refused: state.reports.refused });
  }

  /** Agents' reports (no healGaveUp), checked in one activity, then applied one after the other as checkAndApply does. */
  async function checkAndApplyBatch(batch: QueuedReport[]): Promise<void> {
    const known = batch.filter((q) => state.nodes[q.sender]);
    const checks: ReportCheck[] = known.length === 0 ? [] : await checkControllerReports(input.cluster, known.map((q) => ({ signal: q.signal, sender: q.sender, report: q.report, auth: q.auth })))
      .catch((err: unknown) => known.map(() => couldNotCheck(err)));
    let k = 0;
    for (const q of batch) {
      if (!state.nodes[q.sender]) refuseReport(q, `node ${q.sender} is not in the cluster's configuration`);
      else applyChecked(q, checks[k++] ?? couldNotCheck(new Error('no answer for it')));
    }
  }

  async function checkAndApply(q: QueuedReport): Promise<void> {
    const sender = q.sender;
    const refuse = (why: string) => refuseReport(q, why);
    if (q.signal === 'healGaveUp') {
      const report = q.report as HealGaveUpReport;
      const check = await checkHealGaveUp(input.cluster, report, q.auth).catch(couldNotCheck);
      if (!check.ok) return refuse(check.why);
      if (check.signed) {
        // Ordered by the heal's workflow time: one not newer is a recorded report sent again.
        const fresh = reportFreshness(healPosition(state.reports?.heals?.[sender]), healPosition(report.at)!);
        if (!fresh.fresh) {
          if (fresh.duplicate) return log.info(`a healGaveUp report of ${sender} came again; nothing to do`, { signal: q.signal, sender });
          return refuse(`it is not newer than the last one applied from ${sender} (a recorded report sent again)`);
        }
        state.reports = withAcceptedHeal(state.reports, sender, report.at);
      }
      return q.apply();
    }
    if (!state.nodes[sender]) return refuse(`node ${sender} is not in the cluster's configuration`);
    applyChecked(q, await checkControllerReport(input.cluster, q.signal, sender, q.report, q.auth).catch(couldNotCheck));
  }

  /** An agent's report whose MAC was checked: applied when it verified and is newer than its sender's newest. */
  function applyChecked(q: QueuedReport, check: ReportCheck): void {
    const sender = q.sender;
    const refuse = (why: string) => refuseReport(q, why);
    if (!check.ok) return refuse(check.why);
    if (check.signed) {
      // A MAC that verified has the shape of one (activities/auth.ts parses it first).
      const position = q.position!;
      const fresh = reportFreshness(state.reports?.nodes[sender], position);
      if (!fresh.fresh) {
        if (fresh.duplicate) return log.info(`a ${q.signal} report from ${sender} came again: ${fresh.why}; nothing to do`, { signal: q.signal, sender });
        return refuse(fresh.why);
      }
      state.reports = withAccepted(state.reports, sender, position, now());
    }
    q.apply();
  }

  const parseEdge = (raw: unknown): NodeEdge | undefined => {
    const parsed = nodeEdgeSchema.safeParse(raw);
    if (!parsed.success) return void log.warn('ignored a malformed nodeEdge signal', { problems: describeIssues(parsed.error, '(signal)') });
    if (!state.nodes[parsed.data.node]) return void log.warn('ignored a nodeEdge signal for an unknown node', { node: parsed.data.node });
    return parsed.data;
  };
  setHandler(nodeEdgeSignal, reportHandler('nodeEdge', parseEdge, (edge) => {
    const before = state.nodes[edge.node]!.state;
    if (edge.to === 'up') delete state.reverify[edge.node];
    // The latest edge wins, whoever reports it: a node's own "up" clears its peers' suspicion,
    // and a peer's suspicion (or the node's own "stopping") marks it suspect.
    state.nodes[edge.node] = { state: edge.to, since: now(), reportedBy: edge.reporter };
    changes += 1;
    // A change of a node known to be up or suspect: one not heard of since the cluster started
    // (a peer's agent not started yet) is neither "lost" nor "back". The reporter's view is the detail.
    if (before !== edge.to && before !== 'unknown') {
      raiseAlert({ event: edge.to === 'suspect' ? 'node-suspect' : 'node-back', node: edge.node, detail: `${edge.reporter}: ${edge.detail}` });
    }
    log.info('node edge', { node: edge.node, from: before, to: edge.to, reporter: edge.reporter, detail: edge.detail });
    // Before the owners' groups are looked at: a restarted node that holds a group says so here.
    if (edge.announce) applyAnnouncement(edge.node, edge.announce);
    for (const [name, g] of Object.entries(state.groups)) {
      if (g.owner !== edge.node) continue;
      if (edge.to === 'suspect') request(name, 'node-lost', `node ${edge.node} suspect (${edge.reporter}: ${edge.detail})`);
      // A restarted agent holds nothing, whatever it held before: the group has to be started again.
      else if (edge.restarted) request(name, 'recover', `node ${edge.node} restarted while owning the group`);
    }
  }));

  // A node announces again what it holds and has seen (its lease round found this controller
  // behind it, or not running): no change of liveness.
  const parseAnnounce = (raw: unknown): NodeAnnounce | undefined => {
    const parsed = nodeAnnounceSchema.safeParse(raw);
    if (!parsed.success) return void log.warn('ignored a malformed nodeAnnounce signal', { problems: describeIssues(parsed.error, '(signal)') });
    if (!state.nodes[parsed.data.node]) return void log.warn('ignored a nodeAnnounce signal for an unknown node', { node: parsed.data.node });
    return parsed.data;
  };
  setHandler(nodeAnnounceSignal, reportHandler('nodeAnnounce', parseAnnounce, (a) => applyAnnouncement(a.node, a.announce)));

  const applyHealGaveUp = (report: HealGaveUpReport, signed: boolean) => {
    const g = state.groups[report.group];
    if (!g || g.owner !== report.node) return log.info('heal gave up on a node that does not own the group; nothing to fail over', { ...report });
    raiseAlert({ event: 'heal-gave-up', node: report.node, group: report.group, resource: report.resource, detail: report.detail });
    const takers = healGaveUpTakers(outOfStandby(groupOf(report.group)?.nodes ?? [], state.maintenance), state.nodes, report.node);
    // Signed reports are applied after an await: no patch is asked there (their runs all have it).
    if (takers.length === 0 && (signed || patched(PATCH_HEAL_GAVE_UP_NEEDS_TAKER))) {
      return log.warn('heal gave up and no other node of the group is up: it stays where it is (fix the service, then `haoscar heal`)', { ...report });
    }
    request(report.group, 'heal-gave-up', `healing ${report.group}/${report.resource} on ${report.node} gave up: ${report.detail}`);
  };
  setHandler(healGaveUpSignal, async (raw: unknown, auth?: unknown) => {
    const parsed = healGaveUpSchema.safeParse(raw);
    if (!parsed.success) return log.warn('ignored a malformed healGaveUp signal', { problems: describeIssues(parsed.error, '(signal)') });
    const report = parsed.data;
    // Histories recorded before signed heal reports acted on it at once (asked as in reportHandler).
    if (!healReportsSignedFromStart && !patched(PATCH_SIGNED_HEAL_REPORTS)) return applyHealGaveUp(report, false);
    // Nothing to check for a group this cluster does not have (nor anything to do).
    if (!state.groups[report.group]) return log.info('a healGaveUp report for a group this cluster does not have; nothing to do', { ...report });
    const healId = healWorkflowId(input.cluster, report.group, report.resource);
    await queueReport({ signal: 'healGaveUp', report, sender: healId, position: healPosition(report.at)!, auth, apply: () => applyHealGaveUp(report, true) });
  });

  const parseLost = (raw: unknown): GroupLostReport | undefined => {
    const parsed = groupLostSchema.safeParse(raw);
    if (!parsed.success) return void log.warn('ignored a malformed groupLost signal', { problems: describeIssues(parsed.error, '(signal)') });
    return parsed.data;
  };
  setHandler(groupLostSignal, reportHandler('groupLost', parseLost, (report, authenticated) => {
    const g = state.groups[report.group];
    if (!g || g.owner !== report.node || g.epoch !== report.epoch) return log.info('a stale groupLost report; nothing to do', { ...report });
    // Authenticated reports are applied after an await: no patch is asked there (they all keep it).
    if ((g.operation || pending.some((p) => p.group === report.group)) && (authenticated || patched(PATCH_LOST_DURING_OPERATION))) {
      // The operation may not handle it (a false alarm ends without touching the group): kept,
      // and looked at when it ends; stale by then if the operation has claimed the group.
      g.lost = { node: report.node, epoch: report.epoch, at: now(), detail: report.detail };
      return log.info('group lost while an operation holds it: looked at again when the operation ends', { ...report, operation: g.operation?.workflowId });
    }
    // It stopped the group itself: no lease to wait out, it may even take it again.
    request(report.group, 'recover', `${report.node} stopped the group at epoch ${report.epoch}: ${report.detail}`);
  }));

  setHandler(
    beginOperationUpdate,
    once(beginOperationUpdate, (req) => {
      const g = state.groups[req.group]!;
      // Started by us (the lock was taken when the child was started) or from the UI/CLI.
      g.operation ??= { workflowId: req.workflowId, kind: req.kind, startedAt: now() };
      if (starting.has(req.group)) starting.set(req.group, true);
      blockRenewals(g);
      raiseAlert({ event: 'failover-started', group: req.group, ...(g.owner !== null ? { node: g.owner } : {}), operation: req.kind, detail: `${req.kind} by ${req.workflowId}` });
      // Kept in the answer: claimGroup lifts the block for the new owner.
      // Up: heard by its peers, or (while they suspect it) answering through Temporal since.
      const up = Object.entries(state.nodes)
        .filter(([, n]) => n.state === 'up' || (n.state === 'suspect' && n.answeredAt !== undefined && n.answeredAt >= n.since))
        .map(([name]) => name)
        // Nodes in standby take nothing over (an operator's --to still names one).
        .filter((name) => !inStandby(state.maintenance, name));
      return { owner: g.owner, epoch: g.epoch, blockedSince: g.blockedSince!, up, lease: groupLease(req.group) };
    }),
    {
      validator: unlessApplied((req: unknown) => refuseIf(beginOperationRefusal(state, req))),
    },
  );

  setHandler(
    claimGroupUpdate,
    authenticatedOnce(claimGroupUpdate, claimGroupRefusal, (req) => {
      const g = state.groups[req.group]!;
      g.epoch += 1;
      g.owner = req.owner;
      g.state = req.owner === null ? 'down' : 'moving';
      g.since = now();
      // The operation is past its old owner (safe, fenced or confirmed down): no longer blocked.
      if (g.operation) delete g.operation.blocked;
      // The block was against the old owner's lease; the new owner's (new epoch) may be renewed.
      allowRenewals(g);
      log.info('group claimed', { group: req.group, owner: req.owner, epoch: g.epoch, by: req.workflowId });
      return { epoch: g.epoch };
    }),
    {
      validator: unlessApplied((req: unknown) => refuseIf(claimGroupRefusal(state, req))),
    },
  );

  setHandler(
    endOperationUpdate,
    authenticatedOnce(endOperationUpdate, endOperationRefusal, (req) => {
      const g = state.groups[req.group]!;
      const endedBlocked = g.operation?.blocked !== undefined;
      release(g);
      if (req.outcome === 'running') g.state = 'running';
      else if (req.outcome === 'down') g.state = 'down';
      if (req.outcome === 'false-alarm') {
        state.falseAlarms.push({ group: req.group, node: req.node ?? g.owner ?? '?', at: now(), workflowId: req.workflowId, detail: req.detail });
        if (state.falseAlarms.length > MAX_FALSE_ALARMS) state.falseAlarms.shift();
        // It answered, but its peers still do not hear it, and they only report changes: ask
        // it again later (backing off), so that its death during the partition is not missed.
        if (req.node && state.nodes[req.node]) state.nodes[req.node]!.answeredAt = now();
        if (req.node) {
          const delay = Math.min((state.reverify[req.node]?.delayMs ?? REVERIFY_FIRST_MS / 2) * 2, REVERIFY_MAX_MS);
          state.reverify[req.node] = { at: now() + delay, delayMs: delay };
        }
      }
      g.since = now();
      // A group left down is tried again later (backing off), not only when a node comes up.
      const retry = retryAfter({ state: g.state, endedBlocked, previous: g.retry, now: now(), minMs: retryMinMs(req.group) });
      if (retry === undefined) delete g.retry;
      else if (patched(PATCH_RETRY_DOWN)) g.retry = retry;
      changes += 1;
      log.info('operation ended', { group: req.group, outcome: req.outcome, owner: g.owner, epoch: g.epoch, detail: req.detail });
      const alertNode = req.outcome === 'false-alarm' ? req.node ?? g.owner : g.owner;
      raiseAlert({ event: req.outcome === 'false-alarm' ? 'false-alarm' : 'failover-ended', group: req.group, ...(alertNode ? { node: alertNode } : {}), outcome: req.outcome, detail: req.detail });
    }),
    {
      validator: unlessApplied((req: unknown) => refuseIf(endOperationRefusal(state, req))),
    },
  );

  // A failover whose old owner failed to stop the group says so: the group stays with that
  // node (no claim, renewals still blocked) until a fence, the watchdog or a confirm-down.
  setHandler(
    operationBlockedUpdate,
    authenticatedOnce(operationBlockedUpdate, operationBlockedRefusal, (req) => {
      const op = state.groups[req.group]!.operation!;
      const same = op.blocked?.node === req.node && op.blocked.epoch === req.epoch;
      op.blocked = {
        node: req.node,
        epoch: req.epoch,
        since: same ? op.blocked!.since : now(),
        detail: req.detail,
        waitingFor: req.waitingFor,
        ...(req.until !== undefined ? { until: req.until } : {}),
        ...(same && op.blocked!.confirmed ? { confirmed: op.blocked!.confirmed } : {}),
      };
      log.warn('operation blocked: the old owner still holds the group', { group: req.group, node: req.node, epoch: req.epoch, waitingFor: req.waitingFor, detail: req.detail });
    }),
    {
      validator: unlessApplied((req: unknown) => refuseIf(operationBlockedRefusal(state, req))),
    },
  );

  // An operator confirms a node down: only the operations blocked on it NOW are unblocked
  // (keyed on the operation and its epoch); nothing is kept for a later failed stop.
  setHandler(
    confirmDownUpdate,
    async (req): Promise<ConfirmDownResult> => {
      // An operator's confirmation is signed by `haoscar confirm-down` (the node's secret file);
      // a repeat of one under the same update ID gets its first answer (once()'s record).
      const id = currentUpdateInfo()?.id;
      const first = applied.get(id);
      // Asked once, before the first await: its marker is in the update's workflow task.
      const authenticated = patched(PATCH_AUTHENTICATED_UPDATES);
      if (authenticated) {
        if (first) return first.result as ConfirmDownResult;
        const check = await checkControllerUpdate(input.cluster, confirmDownUpdate.name, id ?? '', req);
        if (!check.ok) {
          log.error(`REFUSED a confirmDown update that is not authenticated: ${check.why}; nothing changed (docs/security.md)`, { update: 'confirmDown', id, node: req.node, operator: req.operator });
          throw ApplicationFailure.create({ type: ERROR_TYPES.Unauthenticated, nonRetryable: true, message: `the controller refused confirmDown: ${check.why}; nothing changed (docs/security.md)` });
        }
        refuseIf(confirmDownRefusal(state, req));
      }
      const at = now();
      const operator = req.operator ?? 'an operator';
      const sends: { workflowId: string; signal: ConfirmedDown }[] = [];
      const unblocked: ConfirmDownResult['unblocked'] = [];
      for (const [name, g] of Object.entries(state.groups)) {
        const op = g.operation;
        if (op?.blocked?.node !== req.node) continue;
        op.blocked.confirmed ??= { operator, at, ...(req.detail !== undefined ? { detail: req.detail } : {}) };
        unblocked.push({ group: name, workflowId: op.workflowId, epoch: op.blocked.epoch });
        sends.push({ workflowId: op.workflowId, signal: { node: req.node, epoch: op.blocked.epoch, operator, at, ...(req.detail !== undefined ? { detail: req.detail } : {}) } });
      }
      const confirmed = state.confirmedDown ??= [];
      confirmed.push({ node: req.node, operator, at, unblocked, ...(req.detail !== undefined ? { detail: req.detail } : {}) });
      if (confirmed.length > MAX_CONFIRMED_DOWN) confirmed.shift();
      changes += 1;
      log.warn('node confirmed down by an operator', { node: req.node, operator, detail: req.detail, unblocked });
      const result: ConfirmDownResult = { node: req.node, unblocked };
      if (id !== undefined && authenticated) applied.add({ id, update: confirmDownUpdate.name, at, result });
      for (const s of sends) {
        // Delivered by the server; the failover checks the node and the epoch again.
        await getExternalWorkflowHandle(s.workflowId).signal(confirmedDownSignal, s.signal).catch((err: unknown) =>
          log.error('could not tell a blocked operation of the confirm-down', { workflowId: s.workflowId, err: err instanceof Error ? err.message : String(err) }),
        );
      }
      return result;
    },
    {
      validator: unlessApplied((req: unknown) => refuseIf(confirmDownRefusal(state, req))),
    },
  );

  /** What the maintenance planners look at (maintenance-plan.ts). */
  function maintenanceFacts(): MaintenanceFacts {
    return { groups: state.groups, nodes: state.nodes, maintenance: state.maintenance, groupNodes: Object.fromEntries(layout.groups.map((g) => [g.name, g.nodes])) };
  }

  // `haoscar maintenance on|off`: signed like a confirm-down (docs/security.md); a repeat of one
  // under the same update ID gets its first answer. A group in maintenance is unmanaged, a node in
  // standby is emptied by switchovers (started by the loop, standbyDue) and given nothing.
  setHandler(
    setMaintenanceUpdate,
    async (req): Promise<SetMaintenanceResult> => {
      const id = currentUpdateInfo()?.id;
      const first = applied.get(id);
      if (first) return first.result as SetMaintenanceResult;
      // Asked before the first await (its marker is in the update's task); state.maintenance is set only under it.
      if (!patched(PATCH_MAINTENANCE)) throw ApplicationFailure.create({ type: ERROR_TYPES.InvalidWorkflowInput, nonRetryable: true, message: 'this controller run does not take maintenance' });
      const check = await checkControllerUpdate(input.cluster, setMaintenanceUpdate.name, id ?? '', req);
      if (!check.ok) {
        log.error(`REFUSED a setMaintenance update that is not authenticated: ${check.why}; nothing changed (docs/security.md)`, { update: 'setMaintenance', id, group: req.group, node: req.node, operator: req.operator });
        throw ApplicationFailure.create({ type: ERROR_TYPES.Unauthenticated, nonRetryable: true, message: `the controller refused setMaintenance: ${check.why}; nothing changed (docs/security.md)` });
      }
      refuseIf(setMaintenanceRefusal(maintenanceFacts(), req));
      const { maintenance, result } = applyMaintenance(maintenanceFacts(), req, now());
      state.maintenance = maintenance;
      if (req.group !== undefined && !req.on) {
        // A suspicion kept while unmanaged that its owner has cleared since is not acted on; nor a
        // heal that gave up then (the service may have been fixed: a node whose service still fails
        // reports it again now, and a new heal starts with a full budget).
        const g = state.groups[req.group]!;
        if (g.deferred?.kind === 'heal-gave-up' || (g.deferred?.kind === 'node-lost' && g.owner !== null && state.nodes[g.owner]?.state === 'up')) delete g.deferred;
      }
      if (req.node !== undefined && !req.on && result.changed) {
        // A node out of standby may take over a group whose owner was lost while nothing else could.
        for (const [name, g] of Object.entries(state.groups)) {
          if (g.owner !== null && g.owner !== req.node && state.nodes[g.owner]?.state === 'suspect' && groupOf(name)?.nodes.includes(req.node)) {
            request(name, 'node-lost', `node ${req.node} is out of standby and ${g.owner}, the owner, is still suspect`);
          }
        }
      }
      changes += 1;
      if (result.changed) {
        const owner = req.group !== undefined ? state.groups[req.group]?.owner : undefined;
        const node = req.node ?? owner ?? undefined;
        raiseAlert({ event: 'maintenance-changed', ...(req.group !== undefined ? { group: req.group } : {}), ...(node ? { node } : {}), on: req.on, detail: `${req.operator ?? 'an operator'}${req.reason ? `: ${req.reason}` : ''}` });
      }
      log.warn(`maintenance ${req.on ? 'on' : 'off'} for ${req.group !== undefined ? `group ${req.group}` : `node ${req.node}`}${result.changed ? '' : ' (already so: nothing changed)'}`, { ...result, operator: req.operator, reason: req.reason });
      if (id !== undefined) applied.add({ id, update: setMaintenanceUpdate.name, at: now(), result });
      return result;
    },
    {
      validator: unlessApplied((req: unknown) => refuseIf(setMaintenanceRefusal(maintenanceFacts(), req))),
    },
  );

  /**
   * What a node announced about itself (announce-plan.ts): the lease it enforces is recorded
   * (and a difference from the worker's said loudly); the groups it holds and the epochs it has
   * seen bring a controller that is behind (Temporal's data lost) up to the nodes: the holder is
   * adopted, the epoch is never below one a node has seen, two holders under one epoch are both
   * dropped. In normal operation nothing changes (the controller is never behind).
   */
  function applyAnnouncement(node: string, a: NodeAnnouncement): void {
    if (a.lease) {
      const before = leases.nodes[node];
      leases.nodes[node] = { ttlMs: a.lease.ttlMs, marginMs: a.lease.marginMs, at: now() };
      const mismatches = leaseMismatches(leases.worker, { [node]: a.lease });
      if (mismatches.length > 0 && (before?.ttlMs !== a.lease.ttlMs || before.marginMs !== a.lease.marginMs)) {
        log.warn(describeLeaseMismatch(leases.worker, mismatches), { node, announced: a.lease, worker: leases.worker });
      }
    }
    for (const [name, g] of Object.entries(state.groups)) {
      // A node that may not run the group (a haoscar.yaml that differs) is not made its owner.
      if (!groupOf(name)?.nodes.includes(node)) continue;
      const step = announceStep(g, { node, ...(a.holds?.[name] ? { holds: a.holds[name] } : {}), ...(a.seen?.[name] !== undefined ? { seen: a.seen[name] } : {}) });
      if (step.step === 'none') continue;
      const from = { owner: g.owner, epoch: g.epoch, state: g.state };
      changes += 1;
      if (step.step === 'adopt') {
        g.owner = step.owner;
        g.epoch = step.epoch;
        g.state = 'running';
        g.since = now();
        delete g.retry;
        // An operation holding the group keeps its renewals blocked; its claims are stale now.
        if (!g.operation) allowRenewals(g);
        log.warn('adopted a group a node holds under an epoch this controller did not know (was Temporal\'s data lost?)', { group: name, node, epoch: step.epoch, from });
        continue;
      }
      g.epoch = step.epoch;
      if (step.step === 'raise' && !step.dropOwner) {
        log.warn('raised a group\'s epoch to one a node has seen (was Temporal\'s data lost?): the next claim is above it', { group: name, node, epoch: step.epoch, from });
        continue;
      }
      // Nobody: no node's lease is renewed from now on; placed again once the largest lease has run out.
      g.owner = null;
      g.state = 'down';
      g.since = now();
      const waitMs = retryMinMs(name);
      g.retry = { at: now() + waitMs, delayMs: waitMs };
      if (step.step === 'conflict') log.error(`two nodes hold group ${name} under one epoch: trusting neither; it is claimed for nobody and placed again once their leases have run out`, { group: name, holders: step.holders, epoch: step.epoch });
      else log.warn('a node has seen a newer epoch than the owner this controller records: that owner is stale, the group is claimed for nobody', { group: name, node, epoch: step.epoch, from });
    }
  }

  const startedAt = now();
  // Recorded histories from before automatic fail-back replay without it (failbackEnabled, above).
  for (;;) {
    placeWhatIsDown();
    reverifyDue();
    await releaseAbandoned();
    const nextFailback = failbackEnabled ? await failBackDue() - now() : Infinity;
    const nextStandby = await moveFromStandby() - now();
    // Wake up when the wait for a group's preferred node ends, a re-verification or an
    // operation check is due, or anything else needs doing.
    const grace = startedAt + PLACEMENT_GRACE_MS - now();
    const seen = changes;
    const wake = () => pending.length > 0 || needsPlacing() || workflowInfo().historyLength > MAX_HISTORY_EVENTS || workflowInfo().continueAsNewSuggested
      // A node coming up or an operation ending may make a fail-back due later: recompute when.
      || (failbackEnabled && changes !== seen) || standbyDue();
    const nextReverify = Math.min(...Object.values(state.reverify).map((r) => r.at)) - now();
    const nextCheck = Math.min(...Object.values(state.groups).filter((g) => g.operation).map((g) => (g.operation!.checkedAt ?? g.operation!.startedAt) + OPERATION_CHECK_MS)) - now();
    // Infinity unless a group has a retry, a lost report or a deferred request (the patches): recorded histories keep their timers.
    const nextRetry = Math.min(...Object.entries(state.groups).map(([name, g]) => {
      const step = stepOf(name, g);
      return step.step === 'none' && step.wakeAt !== undefined ? step.wakeAt : Infinity;
    })) - now();
    const timeout = Math.min(grace > 0 && waitingForPreferred() ? grace : Infinity, nextReverify, nextCheck, nextFailback, nextRetry, nextStandby);
    if (timeout < Infinity) await condition(wake, Math.max(1, timeout));
    else await condition(wake);
    while (pending.length > 0) await launch(pending.shift()!);
    if ((workflowInfo().historyLength > MAX_HISTORY_EVENTS || workflowInfo().continueAsNewSuggested) && pending.length === 0) {
      // Updates in flight would be lost with this run; they finish in a few milliseconds.
      // Alerts being started too (a start not yet answered would be lost with this run).
      await condition(() => allHandlersFinished() && alertStarts === 0);
      // A report applied meanwhile may have asked for an operation (and blocked its group's
      // renewals): the requests are not carried over, so they are started first, and the run
      // continues as new on a later round. Asked only then (PATCH_REQUESTS_BEFORE_CONTINUE).
      if (pending.length > 0 && patched(PATCH_REQUESTS_BEFORE_CONTINUE)) continue;
      await continueAsNew<typeof controller>({ cluster: input.cluster, carried: { ...state, applied: applied.entries() } });
    }
  }

  /**
   * An operation that has held a group for long is checked: if its workflow is no longer
   * running (terminated, or failed without giving the group back), the group is released.
   */
  async function releaseAbandoned(): Promise<void> {
    for (const [name, g] of Object.entries(state.groups)) {
      const op = g.operation;
      if (!op || now() - (op.checkedAt ?? op.startedAt) < OPERATION_CHECK_MS) continue;
      const running = await cluster.workflowRunning({ workflowId: op.workflowId }).catch(() => true);
      if (g.operation !== op) continue; // ended meanwhile
      if (running) {
        op.checkedAt = now(); // checked again later
        continue;
      }
      log.warn('an operation ended without giving the group back (terminated?): releasing the group', { group: name, workflowId: op.workflowId });
      release(g);
    }
  }

  /**
   * Automatic fail-back: a group with policy `auto` that runs away from its preferred node is
   * switched back once that node has been up for `stableFor` (any edge of it, such as a
   * flap, restarts the count), the group has stayed put for `stickiness`, and no fail-back of
   * it was started within `stickiness` (one that failed is not retried in a loop). The
   * switchover resyncs the node first. @returns when the next one may be due (Infinity: none).
   */
  async function failBackDue(): Promise<number> {
    let next = Infinity;
    for (const spec of layout.groups) {
      const policy = spec.failback;
      const g = state.groups[spec.name];
      const preferred = spec.nodes[0];
      if (policy?.policy !== 'auto' || !g || preferred === undefined) continue;
      if (groupMaintenance(state.maintenance, spec.name) || inStandby(state.maintenance, preferred)) continue;
      if (g.owner === null || g.owner === preferred || g.state !== 'running' || g.operation || pending.some((p) => p.group === spec.name)) continue;
      const n = state.nodes[preferred];
      if (n?.state !== 'up') continue;
      const dueAt = Math.max(n.since + policy.stableForMs, g.since + policy.stickinessMs, (g.failbackAt ?? -Infinity) + policy.stickinessMs);
      if (dueAt > now()) {
        next = Math.min(next, dueAt);
        continue;
      }
      g.failbackAt = now();
      await startFailback(spec.name, preferred, `fail-back: ${preferred} up for ${Math.round((now() - n.since) / 1000)}s, the group on ${g.owner} for ${Math.round((now() - g.since) / 1000)}s`);
    }
    return next;
  }

  /** The standby moves due now (maintenance-plan.ts standbyMoves): none without a node in standby. */
  function standbyDue(): boolean {
    return standbyMoves({ ...maintenanceFacts(), busy: isBusy, now: now() }).moves.length > 0;
  }
  function isBusy(group: string): boolean {
    return state.groups[group]?.operation !== undefined || pending.some((p) => p.group === group);
  }

  /** A node in standby: its groups are switched over to a node that may take them. @returns when a retry is due (Infinity: none). */
  async function moveFromStandby(): Promise<number> {
    const plan = standbyMoves({ ...maintenanceFacts(), busy: isBusy, now: now() });
    for (const mv of plan.moves) {
      (state.maintenance!.moves ??= {})[mv.group] = now();
      await startFailback(mv.group, mv.to, `node ${mv.from} is in standby (maintenance): ${mv.group} moves to ${mv.to}`, 'standby');
    }
    return plan.wakeAt ?? Infinity;
  }

  async function startFailback(group: string, to: string, reason: string, trigger: 'failback' | 'standby' = 'failback'): Promise<void> {
    const workflowId = switchoverWorkflowId(input.cluster, group);
    try {
      await startChild('switchover', {
        workflowId,
        args: [{ cluster: input.cluster, group, to, trigger, reason } satisfies SwitchoverInput],
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: haTags({ cluster: input.cluster, group, node: to, operation: 'switchover' }),
        memo: { trigger, detail: reason },
        staticSummary: `${trigger === 'failback' ? 'fail-back' : 'standby move'}: move ${group} to ${to}`,
        staticDetails: reason,
      });
      log.info(trigger === 'failback' ? 'fail-back started' : 'standby move started', { group, to, reason, workflowId });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) return log.info('a switchover of the group is already running', { group, workflowId });
      log.warn(`could not start a ${trigger === 'failback' ? 'fail-back' : 'standby move'}`, { group, to, err: err instanceof Error ? err.message : String(err) });
    }
  }

  /** Owners still suspected by their peers after a false alarm are verified again when due. */
  function reverifyDue(): void {
    for (const [node, r] of Object.entries(state.reverify)) {
      if (r.at > now()) continue;
      if (state.nodes[node]?.state !== 'suspect') {
        delete state.reverify[node];
        continue;
      }
      r.at = now() + r.delayMs; // the next one, should this one be a false alarm again
      for (const [name, g] of Object.entries(state.groups)) {
        if (g.owner === node) request(name, 'node-lost', `node ${node} still suspect after a false alarm: verifying again`);
      }
    }
  }

  /** What to do about a group no operation holds (group-plan.ts): recover a lost one, place one that runs nowhere or is down. */
  function stepOf(name: string, g: ControllerGroup): GroupStep {
    return groupStep({
      group: g,
      busy: g.operation !== undefined || pending.some((p) => p.group === name),
      ...(groupMaintenance(state.maintenance, name) ? { maintenance: true } : {}),
      // Nothing is placed on a node in standby.
      nodes: outOfStandby(groupOf(name)!.nodes, state.maintenance).map((n) => ({ name: n, ...(state.nodes[n] ? { liveness: state.nodes[n] } : {}) })),
      startedAt,
      graceMs: PLACEMENT_GRACE_MS,
      now: now(),
    });
  }
  function needsPlacing(): boolean {
    return Object.entries(state.groups).some(([name, g]) => stepOf(name, g).step === 'start');
  }
  function waitingForPreferred(): boolean {
    return Object.values(state.groups).some((g) => g.owner === null && !g.operation);
  }
  function placeWhatIsDown(): void {
    for (const [name, g] of Object.entries(state.groups)) {
      const step = stepOf(name, g);
      // The operation has moved the group on (a claim raised the epoch): the report is stale.
      if (step.step !== 'busy' && g.lost && !lostIsCurrent(g)) delete g.lost;
      if (step.step !== 'busy' && g.deferred && !deferredIsCurrent(g)) delete g.deferred;
      if (step.step === 'start') request(name, step.kind, step.reason);
    }
  }

  async function launch(p: Pending): Promise<void> {
    const g = state.groups[p.group]!;
    const workflowId = failoverWorkflowId(input.cluster, p.group);
    // Only a workflow's beginOperation sets it between the request and now (request() refuses a held group).
    const begunBefore = g.operation !== undefined;
    g.operation = { workflowId, kind: p.kind, startedAt: now() };
    starting.set(p.group, false);
    try {
      const child = await startChild('failover', {
        workflowId,
        args: [{ cluster: input.cluster, group: p.group, kind: p.kind, reason: p.reason } satisfies FailoverInput],
        // The failover outlives a controller that continues as new.
        parentClosePolicy: ParentClosePolicy.ABANDON,
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: [
          { key: HA_KEYS.HaCluster, value: input.cluster },
          { key: HA_KEYS.HaGroup, value: p.group },
          { key: HA_KEYS.HaOperation, value: 'failover' },
        ],
        memo: { trigger: p.kind, detail: p.reason },
        staticSummary: `failover of ${p.group} (${p.kind})`,
        staticDetails: p.reason,
      });
      // Its updates must come from this run (authenticatedOnce): an earlier run's recorded ones are refused.
      if (g.operation?.workflowId === workflowId) g.operation.runId ??= child.firstExecutionRunId;
      log.info('operation started', { group: p.group, kind: p.kind, reason: p.reason, workflowId });
      // A lost report is used up by the recover that restarts the group; a deferred request by any operation.
      if (p.kind === 'recover') delete g.lost;
      delete g.deferred;
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        const step = startConflictStep({
          kind: p.kind,
          lostCurrent: lostIsCurrent(g),
          begunBefore,
          begunDuring: starting.get(p.group) === true,
          patched: patched(PATCH_START_CONFLICT),
        });
        if (step === 'retry-lost') {
          // Started as soon as the operation that held the group gave it back, whose workflow (same
          // ID) is most likely still closing: it will not begin again, so the lock is not kept for
          // it (renewals stay blocked: the node let go of the group); tried again shortly.
          g.operation = undefined;
          const delayMs = startConflictDelay(g.lost!.delayMs);
          g.lost = { ...g.lost!, retryAt: now() + delayMs, delayMs };
          return log.info('a workflow of the group is still running: the recover is tried again shortly', { group: p.group, workflowId, delayMs });
        }
        if (step === 'defer') {
          // No workflow began the group: the one running (most likely the operation that has just
          // given the group back, still closing) will not use the lock. The request is kept in the
          // carried state and tried again shortly (renewals stay blocked, as for the request); an
          // operator's failover that has not begun yet takes the group with its beginOperation.
          g.operation = undefined;
          g.deferred = deferStart(g, p, now());
          return log.info('a workflow of the group is still running: the request is tried again shortly', { group: p.group, kind: p.kind, workflowId, delayMs: g.deferred.delayMs });
        }
        // A workflow of the group began (an operator's failover, same workflow ID): it holds the
        // group under the lock just taken, and gives it back when it ends.
        return log.info('an operation of the group is already running', { group: p.group, workflowId });
      }
      release(g);
      log.warn('could not start an operation', { group: p.group, kind: p.kind, err: err instanceof Error ? err.message : String(err) });
    } finally {
      starting.delete(p.group);
    }
  }
}

/** From now on the owner's lease is not extended (kept from the first block while it lasts). */
function blockRenewals(g: GroupOwnership): void {
  if (!g.renewable) return;
  g.renewable = false;
  g.blockedSince = Date.now();
}

function allowRenewals(g: GroupOwnership): void {
  g.renewable = true;
  g.blockedSince = undefined;
}

/** The operation gives the group back (or is found gone): no lock, renewals again. */
function release(g: GroupOwnership): void {
  g.operation = undefined;
  allowRenewals(g);
}

/**
 * The carried state, with groups and nodes added or removed to match the configuration; keys it
 * does not know are kept (a newer controller's), except the applied updates (not in the query's answer).
 */
function restore(carried: unknown, clusterName: string, layout: ClusterLayout): ControllerState {
  const object = typeof carried === 'object' && carried !== null && !Array.isArray(carried) ? carried : {};
  const { applied: _applied, ...old } = object as Partial<ControllerState> & { applied?: unknown };
  const now = Date.now();
  const groups: ControllerState['groups'] = {};
  for (const g of layout.groups) {
    groups[g.name] = old.groups?.[g.name] ?? { owner: null, epoch: 0, state: 'unplaced', since: now, renewable: true };
  }
  const nodes: Ownership['nodes'] = {};
  for (const n of layout.nodes) nodes[n.name] = old.nodes?.[n.name] ?? { state: 'unknown', since: now, reportedBy: 'controller' };
  return {
    ...old, cluster: clusterName, groups, nodes, falseAlarms: old.falseAlarms ?? [], reverify: old.reverify ?? {}, confirmedDown: old.confirmedDown ?? [],
    // Announced leases of nodes still in the configuration (absent from controllers older than them).
    ...(old.leases ? { leases: { worker: old.leases.worker, nodes: Object.fromEntries(Object.entries(old.leases.nodes ?? {}).filter(([n]) => nodes[n])) } } : {}),
    // The newest report of nodes still in the configuration (absent from controllers older than them).
    ...(old.reports ? { reports: { ...old.reports, nodes: Object.fromEntries(Object.entries(old.reports.nodes ?? {}).filter(([n]) => nodes[n])) } } : {}),
  };
}

/** The applied updates a continue-as-new carried over (none from runs older than the record). */
function appliedOf(carried: unknown): AppliedUpdate[] {
  const list = (carried as { applied?: unknown } | undefined)?.applied;
  return Array.isArray(list) ? (list as AppliedUpdate[]) : [];
}

/**
 * A validator's refusal (controller-refusals.ts), thrown as a non-retryable ApplicationFailure of
 * its type: the update is rejected, nothing is recorded or changed.
 */
function refuseIf(refusal: Refusal | undefined): void {
  if (refusal) throw ApplicationFailure.create({ type: refusal.type, nonRetryable: true, message: refusal.message });
}
