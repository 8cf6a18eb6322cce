/** `haoscar status`: who runs each group under which epoch, and how the nodes are seen (the controller's view). */
import { Command } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import { loadConfig } from '../config/load.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import { queryOwnership } from '../agent/controller-link.js';
import { formatStatus, statusWarnings } from './status-text.js';
import { CliError, EXIT } from './errors.js';

export function statusCommand(): Command {
  return new Command('status')
    .description("show which node runs each group, under which epoch, and the nodes' state (from the controller)")
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('--json', 'print the controller state as JSON')
    .action(async (opts: { config: string; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      const client = await connectClient(await resolveConnection(config.temporal));
      try {
        const state = await queryOwnership(client, config.cluster);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ ...state, warnings: statusWarnings(state) }, null, 2)}\n`);
          return;
        }
        process.stdout.write(formatStatus(state, Date.now()));
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) {
          throw new CliError(`the controller of cluster '${config.cluster}' is not running: start the agents (the first one starts it)`, EXIT.unavailable);
        }
        throw err;
      } finally {
        await client.connection.close();
      }
    });
}
