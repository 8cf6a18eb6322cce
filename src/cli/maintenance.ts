/**
 * `haoscar maintenance on|off --group G | --node N` and `haoscar cleanup GROUP [RESOURCE]`.
 *
 * Maintenance lives in the controller workflow (workflows/maintenance-plan.ts): a group in
 * maintenance is unmanaged (no heals, no automatic failover, its resources left as they are; the
 * monitors report and act on nothing), a node in maintenance is in standby (its groups are
 * switched over to a healthy node, nothing is placed on it), until `off`. The request is signed
 * with the cluster secret (`heartbeat.secretFile`, docs/security.md) like a confirm-down: access
 * to Temporal alone cannot stop the cluster from managing a group.
 *
 * `cleanup` resets the fail count of the group's running heals (what `pcs resource cleanup` does):
 * the next failure starts from a full budget of `healing.maxRestarts`.
 */
import { Command, InvalidArgumentError } from 'commander';
import { randomUUID } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError, WorkflowUpdateFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { messageKey, signedRequest } from './signed-update.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import { queryOwnership } from '../agent/controller-link.js';
import { describeIssues, resetFailCountSchema, setMaintenanceSchema } from '../../workflows/inputs.js';
import { maintenanceRefusal } from '../../workflows/maintenance-plan.js';
import {
  controllerWorkflowId,
  ERROR_TYPES,
  healWorkflowId,
  resetFailCountUpdate,
  setMaintenanceUpdate,
  type Ownership,
  type ResetFailCount,
  type ResetFailCountResult,
  type SetMaintenance,
  type SetMaintenanceResult,
} from '../../workflows/shared.js';
import { CliError, EXIT } from './errors.js';
import { printJson } from './output.js';

const configOption = ['-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml'] as const;

function parseOnOff(value: string): 'on' | 'off' {
  if (value !== 'on' && value !== 'off') throw new InvalidArgumentError("expected 'on' or 'off'");
  return value;
}

/** Who asks: kept in the controller's state and history. */
function operator(): string {
  return `${userInfo().username}@${hostname()}`;
}

/**
 * The request, checked against the update's schema and the configuration before anything is sent.
 * @throws CliError (exit 2) naming what is wrong; nothing was sent.
 */
export function maintenanceRequest(config: Pick<Config, 'groups' | 'nodes'>, onOff: 'on' | 'off', opts: { group?: string; node?: string; reason?: string; force?: boolean }, by: string): SetMaintenance {
  const request: SetMaintenance = {
    ...(opts.group !== undefined ? { group: opts.group } : {}),
    ...(opts.node !== undefined ? { node: opts.node } : {}),
    on: onOff === 'on',
    operator: by,
    ...(opts.reason !== undefined ? { reason: opts.reason } : {}),
    ...(opts.force ? { force: true } : {}),
  };
  if ((opts.group === undefined) === (opts.node === undefined)) throw new CliError('name either a group (--group G) or a node (--node N); nothing was sent', EXIT.usage);
  const parsed = setMaintenanceSchema.safeParse(request);
  if (!parsed.success) throw new CliError(`${describeIssues(parsed.error, '(request)').join('; ')}; nothing was sent`, EXIT.usage);
  if (opts.group !== undefined && !config.groups.some((g) => g.name === opts.group)) {
    throw new CliError(`unknown group '${opts.group}' (known: ${config.groups.map((g) => g.name).join(', ') || 'none'}); nothing was sent`, EXIT.usage);
  }
  if (opts.node !== undefined && !config.nodes.some((n) => n.name === opts.node)) {
    throw new CliError(`unknown node '${opts.node}' (known: ${config.nodes.map((n) => n.name).join(', ')}); nothing was sent`, EXIT.usage);
  }
  if (opts.force && (opts.node === undefined || onOff === 'off')) throw new CliError('--force only goes with `maintenance on --node`; nothing was sent', EXIT.usage);
  return parsed.data;
}

