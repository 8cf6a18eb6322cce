#!/usr/bin/env node
/**
 * `haoscar`: one file per command under src/cli/, wired here; one error handler.
 */
import { Command, CommanderError } from 'commander';
import { CliError, EXIT, ExitWith } from './errors.js';
import { ConfigError } from '../config/load.js';
import { serverCommand } from './server.js';
import { validateCommand } from './validate.js';
import { agentCommand } from './agent.js';
import { healCommand } from './heal.js';
import { failoverCommand } from './failover.js';
import { resyncCommand, switchoverCommand } from './switchover.js';
import { cloneCommand } from './clone.js';
import { imageCommand } from './image.js';
import { imageRecipeCommand } from './image-recipe.js';
import { syncCommand } from './sync.js';
import { workerCommand } from './worker.js';
import { rescueCommand } from './rescue.js';
import { statusCommand } from './status.js';
import { confirmDownCommand } from './confirm-down.js';
import { historyCommand } from './history.js';
import { cleanupCommand, maintenanceCommand } from './maintenance.js';
import { packageVersion } from '../package-info.js';
import { doctorCommand } from './doctor.js';
import { reloadCommand } from './reload.js';
import { drillCommand } from './drill.js';

export function buildProgram(): Command {
  const program = new Command('haoscar')
    .description('HA-OSCAR: high availability for Linux services, orchestrated by Temporal')
    .version(packageVersion(), '-V, --version', 'print the version of HA-OSCAR')
    .showHelpAfterError()
    .exitOverride();
  // Subcommands added this way do not inherit exitOverride(): copy it, so that usage errors
  // reach main()'s handler (exit 2) instead of commander calling process.exit itself.
  for (const command of [serverCommand(), validateCommand(), agentCommand(), workerCommand(), rescueCommand(), healCommand(), failoverCommand(), switchoverCommand(), resyncCommand(), syncCommand(), statusCommand(), confirmDownCommand(), historyCommand(), maintenanceCommand(), cleanupCommand(), doctorCommand(), reloadCommand(), drillCommand(), cloneCommand(),
    // `haoscar image capture|deploy`; other image subcommands (`image recipe`) go in its array.
    imageCommand([imageRecipeCommand()])]) {
    program.addCommand(command.copyInheritedSettings(program));
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    if (err instanceof ConfigError) {
      process.stderr.write(`haoscar: invalid configuration: ${err.message}\n`);
      return EXIT.config;
    }
    if (err instanceof ExitWith) return err.exitCode;
    if (err instanceof CliError) {
      process.stderr.write(`haoscar: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`haoscar: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return EXIT.failure;
  }
}

// Run when executed directly (tsx src/cli/main.ts, or bin/haoscar.js), not when imported by tests.
// Exits explicitly: the Temporal SDK's runtime keeps native handles that would otherwise hold
// a finished command (or an agent that refused to start) alive. Logs are written synchronously.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exit(await main(process.argv));
}
