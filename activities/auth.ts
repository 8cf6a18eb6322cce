/**
 * The two ends of authenticated messages through Temporal (src/auth/messages.ts, docs/security.md).
 *
 * - On the workflow worker, as LOCAL activities of the failover and resync workflows
 *   ({@link createAuthActivities}): a fresh nonce for a ping, the check of a node's answer, and
 *   the MAC on an order. They refuse to run as regular activities: anyone with Temporal access
 *   can schedule an activity of any name on the cluster's queue, and a signing activity that
 *   answered them would sign their orders. A local activity runs only inside a workflow task of
 *   this worker, i.e. for the workflow code this worker runs; and the workflow ID and run ID it
 *   signs are the ones Temporal gives it, not ones from its input.
 * - On a node ({@link createNodeAuth}): the MAC on its answer to a ping, and the check of an
 *   order before anything is done (a refused order is `Unauthenticated`, not retryable).
 *
 * `key` undefined: a one-node cluster, which loads no secret (it has no peer to take a group
 * over, and nothing to fail over to): nothing is signed and nothing is checked.
 */
import { ApplicationFailure, Context, type Info } from '@temporalio/activity';
import type { z } from 'zod';
import type { Config } from '../src/config/types.js';
import type { Logger } from '../src/log.js';
import { healGaveUpMac, newNonce, orderMac, pingAnswerMac, verifyControllerReport, verifyControllerUpdate, verifyHealGaveUp, verifyOrder, verifyPingAnswer, withoutAuth, withoutMac, type MessageKey } from '../src/auth/messages.js';
import { healGaveUpAuthSchema, reportAuthSchema } from '../workflows/inputs.js';
import { controllerWorkflowId, ERROR_TYPES, healWorkflowId } from '../workflows/shared.js';

export interface AuthActivityDeps {
  config: Config;
  /** The message key (deriveMessageKey of the cluster secret); undefined in a one-node cluster. */
  key: MessageKey | undefined;
}

/** The outcome of checking a node's answer: a failed one says why (for the workflow's log). */
export type AnswerCheck = { ok: true; signed: boolean } | { ok: false; why: string };

function unauthenticated(message: string): ApplicationFailure {
  return ApplicationFailure.create({ type: ERROR_TYPES.Unauthenticated, nonRetryable: true, message });
}

/** The activity's info, when it runs as a local activity of a workflow. @throws Unauthenticated otherwise. */
function localInWorkflow(what: string): Info & { workflowExecution: { workflowId: string; runId: string } } {
  const info = Context.current().info;
  if (!info.isLocal || info.workflowExecution === undefined) {
    throw unauthenticated(`${what} runs only as a local activity of a workflow on this worker; it was scheduled as a regular activity${info.workflowExecution ? ` by workflow ${info.workflowExecution.workflowId}` : ''} and is refused`);
  }
  return info as Info & { workflowExecution: { workflowId: string; runId: string } };
}

/**
 * The workflow that scheduled this activity. The report check is the one auth activity that runs
 * as a regular activity (workflows/auth.ts says why): it only says whether a MAC verifies, which
 * helps nobody forge one, and it is bound to the workflow Temporal says scheduled it.
 */
function scheduledByWorkflow(what: string): Info & { workflowExecution: { workflowId: string; runId: string } } {
  const info = Context.current().info;
  if (info.workflowExecution === undefined) throw unauthenticated(`${what} runs only for a workflow; it was not scheduled by one and is refused`);
  return info as Info & { workflowExecution: { workflowId: string; runId: string } };
}