/** What the command prints for the controller's answer. Pure. */
export function describeMaintenance(r: SetMaintenanceResult): string {
  const lines: string[] = [];
  if ('group' in r.target) {
    const g = r.target.group;
    if (r.on) {
      lines.push(`group ${g} is in maintenance${r.changed ? '' : ' (it already was)'}: unmanaged — no heals, no automatic failover or placement; its resources are left as they are, its monitors report and act on nothing.`);
      lines.push(`  A failover or switchover by hand still runs. \`haoscar maintenance off --group ${g}\` manages it again.`);
    } else lines.push(`group ${g} is managed again${r.changed ? '' : ' (it was not in maintenance)'}: what was asked for meanwhile and still stands is done now.`);
  } else {
    const n = r.target.node;
    if (r.on) {
      lines.push(`node ${n} is in standby${r.changed ? '' : ' (it already was)'}: nothing is placed on it until \`haoscar maintenance off --node ${n}\`.`);
      for (const m of r.moves) lines.push(`  moving: ${m.group} → ${m.to} (switchover started by the controller)`);
      for (const s of r.stays) lines.push(`  stays: ${s.group}: ${s.why}`);
    } else lines.push(`node ${n} is out of standby${r.changed ? '' : ' (it was not in standby)'}: groups may be placed on it again.`);
  }
  return `${lines.join('\n')}\n`;
}

