/**
 * The workflow worker: the cluster's shared queue, running HA-OSCAR's workflows and the
 * cluster-wide lookup activities. Every agent runs one, so workflows go on when a node dies.
 */
import { Worker, type NativeConnection, type WorkflowBundleOption } from '@temporalio/worker';
import type { Client } from '@temporalio/client';
import { createClusterActivities } from '../activities/cluster.js';
import { createControllerActivities } from '../activities/controller.js';
import { createAuthActivities } from '../activities/auth.js';
import { createAlertActivities } from '../activities/alerts.js';
import { createExec } from '../src/exec.js';
import { silentLogger } from '../src/log.js';
import type { MessageKey } from '../src/auth/messages.js';
import { workflowWorkerDataConverter } from '../src/auth/ownership-answer.js';
import type { Config } from '../src/config/types.js';
import { clusterTaskQueue } from '../workflows/shared.js';
import { workflowBundle } from './workflow-bundle.js';
import type { Logger } from '../src/log.js';
import { join } from 'node:path';
import { missingSearchAttributes, registerCommands, SEARCH_ATTRIBUTES } from '../src/temporal/search-attributes.js';
import { CliError, EXIT } from '../src/cli/errors.js';

export async function createWorkflowWorker(opts: {
  connection: NativeConnection;
  config: Config;
  /** Failovers talk to the controller through it (workflows cannot send updates). */
  client: Client;
  /**
   * A prebuilt bundle (tests share one); default: the package's bundle (built at pack time) when
   * it is the bundle of the installed code, else workflows/ bundled now, in a child process.
   */
  workflowBundle?: WorkflowBundleOption;
  /** Where a bundle made now is written; default `<stateDir>/workflow-bundle.js`. */
  bundleFile?: string;
  /** Says which bundle is used, and why the package's is not. */
  logger?: Logger;
  /**
   * The message key (deriveMessageKey of the cluster secret) its local activities sign orders
   * and check nodes' answers with, and its payload codec signs the controller's answers to lease
   * renewals with; undefined only in a one-node cluster (docs/security.md).
   */
  key: MessageKey | undefined;
}): Promise<Worker> {
  const { config } = opts;
  const missing = await missingSearchAttributes(opts.client, config.temporal.namespace);
  if (missing === undefined) opts.logger?.warn(`could not list the search attributes of namespace ${config.temporal.namespace}: if ${Object.keys(SEARCH_ATTRIBUTES).join(', ')} are not all registered, workflows that set them fail their tasks (docs/temporal.md)`);
  else if (missing.length > 0) {
    throw new CliError(`namespace ${config.temporal.namespace} lacks the search attributes ${missing.join(', ')}, which HA-OSCAR's workflows set: register them first (${registerCommands(config.temporal.namespace, missing)}; docs/temporal.md), then start this worker again`, EXIT.config);
  }
  const bundle = opts.workflowBundle ?? (await workflowBundle({ bundleFile: opts.bundleFile ?? join(config.agent.stateDir, 'workflow-bundle.js'), logger: opts.logger }));
  return Worker.create({
    connection: opts.connection,
    namespace: config.temporal.namespace,
    taskQueue: clusterTaskQueue(config.cluster),
    workflowBundle: bundle,
    // Signs the controller's answers to lease renewals on their way out (src/auth/ownership-answer.ts).
    dataConverter: workflowWorkerDataConverter(config.cluster, opts.key),
    activities: { ...createClusterActivities({ config }), ...createControllerActivities({ client: opts.client, key: opts.key }), ...createAuthActivities({ config, key: opts.key }),
      // The alert workflow's deliveries (docs/alerts.md): agents and webhooks run from here.
      ...createAlertActivities({ config, exec: createExec(opts.logger ?? silentLogger) }) },
    // Few workflows run at once in a cluster (a controller, a few heals): a small sticky cache
    // bounds the agent's memory and still keeps every running workflow cached.
    maxCachedWorkflows: config.agent.maxCachedWorkflows,
    shutdownGraceTime: '5s',
    // When the worker that has a workflow cached dies with its node, the server gives the
    // workflow's tasks to another worker after this long (the default, 10 s, would delay
    // every failover of a cluster whose controller was cached on the dead node).
    stickyQueueScheduleToStartTimeout: '1s',
  });
}
