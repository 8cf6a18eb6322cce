/** `haoscar heal GROUP RESOURCE`: ask for a heal by hand (the same workflow a monitor starts). */
import { Command } from 'commander';
import { WorkflowUpdateFailedError } from '@temporalio/client';
import { loadConfig } from '../config/load.js';
import { requestHealAndAnswer } from '../agent/heal-trigger.js';
import type { Client } from '@temporalio/client';
import { queryOwnership } from '../agent/controller-link.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import { CliError, EXIT, ExitWith } from './errors.js';
import { printJson } from './output.js';
import { userInfo } from 'node:os';

export function healCommand(): Command {
  return new Command('heal')
    .description('restart a service in place through the healService workflow (joins a running heal)')
    .argument('<group>', 'the resource group')
    .argument('<resource>', 'the service in that group')
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('-n, --node <name>', "the node the service runs on (default: the group's preferred node)")
    .option('-w, --wait', 'wait until the service is healthy again (or the heal gives up) and say which')
    .option('--json', 'print the heal workflow (and with --wait its outcome) as JSON')
    .action(async (groupName: string, resourceName: string, opts: { config: string; node?: string; wait?: boolean; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      // Checked here too (the workflow checks again) so that a typo is answered before anything starts.
      const group = config.groups.find((g) => g.name === groupName);
      if (!group) throw new CliError(`unknown group '${groupName}' (known: ${config.groups.map((g) => g.name).join(', ') || 'none'})`, EXIT.usage);
      if (!group.resources.some((r) => r.name === resourceName)) {
        throw new CliError(`unknown resource '${resourceName}' in group '${groupName}' (known: ${group.resources.map((r) => r.name).join(', ')})`, EXIT.usage);
      }
      if (opts.node !== undefined && !group.nodes.includes(opts.node)) {
        throw new CliError(`node '${opts.node}' may not run group '${groupName}' (its nodes: ${group.nodes.join(', ')})`, EXIT.usage);
      }

      const client = await connectClient(await resolveConnection(config.temporal));
      try {
        const node = opts.node ?? (await ownerOf(client, config.cluster, groupName));
        const { workflowId, outcome } = await requestHealAndAnswer(
          client,
          {
            cluster: config.cluster,
            node,
            group: groupName,
            resource: resourceName,
            failure: { at: Date.now(), detail: 'heal requested by an operator', source: `cli@${userInfo().username}` },
          },
          opts.wait ?? false,
        );
        if (opts.json) {
          printJson({ workflowId, group: groupName, resource: resourceName, node, ...(outcome ? { outcome } : {}) });
          // The same exit code as the text form's: a heal that gave up is a failure.
          if (outcome?.outcome === 'gave-up') throw new ExitWith(EXIT.failure);
          return;
        }
        process.stdout.write(`heal requested: workflow ${workflowId}\n`);
        if (!outcome) return;
        if (outcome.outcome === 'gave-up') {
          throw new CliError(`the heal gave up after ${outcome.attempts} attempt(s): ${outcome.detail}; fix the service, or fail the group over`, EXIT.failure);
        }
        process.stdout.write(`healthy again (${outcome.detail}); the heal keeps watching for the rest of its window\n`);
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) throw new CliError(`the heal refused the request: ${err.cause?.message ?? err.message}`, EXIT.failure);
        throw err;
      } finally {
        await client.connection.close();
      }
    });
}

/** The node that runs the group, as the controller says. */
async function ownerOf(client: Client, cluster: string, group: string): Promise<string> {
  const state = await queryOwnership(client, cluster).catch((err: unknown) => {
    throw new CliError(`cannot ask the controller of cluster '${cluster}' who runs '${group}' (${err instanceof Error ? err.message : String(err)}); name the node with --node`, EXIT.unavailable);
  });
  const owner = state.groups[group]?.owner;
  if (!owner) throw new CliError(`group '${group}' runs nowhere now (${state.groups[group]?.state ?? 'unknown'}): there is nothing to heal; see haoscar status`, EXIT.failure);
  return owner;
}
