/**
 * `haoscar image recipe`'s generators, by format (docs/clone.md#unattended-install-recipes).
 * Pure: an inventory and the options in, the file's text and what it could not reproduce out.
 */
import { autoyastRecipe } from './autoyast.js';
import type { Recipe, RecipeFormat, RecipeOptions } from './common.js';
import type { Inventory } from './inventory.js';
import { kickstartRecipe } from './kickstart.js';
import { preseedRecipe } from './preseed.js';

export { RECIPE_FORMATS, joinCommand, type Recipe, type RecipeFormat, type RecipeOptions } from './common.js';

export function generateRecipe(format: RecipeFormat, inv: Inventory, o: RecipeOptions): Recipe {
  switch (format) {
    case 'preseed':
      return preseedRecipe(inv, o);
    case 'kickstart':
      return kickstartRecipe(inv, o);
    case 'autoyast':
      return autoyastRecipe(inv, o);
  }
}

/** The format an installer of the inventory's family reads. */
export function formatForFamily(family: Inventory['family']): RecipeFormat {
  return family === 'debian' ? 'preseed' : family === 'rhel' ? 'kickstart' : 'autoyast';
}
