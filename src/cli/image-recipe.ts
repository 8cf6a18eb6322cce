/**
 * `haoscar image recipe NODE --format preseed|kickstart|autoyast [--output FILE]`: an
 * unattended-install file for a fresh standby that reproduces NODE's distribution, packages and
 * partitioning, and installs HA-OSCAR on first boot (docs/clone.md#unattended-install-recipes).
 * NODE's agent describes its system (the imageRecipe workflow); this writes the file and says
 * what it could not reproduce and how the new machine joins.
 */
import { Command } from 'commander';
import { writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { loadConfig } from '../config/load.js';
import type { ImageRecipeInput } from '../../workflows/inputs.js';
import type { ImageRecipeResult } from '../../workflows/image-recipe.js';
import { RECIPE_FORMATS, type RecipeFormat } from '../../workflows/recipe/common.js';
import { clusterTaskQueue, recipeWorkflowId } from '../../workflows/shared.js';
import { CliError, EXIT } from './errors.js';
import { printJson } from './output.js';
import { failed, withClient } from './switchover.js';

/** `haoscar image recipe`, a subcommand of `haoscar image` (image.ts). */
export function imageRecipeCommand(): Command {
  return new Command('recipe')
    .description("write an unattended-install file (Debian preseed, kickstart, AutoYaST) for a fresh standby that reproduces NODE's distribution, packages and partitioning and installs HA-OSCAR on first boot")
    .argument('<node>', 'the node to reproduce (its agent describes its system)')
    .requiredOption('--format <format>', `one of ${RECIPE_FORMATS.join(', ')}`)
    .option('-o, --output <file>', 'write the recipe here (default: standard output, the report then goes to standard error)')
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('--hostname <name>', "the new machine's host name, and its node name in the configuration (HAOSCAR_NODE)")
    .option('--package-url <url>', "where the first boot downloads HA-OSCAR's npm pack tarball (http:// or https://); without it, install HA-OSCAR by hand on the new machine")
    .option('--root-password-hash <hash>', "root's password as a crypt(3) hash (openssl passwd -6); default: locked, ssh keys only")
    .option('--root <dir>', 'the root directory read on the node', '/')
    .option('--json', 'print the inventory, the recipe and the report as JSON')
    .exitOverride()
    .showHelpAfterError()
    .action(async (node: string, opts: { format: string; output?: string; config: string; hostname?: string; packageUrl?: string; rootPasswordHash?: string; root: string; json?: boolean }) => {
      if (!(RECIPE_FORMATS as readonly string[]).includes(opts.format)) throw new CliError(`--format: expected one of ${RECIPE_FORMATS.join(', ')}, not '${opts.format}'`, EXIT.usage);
      const config = await loadConfig(opts.config);
      const names = config.nodes.map((n) => n.name);
      if (!names.includes(node)) throw new CliError(`unknown node '${node}' (known: ${names.join(', ')})`, EXIT.usage);
      const input: ImageRecipeInput = {
        cluster: config.cluster, node, format: opts.format as RecipeFormat, root: opts.root,
        ...(opts.hostname ? { hostname: opts.hostname } : {}),
        ...(opts.packageUrl ? { packageUrl: opts.packageUrl } : {}),
        ...(opts.rootPasswordHash ? { rootPasswordHash: opts.rootPasswordHash } : {}),
        reason: `requested by ${userInfo().username} with haoscar image recipe`,
      };
      await withClient(config, async (client) => {
        const workflowId = recipeWorkflowId(config.cluster, node, Date.now());
        const handle = await client.workflow.start('imageRecipe', {
          workflowId, taskQueue: clusterTaskQueue(config.cluster), args: [input],
          staticSummary: `image recipe: ${opts.format} of ${node} (operator)`,
          memo: { trigger: 'operator' },
        });
        const r = await failed('image recipe', handle.result() as Promise<ImageRecipeResult>);
        if (opts.json) return printJson({ workflowId, result: r });
        const recipe = r.recipe!;
        if (opts.output) await writeFile(opts.output, recipe.text, { mode: 0o644 });
        else process.stdout.write(recipe.text);
        const report = describeRecipe(r, opts.output);
        (opts.output ? process.stdout : process.stderr).write(report);
      });
    });
}

/** What the administrator reads after the recipe is written. */
export function describeRecipe(r: ImageRecipeResult, output: string | undefined): string {
  const inv = r.inventory;
  const lines = [
    `${output ? `wrote ${output}` : 'wrote the recipe above'}: ${r.recipe?.format} for ${inv.os.name} (${inv.architecture}) as on ${r.node}, ${inv.packages.manual.length} packages, ${inv.filesystems.length} file systems`,
  ];
  const notes = [...(r.recipe?.unexpressed ?? []), ...inv.notes];
  if (notes.length > 0) {
    lines.push('not reproduced, or reproduced differently (check by hand):');
    for (const n of notes) lines.push(`  ${n}`);
  }
  lines.push(
    'the recipe holds no secret: once the new machine has booted and its first boot has installed HA-OSCAR,',
    `run this on ${r.node} as root, with NEW the new machine's address (ssh asks about its host key: compare it with /var/log/haoscar-first-boot.log there):`,
    `  ${r.joinCommand}`,
    'then make it the same system with haoscar clone, or let the file sets bring the data (docs/clone.md)',
  );
  return `${lines.join('\n')}\n`;
}
