/**
 * `haoscar status`: who runs each group under which epoch, and how the nodes are seen (the
 * controller's view), with what this node's agent knows by itself (src/agent/local-status.ts),
 * shown even when Temporal does not answer; `--check` for monitoring systems.
 */
import { Command } from 'commander';
import { ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import { loadConfig } from '../config/load.js';
import { formatDuration, parseDuration } from '../config/duration.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import { queryOwnership } from '../agent/controller-link.js';
import { formatHeals, formatLocalStatus, formatStatus, printable, statusCheck, statusWarnings } from './status-text.js';
import { runningHeals, type RunningHeal } from './running-heals.js';
import { readLocalStatus, LocalStatusError, type LocalStatus } from '../agent/local-status.js';
import type { Config } from '../config/types.js';
import type { Ownership } from '../../workflows/shared.js';
import type { Client } from '@temporalio/client';
import { setTimeout as sleep } from 'node:timers/promises';
import { CliError, EXIT, ExitWith } from './errors.js';
import { parseTimeout } from './options.js';
import { printJson } from './output.js';

/**
 * How long status waits for the controller's answer. A query is answered by the workflow worker
 * that runs the controller: with none polling (or its workflow task failing), Temporal holds the
 * query until its own timeout (30 s) and then fails it.
 */
const DEFAULT_TIMEOUT = '10s';


/**
 * What status says when the controller gives no answer within `timeoutMs`: the server took the
 * query, but no workflow worker answered it (none runs, or the controller's workflow task fails),
 * or Temporal refused it (`said`: its words).
 */
export function noAnswerMessage(cluster: string, timeoutMs: number, said?: string): string {
  const why = said === undefined ? `gave no answer within ${formatDuration(timeoutMs)}` : `gave no answer (Temporal: ${said})`;
  return `the workflow worker does not answer: is \`haoscar worker\` (or an agent with workflows) running? ` +
    `(the controller of cluster '${cluster}' ${why}; if a worker runs, its log says why the controller's workflow task fails). ` +
    'What the groups do now is not known from here: the agents go on with what they hold, under their leases.';
}

const GRPC_CANCELLED = 1;
const GRPC_DEADLINE_EXCEEDED = 4;

/** gRPC's code and details under a failed call, if any. */
function grpcCause(err: unknown): { code: number; details: string } | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const { code, details } = e as { code?: unknown; details?: unknown };
    if (typeof code === 'number') return { code, details: typeof details === 'string' ? details : e.message };
  }
  return undefined;
}

/** A file set's lag above which `--check` warns, unless `--max-lag` says otherwise. */
const DEFAULT_MAX_LAG = '5m';

interface StatusOptions {
  config: string;
  node?: string;
  json?: boolean;
  timeout?: number;
  check?: boolean;
  watch?: number | true;
  maxLag?: number;
}

/** One look at the cluster: the controller's view (or why there is none) and this node's own. */
interface StatusReport {
  controller?: Ownership;
  /** Why the controller's view is missing, with the exit code that says so. */
  controllerError?: CliError;
  local?: LocalStatus;
  /** Why this node's view is missing, when that is worth saying (an agent that should be there). */
  localError?: string;
  /** The heals running now (absent when Temporal could not be asked). */
  heals?: RunningHeal[];
  /** Why the running heals could not be listed. */
  healsError?: string;
}

async function look(config: Config, client: Client | undefined, connectError: CliError | undefined, opts: StatusOptions, timeoutMs: number): Promise<StatusReport> {
  const [controller, heals, local] = await Promise.all([
    client ? askController(client, config.cluster, timeoutMs) : Promise.resolve({ error: connectError! }),
    client
      ? runningHeals(client, config, Date.now() + timeoutMs).then(
          (list) => ({ list }),
          (err: unknown) => ({ error: `the running heals could not be listed: ${err instanceof Error ? err.message : String(err)}` }),
        )
      : Promise.resolve(undefined),
    readLocalStatus(config.agent.stateDir, opts.node, timeoutMs).then(
      (status) => ({ status }),
      (err: unknown) => {
        if (!(err instanceof LocalStatusError)) throw err;
        // Not a node, or several lab agents sharing a directory: nothing to say unless asked.
        const quiet = opts.node === undefined && (err.problem === 'absent' || err.problem === 'ambiguous');
        return quiet ? {} : { error: err.message };
      },
    ),
  ]);
  return {
    ...('state' in controller ? { controller: controller.state } : { controllerError: controller.error }),
    ...('status' in local && local.status ? { local: local.status } : {}),
    ...('error' in local && local.error ? { localError: local.error } : {}),
    ...(heals && 'list' in heals ? { heals: heals.list } : {}),
    ...(heals && 'error' in heals ? { healsError: heals.error } : {}),
  };
}

async function askController(client: Client, cluster: string, timeoutMs: number): Promise<{ state: Ownership } | { error: CliError }> {
  const asked = performance.now();
  try {
    return { state: await client.withDeadline(Date.now() + timeoutMs, () => queryOwnership(client, cluster)) };
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) {
      return { error: new CliError(`the controller of cluster '${cluster}' is not running: start the agents (the first one starts it)`, EXIT.unavailable) };
    }
    // The server took the query but nobody answered (DEADLINE_EXCEEDED: ours, or Temporal's
    // "query timed out before a worker could process it"), or it refused it (a workflow task
    // failing, a worker that died in the middle of one).
    // What Temporal says when it gives up first depends on its load and version (DEADLINE_EXCEEDED,
    // CANCELLED as our deadline passes, "query timed out" as the server's own, shorter deadline
    // passes): a refusal that came after the deadline, or just before it, is the deadline.
    if (err instanceof ServiceError) {
      const cause = grpcCause(err);
      const waitedOut = performance.now() - asked >= timeoutMs * 0.8;
      const deadline = cause === undefined || cause.code === GRPC_DEADLINE_EXCEEDED || cause.code === GRPC_CANCELLED || waitedOut;
      return { error: new CliError(noAnswerMessage(cluster, timeoutMs, deadline ? undefined : cause.details), EXIT.unavailable) };
    }
    throw err;
  }
}

