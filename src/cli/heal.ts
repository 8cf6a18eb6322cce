/** `haoscar heal GROUP RESOURCE`: ask for a heal by hand (the same workflow a monitor starts). */
import { Command } from 'commander';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { healStatusQuery } from '../../workflows/shared.js';
import { loadConfig } from '../config/load.js';
import { requestHeal } from '../agent/heal-trigger.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import { CliError, EXIT } from './errors.js';
import { userInfo } from 'node:os';

export function healCommand(): Command {
  return new Command('heal')
    .description('restart a service in place through the healService workflow (joins a running heal)')
    .argument('<group>', 'the resource group')
    .argument('<resource>', 'the service in that group')
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('-n, --node <name>', "the node the service runs on (default: the group's preferred node)")
    .option('-w, --wait', 'wait until the heal completes and print its outcome')
    .action(async (groupName: string, resourceName: string, opts: { config: string; node?: string; wait?: boolean }) => {
      const config = await loadConfig(opts.config);
      // Checked here too (the workflow checks again) so that a typo is answered before anything starts.
      const group = config.groups.find((g) => g.name === groupName);
      if (!group) throw new CliError(`unknown group '${groupName}' (known: ${config.groups.map((g) => g.name).join(', ') || 'none'})`, EXIT.usage);
      if (!group.resources.some((r) => r.name === resourceName)) {
        throw new CliError(`unknown resource '${resourceName}' in group '${groupName}' (known: ${group.resources.map((r) => r.name).join(', ')})`, EXIT.usage);
      }
      const node = opts.node ?? group.nodes[0]!;
      if (!group.nodes.includes(node)) throw new CliError(`node '${node}' may not run group '${groupName}' (its nodes: ${group.nodes.join(', ')})`, EXIT.usage);

      const client = await connectClient(await resolveConnection(config.temporal));
      try {
        const { workflowId, runId } = await requestHeal(client, {
          cluster: config.cluster,
          node,
          group: groupName,
          resource: resourceName,
          failure: { at: Date.now(), detail: 'heal requested by an operator', source: `cli@${userInfo().username}` },
        });
        process.stdout.write(`heal requested: workflow ${workflowId} (run ${runId})\n`);
        if (!opts.wait) return;
        const outcome = await waitForHealOutcome(client, workflowId, runId);
        process.stdout.write(`${outcome}\n`);
      } finally {
        await client.connection.close();
      }
    });
}

/**
 * Waits until the service is healthy again (the heal then keeps watching for its window, which
 * can be long) or the heal fails. @throws CliError when the heal failed or gave up.
 */
async function waitForHealOutcome(client: Client, workflowId: string, runId: string): Promise<string> {
  const handle = client.workflow.getHandle(workflowId, runId);
  for (;;) {
    const { status } = await handle.describe();
    if (status.name !== 'RUNNING') {
      try {
        return `heal completed: ${JSON.stringify(await handle.result())}`;
      } catch (err) {
        if (err instanceof WorkflowFailedError) throw new CliError(`heal failed: ${err.cause?.message ?? err.message}`, EXIT.failure);
        throw err;
      }
    }
    const heal = await handle.query(healStatusQuery);
    if (heal.phase === 'watching' || heal.phase === 'healed') {
      const last = heal.attempts.at(-1);
      return `healthy again after ${heal.attempts.length} attempt(s)${last ? ` (${last.detail})` : ''}; the heal keeps watching for the rest of its window`;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}
