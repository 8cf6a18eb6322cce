/** `haoscar agent --config FILE --node NAME`: run this node's agent until SIGTERM/SIGINT. */
import { resolve } from 'node:path';
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { checkAgents } from '../config/agent-check.js';
import { createLogger } from '../log.js';
import { Agent, UnknownNodeError } from '../agent/agent.js';
import { startMetrics } from '../metrics/endpoint.js';
import { CliError, EXIT } from './errors.js';
import { HeartbeatSecretError } from '../heartbeat/secret.js';
import { EpochStoreError } from '../agent/epoch-store.js';
import { createExec } from '../exec.js';
import { SystemdNotifier } from '../systemd/notify.js';

export function agentCommand(): Command {
  return new Command('agent')
    .description("run this node's agent: Temporal workers for its queue and the cluster's, and monitors of its services")
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .requiredOption('-n, --node <name>', "this node's name in the configuration", process.env.HAOSCAR_NODE)
    .action(async (opts: { config: string; node: string }) => {
      const config = await loadConfig(opts.config);
      if (!config.nodes.some((n) => n.name === opts.node)) throw new CliError(new UnknownNodeError(opts.node, config).message, EXIT.config);
      const logger = createLogger({ level: config.agent.logLevel, name: 'haoscar-agent', node: opts.node });
      // Before anything starts: an OCF or fence agent missing here, or a parameter it does not take, is a configuration error.
      await checkAgents(config, opts.config, createExec(logger), opts.node);
      // Under systemd (Type=notify): the watchdog is fed from this event loop from now on, and
      // READY=1 is sent when the agent says it is ready (docs/packaging.md#readiness).
      const systemd = new SystemdNotifier({ exec: createExec(logger), logger });
      systemd.startWatchdog();
      const started: { agent?: Agent } = {};
      // Before any connection (the SDK's exporter is part of its runtime); a bad address stops here.
      const metrics = await startMetrics({
        config,
        listen: config.agent.metrics.listen,
        logger,
        families: () => started.agent?.metricFamilies() ?? [],
        // The cluster's view (controller, operations) from the nodes that run the workflows.
        client: () => (config.agent.workflows ? started.agent?.temporalClient : undefined),
      });
      const onStatus = (s: { ready: boolean; text: string }) => void (s.ready ? systemd.ready(s.text) : systemd.status(s.text));
      // The handlers are set before the start: a signal while it runs (systemd stopping a unit
      // that is starting, Ctrl-C at once) must stop the agent cleanly once it has started, not
      // kill it by the default action halfway through.
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'shutting down');
        void systemd.stopping(`stopping (${signal}): letting go of its groups`);
        void started.agent?.stop();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      // SIGHUP reloads the configuration file (`haoscar reload`, docs/reload.md). Set before the
      // start too: its default action would kill the agent; one asked while it starts runs once started.
      const configFile = resolve(opts.config);
      let reloadAsked = false;
      process.on('SIGHUP', () => {
        if (stopping) return;
        if (!started.agent) {
          reloadAsked = true;
          logger.warn('SIGHUP while the agent starts: the configuration is read again once it has started');
          return;
        }
        logger.info({ file: configFile }, 'SIGHUP: reloading the configuration');
        void started.agent.reload(configFile);
      });
      const agent = await Agent.start({ config, configFile, node: opts.node, logger, onStatus }).catch((err: unknown) => {
        if (err instanceof HeartbeatSecretError) throw new CliError(err.message, EXIT.config);
        // A damaged epoch file is not overwritten (epoch-store.ts): the operator decides, no stack trace.
        if (err instanceof EpochStoreError) throw new CliError(err.message, EXIT.failure);
        throw err;
      });
      started.agent = agent;
      if (stopping) {
        await agent.stop();
        await systemd.flush();
        return;
      }
      if (reloadAsked) void agent.reload(configFile);
      await agent.done;
      await agent.stop();
      await systemd.flush();
      metrics?.close();
    });
}
