/** `haoscar status`: who runs each group under which epoch, and how the nodes are seen (the controller's view). */
import { Command } from 'commander';
import { WorkflowNotFoundError } from '@temporalio/client';
import { loadConfig } from '../config/load.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import { queryOwnership } from '../agent/controller-link.js';
import { describeBlock } from '../../workflows/old-owner-plan.js';
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
          process.stdout.write(`${JSON.stringify(state, null, 2)}\n`);
          return;
        }
        const ago = (t: number) => `${Math.max(0, Math.round((Date.now() - t) / 1000))}s ago`;
        process.stdout.write(`cluster ${state.cluster}\n  nodes:\n`);
        for (const [name, n] of Object.entries(state.nodes)) process.stdout.write(`    ${name.padEnd(16)} ${n.state.padEnd(8)} since ${ago(n.since)} (${n.reportedBy})\n`);
        process.stdout.write('  groups:\n');
        for (const [name, g] of Object.entries(state.groups)) {
          const op = g.operation ? `, ${g.operation.kind} operation ${g.operation.workflowId} running` : '';
          process.stdout.write(`    ${name.padEnd(16)} ${g.state.padEnd(8)} on ${(g.owner ?? '-').padEnd(12)} epoch ${g.epoch} since ${ago(g.since)}${op}\n`);
          // A failed stop is not a stop: the operation waits, and says for what.
          const blocked = g.operation?.blocked;
          if (blocked) process.stdout.write(`      BLOCKED since ${ago(blocked.since)}: ${describeBlock(name, blocked, Date.now())}\n`);
        }
        for (const f of state.falseAlarms.slice(-5)) process.stdout.write(`  false alarm: ${f.group} on ${f.node} ${ago(f.at)}: ${f.detail}\n`);
        for (const c of (state.confirmedDown ?? []).slice(-5)) {
          const groups = c.unblocked.map((u) => u.group).join(', ') || 'nothing';
          process.stdout.write(`  confirmed down: ${c.node} by ${c.operator} ${ago(c.at)}${c.detail ? ` (${c.detail})` : ''}; unblocked ${groups}\n`);
        }
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
