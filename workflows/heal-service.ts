/**
 * healService: heal a failed service in place, or give up so that it can be failed over.
 *
 * Started by a node's monitor (signal-with-start of `serviceFailed`, so a second failure of
 * the same service reaches the running heal instead of starting another), by `haoscar heal`,
 * or by hand from the Temporal UI. One runs per group and resource (see healWorkflowId).
 *
 * It restarts the service on its node, waits until the check passes `rise` times, then keeps
 * watching until its last restart has left the healing window: a crash in that time is
 * counted against the same budget. On the failure after `maxRestarts` restarts within the
 * window it fails with `HealGaveUp` — no restart loops — for failover to escalate on.
 */
import {
  allHandlersFinished,
  ApplicationFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  isCancellation,
  log,
  patched,
  proxyActivities,
  proxyLocalActivities,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { ClusterActivities } from '../activities/cluster.js';
import type { ServiceActivities } from '../activities/service.js';
import { decideOnFailure, restartsInWindow, watchRemaining } from './heal-plan.js';
import { describeIssues, healServiceInputSchema, parseWorkflowInput, resetFailCountSchema, serviceFailureSchema } from './inputs.js';
import { HA_KEYS } from './search-attributes.js';
import { signHealGaveUp } from './auth.js';
import { healTrigger, PATCH_STORY, says, shortDuration, tellOutcome, tellTrigger } from './story.js';
import {
  controllerWorkflowId,
  ERROR_TYPES,
  healGaveUpSignal,
  healRequestUpdate,
  healStatusQuery,
  resetFailCountUpdate,
  serviceFailedSignal,
  type HealRequestOutcome,
  type HealStatus,
  type ResetFailCountResult,
  type ServiceFailure,
} from './shared.js';

export interface HealResult {
  outcome: 'healed';
  restarts: number;
  attempts: HealStatus['attempts'];
}

/**
 * Failures of an attempt that mean the heal itself is wrong, not the service: stop at once.
 * (The node's agent does not know the resource: its haoscar.yaml differs from the cluster's.)
 */
const FATAL: readonly string[] = [ERROR_TYPES.UnknownResource, ERROR_TYPES.NodeNotInGroup];

/** Keep histories small: a service crashing slowly but forever would otherwise grow one without end. */
const MAX_ATTEMPTS_PER_RUN = 100;

// A config lookup in the workflow worker's own process: a local activity saves the round trip
// through the server that a regular one costs, and every heal pays it before the restart.
const cluster = proxyLocalActivities<ClusterActivities>({
  startToCloseTimeout: '5 seconds',
  retry: { initialInterval: '200ms', maximumInterval: '5 seconds', maximumAttempts: 10 },
});
// Heals begun by 0.1.0 looked the target up with a regular activity; they replay through this.
const clusterViaServer = proxyActivities<ClusterActivities>({
  scheduleToCloseTimeout: '1 minute',
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200ms', maximumInterval: '5 seconds' },
});
export const PATCH_LOCAL_RESOLVE = 'heal-resolve-target-locally';
/** Heals begun before failover existed gave up without telling the controller. */
export const PATCH_ESCALATE = 'heal-escalates-to-failover';
/**
 * The "gave up" report carries the workflow worker's MAC for this heal (a local activity signs it),
 * without which a controller that checks reports refuses it (docs/security.md): anyone with
 * Temporal access could otherwise send one and move a healthy group. Heals recorded before it sent
 * the report alone.
 */
export const PATCH_SIGNED_GAVE_UP = 'heal-gave-up-signed';

export async function healService(rawInput: unknown): Promise<HealResult> {
  const input = parseWorkflowInput(healServiceInputSchema, rawInput, 'healService');
  // Asked before the first await (see failover.ts): HaTrigger and HaOutcome (story.ts).
  const story = patched(PATCH_STORY);
  const status: HealStatus = { phase: 'resolving', attempts: [], restartsInWindow: 0, failures: [] };
  // Being started means a failure was seen (by a monitor, or by an operator asking for a heal).
  let failurePending = true;
  // All attempts of this run (status.attempts keeps only the last 50).
  let attemptsMade = 0;
  const recordFailure = (failure: ServiceFailure) => {
    status.failures.push(failure);
    if (status.failures.length > 20) status.failures.shift();
    failurePending = true;
  };
  setHandler(serviceFailedSignal, (raw: unknown) => {
    // Signals can be sent from the UI with any JSON: a malformed one is logged and ignored
    // (a signal cannot be refused), but a well-formed one always counts.
    const parsed = serviceFailureSchema.safeParse(raw);
    if (parsed.success) recordFailure(parsed.data);
    else log.warn('ignored a malformed serviceFailed signal', { problems: describeIssues(parsed.error, '(signal)') });
  });
  setHandler(healStatusQuery, () => status);
  // The restarts that count against maxRestarts (carried over continue-as-new); `haoscar cleanup` empties it.
  let restarts: number[] = [...(input.restarts ?? [])];
  // `haoscar cleanup`: no command is issued (only the next failure's decision changes), so recorded histories replay as they are.
  setHandler(
    resetFailCountUpdate,
    (req): ResetFailCountResult => {
      const cleared = restartsInWindow(restarts, Date.now(), windowMs.value).length;
      restarts = [];
      status.restartsInWindow = 0;
      log.info('fail count reset by an operator (haoscar cleanup): the next failure starts from a full budget', { cleared, operator: req.operator, reason: req.reason });
      return { cleared, phase: status.phase };
    },
    {
      validator: (req: unknown) => {
        const parsed = resetFailCountSchema.safeParse(req);
        if (!parsed.success) throw ApplicationFailure.create({ type: ERROR_TYPES.InvalidWorkflowInput, nonRetryable: true, message: `invalid resetFailCount request: ${describeIssues(parsed.error, '(request)').join('; ')}` });
        if (status.phase === 'gave-up') throw ApplicationFailure.create({ type: ERROR_TYPES.HealGaveUp, nonRetryable: true, message: 'this heal has given up and is closing: the next failure starts a new heal with a full budget' });
      },
    },
  );
  /** The healing window, once the target is resolved (a reset before that counts every restart carried over). */
  const windowMs = { value: Infinity };
  setHandler(
    healRequestUpdate,
    async (failure: ServiceFailure): Promise<HealRequestOutcome> => {
      const before = attemptsMade;
      recordFailure(failure);
      // Answered when an attempt made after this request has left the service healthy, or
      // when the heal has given up (the main loop waits for this answer before it fails).
      await condition(() => status.phase === 'gave-up' || (status.phase === 'watching' && attemptsMade > before));
      const last = status.attempts.at(-1);
      return { outcome: status.phase === 'gave-up' ? 'gave-up' : 'healthy', attempts: attemptsMade, detail: last?.detail ?? '' };
    },
    {
      validator: (failure: unknown) => {
        const parsed = serviceFailureSchema.safeParse(failure);
        if (!parsed.success) throw new Error(`invalid heal request: ${describeIssues(parsed.error, '(request)').join('; ')}`);
        if (status.phase === 'gave-up') throw new Error('this heal has given up; a new request starts a new heal once it has closed');
      },
    },
  );

  // Started from the UI without search attributes: add them so the heal can still be found.
  if (workflowInfo().typedSearchAttributes.get(HA_KEYS.HaGroup) === undefined) {
    upsertSearchAttributes([
      { key: HA_KEYS.HaCluster, value: input.cluster },
      { key: HA_KEYS.HaNode, value: input.node },
      { key: HA_KEYS.HaGroup, value: input.group },
      { key: HA_KEYS.HaResource, value: input.resource },
      { key: HA_KEYS.HaOperation, value: 'heal' },
    ]);
  }

  const target = await (patched(PATCH_LOCAL_RESOLVE) ? cluster : clusterViaServer).resolveHealTarget.executeWithOptions(says(`look up ${input.group}/${input.resource} on ${input.node} in the configuration`), [{
    cluster: input.cluster,
    node: input.node,
    group: input.group,
    resource: input.resource,
  }]);
  // The first report (delivered with the start) says who asked; a continued run keeps the first run's.
  if (workflowInfo().typedSearchAttributes.get(HA_KEYS.HaTrigger) === undefined) tellTrigger(story, healTrigger(status.failures[0]?.source));
  const policy = target.healing;
  windowMs.value = policy.windowMs;
  const service = proxyActivities<ServiceActivities>({
    taskQueue: target.nodeTaskQueue,
    // Only this node's agent can take these: if it is gone, fail the attempt instead of waiting forever.
    scheduleToCloseTimeout: policy.startTimeoutMs + 60_000,
    startToCloseTimeout: policy.startTimeoutMs + 30_000,
    heartbeatTimeout: 10_000,
    retry: { maximumAttempts: 1 },
  });
  const ref = { group: input.group, resource: input.resource };
  const what = `${input.group}/${input.resource} on node ${input.node}`;

  for (;;) {
    if (!failurePending) {
      status.phase = 'watching';
      const remaining = watchRemaining(restarts, Date.now(), policy.windowMs);
      if (remaining > 0) await condition(() => failurePending, remaining);
      if (!failurePending) {
        status.phase = 'healed';
        await condition(allHandlersFinished);
        log.info('service healed and stable for the healing window', { restarts: restarts.length });
        tellOutcome(story, 'healed');
        return { outcome: 'healed', restarts: restarts.length, attempts: status.attempts };
      }
    }
    // Not while a request waits for an answer: it would be lost with this run (and it waits
    // for the attempt that continuing would postpone).
    if ((attemptsMade >= MAX_ATTEMPTS_PER_RUN || workflowInfo().continueAsNewSuggested) && allHandlersFinished()) {
      await continueAsNew<typeof healService>({ ...input, restarts: restartsInWindow(restarts, Date.now(), policy.windowMs) });
    }
    failurePending = false;
    // The newest report: a restart it asks for may already have happened (see restartService).
    const failureSeenAt = status.failures.at(-1)?.at;

    const decision = decideOnFailure(restarts, Date.now(), policy);
    restarts = restartsInWindow(restarts, Date.now(), policy.windowMs);
    status.restartsInWindow = restarts.length;
    if (decision.action === 'give-up') {
      status.phase = 'gave-up';
      await condition(allHandlersFinished); // let waiting requests answer 'gave-up' first
      tellOutcome(story, 'gave-up');
      if (patched(PATCH_ESCALATE)) {
        // Escalation: the controller fails the group over (if this node still owns it).
        const report = { group: input.group, resource: input.resource, node: input.node, at: Date.now(), detail: status.attempts.at(-1)?.detail ?? 'failed again' };
        const controllerHandle = getExternalWorkflowHandle(controllerWorkflowId(input.cluster));
        const send = async () => {
          const auth = patched(PATCH_SIGNED_GAVE_UP) ? await signHealGaveUp(input.cluster, report) : undefined;
          await (auth ? controllerHandle.signal(healGaveUpSignal, report, auth) : controllerHandle.signal(healGaveUpSignal, report));
        };
        await send().catch((err: unknown) => log.error('could not ask the controller for a failover', { err: err instanceof Error ? err.message : String(err) }));
      }
      throw ApplicationFailure.create({
        type: ERROR_TYPES.HealGaveUp,
        nonRetryable: true,
        message:
          `${what} failed again after ${decision.restarts} restart(s) within ${policy.windowMs}ms ` +
          `(healing.maxRestarts=${policy.maxRestarts}): gave up healing in place; fail the group over, or fix the service and start a new heal`,
        details: [status],
      });
    }
    if (decision.delayMs > 0) {
      status.phase = 'backing-off';
      await sleep(decision.delayMs, { summary: `back off ${shortDuration(decision.delayMs)} before restarting ${input.resource} on ${input.node}` });
    }

    const at = Date.now();
    restarts.push(at);
    status.restartsInWindow = restarts.length;
    try {
      status.phase = 'restarting';
      const { restarted } = await service.restartService.executeWithOptions(says(`restart ${input.resource} on ${input.node} (restart ${restarts.length} in the window)`), [{ ...ref, failureSeenAt }]);
      // Not restarted (already running again since the failure): it does not use up the budget.
      if (restarted === false) restarts.pop();
      status.phase = 'waiting-healthy';
      const healthy = await service.waitForHealthy.executeWithOptions(says(`wait until ${input.resource} on ${input.node} passes its check (up to ${shortDuration(policy.startTimeoutMs)})`), [{ ...ref, timeoutMs: policy.startTimeoutMs }]);
      status.attempts.push({ at, outcome: 'healthy', detail: healthy.detail });
    } catch (err) {
      if (isCancellation(err)) throw err;
      const cause = err instanceof Error && err.cause instanceof ApplicationFailure ? err.cause : undefined;
      if (cause?.type && FATAL.includes(cause.type)) throw err;
      const detail = cause?.message ?? (err instanceof Error ? err.message : String(err));
      log.warn('heal attempt failed', { detail });
      status.attempts.push({ at, outcome: 'failed', detail });
      failurePending = true;
    }
    attemptsMade++;
    if (status.attempts.length > 50) status.attempts.shift();
  }
}
