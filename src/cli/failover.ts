/** `haoscar failover GROUP [--to NODE]`: move a group by hand (the same workflow the controller starts). */
import { Command } from 'commander';
import { userInfo } from 'node:os';
import { WorkflowFailedError, WorkflowIdConflictPolicy, WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { loadConfig } from '../config/load.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import type { failover } from '../../workflows/failover.js';
import type { FailoverInput } from '../../workflows/inputs.js';
import { HA_KEYS } from '../../workflows/search-attributes.js';
import { clusterTaskQueue, failoverWorkflowId, type FailoverResult } from '../../workflows/shared.js';
import { CliError, EXIT } from './errors.js';
import { printJson } from './output.js';
import { maintenanceNote } from './maintenance.js';

export function failoverCommand(): Command {
  return new Command('failover')
    .description('move a resource group to another node through the failover workflow (stops it on its owner first)')
    .argument('<group>', 'the resource group')
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('-t, --to <node>', "the node to move it to (default: the group's nodes in preference order, not its owner)")
    .option('-r, --reason <text>', 'why (kept in the workflow history)')
    .option('--accept-data-loss', "take the group over even on a node whose copy of its file sets is further behind than the group's failover.maxSyncLag (the least behind first): what it lacks is lost from the service")
    .option('--no-wait', 'return once the failover has started')
    .option('--json', 'print the workflow (and unless --no-wait its result) as JSON')
    .action(async (groupName: string, opts: { config: string; to?: string; reason?: string; wait: boolean; acceptDataLoss?: boolean; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      // Checked here too (the workflow checks again) so that a typo is answered before anything starts.
      const group = config.groups.find((g) => g.name === groupName);
      if (!group) throw new CliError(`unknown group '${groupName}' (known: ${config.groups.map((g) => g.name).join(', ') || 'none'})`, EXIT.usage);
      if (opts.to !== undefined && !group.nodes.includes(opts.to)) {
        throw new CliError(`node '${opts.to}' may not run group '${groupName}' (its nodes: ${group.nodes.join(', ')})`, EXIT.usage);
      }
      const workflowId = failoverWorkflowId(config.cluster, groupName);
      const client = await connectClient(await resolveConnection(config.temporal));
      try {
        const handle = await startFailover(client, config.cluster, groupName, { reason: opts.reason ?? `requested by ${userInfo().username} with haoscar failover`, operatorReason: opts.reason, ...(opts.to ? { to: opts.to } : {}), ...(opts.acceptDataLoss ? { acceptDataLoss: true } : {}) });
        if (!opts.json) process.stdout.write(`failover started: workflow ${workflowId} (run ${handle.firstExecutionRunId})\n`);
        const note = await maintenanceNote(client, config.cluster, groupName, 'failover');
        if (note && !opts.json) process.stdout.write(note);
        const result: FailoverResult | undefined = opts.wait ? await handle.result() : undefined;
        if (opts.json) return printJson({ workflowId, runId: handle.firstExecutionRunId, ...(note ? { note: note.trim() } : {}), ...(result ? { result } : {}) });
        if (result) process.stdout.write(describe(result));
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) {
          throw new CliError(`an operation on group '${groupName}' is already running (workflow ${workflowId}); wait for it to end`, EXIT.failure);
        }
        if (err instanceof WorkflowFailedError) throw new CliError(`the failover failed: ${err.cause?.message ?? err.message}`, EXIT.failure);
        throw err;
      } finally {
        await client.connection.close();
      }
    });
}

/**
 * Starts an operator's failover workflow of `groupName` (also `haoscar drill --kind failover`'s).
 * `operatorReason`: the reason as the operator gave it, if they did (the workflow's details).
 * @throws WorkflowExecutionAlreadyStartedError when an operation on the group is running.
 */
export async function startFailover(client: Client, cluster: string, groupName: string, o: { reason: string; operatorReason?: string; to?: string; acceptDataLoss?: boolean }) {
  return client.workflow.start<typeof failover>('failover', {
    workflowId: failoverWorkflowId(cluster, groupName),
    taskQueue: clusterTaskQueue(cluster),
    args: [{ cluster, group: groupName, kind: 'operator', reason: o.reason, ...(o.to ? { to: o.to } : {}), ...(o.acceptDataLoss ? { acceptDataLoss: true } : {}) } satisfies FailoverInput],
    workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
    typedSearchAttributes: [
      { key: HA_KEYS.HaCluster, value: cluster },
      { key: HA_KEYS.HaGroup, value: groupName },
      { key: HA_KEYS.HaOperation, value: 'failover' },
    ],
    memo: { trigger: 'operator', detail: o.operatorReason ?? '', ...(o.acceptDataLoss ? { acceptDataLoss: true } : {}) },
    staticSummary: `failover of ${groupName}${o.to ? ` to ${o.to}` : ''} (operator${o.acceptDataLoss ? ', data loss accepted' : ''})`,
    ...(o.operatorReason ? { staticDetails: o.operatorReason } : {}),
  });
}

function describe(r: FailoverResult): string {
  const phases = Object.entries(r.phases).map(([k, v]) => `${k.replace(/Ms$/, '')} ${v} ms`).join(', ');
  if (r.outcome === 'false-alarm') return `false alarm: ${r.from} answered; nothing was moved (${phases})\n`;
  return `group ${r.group} ${r.outcome === 'already-there' ? 'restarted on' : `moved from ${r.from ?? 'nowhere'} to`} ${r.to} at epoch ${r.epoch} (${phases})\n`;
}