/** Prints one report; @returns the exit code it calls for. */
function print(report: StatusReport, opts: StatusOptions, maxLagMs: number): number {
  const verdict = statusCheck(report.controller, report.local, { maxLagMs, ...(report.controllerError ? { unreachable: report.controllerError.message } : {}) });
  if (opts.json) {
    const json = {
      ...(report.controller ? { ...report.controller, warnings: statusWarnings(report.controller) } : { error: report.controllerError?.message }),
      ...(report.local ? { local: report.local } : {}),
      ...(report.localError ? { localError: report.localError } : {}),
      ...(report.heals ? { heals: report.heals } : {}),
      ...(report.healsError ? { healsError: report.healsError } : {}),
      check: { code: verdict.code, line: verdict.line, problems: verdict.problems },
    };
    printJson(json);
  } else if (opts.check) {
    process.stdout.write(`${verdict.line}\n`);
  } else {
    if (report.controller) process.stdout.write(formatStatus(report.controller, Date.now()));
    if (report.heals) process.stdout.write(formatHeals(report.heals, Date.now()));
    // Only beside a controller that answered: without one, its error already says why.
    if (report.healsError && report.controller) process.stdout.write(`${printable(`  ${report.healsError}`)}\n`);
    if (report.local) process.stdout.write(formatLocalStatus(report.local));
    if (report.localError) process.stdout.write(`${printable(`this node: ${report.localError}`)}\n`);
  }
  if (opts.check) return verdict.code;
  if (report.controllerError) {
    // On stderr in every form (--json has it as `error` too): what a script's log keeps.
    if (!opts.check) process.stderr.write(`haoscar: ${report.controllerError.message}\n`);
    return report.controllerError.exitCode;
  }
  return EXIT.ok;
}

export function statusCommand(): Command {
  return new Command('status')
    .description("show which node runs each group, under which epoch, and the nodes' state (from the controller), and what this node's agent knows by itself (heartbeats, leases, guard, checks, file sets)")
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('-n, --node <name>', "this node's name, for its agent's own view (default: the one agent whose socket is in agent.stateDir)", process.env.HAOSCAR_NODE)
    .option('--json', 'print everything as JSON (the controller state, `heals`, `local`, and the `check` verdict)')
    .option('--check', 'print one line and exit as a monitoring plugin does: 0 OK, 1 WARNING (degraded), 2 CRITICAL (a group down or unowned), 3 UNKNOWN (no answer)')
    .option('--max-lag <duration>', `with --check: a standby file set lagging more than this is a WARNING (default ${DEFAULT_MAX_LAG})`, parseTimeout)
    .option('-w, --watch [interval]', 'show it again every interval (default 2s) until Ctrl-C', parseTimeout)
    .option('--timeout <duration>', `how long to wait for each answer (default ${DEFAULT_TIMEOUT})`, parseTimeout)
    .action(async (opts: StatusOptions) => {
      const config = await loadConfig(opts.config);
      if (opts.node !== undefined && !config.nodes.some((n) => n.name === opts.node)) {
        throw new CliError(`node '${opts.node}' is not in cluster '${config.cluster}' (known nodes: ${config.nodes.map((n) => n.name).join(', ')})`, EXIT.usage);
      }
      if (opts.watch !== undefined && (opts.json || opts.check)) throw new CliError('--watch shows the text report: use it without --json and --check', EXIT.usage);
      const timeoutMs = opts.timeout ?? parseDuration(DEFAULT_TIMEOUT)!;
      const maxLagMs = opts.maxLag ?? parseDuration(DEFAULT_MAX_LAG)!;
      // What the node knows by itself is shown even when Temporal cannot be reached at all.
      let client: Client | undefined;
      let connectError: CliError | undefined;
      try {
        client = await connectClient(await resolveConnection(config.temporal));
      } catch (err) {
        if (!(err instanceof CliError)) throw err;
        connectError = err;
      }
      try {
        if (opts.watch === undefined) {
          const code = print(await look(config, client, connectError, opts, timeoutMs), opts, maxLagMs);
          if (code !== EXIT.ok) throw new ExitWith(code);
          return;
        }
        const everyMs = opts.watch === true ? 2000 : opts.watch;
        const stop = new AbortController();
        process.once('SIGINT', () => stop.abort());
        while (!stop.signal.aborted) {
          const report = await look(config, client, connectError, opts, timeoutMs);
          // Clear the screen and go home, as watch(1) does, then the report and when it was taken.
          process.stdout.write('\x1b[H\x1b[2J');
          process.stdout.write(`every ${formatDuration(everyMs)}: ${new Date().toISOString()}\n`);
          print(report, opts, maxLagMs);
          await sleep(everyMs, undefined, { signal: stop.signal }).catch(() => undefined);
        }
      } finally {
        await client?.connection.close();
      }
    });
}
