/**
 * `haoscar reload`: this node's agent reads its configuration file again and applies what can be
 * changed live, all or nothing (docs/reload.md). The command finds the agent through its local
 * status socket (its pid, and whether it handles SIGHUP at all), sends SIGHUP, and waits until
 * the agent's status counts one more finished reload; then prints the outcome.
 *
 * Exit codes: 0 applied (or nothing to change), 1 refused (a change needs a restart; nothing
 * changed), 3 the file is invalid (nothing sent, or the agent found it so), 4 no agent answered.
 */
import { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, loadConfig } from '../config/load.js';
import { formatDuration, parseDuration } from '../config/duration.js';
import { readLocalStatus, LocalStatusError, type LocalStatus } from '../agent/local-status.js';
import type { ReloadOutcome } from '../agent/reload.js';
import { CliError, EXIT, ExitWith } from './errors.js';
import { printJson } from './output.js';
import { parseTimeout } from './options.js';

const DEFAULT_TIMEOUT = '15s';
const POLL_MS = 100;


/** The exit code of a reload's outcome. */
export function reloadExitCode(outcome: ReloadOutcome): number {
  switch (outcome.result) {
    case 'applied':
    case 'unchanged':
      return EXIT.ok;
    case 'refused':
      return EXIT.failure;
    case 'invalid':
      return EXIT.config;
  }
}

/** The outcome as an administrator reads it (pure, for the table test). */
export function formatReloadOutcome(node: string, pid: number, o: ReloadOutcome): string {
  const head = `reload of node ${node} (agent pid ${pid}, ${o.file})`;
  const value = (v: unknown) => (v === undefined ? '(unset)' : JSON.stringify(v));
  switch (o.result) {
    case 'applied':
      return `${head}: applied\n${o.applied.map((c) => `  ${c.path}: ${value(c.from)} -> ${value(c.to)}\n`).join('')}`;
    case 'unchanged':
      return `${head}: nothing to change (the file says what the agent runs)\n`;
    case 'refused':
      return `${head}: refused; nothing was changed, the agent runs on with its configuration\n` +
        `${o.refused.map((r) => `  ${r.path} ${isSecretStep(r.path) ? 'not now' : 'needs a restart'}: ${r.why}\n`).join('')}` +
        (o.refused.every((r) => isSecretStep(r.path))
          ? 'A step of a secret rotation, taken too early: do what it says on the peer first, then reload here again (docs/reload.md#rotating-the-cluster-secret).\n'
          : 'Change the file back, or restart the agent to apply it (docs/reload.md).\n');
    case 'invalid':
      return `${head}: the file is invalid; nothing was changed, the agent runs on with its configuration\n${o.error ?? ''}\n`;
  }
}

export function reloadCommand(): Command {
  return new Command('reload')
    .description("make this node's agent read its configuration file again and apply what can change live (check timing, heal policy, log level); a change that needs a restart changes nothing and is named")
    .requiredOption('-c, --config <file>', 'the cluster configuration (checked here first; the agent reads its own file)', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('-n, --node <name>', "this node's name (default: the one agent whose socket is in agent.stateDir)", process.env.HAOSCAR_NODE)
    .option('--json', 'print the outcome as JSON')
    .option('--timeout <duration>', `how long to wait for the agent's outcome (default ${DEFAULT_TIMEOUT})`, parseTimeout)
    .action(async (opts: { config: string; node?: string; json?: boolean; timeout?: number }) => {
      const config = await loadConfig(opts.config).catch((err: unknown) => {
        if (err instanceof ConfigError) throw new CliError(`invalid configuration, no reload asked: ${err.message}`, EXIT.config);
        throw err;
      });
      if (opts.node !== undefined && !config.nodes.some((n) => n.name === opts.node)) {
        throw new CliError(`node '${opts.node}' is not in cluster '${config.cluster}' (known nodes: ${config.nodes.map((n) => n.name).join(', ')})`, EXIT.usage);
      }
      const timeoutMs = opts.timeout ?? parseDuration(DEFAULT_TIMEOUT)!;
      const read = () => readLocalStatus(config.agent.stateDir, opts.node, Math.min(timeoutMs, 5000)).catch((err: unknown) => {
        if (err instanceof LocalStatusError) throw new CliError(`no reload asked: ${err.message}`, err.problem === 'ambiguous' ? EXIT.usage : EXIT.unavailable);
        throw err;
      });
      const before = await read();
      if (!before.reload) {
        // An agent that does not handle SIGHUP dies of it (its default action).
        throw new CliError(`the agent of node ${before.node} (pid ${before.pid}, release ${before.release}) does not reload its configuration, and SIGHUP would stop it: restart it to apply the change (docs/upgrading.md)`, EXIT.failure);
      }
      try {
        process.kill(before.pid, 'SIGHUP');
      } catch (err) {
        throw new CliError(`cannot signal the agent (pid ${before.pid}): ${(err as Error).message}`, EXIT.failure);
      }
      const outcome = await waitForOutcome(before, read, timeoutMs);
      if (opts.json) printJson({ node: before.node, pid: before.pid, ...outcome });
      else process.stdout.write(formatReloadOutcome(before.node, before.pid, outcome));
      throw new ExitWith(reloadExitCode(outcome));
    });
}

/** Polls the agent's status until it has finished one more reload than `before` said. */
async function waitForOutcome(before: LocalStatus, read: () => Promise<LocalStatus>, timeoutMs: number): Promise<ReloadOutcome> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    await sleep(POLL_MS);
    const now = await read();
    if (now.pid !== before.pid) throw new CliError(`the agent of node ${before.node} restarted (pid ${before.pid} -> ${now.pid}) during the reload: it runs with the file as it read it at its start`, EXIT.failure);
    if (now.reload && now.reload.completed > before.reload!.completed && now.reload.last) return now.reload.last;
    if (performance.now() >= until) {
      throw new CliError(`the agent of node ${before.node} (pid ${before.pid}) was sent SIGHUP but reported no reload within ${formatDuration(timeoutMs)}: see its log (journalctl -u haoscar-agent)`, EXIT.unavailable);
    }
  }
}

/** A refusal of a secret rotation step (taken too early), not of a setting that needs a restart. */
function isSecretStep(path: string): boolean {
  return path === 'heartbeat.secretFile' || path === 'heartbeat.acceptSecretFiles';
}
