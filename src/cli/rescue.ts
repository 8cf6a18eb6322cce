/**
 * `haoscar rescue --config FILE --node NAME`: on a standby booted into a rescue or install
 * system, serve the clone's steps for that node and nothing else (src/rescue/rescue-worker.ts,
 * docs/clone.md#from-a-rescue-system).
 */
import { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log.js';
import { CliError, EXIT } from './errors.js';
import { HeartbeatSecretError } from '../heartbeat/secret.js';
import { RescueRefusedError, RescueWorker } from '../rescue/rescue-worker.js';

export function rescueCommand(): Command {
  return new Command('rescue')
    .description(
      "on a standby booted into a rescue or install system (its installed system and agent NOT running), serve only the clone's steps for this node, " +
        "so that `haoscar clone --to NODE --target-root /mnt/target` run elsewhere images its offline disk; it runs no group, sends no heartbeats and never becomes an owner",
    )
    .requiredOption('-c, --config <file>', "the cluster configuration (a copy of the nodes' /etc/haoscar/haoscar.yaml)", process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .requiredOption('-n, --node <name>', 'the node being imaged (the clone\'s --to), as named in the configuration', process.env.HAOSCAR_NODE)
    .addHelpText('after', `
It needs, on the rescue system: the configuration, the cluster secret (heartbeat.secretFile: the
clone's orders are signed with it) and the sync ssh key with its known hosts (sync.ssh: the copy
pulls from the source over ssh). It refuses to start while the node's agent runs (here, or as the
controller sees it), because both would serve the same task queue. Stop it with Ctrl-C once the
clone has finished. See docs/clone.md ("From a rescue system").`)
    .action(async (opts: { config: string; node: string }) => {
      const config = await loadConfig(opts.config);
      if (!config.nodes.some((n) => n.name === opts.node)) throw new CliError(`node '${opts.node}' is not in cluster '${config.cluster}' (known nodes: ${config.nodes.map((n) => n.name).join(', ')}); nothing was started`, EXIT.config);
      const logger = createLogger({ level: config.agent.logLevel, name: 'haoscar-rescue', node: opts.node });
      const rescue = await RescueWorker.start({ config, node: opts.node, logger }).catch((err: unknown) => {
        if (err instanceof RescueRefusedError) throw new CliError(err.message, EXIT.failure);
        if (err instanceof HeartbeatSecretError) throw new CliError(`${err.message} (the clone's orders are signed with it: copy it from a node onto the rescue system)`, EXIT.config);
        throw err;
      });
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) return;
        stopping = true;
        logger.info({ signal }, 'rescue worker stopping');
        void rescue.stop();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      await rescue.done;
      await rescue.stop();
      logger.info('rescue worker stopped');
    });
}