export function maintenanceCommand(): Command {
  return new Command('maintenance')
    .description('put a group in maintenance (unmanaged: no heals, no automatic failover) or a node in standby (its groups move away), or end it')
    .argument('<on|off>', "'on' or 'off'", parseOnOff)
    .requiredOption(...configOption)
    .option('-g, --group <group>', 'the resource group')
    .option('-n, --node <node>', 'the node (standby)')
    .option('-r, --reason <text>', 'why (kept in the controller state and its history, shown by status)')
    .option('-f, --force', 'with --node: put it in standby even if one of its groups has no other node to go to (that group stays there, running, until one can take it)')
    .option('-w, --wait <duration>', 'with --node on: wait until its groups have moved (in seconds)', (v) => {
      const s = Number(v);
      if (!Number.isFinite(s) || s <= 0) throw new InvalidArgumentError('expected a number of seconds');
      return s;
    })
    .option('--json', 'print the result as JSON')
    .action(async (onOff: 'on' | 'off', opts: { config: string; group?: string; node?: string; reason?: string; force?: boolean; wait?: number; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      const request = maintenanceRequest(config, onOff, opts, operator());
      // Before anything is sent: a maintenance change is never sent unsigned on a cluster with a secret.
      const key = await messageKey(config, 'maintenance signs its request with the cluster secret (heartbeat.secretFile) so that access to Temporal alone cannot change it');
      const client = await connectClient(await resolveConnection(config.temporal));
      try {
        const updateId = `maintenance/${randomUUID()}`;
        const result = await client.workflow.getHandle(controllerWorkflowId(config.cluster)).executeUpdate(setMaintenanceUpdate, { args: [signedRequest(key, config.cluster, setMaintenanceUpdate.name, updateId, request)], updateId });
        if (opts.wait !== undefined && 'node' in result.target && result.on) await waitForMoves(client, config.cluster, result, opts.wait * 1000);
        if (opts.json) return printJson(result);
        process.stdout.write(describeMaintenance(result));
      } catch (err) {
        throw refusal(err, config.cluster, 'maintenance');
      } finally {
        await client.connection.close();
      }
    });
}

/** Polls the controller until the standby's moves are done (the group runs elsewhere). @throws CliError after `timeoutMs`. */
async function waitForMoves(client: Client, cluster: string, r: SetMaintenanceResult, timeoutMs: number): Promise<void> {
  const node = 'node' in r.target ? r.target.node : '';
  const until = Date.now() + timeoutMs;
  for (;;) {
    const state = await queryOwnership(client, cluster);
    const left = r.moves.filter((m) => state.groups[m.group]?.owner === node || state.groups[m.group]?.state !== 'running');
    if (left.length === 0) return;
    if (Date.now() > until) throw new CliError(`node ${node} is in standby, but ${left.map((m) => m.group).join(', ')} had not moved after ${timeoutMs / 1000}s (see haoscar status)`, EXIT.failure);
    await sleep(500);
  }
}

export function cleanupCommand(): Command {
  return new Command('cleanup')
    .description("reset the fail count of a group's heals (all its resources, or one), like pcs resource cleanup")
    .argument('<group>', 'the resource group')
    .argument('[resource]', 'one resource of it (default: all)')
    .requiredOption(...configOption)
    .option('-r, --reason <text>', 'why (kept in the heal history)')
    .option('--json', 'print the result as JSON')
    .action(async (groupName: string, resourceName: string | undefined, opts: { config: string; reason?: string; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      const group = config.groups.find((g) => g.name === groupName);
      if (!group) throw new CliError(`unknown group '${groupName}' (known: ${config.groups.map((g) => g.name).join(', ') || 'none'}); nothing was sent`, EXIT.usage);
      if (resourceName !== undefined && !group.resources.some((r) => r.name === resourceName)) {
        throw new CliError(`unknown resource '${resourceName}' in group '${groupName}' (known: ${group.resources.map((r) => r.name).join(', ')}); nothing was sent`, EXIT.usage);
      }
      const request: ResetFailCount = { operator: operator(), ...(opts.reason !== undefined ? { reason: opts.reason } : {}) };
      const parsed = resetFailCountSchema.safeParse(request);
      if (!parsed.success) throw new CliError(`${describeIssues(parsed.error, '(request)').join('; ')}; nothing was sent`, EXIT.usage);
      const resources = resourceName !== undefined ? [resourceName] : group.resources.map((r) => r.name);
      const client = await connectClient(await resolveConnection(config.temporal));
      try {
        const results: { resource: string; heal: string; result?: ResetFailCountResult; none?: string }[] = [];
        for (const resource of resources) {
          const heal = healWorkflowId(config.cluster, groupName, resource);
          try {
            results.push({ resource, heal, result: await client.workflow.getHandle(heal).executeUpdate(resetFailCountUpdate, { args: [parsed.data] }) });
          } catch (err) {
            const why = noHealRunning(err);
            if (why === undefined) throw err;
            results.push({ resource, heal, none: why });
          }
        }
        if (opts.json) return printJson({ group: groupName, resources: results });
        for (const r of results) {
          process.stdout.write(r.result
            ? `${groupName}/${r.resource}: fail count reset (${r.result.cleared} restart(s) in the window forgotten; the heal is ${r.result.phase})\n`
            : `${groupName}/${r.resource}: ${r.none}\n`);
        }
      } finally {
        await client.connection.close();
      }
    });
}

/** Why there is no fail count to reset (no heal running, or one that gave up), or undefined for another error. */
function noHealRunning(err: unknown): string | undefined {
  if (err instanceof WorkflowNotFoundError) return 'no heal is running: its fail count is 0';
  if (err instanceof WorkflowUpdateFailedError && err.cause instanceof ApplicationFailure && err.cause.type === ERROR_TYPES.HealGaveUp) return err.cause.message;
  // A heal that has closed answers no update ("workflow execution already completed").
  if (err instanceof Error && /already completed|not found/i.test(err.message)) return 'no heal is running: its fail count is 0';
  return undefined;
}

/**
 * A note for an operation started by hand on a group in maintenance (failover, switchover), or
 * undefined: the operation runs, and nothing else is done about the group by itself. Asked with a
 * short deadline; a controller that does not answer gives no note.
 */
export async function maintenanceNote(client: Client, cluster: string, group: string, what: string): Promise<string | undefined> {
  const state: Ownership | undefined = await client.withDeadline(Date.now() + 3000, () => queryOwnership(client, cluster)).catch(() => undefined);
  const held = maintenanceRefusal(state?.maintenance, group, 'automatic action');
  if (!held) return undefined;
  const mark = state!.maintenance!.groups[group]!;
  return `note: group ${group} is in maintenance (set by ${mark.operator}${mark.reason ? `: ${mark.reason}` : ''}): this ${what} by hand runs; nothing else is done about the group by itself until \`haoscar maintenance off --group ${group}\`\n`;
}

function refusal(err: unknown, cluster: string, command: string): unknown {
  if (err instanceof CliError) return err;
  if (err instanceof WorkflowNotFoundError) {
    return new CliError(`the controller of cluster '${cluster}' is not running: start the agents (the first one starts it); nothing was sent`, EXIT.unavailable);
  }
  if (err instanceof WorkflowUpdateFailedError) {
    const cause = err.cause;
    const type = cause instanceof ApplicationFailure ? cause.type : undefined;
    const message = cause?.message ?? err.message;
    if (type === ERROR_TYPES.UnknownNode || type === ERROR_TYPES.UnknownGroup || type === ERROR_TYPES.InvalidWorkflowInput) return new CliError(`the controller refused: ${message}`, EXIT.usage);
    if (type === ERROR_TYPES.Unauthenticated) {
      return new CliError(`the controller refused the ${command} request as not authenticated: ${message}. Is heartbeat.secretFile on this host the same secret as the workflow worker's (haoscar worker)?`, EXIT.failure);
    }
    return new CliError(`the controller refused: ${message}`, EXIT.failure);
  }
  return err;
}
