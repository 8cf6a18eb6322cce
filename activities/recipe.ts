/**
 * `haoscar image recipe`'s facts, on the node the recipe reproduces (its own queue): the
 * inventory of its system (src/recipe/collect.ts), and the public half of its sync key, which
 * the recipe authorizes on the new machine so that this node can push the configuration and the
 * cluster secret to it later (docs/clone.md#unattended-install-recipes). Only reads.
 */
import { readFile } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/activity';
import type { Exec } from '../src/exec.js';
import type { Logger } from '../src/log.js';
import { collectInventory, InventoryError } from '../src/recipe/collect.js';
import type { Inventory } from '../workflows/recipe/inventory.js';
import { ERROR_TYPES } from '../workflows/shared.js';

export interface RecipeActivityDeps {
  node: string;
  exec: Exec;
  logger: Logger;
  /** sync.ssh.identityFile: its `.pub` is the join key, and it is what the push uses. */
  identityFile: string;
  /** The files the new node needs from this one, pushed by the join: the configuration, the cluster secret, the sync key. */
  joinFiles: string[];
}

export interface RecipeFacts {
  inventory: Inventory;
  /** The `.pub` of the sync key, one line; absent when there is none. */
  joinKey?: string;
  identityFile: string;
  joinFiles: string[];
}

export function createRecipeActivities(deps: RecipeActivityDeps) {
  return {
    /** @throws RecipeUnsupported (no os-release, a distribution in no known family) */
    async collectRecipeFacts(req: { root: string }): Promise<RecipeFacts> {
      let inventory: Inventory;
      try {
        inventory = await collectInventory(req.root, { node: deps.node, exec: deps.exec });
      } catch (err) {
        if (err instanceof InventoryError) throw ApplicationFailure.create({ type: ERROR_TYPES.RecipeUnsupported, nonRetryable: true, message: `${deps.node}: ${err.message}` });
        throw err;
      }
      const joinKey = (await readFile(`${deps.identityFile}.pub`, 'utf8').catch(() => '')).trim().split('\n')[0];
      deps.logger.info({ root: req.root, family: inventory.family, packages: inventory.packages.manual.length, filesystems: inventory.filesystems.length }, 'recipe inventory collected');
      return { inventory, ...(joinKey ? { joinKey } : {}), identityFile: deps.identityFile, joinFiles: deps.joinFiles };
    },
  };
}

export type RecipeActivities = ReturnType<typeof createRecipeActivities>;
