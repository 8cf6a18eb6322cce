/**
 * `haoscar server`: the embedded Temporal server (the Temporal CLI's dev server on a SQLite
 * file) with HA-OSCAR's search attributes, for a demo or a small cluster. Runs in the
 * foreground until SIGINT/SIGTERM, then stops the server cleanly.
 */
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { createLogger } from '../log.js';
import { ensureTemporalCli } from '../temporal/cli-binary.js';
import { DevServerError, startDevServer } from '../temporal/dev-server.js';
import { CliError, EXIT } from './errors.js';
import { createExec } from '../exec.js';
import { SystemdNotifier } from '../systemd/notify.js';

/** Defaults without `--config`: a data directory under the current one, the usual ports. */
export const SERVER_DEFAULTS: Config['temporal']['server'] = {
  dataDir: './.haoscar/temporal',
  ip: '127.0.0.1',
  port: 7233,
  uiPort: 8233,
};

interface ServerFlags {
  config?: string;
  dataDir?: string;
  ip?: string;
  port?: number;
  uiPort?: number;
  headless?: boolean;
  logLevel: string;
}

function parsePort(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65_535) throw new InvalidArgumentError('expected a port number (1-65535)');
  return n;
}

export function serverCommand(): Command {
  return new Command('server')
    .description('run the embedded Temporal server (Temporal CLI dev server on SQLite) until interrupted')
    // A command added with addCommand() does not inherit these from the program: without
    // exitOverride, commander would process.exit(1) on a usage error instead of letting
    // main() map it to EXIT.usage.
    .exitOverride()
    .showHelpAfterError()
    .option('-c, --config <file>', 'take defaults from the temporal.server section of this config file')
    .option('--data-dir <dir>', `directory for the SQLite file (default ${SERVER_DEFAULTS.dataDir})`)
    .option('--ip <ip>', `address to bind (default ${SERVER_DEFAULTS.ip})`)
    .option('--port <n>', `frontend gRPC port (default ${SERVER_DEFAULTS.port})`, parsePort)
    .option('--ui-port <n>', `Web UI port (default ${SERVER_DEFAULTS.uiPort})`, parsePort)
    .addOption(new Option('--headless', 'run without the Web UI').conflicts('uiPort'))
    // warn would show the dial errors its services log to each other while it starts up.
    .addOption(new Option('--log-level <level>', "the server's own log level").choices(['debug', 'info', 'warn', 'error']).default('error'))
    .action(async (flags: ServerFlags) => {
      const config = flags.config ? await loadConfig(flags.config) : undefined;
      const base = config?.temporal.server ?? SERVER_DEFAULTS;
      const dataDir = flags.dataDir ?? base.dataDir;
      const ip = flags.ip ?? base.ip;
      const port = flags.port ?? base.port;
      const uiPort = flags.headless ? false : (flags.uiPort ?? base.uiPort);
      const namespace = config?.temporal.namespace ?? 'default';
      const logger = createLogger({ name: 'haoscar-server' });
      // Under systemd (Type=notify): READY=1 once the server answers (docs/packaging.md).
      const systemd = new SystemdNotifier({ exec: createExec(logger), logger });

      const cli = await ensureTemporalCli({ logger, onProgress: (message) => process.stderr.write(`haoscar: ${message}\n`) });

      // Handle SIGINT/SIGTERM from before the server is spawned until it has stopped: a signal
      // in between (while it starts, or just after it is ready) would otherwise take the
      // default action and leave the server process behind. The listeners stay until the end
      // on purpose: removing them inside the handler makes execa's signal-exit hook, which
      // runs in the same emit, believe nobody handles the signal and re-raise it (exit 143).
      const stopRequested = new AbortController();
      const onSignal = (signal: NodeJS.Signals) => {
        if (stopRequested.signal.aborted) return; // already stopping (SIGKILL fallback after 10 s)
        logger.info({ signal }, 'stopping the Temporal server');
        void systemd.stopping(`stopping the Temporal server (${signal})`);
        stopRequested.abort(signal);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        let server;
        try {
          server = await startDevServer({
            cli,
            dbFile: join(dataDir, 'temporal.db'),
            ip,
            port,
            uiPort,
            namespace,
            logger,
            logLevel: flags.logLevel,
            signal: stopRequested.signal,
            // The server logs JSON lines, like ours: pass them through to stderr.
            onOutput: (line) => process.stderr.write(`${line}\n`),
          });
        } catch (err) {
          if (stopRequested.signal.aborted) return; // interrupted while starting: it is stopped
          if (err instanceof DevServerError) throw new CliError(err.message, EXIT.unavailable);
          throw err;
        }

        await systemd.ready(`Temporal frontend ${server.address} (namespace ${server.namespace})${server.uiUrl ? `, Web UI ${server.uiUrl}` : ''}, state in ${join(dataDir, 'temporal.db')}`);
        process.stdout.write(
          `Temporal frontend: ${server.address} (namespace ${server.namespace})\n` +
            (server.uiUrl ? `Temporal Web UI:   ${server.uiUrl}\n` : '') +
            `State:             ${join(dataDir, 'temporal.db')}\n` +
            'Press Ctrl-C to stop.\n',
        );

        const requested = new Promise<void>((res) => {
          if (stopRequested.signal.aborted) res();
          stopRequested.signal.addEventListener('abort', () => res(), { once: true });
        });
        const exit = await Promise.race([requested.then(() => undefined), server.exited]);
        if (exit && !stopRequested.signal.aborted) {
          // Ctrl-C in a terminal signals the whole process group, so the server may have
          // exited from the same SIGINT just before our handler ran: that is a clean stop.
          await Promise.race([requested, sleep(200)]);
        }
        if (exit && !stopRequested.signal.aborted) {
          throw new CliError(
            `the Temporal server stopped on its own (${exit.signal ? `signal ${exit.signal}` : `exit code ${exit.exitCode}`})`,
            EXIT.unavailable,
          );
        }
        await server.stop();
        process.stdout.write('Temporal server stopped.\n');
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await systemd.flush();
      }
    });
}
