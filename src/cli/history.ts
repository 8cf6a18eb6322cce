/**
 * `haoscar history [GROUP]`: the postmortem timeline of a cluster (its controller's runs and
 * every heal, failover, switchover and resync) from the workflow histories; `haoscar history
 * show WORKFLOW_ID`: one operation step by step. Text, `--json` or `--markdown` (a report for
 * an incident ticket). docs/postmortem.md.
 */
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../config/load.js';
import { parseDuration } from '../config/duration.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import { fetchRun, fetchRuns } from '../history/fetch.js';
import { buildTimeline, operationStory } from '../history/timeline.js';
import { renderMarkdown, renderOperation, renderText } from '../history/render.js';
import { CliError, EXIT } from './errors.js';
import { printJson } from './output.js';

const DEFAULT_SINCE = '24h';
const DEFAULT_TIMEOUT = '20s';

function durationOption(min: number, what: string) {
  return (value: string): number => {
    const ms = parseDuration(value);
    if (ms === undefined || ms < min) throw new InvalidArgumentError(`expected ${what}, such as 30m, 24h or 7d`);
    return ms;
  };
}

/** --since also takes a day count (7d) or an ISO time (2026-12-01T08:00Z). */
function parseSince(value: string): number {
  const ms = parseDuration(value.replace(/^(\d+)d$/, (_, d: string) => `${Number(d) * 24}h`));
  if (ms !== undefined && ms >= 1000) return Date.now() - ms;
  const t = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && Number.isFinite(t)) {
    if (t > Date.now()) throw new InvalidArgumentError(`${value} is in the future`);
    return t;
  }
  throw new InvalidArgumentError('expected a duration back from now (30m, 24h, 7d) or a UTC time (2026-12-01T08:00Z)');
}

type Format = 'text' | 'json' | 'markdown';
function formatOf(opts: { json?: boolean; markdown?: boolean }): Format {
  if (opts.json && opts.markdown) throw new CliError('--json and --markdown do not go together: choose one', EXIT.usage);
  return opts.json ? 'json' : opts.markdown ? 'markdown' : 'text';
}

const configOption = ['-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml'] as const;
const timeoutOption = ['--timeout <duration>', `how long to wait for Temporal's answers (default ${DEFAULT_TIMEOUT})`, durationOption(100, 'a duration of at least 100ms')] as const;

export function historyCommand(): Command {
  const history = new Command('history')
    .description('the postmortem timeline: controller runs, heals, failovers, switchovers and resyncs, from the workflow histories')
    .argument('[group]', 'only this group (and the controller)')
    .requiredOption(...configOption)
    .option('--since <when>', `from how long ago (30m, 24h, 7d) or from a UTC time (default ${DEFAULT_SINCE})`, parseSince)
    .option('--json', 'print the timeline (or with show, the operation) as JSON')
    .option('--markdown', 'print a Markdown report for an incident ticket')
    .option(...timeoutOption)
    .action(async (group: string | undefined, opts: { config: string; since?: number; json?: boolean; markdown?: boolean; timeout?: number }) => {
      const format = formatOf(opts);
      const config = await loadConfig(opts.config);
      if (group !== undefined && !config.groups.some((g) => g.name === group)) {
        throw new CliError(`unknown group '${group}' (known: ${config.groups.map((g) => g.name).join(', ') || 'none'})`, EXIT.usage);
      }
      const since = opts.since ?? Date.now() - parseDuration(DEFAULT_SINCE)!;
      const timeoutMs = opts.timeout ?? parseDuration(DEFAULT_TIMEOUT)!;
      const client = await connectClient(await resolveConnection(config.temporal));
      try {
        const runs = await fetchRuns(client, { cluster: config.cluster, ...(group !== undefined ? { group } : {}), since, timeoutMs });
        const timeline = buildTimeline(runs, { since, until: Date.now(), cluster: config.cluster, ...(group !== undefined ? { group } : {}) });
        if (format === 'json') printJson(timeline);
        else process.stdout.write(format === 'markdown' ? renderMarkdown(timeline) : renderText(timeline));
      } finally {
        await client.connection.close();
      }
    });
  history.command('show')
    .exitOverride() // as main.ts does for the top-level commands: usage errors reach its handler (exit 2)
    .showHelpAfterError()
    .description('one operation step by step: every activity, timer and child with its summary and duration')
    .argument('<workflow-id>', 'the workflow ID (as `haoscar history` prints it, e.g. failover/prod/web)')
    .option('--run <run-id>', 'that run (default: the latest)')
    // --config, --json, --markdown and --timeout are history's (commander hands them to the parent wherever they are).
    .action(async (workflowId: string, _opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<{ config: string; run?: string; json?: boolean; markdown?: boolean; timeout?: number }>();
      const format = formatOf(opts);
      const config = await loadConfig(opts.config);
      const timeoutMs = opts.timeout ?? parseDuration(DEFAULT_TIMEOUT)!;
      const client = await connectClient(await resolveConnection(config.temporal));
      try {
        const story = operationStory(await fetchRun(client, { workflowId, ...(opts.run !== undefined ? { runId: opts.run } : {}), timeoutMs }));
        if (format === 'json') printJson(story);
        else process.stdout.write(renderOperation(story, format));
      } finally {
        await client.connection.close();
      }
    });
  return history;
}
