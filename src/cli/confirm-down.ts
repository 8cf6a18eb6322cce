/**
 * `haoscar confirm-down NODE`: an operator confirms that a node whose stop failed is down, so
 * that the operations blocked on it move its groups (what `pcs stonith confirm` does). Deliberate:
 * it says what it means and needs `--yes` or a typed "yes" (docs/failover.md#a-failed-stop-is-not-a-stop).
 *
 * The confirmation is signed with the cluster secret (`heartbeat.secretFile`, docs/security.md):
 * the controller refuses one without a valid MAC, so that access to Temporal alone cannot confirm
 * a node down. Run it on a node (or the worker's host), as a user who may read the secret file; a
 * cluster of more than one node without a readable secret file gets an error and nothing is sent.
 */
import { messageKey, signedRequest } from './signed-update.js';
import { Command } from 'commander';
import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { createInterface } from 'node:readline/promises';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { loadConfig } from '../config/load.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import { queryOwnership } from '../agent/controller-link.js';
import { describeBlock } from '../../workflows/old-owner-plan.js';
import { confirmDownUpdate, controllerWorkflowId, ERROR_TYPES, type ConfirmDown, type ConfirmDownResult } from '../../workflows/shared.js';
import { CliError, EXIT } from './errors.js';
import { printJson } from './output.js';

/** What the operator takes on: printed before anything is sent. */
export function confirmDownWarning(node: string): string {
  return (
    `You confirm that node ${node} is powered off, or cannot run any group (its services stopped, its addresses removed).\n` +
    `The groups it failed to stop will then be started on another node. If ${node} is NOT down, those groups will run twice\n` +
    `(two holders of the same address, two writers of the same data). Check it first: fence it or power it off yourself.\n`
  );
}

export function confirmDownCommand(): Command {
  return new Command('confirm-down')
    .description('confirm that a node whose stop failed is down, so that the operations blocked on it go on (like pcs stonith confirm)')
    .argument('<node>', 'the node that is powered off or cannot run any group')
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('-y, --yes', 'do not ask: you have made sure the node is down')
    .option('-r, --reason <text>', 'how you know (kept in the controller state and its history)')
    .option('--json', 'print the result as JSON')
    .action(async (node: string, opts: { config: string; yes?: boolean; reason?: string; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      // Checked here too (the controller checks again) so that a typo is answered before anything is sent.
      if (!config.nodes.some((n) => n.name === node)) {
        throw new CliError(`unknown node '${node}' (known: ${config.nodes.map((n) => n.name).join(', ')}); nothing was sent`, EXIT.usage);
      }
      // Before anything is said or sent: a confirmation is never sent unsigned.
      const key = await messageKey(config, 'confirm-down signs the confirmation with the cluster secret (heartbeat.secretFile) so that access to Temporal alone cannot confirm a node down');
      process.stderr.write(confirmDownWarning(node));
      if (!opts.yes && !process.stdin.isTTY) {
        throw new CliError(`not confirmed: nothing was sent. Once you are sure ${node} is down, run it again with --yes`, EXIT.usage);
      }
      const client = await connectClient(await resolveConnection(config.temporal));
      try {
        await showBlocked(client, config.cluster, node);
        if (!opts.yes && !(await askYes(node))) throw new CliError('not confirmed: nothing was sent', EXIT.failure);
        const request: ConfirmDown = { node, operator: `${userInfo().username}@${hostname()}`, ...(opts.reason ? { detail: opts.reason } : {}) };
        // A fresh update ID, bound by the MAC: a repeat of this one gets its first answer, a copy under another ID is refused.
        const updateId = `confirm-down/${randomUUID()}`;
        const result: ConfirmDownResult = await client.workflow.getHandle(controllerWorkflowId(config.cluster)).executeUpdate(confirmDownUpdate, { args: [signedRequest(key, config.cluster, confirmDownUpdate.name, updateId, request)], updateId });
        if (opts.json) return printJson(result);
        process.stdout.write(`node ${node} confirmed down by ${request.operator}\n`);
        for (const u of result.unblocked) process.stdout.write(`  unblocked: group ${u.group} (${u.workflowId}, epoch ${u.epoch}) moves to another node now\n`);
      } catch (err) {
        throw refusal(err, config.cluster, node);
      } finally {
        await client.connection.close();
      }
    });
}

/** The operations blocked on the node now, as `haoscar status` shows them. @throws CliError when there is none. */
async function showBlocked(client: Client, cluster: string, node: string): Promise<void> {
  const state = await queryOwnership(client, cluster);
  const blocked = Object.entries(state.groups).filter(([, g]) => g.operation?.blocked?.node === node);
  if (blocked.length === 0) {
    throw new CliError(`no operation is blocked on node '${node}': nothing to confirm (a confirm-down only unblocks an operation waiting for that node now); nothing was sent`, EXIT.failure);
  }
  for (const [name, g] of blocked) process.stderr.write(`  blocked: ${describeBlock(name, g.operation!.blocked!, Date.now())} [${g.operation!.workflowId}]\n`);
}

async function askYes(node: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return (await rl.question(`Type yes to confirm that ${node} is down: `)).trim() === 'yes';
  } finally {
    rl.close();
  }
}

function refusal(err: unknown, cluster: string, node: string): unknown {
  if (err instanceof CliError) return err;
  if (err instanceof WorkflowNotFoundError) {
    return new CliError(`the controller of cluster '${cluster}' is not running: start the agents (the first one starts it); nothing was sent`, EXIT.unavailable);
  }
  if (err instanceof WorkflowUpdateFailedError) {
    const cause = err.cause;
    const type = cause instanceof ApplicationFailure ? cause.type : undefined;
    const message = cause?.message ?? err.message;
    if (type === ERROR_TYPES.UnknownNode) return new CliError(`the controller refused: ${message}`, EXIT.usage);
    if (type === ERROR_TYPES.Unauthenticated) {
      return new CliError(`the controller refused the confirm-down of ${node} as not authenticated: ${message}. Is ${'heartbeat.secretFile'} on this host the same secret as the workflow worker's (haoscar worker)?`, EXIT.failure);
    }
    return new CliError(`the controller refused the confirm-down of ${node}: ${message}`, EXIT.failure);
  }
  return err;
}
