/**
 * The node worker: this node's own task queue, with the activities that touch this node.
 * It runs no workflows, so it needs no workflow cache.
 */
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createServiceActivities, type ServiceActivityDeps } from '../activities/service.js';
import { nodeTaskQueue } from '../workflows/shared.js';

export async function createNodeWorker(opts: {
  connection: NativeConnection;
  namespace: string;
  cluster: string;
  deps: ServiceActivityDeps;
}): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: nodeTaskQueue(opts.cluster, opts.deps.node),
    activities: createServiceActivities(opts.deps),
    // A restart must not wait behind another node-local activity for long.
    maxConcurrentActivityTaskExecutions: 20,
    shutdownGraceTime: '5s',
  });
}
