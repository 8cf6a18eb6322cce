/** `haoscar validate FILE`: every problem of a config file at once, with paths and lines. */
import { Command } from 'commander';
import { ConfigError, loadConfig } from '../config/load.js';
import { formatDuration } from '../config/duration.js';
import type { Config } from '../config/types.js';
import { printJson } from './output.js';
import { checkAgents } from '../config/agent-check.js';
import { createExec } from '../exec.js';
import { silentLogger } from '../log.js';

export function validateCommand(): Command {
  return new Command('validate')
    .description('check a configuration file; report every problem with its path, exit 3 if there are any')
    .argument('<file>', 'the haoscar.yaml to check')
    .option('--json', 'print the loaded configuration (or every problem) as JSON')
    .option('--no-agents', "do not check the OCF resources and fence agents against the agents installed here (on a machine that runs neither, e.g. the witness)")
    .action(async (file: string, opts: { json?: boolean; agents: boolean }) => {
      // A ConfigError propagates to main's handler: message on stderr, exit code 3 (with --json,
      // the problems are printed on stdout as well, with their paths and lines).
      const config = await loadConfig(file)
        .then(async (c) => {
          // Each OCF and fence agent's meta-data: installed here, parameters it declares, required ones given.
          if (opts.agents) await checkAgents(c, file, createExec(silentLogger));
          return c;
        })
        .catch((err: unknown) => {
          if (opts.json && err instanceof ConfigError) printJson({ file, valid: false, problems: err.issues });
          throw err;
        });
      if (opts.json) return printJson(summary(file, config));
      const resources = config.groups.reduce((n, g) => n + g.resources.length, 0);
      process.stdout.write(
        `${file}: valid — cluster '${config.cluster}', ${config.nodes.length} node(s), ${config.groups.length} group(s), ${resources} resource(s)\n`,
      );
      for (const g of config.groups) {
        process.stdout.write(`  group ${g.name} on ${g.nodes.join(' > ')}\n`);
        for (const r of g.resources) {
          const c = r.check;
          process.stdout.write(
            `    ${r.type} ${r.name}${r.type === 'service' ? ` (${r.driver})` : r.type === 'ocf' ? ` (${r.agent})` : ''}: ${c.type} check every ${formatDuration(c.intervalMs)}, rise ${c.rise}/fall ${c.fall}; ` +
              `heal: at most ${r.healing.maxRestarts} restart(s) in ${formatDuration(r.healing.windowMs)}\n`,
          );
        }
      }
    });
}

/** What `validate --json` prints for a valid file: the cluster as the agents will read it. */
function summary(file: string, config: Config) {
  return {
    file,
    valid: true,
    cluster: config.cluster,
    nodes: config.nodes.map((n) => n.name),
    groups: config.groups.map((g) => ({
      name: g.name,
      nodes: g.nodes,
      resources: g.resources.map((r) => ({
        type: r.type,
        name: r.name,
        ...(r.type === 'service' ? { driver: r.driver } : {}),
        ...(r.type === 'ocf' ? { agent: r.agent, params: r.params } : {}),
        check: { type: r.check.type, intervalMs: r.check.intervalMs, timeoutMs: r.check.timeoutMs, rise: r.check.rise, fall: r.check.fall },
        healing: { maxRestarts: r.healing.maxRestarts, windowMs: r.healing.windowMs },
      })),
    })),
  };
}
