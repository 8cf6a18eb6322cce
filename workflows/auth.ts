/**
 * The workflow side of authenticated messages (docs/security.md). Workflow code cannot hold the
 * cluster secret (its inputs, results and local activities' results are in the history, which
 * anyone with Temporal access reads), so it asks LOCAL activities of its own worker
 * (activities/auth.ts) for a ping's nonce, for the check of an answer, and for the MAC on an
 * order; only MACs and nonces are recorded.
 */
import { log, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { AuthActivities } from '../activities/auth.js';
import { ERROR_TYPES, type HealGaveUpReport } from './shared.js';

const auth = proxyLocalActivities<AuthActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '100ms', maximumInterval: '2 seconds', maximumAttempts: 20, nonRetryableErrorTypes: [ERROR_TYPES.Unauthenticated, ERROR_TYPES.WrongCluster] },
});

/**
 * The check of an agent's report is an ordinary activity, not a local one: it runs in a signal's
 * handler, and the report is applied after it. A local activity's result is a marker that a
 * replay resolves at another point of the workflow task than the run did: an update taken in the
 * task after it was then seen before the report's effect (the main loop cancelled a timer before
 * the update was accepted), a nondeterminism that stopped the controller's workflow task and with
 * it every lease renewal (found by the chaos suite; test/workflow/controller-report-replay.test.ts).
 * An ordinary activity's result is an event of its own, and the workflow task after it sees it
 * in the same order on every replay. It costs a round trip through Temporal per report.
 */
const reportCheck = proxyActivities<Pick<AuthActivities, 'checkControllerReport' | 'checkControllerReports' | 'checkHealGaveUp'>>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '100ms', maximumInterval: '2 seconds', maximumAttempts: 20, nonRetryableErrorTypes: [ERROR_TYPES.Unauthenticated, ERROR_TYPES.WrongCluster] },
});

/** The node activities that are orders (they change what a node runs or holds, or its data). */
export type OrderAction = 'startResource' | 'stopResource' | 'stopGroup' | 'fence' | 'resyncGroup' | 'cloneCopy' | 'cloneFixups' | 'imagePrepare' | 'imageCaptureCopy' | 'imageSeal' | 'cloneBootLoader';

/**
 * `order` with the worker's MAC for `node` and `action` (bound to this workflow run there);
 * `order` as it is when `authenticated` is false (histories from before the patch) or the
 * cluster has no secret (one node).
 */
export async function signed<T extends Record<string, unknown>>(authenticated: boolean, cluster: string, node: string, action: OrderAction, order: T): Promise<T & { mac?: string }> {
  if (!authenticated) return order;
  const { mac } = await auth.signOrder.executeWithOptions({ summary: `sign the ${action} order for ${node} with the cluster secret` }, [{ cluster, node, action, order }]);
  return mac === undefined ? order : { ...order, mac };
}

/** A fresh nonce for one ping, made by the worker (unpredictable; in the history only from now on). */
export function pingNonce(): Promise<string> {
  return auth.pingNonce.executeWithOptions({ summary: 'a fresh nonce for the ping' }, []);
}

/**
 * The answer if it is `node`'s own (its MAC over `nonce`, this workflow and its content
 * verifies); undefined otherwise, logged loudly: an answer that does not verify counts as no
 * answer (an impostor polling the node's queue must not keep a dead node's group there).
 */
export async function authenticAnswer<T extends object>(cluster: string, node: string, nonce: string, answer: T | undefined): Promise<T | undefined> {
  if (answer === undefined) return undefined;
  const check = await auth.checkPingAnswer.executeWithOptions({ summary: `check that ${node}'s answer carries its MAC` }, [{ cluster, node, nonce, answer }]);
  if (check.ok) return answer;
  log.error(`IGNORED an answer to "are you there?" on node ${node}'s queue that is not authenticated: ${check.why}; counted as no answer (docs/security.md)`, { node });
  return undefined;
}

/**
 * Whether an update the controller was sent carries a valid MAC (activities/auth.ts
 * checkControllerUpdate): asked in the update's handler, before it changes anything.
 */
export function checkControllerUpdate(cluster: string, update: string, updateId: string, request: unknown): Promise<{ ok: true; signed: boolean } | { ok: false; why: string }> {
  return auth.checkControllerUpdate({ cluster, update, updateId, request });
}

/**
 * Whether an agent's report (a signal) carries a valid MAC of `sender` (activities/auth.ts
 * checkControllerReport): asked by the controller before the report changes anything, in an
 * ordinary activity (reportCheck above says why).
 */
export function checkControllerReport(cluster: string, signal: string, sender: string, report: unknown, reportAuth: unknown): Promise<{ ok: true; signed: boolean } | { ok: false; why: string }> {
  return reportCheck.checkControllerReport.executeWithOptions({ summary: `check the MAC of ${sender}'s ${signal} report` }, [{ cluster, signal, sender, report, auth: reportAuth }]);
}

/**
 * checkControllerReport for several reports in one ordinary activity: one answer per report, in
 * their order (activities/auth.ts checkControllerReports).
 */
export function checkControllerReports(cluster: string, reports: { signal: string; sender: string; report: unknown; auth: unknown }[]): Promise<({ ok: true; signed: boolean } | { ok: false; why: string })[]> {
  return reportCheck.checkControllerReports.executeWithOptions({ summary: `check the MACs of ${reports.length} reports (${[...new Set(reports.map((r) => r.sender))].join(', ')})` }, [{ cluster, reports }]);
}

/**
 * Whether a heal's "gave up" report carries the workflow worker's MAC for the heal of its group and
 * resource (activities/auth.ts checkHealGaveUp): asked by the controller before it acts on it, in an
 * ordinary activity (reportCheck above says why).
 */
export function checkHealGaveUp(cluster: string, report: HealGaveUpReport, reportAuth: unknown): Promise<{ ok: true; signed: boolean } | { ok: false; why: string }> {
  return reportCheck.checkHealGaveUp.executeWithOptions({ summary: `check the MAC of the heal report on ${report.group}/${report.resource}` }, [{ cluster, report, auth: reportAuth }]);
}

/** The workflow worker's MAC on this heal's "gave up" report (undefined in a one-node cluster). */
export function signHealGaveUp(cluster: string, report: unknown): Promise<{ healId: string; mac: string } | undefined> {
  return auth.signHealGaveUp.executeWithOptions({ summary: 'sign the report to the controller with the cluster secret' }, [{ cluster, report }]);
}
