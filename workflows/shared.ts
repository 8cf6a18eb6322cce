/**
 * Names shared by workflows, activities, agents and the CLI. Workflow-safe: plain data and
 * `@temporalio/workflow` definitions only.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/** Failure type names (ApplicationFailure.type). Retrying does not fix any of these. */
export const ERROR_TYPES = {
  /** Workflow input (from the UI, the CLI or an agent) failed validation. Nothing was changed. */
  InvalidWorkflowInput: 'InvalidWorkflowInput',
  /** The workflow names a cluster other than the one whose queue it runs on. */
  WrongCluster: 'WrongCluster',
  UnknownNode: 'UnknownNode',
  UnknownGroup: 'UnknownGroup',
  UnknownResource: 'UnknownResource',
  /** The group does not list this node among those that may run it. */
  NodeNotInGroup: 'NodeNotInGroup',
  /** A service could not be started (command missing, unit not found, start failed). */
  ServiceStartFailed: 'ServiceStartFailed',
  /** A restarted service did not pass its check `rise` times within `startTimeout`. */
  ServiceNotHealthy: 'ServiceNotHealthy',
  /** healService used up its restarts (maxRestarts within window): escalate to failover. */
  HealGaveUp: 'HealGaveUp',
} as const;
export type ErrorType = (typeof ERROR_TYPES)[keyof typeof ERROR_TYPES];

/** Workflows of a cluster (and cluster-wide lookups) run on this queue; every agent polls it. */
export const clusterTaskQueue = (cluster: string): string => `haoscar.${cluster}`;
/** Activities that touch one node run on that node's own queue; only its agent polls it. */
export const nodeTaskQueue = (cluster: string, node: string): string => `haoscar.${cluster}.node.${node}`;

/**
 * One heal per group and resource at a time, whichever node reports: a group runs on one
 * node at a time, and two heals of the same service would fight over it.
 */
export const healWorkflowId = (cluster: string, group: string, resource: string): string =>
  `heal/${cluster}/${group}/${resource}`;

export interface ServiceFailure {
  /** When the failure was seen (ms since the epoch, the reporting node's clock). */
  at: number;
  /** What was seen, e.g. "process exited (signal SIGKILL)" or the failing check's detail. */
  detail: string;
  /** Who reported it: a node's monitor, the CLI, an operator. */
  source: string;
}

/** A monitor saw the service fail again (healthy → failing edge). */
export const serviceFailedSignal = defineSignal<[ServiceFailure]>('serviceFailed');

export interface HealAttempt {
  /** When the restart was begun (workflow time, ms since the epoch). */
  at: number;
  outcome: 'healthy' | 'failed';
  detail: string;
}

export interface HealStatus {
  phase: 'resolving' | 'backing-off' | 'restarting' | 'waiting-healthy' | 'watching' | 'healed' | 'gave-up';
  attempts: HealAttempt[];
  /** Restarts that count against maxRestarts (within the window). */
  restartsInWindow: number;
  failures: ServiceFailure[];
}
export const healStatusQuery = defineQuery<HealStatus>('healStatus');

/** What an operator's heal request (the `requestHeal` update) came to. */
export interface HealRequestOutcome {
  /** healthy: the service passed its check again; gave-up: the heal used up its restarts. */
  outcome: 'healthy' | 'gave-up';
  /** Attempts this heal has made so far (all requests together). */
  attempts: number;
  detail: string;
}
/**
 * An operator asks for a heal and gets an answer (the CLI uses this; monitors use the signal).
 * Its validator rejects a malformed failure report before anything is recorded.
 */
export const healRequestUpdate = defineUpdate<HealRequestOutcome, [ServiceFailure]>('requestHeal');