export function createAuthActivities(deps: AuthActivityDeps) {
  const { config, key } = deps;
  const checkCluster = (cluster: string) => {
    if (cluster !== config.cluster) throw ApplicationFailure.create({ type: ERROR_TYPES.WrongCluster, nonRetryable: true, message: `this workflow names cluster '${cluster}' but runs on the queue of cluster '${config.cluster}'` });
  };

  /**
   * What the checks of a report to the controller share: the controller that scheduled the check
   * (as Temporal says), the key, and the report's MAC parsed with `schema`; or the answer at once
   * (`refused`): no secret (a one-node cluster: unsigned, accepted), another workflow than the
   * controller, no MAC (`sentBy` names who would have signed it), or a malformed one.
   */
  function reportToCheck<A>(what: string, req: { cluster: string; auth: unknown }, schema: z.ZodType<A>, sentBy: string):
    { refused: AnswerCheck } | { key: MessageKey; controllerId: string; auth: A } {
    const info = scheduledByWorkflow(what);
    checkCluster(req.cluster);
    if (key === undefined) return { refused: { ok: true, signed: false } };
    const controllerId = info.workflowExecution.workflowId;
    if (controllerId !== controllerWorkflowId(req.cluster)) return { refused: { ok: false, why: `workflow ${controllerId} is not the controller of cluster '${req.cluster}'` } };
    if (req.auth === undefined || req.auth === null) return { refused: { ok: false, why: `it carries no MAC (sent by someone without the cluster secret, or by ${sentBy} older than this worker)` } };
    const auth = schema.safeParse(req.auth);
    if (!auth.success) return { refused: { ok: false, why: `its MAC is malformed (${auth.error.issues.map((i) => `${i.path.join('.') || 'auth'}: ${i.message}`).join('; ')})` } };
    return { key, controllerId, auth: auth.data };
  }

  /** checkControllerReport's answer for one report (`what`: the activity that asks). */
  function checkReport(what: string, req: { cluster: string; signal: string; sender: string; report: unknown; auth: unknown }): AnswerCheck {
    const got = reportToCheck(what, req, reportAuthSchema, 'an agent');
    if ('refused' in got) return got.refused;
    const { incarnation, counter, mac } = got.auth;
    const ok = verifyControllerReport(got.key, { cluster: req.cluster, controllerId: got.controllerId, signal: req.signal, sender: req.sender, incarnation, counter, report: req.report }, mac);
    return ok ? { ok: true, signed: true } : { ok: false, why: `its MAC does not verify for this controller, signal, node ${req.sender}, incarnation, counter and content (another secret, or a changed report)` };
  }

  return {
    /** A fresh, unpredictable nonce for one ping (recorded in the history once it exists, never before). */
    async pingNonce(): Promise<string> {
      localInWorkflow('pingNonce');
      return newNonce();
    },

    /**
     * Whether `answer` (a node's answer to the ping that carried `nonce`) bears that node's MAC
     * over the nonce, this workflow's ID and the answer's content.
     */
    async checkPingAnswer(req: { cluster: string; node: string; nonce: string; answer: unknown }): Promise<AnswerCheck> {
      const info = localInWorkflow('checkPingAnswer');
      checkCluster(req.cluster);
      if (key === undefined) return { ok: true, signed: false };
      if (typeof req.answer !== 'object' || req.answer === null) return { ok: false, why: 'the answer is not an object' };
      const answer = req.answer as { mac?: unknown; node?: unknown };
      if (answer.mac === undefined) return { ok: false, why: `the answer carries no MAC (an agent older than this worker, or not node ${req.node}'s agent)` };
      if (answer.node !== req.node) return { ok: false, why: `the answer names node ${String(answer.node)}, not ${req.node}` };
      const ok = verifyPingAnswer(key, { cluster: req.cluster, node: req.node, nonce: req.nonce, workflowId: info.workflowExecution.workflowId, answer: withoutMac(answer) }, answer.mac);
      return ok ? { ok: true, signed: true } : { ok: false, why: `its MAC does not verify under the cluster secret (not node ${req.node}'s agent, a replayed answer, or another secret on that node)` };
    },

    /**
     * Whether an update the controller was sent (`update`, under `updateId`, as the controller's
     * workflow code read them from Temporal) carries a valid MAC for this controller: asked by
     * the controller's update handler before the update changes anything. The controller's
     * workflow ID is the one Temporal gives this activity, not one from its input. A refused
     * update says why (for the controller's log and the sender's error).
     */
    async checkControllerUpdate(req: { cluster: string; update: string; updateId: string; request: unknown }): Promise<AnswerCheck> {
      const info = localInWorkflow('checkControllerUpdate');
      checkCluster(req.cluster);
      if (key === undefined) return { ok: true, signed: false };
      const controllerId = info.workflowExecution.workflowId;
      if (controllerId !== controllerWorkflowId(req.cluster)) return { ok: false, why: `workflow ${controllerId} is not the controller of cluster '${req.cluster}'` };
      if (typeof req.request !== 'object' || req.request === null) return { ok: false, why: 'the request is not an object' };
      const request = req.request as { auth?: unknown };
      const auth = request.auth as { runId?: unknown; mac?: unknown } | undefined;
      if (typeof auth !== 'object' || auth === null || auth.mac === undefined) return { ok: false, why: 'it carries no MAC (sent by someone without the cluster secret, a sender older than this worker, or `haoscar confirm-down` without the secret file)' };
      const runId = typeof auth.runId === 'string' ? auth.runId : undefined;
      const ok = verifyControllerUpdate(key, { cluster: req.cluster, controllerId, update: req.update, updateId: req.updateId, runId, request: withoutAuth(request) }, auth.mac);
      return ok ? { ok: true, signed: true } : { ok: false, why: 'its MAC does not verify for this controller, update name and ID, sender and content (another secret, a replayed update under a new ID, or a changed request)' };
    },

    /**
     * Whether an agent's report to the controller (`signal`: nodeEdge, nodeAnnounce, groupLost)
     * carries `sender`'s MAC (its second argument, `auth`) for this controller, the signal, the
     * sender's incarnation and counter, and the report's content. Run by the controller before the
     * report changes anything; the controller's workflow ID is the one Temporal gives this
     * activity. Whether the (incarnation, counter) is newer than the sender's newest is the
     * controller's to decide (workflows/report-plan.ts). A refused report says why.
     */
    async checkControllerReport(req: { cluster: string; signal: string; sender: string; report: unknown; auth: unknown }): Promise<AnswerCheck> {
      return checkReport('checkControllerReport', req);
    },

    /**
     * checkControllerReport for several reports in one activity: the controller checks together
     * the reports that queued up while it checked the one before (when nodes die, every survivor
     * reports each of them). One answer per report, in their order.
     */
    async checkControllerReports(req: { cluster: string; reports: { signal: string; sender: string; report: unknown; auth: unknown }[] }): Promise<AnswerCheck[]> {
      return req.reports.map((r) => checkReport('checkControllerReports', { cluster: req.cluster, ...r }));
    },

    /**
     * The MAC on a heal's "gave up" report to the controller, for the heal workflow that asks (its
     * ID as Temporal gives it: a workflow cannot sign for another heal). Undefined without a
     * secret (a one-node cluster).
     */
    async signHealGaveUp(req: { cluster: string; report: unknown }): Promise<{ healId: string; mac: string } | undefined> {
      const info = localInWorkflow('signHealGaveUp');
      checkCluster(req.cluster);
      if (key === undefined) return undefined;
      const healId = info.workflowExecution.workflowId;
      return { healId, mac: healGaveUpMac(key, { cluster: req.cluster, controllerId: controllerWorkflowId(req.cluster), healId, report: req.report }) };
    },

    /**
     * Whether a heal's "gave up" report carries a valid MAC of the workflow worker for the heal of
     * its group and resource, sent to this controller. An ordinary activity, as checkControllerReport.
     */
    async checkHealGaveUp(req: { cluster: string; report: { group: string; resource: string }; auth: unknown }): Promise<AnswerCheck> {
      const got = reportToCheck('checkHealGaveUp', req, healGaveUpAuthSchema, 'a heal');
      if ('refused' in got) return got.refused;
      const expected = healWorkflowId(req.cluster, req.report.group, req.report.resource);
      if (got.auth.healId !== expected) return { ok: false, why: `it is signed for heal ${got.auth.healId}, not ${expected}, the heal of ${req.report.group}/${req.report.resource}` };
      const ok = verifyHealGaveUp(got.key, { cluster: req.cluster, controllerId: got.controllerId, healId: got.auth.healId, report: req.report }, got.auth.mac);
      return ok ? { ok: true, signed: true } : { ok: false, why: 'its MAC does not verify for this controller, heal and content (another secret, or a changed report)' };
    },

    /** The MAC on an order for `node` (`action`: the node activity's name), bound to this workflow run. */
    async signOrder(req: { cluster: string; node: string; action: string; order: Record<string, unknown> }): Promise<{ mac?: string }> {
      const info = localInWorkflow('signOrder');
      checkCluster(req.cluster);
      if (key === undefined) return {};
      const { workflowId, runId } = info.workflowExecution;
      return { mac: orderMac(key, { cluster: req.cluster, node: req.node, action: req.action, workflowId, runId, order: req.order }) };
    },
  };
}

