/**
 * Wiring of the metrics endpoint for `haoscar agent` and `haoscar worker`: the Temporal runtime
 * with the SDK's exporter on a loopback port (it must be installed before any connection, once
 * per process), then our endpoint serving HA-OSCAR's metrics followed by the SDK's.
 */
import type { Server } from 'node:http';
import type { Client } from '@temporalio/client';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import { installTemporalRuntime } from '../temporal/runtime.js';
import { CliError, EXIT } from '../cli/errors.js';
import { freeLoopbackPort, MetricsListenError, serveMetrics } from './server.js';
import { renderFamilies, type MetricFamily } from './exposition.js';
import { clusterFamilies, readClusterView, type ClusterView } from './cluster-metrics.js';
import { queryOwnership } from '../agent/controller-link.js';

/** How long a scrape waits for Temporal (the controller's view, the list of operations). */
export const CLUSTER_READ_TIMEOUT_MS = 3000;
/**
 * The cluster's view is read from Temporal at most this often; scrapes in between (a second
 * Prometheus, a short scrape interval) share the last read, so metrics never compete with lease
 * confirmations for the controller's attention.
 */
export const CLUSTER_VIEW_MAX_AGE_MS = 5000;

/**
 * Installs the Temporal runtime (with the SDK's exporter when metrics are on) and serves the
 * endpoint when `listen` is set. `families` gives this process's own metrics at each scrape;
 * `client`, when it runs the cluster's workflows, the client whose view of the cluster is added.
 * @throws CliError (exit 3, configuration) when the endpoint cannot bind, before anything else runs.
 */
export async function startMetrics(opts: {
  config: Config;
  listen: string | undefined;
  logger: Logger;
  families: () => MetricFamily[];
  client: () => Client | undefined;
}): Promise<Server | undefined> {
  const { config, listen, logger } = opts;
  if (listen === undefined) {
    installTemporalRuntime(logger);
    return undefined;
  }
  const sdkAddress = config.agent.metrics.temporalSdk ? `127.0.0.1:${await freeLoopbackPort()}` : undefined;
  installTemporalRuntime(logger, 'WARN', sdkAddress ? { metricsAddress: sdkAddress } : {});
  let lastProblems = '';
  let cached: { at: number; view: Promise<ClusterView> } | undefined;
  const collect = async (): Promise<string> => {
    const own = opts.families();
    const client = opts.client();
    if (!client) return renderFamilies(own);
    if (!cached || performance.now() - cached.at >= CLUSTER_VIEW_MAX_AGE_MS) {
      cached = { at: performance.now(), view: readClusterView(client, config.cluster, queryOwnership, CLUSTER_READ_TIMEOUT_MS) };
    }
    const view = await cached.view;
    // Said once per change, not at every scrape.
    const problems = view.problems.join('; ');
    if (problems !== lastProblems && problems) logger.warn({ problems }, 'metrics: could not read part of the cluster\'s view from Temporal');
    lastProblems = problems;
    return renderFamilies([...own, ...clusterFamilies(view)]);
  };
  try {
    return await serveMetrics({ listen, collect, ...(sdkAddress ? { sdkAddress } : {}), logger });
  } catch (err) {
    if (err instanceof MetricsListenError) throw new CliError(err.message, EXIT.config);
    throw err;
  }
}
