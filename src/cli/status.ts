/** `haoscar status`: who runs each group under which epoch, and how the nodes are seen (the controller's view). */
import { Command, InvalidArgumentError } from 'commander';
import { ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import { loadConfig } from '../config/load.js';
import { formatDuration, parseDuration } from '../config/duration.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import { queryOwnership } from '../agent/controller-link.js';
import { formatStatus, statusWarnings } from './status-text.js';
import { CliError, EXIT } from './errors.js';

/**
 * How long status waits for the controller's answer. A query is answered by the workflow worker
 * that runs the controller: with none polling (or its workflow task failing), Temporal holds the
 * query until its own timeout (30 s) and then fails it.
 */
const DEFAULT_TIMEOUT = '10s';

function parseTimeout(value: string): number {
  const ms = parseDuration(value);
  if (ms === undefined || ms < 100) throw new InvalidArgumentError('expected a duration of at least 100ms, such as 5s or 1500ms');
  return ms;
}

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

/** gRPC's code and details under a failed call, if any. */
function grpcCause(err: unknown): { code: number; details: string } | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const { code, details } = e as { code?: unknown; details?: unknown };
    if (typeof code === 'number') return { code, details: typeof details === 'string' ? details : e.message };
  }
  return undefined;
}

export function statusCommand(): Command {
  return new Command('status')
    .description("show which node runs each group, under which epoch, and the nodes' state (from the controller)")
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('--json', 'print the controller state as JSON')
    .option('--timeout <duration>', `how long to wait for the controller's answer (default ${DEFAULT_TIMEOUT})`, parseTimeout)
    .action(async (opts: { config: string; json?: boolean; timeout?: number }) => {
      const config = await loadConfig(opts.config);
      const timeoutMs = opts.timeout ?? parseDuration(DEFAULT_TIMEOUT)!;
      const client = await connectClient(await resolveConnection(config.temporal));
      try {
        const state = await client.withDeadline(Date.now() + timeoutMs, () => queryOwnership(client, config.cluster));
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ ...state, warnings: statusWarnings(state) }, null, 2)}\n`);
          return;
        }
        process.stdout.write(formatStatus(state, Date.now()));
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) {
          throw new CliError(`the controller of cluster '${config.cluster}' is not running: start the agents (the first one starts it)`, EXIT.unavailable);
        }
        // The server took the query but nobody answered (DEADLINE_EXCEEDED: ours, or Temporal's
        // "query timed out before a worker could process it"), or it refused it (a workflow task
        // failing, a worker that died in the middle of one).
        if (err instanceof ServiceError) {
          const cause = grpcCause(err);
          throw new CliError(noAnswerMessage(config.cluster, timeoutMs, cause === undefined || cause.code === 4 ? undefined : cause.details), EXIT.unavailable);
        }
        throw err;
      } finally {
        await client.connection.close();
      }
    });
}
