/**
 * `haoscar worker --config FILE`: runs the cluster's workflows (controller, failovers, heals)
 * without a node's resources. Run it beside Temporal — away from the nodes it watches — and
 * set `agent.workflows: false` so that a node's death never takes the controller's cache with it.
 */
import { Command } from 'commander';
import { join } from 'node:path';
import { mkdir } from 'node:fs/promises';
import { loadConfig } from '../config/load.js';
import { createLogger, type Logger } from '../log.js';
import { startMetrics } from '../metrics/endpoint.js';
import { metricsListen as metricsListenSchema } from '../config/schema.js';
import type { Client } from '@temporalio/client';
import { connectClient, connectWorker, resolveConnection } from '../temporal/connection.js';
import { createWorkflowWorker } from '../../workers/workflow-worker.js';
import { createWitnessWorker } from '../../workers/witness-worker.js';
import { HeartbeatSecretError, loadClusterSecrets, type ClusterSecrets } from '../heartbeat/secret.js';
import { secretNames } from '../auth/secret-rotation.js';
import type { Config } from '../config/types.js';
import { CliError, EXIT } from './errors.js';
import { deriveMessageKey } from '../auth/messages.js';
import { createExec } from '../exec.js';
import { SystemdNotifier } from '../systemd/notify.js';

export function workerCommand(): Command {
  return new Command('worker')
    .description("run the cluster's workflows (controller, failovers, heals) beside Temporal, with no resources of its own")
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('--metrics-listen <host:port>', 'serve Prometheus metrics here instead of agent.metrics.listen (a worker on a node beside its agent needs its own port)')
    .action(async (opts: { config: string; metricsListen?: string }) => {
      const config = await loadConfig(opts.config);
      const listen = opts.metricsListen === undefined ? config.agent.metrics.listen : metricsListen(opts.metricsListen);
      const logger = createLogger({ level: config.agent.logLevel, name: 'haoscar-worker' });
      // Under systemd (Type=notify): READY=1 once the worker runs; the watchdog fed from this event loop.
      const systemd = new SystemdNotifier({ exec: createExec(logger), logger });
      systemd.startWatchdog();
      await systemd.status(`starting: connecting to Temporal at ${config.temporal.address}`);
      const connected: { client?: Client } = {};
      // Before any connection (the SDK's exporter is part of its runtime); a bad address stops here.
      const metrics = await startMetrics({ config, listen, logger, families: () => [], client: () => connected.client });
      await mkdir(config.agent.stateDir, { recursive: true });
      // The cluster secret signs the workflows' orders and checks the nodes' answers (docs/security.md);
      // refused as the agent refuses it (missing, world-readable). A one-node cluster has none.
      const secrets = config.nodes.length > 1 ? await loadWorkerSecrets(config) : undefined;
      const key = secrets ? deriveMessageKey(secrets.signing, secrets.accepted) : undefined;
      if (secrets && secrets.accepted.length > 0) logSecrets(logger, secrets, 'start');
      const conn = await resolveConnection(config.temporal, { logger });
      const connection = await connectWorker(conn);
      const client = await connectClient(conn);
      connected.client = client;
      const worker = await createWorkflowWorker({ connection, config, client, bundleFile: join(config.agent.stateDir, 'workflow-bundle-worker.js'), key, logger });
      // The witness's own queue: golden images kept on this machine (docs/clone.md#golden-images).
      const witness = await createWitnessWorker({ connection, config, key, logger });
      const stop = (signal: string) => {
        void systemd.stopping(`stopping (${signal})`);
        worker.shutdown();
        witness.shutdown();
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
      // A step of a secret rotation (docs/reload.md#rotating-the-cluster-secret): the secret files
      // are read again and the worker signs and checks with them from its next message on.
      // Nothing else of the configuration is taken: that needs a restart.
      process.on('SIGHUP', () => {
        if (!key) return void logger.info('SIGHUP: a one-node cluster has no secret to reload');
        void reloadSecrets(opts.config, logger).then((loaded) => {
          if (!loaded) return;
          key.update(loaded.signing, loaded.accepted);
          logSecrets(logger, loaded, 'SIGHUP');
        });
      });
      logger.info({ cluster: config.cluster, taskQueue: worker.options.taskQueue }, 'workflow worker running');
      const running = Promise.all([worker.run(), witness.run()]);
      await systemd.ready(`running the workflows of cluster ${config.cluster} (task queue ${worker.options.taskQueue}), connected to Temporal at ${config.temporal.address}`);
      await running;
      metrics?.close();
      await connection.close();
      await client.connection.close();
      await systemd.flush();
    });
}

/** --metrics-listen, checked as agent.metrics.listen is. @throws CliError (exit 2) saying what is expected. */
function metricsListen(text: string): string {
  const parsed = metricsListenSchema.safeParse(text);
  if (!parsed.success) throw new CliError(`--metrics-listen '${text}': ${parsed.error.issues[0]?.message ?? 'expected host:port'}`, EXIT.usage);
  return parsed.data;
}

/** The cluster secrets, as the agent loads them. @throws CliError (exit 3) naming the file and the fix. */
async function loadWorkerSecrets(config: Config): Promise<ClusterSecrets> {
  try {
    return await loadClusterSecrets(config.heartbeat);
  } catch (err) {
    if (err instanceof HeartbeatSecretError) throw new CliError(`${err.message} (the workflow worker signs orders to nodes with it: docs/security.md)`, EXIT.config);
    throw err;
  }
}

/** The secrets named in the configuration file now; undefined (logged, nothing changes) when the file or a secret cannot be used. */
async function reloadSecrets(file: string, logger: Logger): Promise<ClusterSecrets | undefined> {
  try {
    return await loadWorkerSecrets(await loadConfig(file));
  } catch (err) {
    logger.error({ err: err instanceof Error ? err.message : String(err) }, `SIGHUP: the secrets were not reloaded, nothing changed: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

function logSecrets(logger: Logger, secrets: ClusterSecrets, when: string): void {
  const names = secretNames(secrets);
  logger.warn({ signsWith: names.signs, accepts: names.accepts }, `cluster secret: signs with ${names.signs}${names.accepts.length > 0 ? `, also accepts ${names.accepts.join(', ')}` : ', accepts no other'} (${when})`);
}
