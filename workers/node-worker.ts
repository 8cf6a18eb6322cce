/**
 * The node worker: this node's own task queue, with the activities that touch this node
 * (its services, what it runs under which epoch). It runs no workflows, so it needs no
 * workflow cache.
 */
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createOwnershipActivities, type OwnershipActivityDeps } from '../activities/ownership.js';
import { createServiceActivities, type ServiceActivityDeps } from '../activities/service.js';
import { createSyncActivities, type SyncActivityDeps } from '../activities/sync.js';
import { createCloneActivities, type CloneActivityDeps } from '../activities/clone.js';
import { createRecipeActivities, type RecipeActivityDeps } from '../activities/recipe.js';
import { nodeTaskQueue } from '../workflows/shared.js';

export async function createNodeWorker(opts: {
  connection: NativeConnection;
  namespace: string;
  cluster: string;
  /** Whose queue this is. */
  node: string;
  /**
   * Absent in a rescue worker (`haoscar rescue`, src/rescue/rescue-worker.ts), which serves only
   * the clone's steps: with no service, ownership or sync activities on its queue, no group can
   * be started, verified or held through it.
   */
  service?: ServiceActivityDeps;
  /** Absent in tests that only heal. */
  ownership?: OwnershipActivityDeps;
  sync?: SyncActivityDeps;
  /** A clone's steps when this node is its target (docs/clone.md). */
  clone?: CloneActivityDeps;
  /** `image recipe`'s inventory of this node (docs/clone.md#unattended-install-recipes). */
  recipe?: RecipeActivityDeps;
}): Promise<Worker> {
  return Worker.create({
    connection: opts.connection,
    namespace: opts.namespace,
    taskQueue: nodeTaskQueue(opts.cluster, opts.node),
    activities: { ...(opts.service ? createServiceActivities(opts.service) : {}), ...(opts.ownership ? createOwnershipActivities(opts.ownership) : {}), ...(opts.sync ? createSyncActivities(opts.sync) : {}), ...(opts.clone ? createCloneActivities(opts.clone) : {}), ...(opts.recipe ? createRecipeActivities(opts.recipe) : {}) },
    // A restart must not wait behind another node-local activity for long.
    maxConcurrentActivityTaskExecutions: 20,
    // A resync's progress (heartbeat details) reaches the server at least once a second, for
    // the CLI's progress bar; by default it would be held back to 80% of the heartbeat timeout.
    maxHeartbeatThrottleInterval: '1s',
    defaultHeartbeatThrottleInterval: '1s',
    shutdownGraceTime: '5s',
  });
}
