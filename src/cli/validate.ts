/** `haoscar validate FILE`: every problem of a config file at once, with paths and lines. */
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { formatDuration } from '../config/duration.js';

export function validateCommand(): Command {
  return new Command('validate')
    .description('check a configuration file; report every problem with its path, exit 3 if there are any')
    .argument('<file>', 'the haoscar.yaml to check')
    .action(async (file: string) => {
      // A ConfigError propagates to main's handler: message on stderr, exit code 3.
      const config = await loadConfig(file);
      const resources = config.groups.reduce((n, g) => n + g.resources.length, 0);
      process.stdout.write(
        `${file}: valid — cluster '${config.cluster}', ${config.nodes.length} node(s), ${config.groups.length} group(s), ${resources} resource(s)\n`,
      );
      for (const g of config.groups) {
        process.stdout.write(`  group ${g.name} on ${g.nodes.join(' > ')}\n`);
        for (const r of g.resources) {
          const c = r.check;
          process.stdout.write(
            `    ${r.type} ${r.name}${r.type === 'service' ? ` (${r.driver})` : ''}: ${c.type} check every ${formatDuration(c.intervalMs)}, rise ${c.rise}/fall ${c.fall}; ` +
              `heal: at most ${r.healing.maxRestarts} restart(s) in ${formatDuration(r.healing.windowMs)}\n`,
          );
        }
      }
    });
}
