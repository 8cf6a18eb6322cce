/**
 * `haoscar switchover GROUP --to NODE` (a planned move: resync, stop, final sync, start) and
 * `haoscar resync GROUP --node NODE` (bring a node up to date only), both with a progress bar
 * of the resync.
 */
import { Command } from 'commander';
import { userInfo } from 'node:os';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import type { Config } from '../config/types.js';
import { loadConfig } from '../config/load.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import type { ResyncInput, SwitchoverInput } from '../../workflows/inputs.js';
import { haTags } from '../../workflows/search-attributes.js';
import { clusterTaskQueue, resyncWorkflowId, switchoverWorkflowId, type ResyncResult, type SwitchoverResult } from '../../workflows/shared.js';
import { CliError, EXIT } from './errors.js';
import { formatBytes, showProgress } from './progress.js';
import { maintenanceNote } from './maintenance.js';
import { printJson } from './output.js';

const configOption = ['-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml'] as const;

export function switchoverCommand(): Command {
  return new Command('switchover')
    .description('move a resource group to a node as planned: resync the node, stop the group on its owner, final sync, start it on the node (back on the owner if that fails)')
    .argument('<group>', 'the resource group')
    .requiredOption(...configOption)
    .requiredOption('-t, --to <node>', 'the node to move it to')
    .option('-r, --reason <text>', 'why (kept in the workflow history)')
    .option('--no-wait', 'return once the switchover has started')
    .option('--json', 'print the workflow (and unless --no-wait its result) as JSON; the progress bar stays on stderr')
    .action(async (groupName: string, opts: { config: string; to: string; reason?: string; wait: boolean; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      checkTarget(config, groupName, opts.to);
      const workflowId = switchoverWorkflowId(config.cluster, groupName);
      await withClient(config, async (client) => {
        const handle = await startSwitchover(client, config, groupName, opts.to, opts.reason ?? `requested by ${userInfo().username} with haoscar switchover`);
        if (!opts.json) process.stdout.write(`switchover started: workflow ${workflowId}\n`);
        const note = await maintenanceNote(client, config.cluster, groupName, 'switchover');
        if (note && !opts.json) process.stdout.write(note);
        if (!opts.wait) return opts.json ? printJson({ workflowId, ...(note ? { note: note.trim() } : {}) }) : undefined;
        const result = handle.result() as Promise<SwitchoverResult>;
        await showProgress(client, resyncWorkflowId(config.cluster, groupName, opts.to), result);
        const r = await failed('switchover', result);
        if (opts.json) return printJson({ workflowId, ...(note ? { note: note.trim() } : {}), result: r });
        if (r.outcome === 'already-there') return void process.stdout.write(`group ${r.group} already runs on ${r.to}; nothing was done\n`);
        const phases = Object.entries(r.failover?.phases ?? {}).map(([k, v]) => `${k.replace(/Ms$/, '')} ${v} ms`).join(', ');
        process.stdout.write(`group ${r.group} moved from ${r.from ?? 'nowhere'} to ${r.to} at epoch ${r.failover?.epoch}${r.resync ? ` (resync ${formatBytes(r.resync.bytes)} in ${r.resync.durationMs} ms` : ' ('}${r.resync ? '; ' : ''}${phases})\n`);
      });
    });
}

export function resyncCommand(): Command {
  return new Command('resync')
    .description("bring a node's copy of a group's data (file sets, DRBD) up to date with the group's owner")
    .argument('<group>', 'the resource group')
    .requiredOption(...configOption)
    .requiredOption('-n, --node <node>', 'the node to bring up to date (not the owner)')
    .option('-r, --reason <text>', 'why (kept in the workflow history)')
    .option('--no-wait', 'return once the resync has started')
    .option('--json', 'print the workflow (and unless --no-wait its result) as JSON; the progress bar stays on stderr')
    .action(async (groupName: string, opts: { config: string; node: string; reason?: string; wait: boolean; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      checkTarget(config, groupName, opts.node);
      const workflowId = resyncWorkflowId(config.cluster, groupName, opts.node);
      await withClient(config, async (client) => {
        const handle = await start(client, 'resync', workflowId, config.cluster, `a resync of ${opts.node}`, {
          args: [{ cluster: config.cluster, group: groupName, node: opts.node, reason: opts.reason ?? `requested by ${userInfo().username} with haoscar resync` } satisfies ResyncInput],
          typedSearchAttributes: haTags({ cluster: config.cluster, group: groupName, node: opts.node, operation: 'resync' }),
          staticSummary: `resync: ${opts.node} pulls ${groupName}'s data from its owner (operator)`,
        });
        if (!opts.json) process.stdout.write(`resync started: workflow ${workflowId}\n`);
        if (!opts.wait) return opts.json ? printJson({ workflowId }) : undefined;
        const result = handle.result() as Promise<ResyncResult>;
        await showProgress(client, workflowId, result);
        const r = await failed('resync', result);
        if (opts.json) return printJson({ workflowId, result: r });
        const resumed = r.steps.filter((s) => s.resumed).length;
        process.stdout.write(`${r.node} is up to date with ${r.source} for group ${r.group}: ${formatBytes(r.bytes)} in ${r.durationMs} ms, ${r.steps.length} steps${r.attempts > 1 ? ` (${r.attempts} attempts, ${resumed} steps resumed)` : ''}\n`);
      });
    });
}

/**
 * Starts the switchover workflow of `groupName` to `to` (an operator's; also `haoscar drill`'s).
 * @throws CliError when an operation on the group is already running.
 */
export async function startSwitchover(client: Client, config: Config, groupName: string, to: string, reason: string) {
  return start(client, 'switchover', switchoverWorkflowId(config.cluster, groupName), config.cluster, `an operation on group '${groupName}'`, {
    args: [{ cluster: config.cluster, group: groupName, to, trigger: 'operator', reason } satisfies SwitchoverInput],
    typedSearchAttributes: haTags({ cluster: config.cluster, group: groupName, node: to, operation: 'switchover' }),
    staticSummary: `switchover of ${groupName} to ${to} (operator)`,
  });
}

/** @throws CliError (usage) when the group is unknown or `node` may not run it. */
export function checkTarget(config: Config, groupName: string, node: string): void {
  // Checked here too (the workflow checks again) so that a typo is answered before anything starts.
  const group = config.groups.find((g) => g.name === groupName);
  if (!group) throw new CliError(`unknown group '${groupName}' (known: ${config.groups.map((g) => g.name).join(', ') || 'none'})`, EXIT.usage);
  if (!group.nodes.includes(node)) throw new CliError(`node '${node}' may not run group '${groupName}' (its nodes: ${group.nodes.join(', ')})`, EXIT.usage);
}

export async function withClient(config: Config, fn: (client: Client) => Promise<void>): Promise<void> {
  const client = await connectClient(await resolveConnection(config.temporal));
  try {
    await fn(client);
  } finally {
    await client.connection.close();
  }
}

async function start(client: Client, type: 'switchover' | 'resync', workflowId: string, cluster: string, what: string, opts: { args: unknown[]; typedSearchAttributes: ReturnType<typeof haTags>; staticSummary: string }) {
  try {
    return await client.workflow.start(type, {
      workflowId,
      taskQueue: clusterTaskQueue(cluster),
      args: opts.args,
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      typedSearchAttributes: opts.typedSearchAttributes,
      staticSummary: opts.staticSummary,
      memo: { trigger: 'operator' },
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new CliError(`${what} is already running (workflow ${workflowId}); wait for it to end`, EXIT.failure);
    throw err;
  }
}

export async function failed<T>(what: string, result: Promise<T>): Promise<T> {
  try {
    return await result;
  } catch (err) {
    if (err instanceof WorkflowFailedError) throw new CliError(`the ${what} failed: ${innermost(err)}`, EXIT.failure);
    throw err;
  }
}

/** The innermost failure's message: "Activity task failed" wraps what rsync or DRBD said. */
function innermost(err: Error): string {
  let e: Error = err;
  while (e.cause instanceof Error) e = e.cause;
  return e.message;
}
