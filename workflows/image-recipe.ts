/**
 * imageRecipe: the facts of `haoscar image recipe NODE` (the Kickstart role, docs/clone.md):
 * NODE's own agent collects the inventory of its system on its queue (activities/recipe.ts),
 * and, when a format is asked for, the pure generators (src/recipe/) write the unattended-install
 * file. Only reads: startable from the UI, and any number may run.
 */
import { ApplicationFailure, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { ClusterActivities } from '../activities/cluster.js';
import type { RecipeActivities } from '../activities/recipe.js';
import { inventorySchema, type Inventory } from './recipe/inventory.js';
import { generateRecipe, joinCommand, type Recipe, type RecipeOptions } from './recipe/recipe.js';
import { describeIssues, imageRecipeInputSchema, parseWorkflowInput } from './inputs.js';
import { ERROR_TYPES, nodeTaskQueue } from './shared.js';
import { says } from './story.js';

export interface ImageRecipeResult {
  node: string;
  inventory: Inventory;
  /** What the administrator runs on the node, once the new machine has booted (NEW: its address). */
  joinCommand: string;
  /** Absent when no format was asked for. */
  recipe?: Recipe;
}

const local = proxyLocalActivities<ClusterActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200ms', maximumInterval: '2 seconds', maximumAttempts: 10, nonRetryableErrorTypes: [ERROR_TYPES.WrongCluster] },
});

export async function imageRecipe(rawInput: unknown): Promise<ImageRecipeResult> {
  const input = parseWorkflowInput(imageRecipeInputSchema, rawInput, 'imageRecipe');
  const facts = await local.describeCloneFacts.executeWithOptions({ summary: 'look up the node and its addresses' }, [{ cluster: input.cluster }]);
  const node = facts.nodes.find((n) => n.name === input.node);
  if (!node) throw ApplicationFailure.create({ type: ERROR_TYPES.UnknownNode, nonRetryable: true, message: `unknown node '${input.node}' (known: ${facts.nodes.map((n) => n.name).join(', ')})` });
  const on = proxyActivities<RecipeActivities>({
    taskQueue: nodeTaskQueue(input.cluster, input.node),
    // Only the node itself can describe its system: a node whose agent is down fails the recipe.
    scheduleToCloseTimeout: '10 minutes',
    startToCloseTimeout: '2 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: [ERROR_TYPES.RecipeUnsupported] },
  });
  const collected = await on.collectRecipeFacts.executeWithOptions(says(`${input.node} describes its system: distribution, repositories, packages, file systems`), [{ root: input.root }]);
  const parsed = inventorySchema.safeParse(collected.inventory);
  if (!parsed.success) {
    throw ApplicationFailure.create({ type: ERROR_TYPES.RecipeUnsupported, nonRetryable: true, message: `${input.node}'s inventory is not valid: ${describeIssues(parsed.error, 'inventory').join('; ')}` });
  }
  const options: RecipeOptions = {
    source: { node: node.name, addresses: node.addresses },
    ...(collected.joinKey ? { joinKey: collected.joinKey } : {}),
    joinFiles: collected.joinFiles,
    identityFile: collected.identityFile,
    ...(input.packageUrl ? { packageUrl: input.packageUrl } : {}),
    ...(input.hostname ? { hostname: input.hostname } : {}),
    ...(input.rootPasswordHash ? { rootPasswordHash: input.rootPasswordHash } : {}),
  };
  return {
    node: node.name,
    inventory: parsed.data,
    joinCommand: joinCommand(options),
    ...(input.format ? { recipe: generateRecipe(input.format, parsed.data, options) } : {}),
  };
}
