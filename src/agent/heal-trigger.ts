/**
 * Turns a monitor's failing edge into a heal: signal-with-start of healService. If a heal of
 * this service is already running, the signal reaches it (and counts against its budget);
 * otherwise a new one starts with the failure as its first signal.
 */
import { WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import type { Logger } from '../log.js';
import type { healService } from '../../workflows/heal-service.js';
import { HA_KEYS } from '../../workflows/search-attributes.js';
import { clusterTaskQueue, healWorkflowId, serviceFailedSignal, type ServiceFailure } from '../../workflows/shared.js';

export interface HealRequest {
  cluster: string;
  node: string;
  group: string;
  resource: string;
  failure: ServiceFailure;
}

/** Starts (or signals) the heal. @returns the workflow ID and the run it reached. */
export async function requestHeal(client: Client, req: HealRequest): Promise<{ workflowId: string; runId: string }> {
  const workflowId = healWorkflowId(req.cluster, req.group, req.resource);
  const handle = await client.workflow.signalWithStart<typeof healService, [ServiceFailure]>('healService', {
    workflowId,
    taskQueue: clusterTaskQueue(req.cluster),
    args: [{ cluster: req.cluster, node: req.node, group: req.group, resource: req.resource, reason: req.failure.detail }],
    signal: serviceFailedSignal,
    signalArgs: [req.failure],
    // A closed heal (healed or gave up) may be followed by a new one for a new failure.
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
    typedSearchAttributes: [
      { key: HA_KEYS.HaCluster, value: req.cluster },
      { key: HA_KEYS.HaNode, value: req.node },
      { key: HA_KEYS.HaGroup, value: req.group },
      { key: HA_KEYS.HaResource, value: req.resource },
      { key: HA_KEYS.HaOperation, value: 'heal' },
    ],
    memo: { cluster: req.cluster, node: req.node, group: req.group, resource: req.resource, trigger: req.failure.source, detail: req.failure.detail },
  });
  return { workflowId, runId: handle.signaledRunId };
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
): Promise<boolean> {
  let delay = 200;
  for (let attempt = 1; stillNeeded(); attempt++) {
    try {
      const { workflowId, runId } = await requestHeal(client, req);
      logger.info({ workflowId, runId, group: req.group, resource: req.resource, attempt }, 'heal requested');
      return true;
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      logger.error(
        { err: message, group: req.group, resource: req.resource, attempt, retryInMs: delay },
        'cannot request a heal from Temporal; the service stays down until Temporal answers (retrying)',
      );
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
  logger.info({ group: req.group, resource: req.resource }, 'heal request no longer needed (the service recovered or the agent is stopping)');
  return false;
}
