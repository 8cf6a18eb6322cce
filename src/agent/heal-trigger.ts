/**
 * Asking for a heal. A running heal of the service takes the new failure (it counts against
 * its budget); otherwise a new heal starts with the failure as its first request.
 */
import { WithStartWorkflowOperation, WorkflowIdConflictPolicy, WorkflowUpdateStage, type Client } from '@temporalio/client';
import type { HealServiceInput } from '../../workflows/inputs.js';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import type { healService } from '../../workflows/heal-service.js';
import { HA_KEYS } from '../../workflows/search-attributes.js';
import {
  clusterTaskQueue,
  healRequestUpdate,
  healWorkflowId,
  serviceFailedSignal,
  type HealRequestOutcome,
  type ServiceFailure,
} from '../../workflows/shared.js';

export interface HealRequest {
  cluster: string;
  node: string;
  group: string;
  resource: string;
  failure: ServiceFailure;
}

/** How a heal is started, whichever way it is asked for (signal or update with start). */
function healStartOptions(req: HealRequest) {
  return {
    workflowId: healWorkflowId(req.cluster, req.group, req.resource),
    taskQueue: clusterTaskQueue(req.cluster),
    args: [{ cluster: req.cluster, node: req.node, group: req.group, resource: req.resource, reason: req.failure.detail }] as [HealServiceInput],
    // A running heal takes the new failure; a closed one (healed or gave up) may be followed
    // by a new one for a new failure.
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    typedSearchAttributes: [
      { key: HA_KEYS.HaCluster, value: req.cluster },
      { key: HA_KEYS.HaNode, value: req.node },
      { key: HA_KEYS.HaGroup, value: req.group },
      { key: HA_KEYS.HaResource, value: req.resource },
      { key: HA_KEYS.HaOperation, value: 'heal' },
    ],
    memo: { cluster: req.cluster, node: req.node, group: req.group, resource: req.resource, trigger: req.failure.source, detail: req.failure.detail },
    // What the Temporal UI shows for it (the SDK's user metadata).
    staticSummary: `heal ${req.group}/${req.resource} on ${req.node} (${req.failure.source})`,
    staticDetails: req.failure.detail,
  };
}

/**
 * A monitor's report: signal-with-start, which needs no answer and works whatever the heal is
 * doing. @returns the workflow ID and the run it reached.
 */
export async function requestHeal(client: Client, req: HealRequest): Promise<{ workflowId: string; runId: string }> {
  const options = healStartOptions(req);
  const handle = await client.workflow.signalWithStart<typeof healService, [ServiceFailure]>('healService', {
    ...options,
    signal: serviceFailedSignal,
    signalArgs: [req.failure],
  });
  return { workflowId: options.workflowId, runId: handle.signaledRunId };
}

/**
 * An operator's request: update-with-start, so that the request is validated by the workflow
 * (a rejected one leaves no trace in the history) and answered. With `wait`, the answer is
 * the outcome of the heal attempts it caused; otherwise it returns once the heal accepted it.
 * @throws WorkflowUpdateFailedError when the workflow rejects the request.
 */
export async function requestHealAndAnswer(
  client: Client,
  req: HealRequest,
  wait: boolean,
): Promise<{ workflowId: string; outcome?: HealRequestOutcome }> {
  const options = healStartOptions(req);
  const startWorkflowOperation = new WithStartWorkflowOperation<typeof healService>('healService', options);
  if (wait) {
    const outcome = await client.workflow.executeUpdateWithStart(healRequestUpdate, { args: [req.failure], startWorkflowOperation });
    return { workflowId: options.workflowId, outcome };
  }
  await client.workflow.startUpdateWithStart(healRequestUpdate, { args: [req.failure], waitForStage: WorkflowUpdateStage.ACCEPTED, startWorkflowOperation });
  return { workflowId: options.workflowId };
}

/**
 * requestHeal, retried until it is delivered or no longer needed: a Temporal outage must not
 * lose a failure report. `stillNeeded` is asked before each try (the service may have
 * recovered, or the agent be stopping). @returns whether the heal was requested.
 */
export async function requestHealUntilDelivered(
  client: Client,
  req: HealRequest,
  logger: Logger,
  stillNeeded: () => boolean,
  signal?: AbortSignal,
): Promise<boolean> {
  let delay = 200;
  const needed = () => stillNeeded() && !signal?.aborted;
  for (let attempt = 1; needed(); attempt++) {
    try {
      const request = () => requestHeal(client, req);
      const { workflowId, runId } = await (signal ? client.withAbortSignal(signal, request) : request());
      logger.info({ workflowId, runId, group: req.group, resource: req.resource, attempt }, 'heal requested');
      return true;
    } catch (err) {
      if (!needed()) break;
      const message = err instanceof Error ? err.message : String(err);
      logger.error(
        { err: message, group: req.group, resource: req.resource, attempt, retryInMs: delay },
        'cannot request a heal from Temporal; the service stays down until Temporal answers (retrying)',
      );
      await sleep(delay, undefined, { signal }).catch(() => undefined);
      delay = Math.min(delay * 2, 5000);
    }
  }
  logger.info({ group: req.group, resource: req.resource }, 'heal request no longer needed (the service recovered or the agent is stopping)');
  return false;
}
