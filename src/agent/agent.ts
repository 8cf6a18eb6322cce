/**
 * The HA-OSCAR agent of one node: a Temporal worker on the node's own queue (activities that
 * touch this node), a worker on the cluster's queue (workflows), and a monitor per service of
 * the groups this node runs. Monitors report edges; a failing edge requests a heal.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import type { NativeConnection, Worker, WorkflowBundleOption } from '@temporalio/worker';
import type { Config, GroupSpec } from '../config/types.js';
import { createExec, type Exec } from '../exec.js';
import type { Logger } from '../log.js';
import { createServiceDriver } from '../drivers/index.js';
import { createCheck } from '../checks/check.js';
import { ResourceMonitor } from '../monitor/monitor.js';
import { ServiceRegistry, type ManagedService } from './services.js';
import { groupsHomedOn } from './placement.js';
import { requestHealUntilDelivered, type HealRequest } from './heal-trigger.js';
import { LocalHealer } from './local-heal.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectClient, connectWorker, resolveConnection } from '../temporal/connection.js';
import { createNodeWorker } from '../../workers/node-worker.js';
import { createWorkflowWorker } from '../../workers/workflow-worker.js';

export class UnknownNodeError extends Error {
  constructor(node: string, config: Config) {
    super(`node '${node}' is not in cluster '${config.cluster}' (known nodes: ${config.nodes.map((n) => n.name).join(', ')}); nothing was started`);
    this.name = 'UnknownNodeError';
  }
}

export interface AgentOptions {
  config: Config;
  node: string;
  logger: Logger;
  exec?: Exec;
  workflowBundle?: WorkflowBundleOption;
}


export class Agent {
  private readonly monitors: ResourceMonitor[] = [];
  private readonly services = new ServiceRegistry();
  private workers: Worker[] = [];
  private running: Promise<unknown> | undefined;
  private connection: NativeConnection | undefined;
  private client: Client | undefined;
  private stopping: Promise<void> | undefined;
  /** Aborted when the agent stops: local heals end. */
  private readonly localHeals = new AbortController();
  private readonly log: Logger;

  private constructor(private readonly opts: AgentOptions) {
    this.log = opts.logger;
  }

  /**
   * Starts the agent. @throws UnknownNodeError before anything is done when the node is not
   * in the config; CliError when Temporal cannot be reached.
   */
  static async start(opts: AgentOptions): Promise<Agent> {
    if (!opts.config.nodes.some((n) => n.name === opts.node)) throw new UnknownNodeError(opts.node, opts.config);
    const agent = new Agent(opts);
    try {
      await agent.init();
    } catch (err) {
      await agent.stop();
      throw err;
    }
    return agent;
  }

  /** Resolves when the workers have stopped (after stop(), or if one fails). */
  get done(): Promise<unknown> {
    return this.running ?? Promise.resolve();
  }

  /** The services this agent manages (for status output and tests). */
  managed(): ManagedService[] {
    return this.services.all();
  }

  private async init(): Promise<void> {
    const { config, node } = this.opts;
    const exec = this.opts.exec ?? createExec(this.log);
    const logDir = join(config.agent.stateDir, 'log');
    await mkdir(logDir, { recursive: true });

    for (const group of config.groups.filter((g) => g.nodes.includes(node))) {
      for (const spec of group.resources) {
        const driver = createServiceDriver(spec, { exec, logger: this.log.child({ group: group.name, resource: spec.name }), logDir });
        const check = createCheck(spec.check, { exec, servicePid: async () => (await driver.status()).pid });
        this.services.add({ group, spec, driver, check });
      }
    }

    const conn = await resolveConnection(config.temporal);
    this.connection = await connectWorker(conn);
    this.client = await connectClient(conn);
    this.workers = await Promise.all([
      createNodeWorker({ connection: this.connection, namespace: conn.namespace, cluster: config.cluster, deps: { node, services: this.services, logger: this.log } }),
      createWorkflowWorker({ connection: this.connection, config, workflowBundle: this.opts.workflowBundle }),
    ]);
    this.running = Promise.all(this.workers.map((w) => w.run()));
    this.running.catch((err: unknown) => this.log.error({ err: String(err) }, 'a Temporal worker stopped with an error'));
    this.log.info({ cluster: config.cluster, taskQueues: this.workers.map((w) => w.options.taskQueue) }, 'agent connected to Temporal');

    for (const group of groupsHomedOn(config, node)) await this.startGroup(group);
  }

  /** Starts a group's resources in order, each watched from before its start. */
  private async startGroup(group: GroupSpec): Promise<void> {
    for (const spec of group.resources) {
      const service = this.services.get(group.name, spec.name)!;
      const monitor = this.watch(service);
      this.log.info({ group: group.name, resource: spec.name, driver: spec.driver }, 'starting service');
      try {
        await service.driver.start();
        service.startedAt = Date.now();
      } catch (err) {
        // The monitor sees it failing and requests a heal, which retries with the policy's limits.
        this.log.error({ group: group.name, resource: spec.name, err }, 'service did not start');
      }
      // The first check runs at once: a crash since the start is seen now, not at the next poll.
      monitor.start();
    }
  }

  /** A monitor of the service, fed by the driver's exit events; started by the caller. */
  private watch(service: ManagedService): ResourceMonitor {
    const { config, node } = this.opts;
    const { group, spec, driver, check } = service;
    const healer = new LocalHealer(service, this.log);
    const monitor = new ResourceMonitor({
      name: `${group.name}/${spec.name}`,
      check,
      timing: spec.check,
      logger: this.log.child({ group: group.name }),
      onEdge: (edge) => {
        if (edge.to !== 'failing' || !this.client || this.stopping) return;
        // Not awaited: the monitor must keep watching while the report is retried.
        void this.reportFailure(
          { cluster: config.cluster, node, group: group.name, resource: spec.name, failure: { at: edge.at, detail: edge.detail, source: `monitor@${node}` } },
          () => !this.stopping && monitor.status().status === 'failing',
          healer,
        );
      },
    });
    // A supervised process's exit is a definitive failure: report it now, not at the next poll.
    driver.onExit?.((exit) => monitor.reportExit(`process ${exit.pid} exited (${exit.signal ? `signal ${exit.signal}` : `code ${exit.exitCode}`})`));
    this.monitors.push(monitor);
    return monitor;
  }

  /**
   * Asks Temporal for a heal; if the request has not gone through after
   * `agent.localHealAfter`, cancels it and heals locally (a control-plane outage must not
   * become a service outage). A cancelled request can still reach Temporal once it is back
   * (gRPC may already have queued it); the heal it starts then finds the service restarted
   * since the failure and healthy, and leaves it alone (see restartService).
   */
  private async reportFailure(req: HealRequest, stillNeeded: () => boolean, healer: LocalHealer): Promise<void> {
    const cancel = new AbortController();
    const delivered = requestHealUntilDelivered(this.client!, req, this.log, stillNeeded, cancel.signal);
    const waited = sleep(this.opts.config.agent.localHealAfterMs, 'timeout' as const, { signal: cancel.signal }).catch(() => 'cancelled' as const);
    const first = await Promise.race([delivered.then(() => 'settled' as const), waited]);
    // Cancel whichever is left. A request cut off while gRPC waits for a connection may not
    // settle at once, so it is not awaited: its loop ends by itself (it is no longer needed).
    cancel.abort();
    if (first === 'settled') return;
    if (!stillNeeded()) return;
    this.log.error(
      { group: req.group, resource: req.resource, afterMs: this.opts.config.agent.localHealAfterMs },
      'Temporal did not take the failure report in time: healing locally',
    );
    await healer.heal(req.failure.detail, this.localHeals.signal);
  }

  /** Stops monitors, workers and supervised processes; safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.localHeals.abort();
      await Promise.all(this.monitors.map((m) => m.stop()));
      for (const w of this.workers) if (w.getState() === 'RUNNING') w.shutdown();
      await this.running?.catch(() => undefined);
      // Supervised processes belong to the agent (as with supervisord): they stop with it.
      await Promise.all(this.services.all().map((s) => s.driver.close?.().catch((err: unknown) => this.log.warn({ err: String(err) }, 'stopping service failed'))));
      await this.connection?.close().catch(() => undefined);
      await this.client?.connection.close().catch(() => undefined);
      this.log.info('agent stopped');
    })();
    return this.stopping;
  }
}
