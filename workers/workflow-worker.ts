/**
 * The workflow worker: the cluster's shared queue, running HA-OSCAR's workflows and the
 * cluster-wide lookup activities. Every agent runs one, so workflows go on when a node dies.
 */
import { Worker, type NativeConnection, type WorkflowBundleOption } from '@temporalio/worker';
import { createClusterActivities } from '../activities/cluster.js';
import type { Config } from '../src/config/types.js';
import { clusterTaskQueue } from '../workflows/shared.js';
import { workflowsPath } from './workflow-bundle.js';

export async function createWorkflowWorker(opts: {
  connection: NativeConnection;
  config: Config;
  /** A prebuilt bundle (tests and benchmarks share one); default: bundle workflows/ now. */
  workflowBundle?: WorkflowBundleOption;
}): Promise<Worker> {
  const { config } = opts;
  return Worker.create({
    connection: opts.connection,
    namespace: config.temporal.namespace,
    taskQueue: clusterTaskQueue(config.cluster),
    ...(opts.workflowBundle ? { workflowBundle: opts.workflowBundle } : { workflowsPath: workflowsPath() }),
    activities: createClusterActivities({ config }),
    // Few workflows run at once in a cluster (a controller, a few heals): a small sticky cache
    // bounds the agent's memory and still keeps every running workflow cached.
    maxCachedWorkflows: config.agent.maxCachedWorkflows,
    shutdownGraceTime: '5s',
  });
}