export type AuthActivities = ReturnType<typeof createAuthActivities>;

/** A node's side: signing its answers, checking the orders it is given. */
export interface NodeAuth {
  /** The answer with its MAC, bound to `nonce` and the asking workflow (unchanged without a nonce: an older workflow's ping). */
  signAnswer<T extends object>(answer: T, nonce: string | undefined): T & { mac?: string };
  /**
   * Checks the order this activity was given against its MAC, the activity's type, this node
   * and the workflow run Temporal says scheduled it. @throws Unauthenticated (not retryable),
   * logged loudly, when it does not verify; nothing has been done then.
   */
  checkOrder(order: { mac?: unknown }): void;
}

export function createNodeAuth(opts: { cluster: string; node: string; key: MessageKey | undefined; logger: Logger }): NodeAuth {
  const { cluster, node, key, logger } = opts;
  return {
    signAnswer(answer, nonce) {
      if (key === undefined || nonce === undefined) return answer;
      const workflowId = Context.current().info.workflowExecution?.workflowId ?? '';
      return { ...answer, mac: pingAnswerMac(key, { cluster, node, nonce, workflowId, answer }) };
    },
    checkOrder(order) {
      if (key === undefined) return;
      const info = Context.current().info;
      const run = info.workflowExecution;
      const why = order.mac === undefined ? 'it carries no MAC'
        : run === undefined ? 'it was not scheduled by a workflow'
        : verifyOrder(key, { cluster, node, action: info.activityType, workflowId: run.workflowId, runId: run.runId, order: withoutMac(order) }, order.mac) ? undefined
        : 'its MAC does not verify for this node, action, workflow run and content';
      if (why === undefined) return;
      const fields = { action: info.activityType, workflowId: run?.workflowId, runId: run?.runId, workflowType: info.workflowType, order: withoutMac(order) };
      logger.error(fields, `REFUSED an order not signed by this cluster's workflow worker (${why}): someone with access to Temporal, a worker with another secret, or a workflow older than this agent`);
      throw unauthenticated(`node ${node} refused ${info.activityType}: ${why}; nothing was done (docs/security.md)`);
    },
  };
}
