/**
 * The rescue worker (`haoscar rescue --node NAME`): a Temporal worker on one node's own task
 * queue that serves ONLY the clone's steps (activities/clone.ts), for a standby booted into a
 * rescue or install system with its disk mounted at, say, /mnt/target (docs/clone.md#from-a-rescue-system).
 * It is how SystemImager deployed: from a boot environment onto an offline disk, while the
 * node's installed system (and its agent) is not running.
 *
 * Why it can never become the owner of a group, nor look like an ordinary member:
 * - A node is a candidate for a group only while the controller has it `up` (or `suspect` and
 *   answering a verification since: controller.ts, beginOperation). It becomes `up` only by an
 *   edge: its own agent's "I am up" (ControllerLink) or a peer that hears its heartbeats. This
 *   worker reports no edge, announces nothing and sends no heartbeat (no Heartbeat, no
 *   ControllerLink here), so the controller's view of the node does not move: it stays as the
 *   node's agent left it (`suspect`, or `unknown` for a node that never ran one).
 * - A group is started, verified or held on a node only through the ownership, service and sync
 *   activities on its queue, with a lease that its agent keeps and its guard enforces. None of
 *   them is registered here (createNodeWorker without `service`/`ownership`/`sync`), and there is
 *   no lease keeper or guard: an order to start a group sent to this queue anyway (a forced
 *   `failover --to` this node) fails with the SDK's NotFoundError, so no start is ever confirmed,
 *   and a verification of the node is never answered (it gets no `answeredAt`).
 * - The clone's own activities see that it holds nothing (`heldGroups` is empty by construction:
 *   there is nothing to hold), and the clone workflow still asks the controller, which never
 *   names this node an owner for the reasons above.
 * And it refuses to start where it would share the queue with the node's agent (its local
 * status socket answers, or the controller has the node `up` or as an owner): two workers on one
 * queue would split the clone's steps between the running system and the rescue system.
 */
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { NativeConnection, Worker } from '@temporalio/worker';
import type { Config } from '../config/types.js';
import { createExec, type Exec } from '../exec.js';
import type { Logger } from '../log.js';
import { loadClusterSecrets } from '../heartbeat/secret.js';
import { deriveMessageKey, type MessageKey } from '../auth/messages.js';
import { connectClient, connectWorker, resolveConnection, type ResolvedConnection } from '../temporal/connection.js';
import { queryOwnershipAuthenticated } from '../agent/controller-link.js';
import { readLocalStatus } from '../agent/local-status.js';
import { createNodeWorker } from '../../workers/node-worker.js';
import { cloneActivityDeps, type CloneActivities } from '../../activities/clone.js';
import { nodeTaskQueue, type Ownership } from '../../workflows/shared.js';

/** The rescue worker would share its node's queue with a running agent, or the node runs a group. */
export class RescueRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RescueRefusedError';
  }
}

/**
 * Why a rescue worker for `node` must not start, given the controller's view; undefined when it
 * may. Pure (table-tested in test/unit/rescue-worker.test.ts).
 */
export function rescueRefusal(view: Ownership, node: string): string | undefined {
  const owned = Object.entries(view.groups).filter(([, g]) => g.owner === node).map(([name, g]) => `${name} (epoch ${g.epoch}, ${g.state})`);
  if (owned.length > 0) return `the controller has node '${node}' as the owner of ${owned.join(', ')}: a clone never goes toward a group's owner; move the group away first (haoscar switchover)`;
  const liveness = view.nodes[node];
  if (liveness?.state === 'up') {
    return `the controller has node '${node}' up (reported by ${liveness.reportedBy}): its agent runs, and a rescue worker beside it would share its task queue, so the clone's steps could run on the installed system instead of here; stop that agent (or power the node off and boot the rescue system) and wait until the controller no longer has it up (haoscar status)`;
  }
  return undefined;
}

/** What the rescue worker serves: the clone's steps (workflows/clone.ts calls them on the target's queue). */
export const RESCUE_ACTIVITIES = ['clonePreflight', 'cloneCopy', 'cloneFixups', 'cloneVerify', 'cloneBootLoader'] as const satisfies readonly (keyof CloneActivities)[];

export interface RescueWorkerOptions {
  config: Config;
  node: string;
  logger: Logger;
  exec?: Exec;
}

export class RescueWorker {
  private constructor(
    readonly worker: Worker,
    private readonly connection: NativeConnection,
    private readonly client: Client,
    private readonly conn: ResolvedConnection,
    /** Resolves when the worker has stopped (after stop(), or when it fails). */
    readonly done: Promise<void>,
  ) {}

  get taskQueue(): string {
    return this.worker.options.taskQueue;
  }

  /**
   * Checks, connects and starts serving the clone's steps on the node's queue.
   * @throws HeartbeatSecretError (the cluster secret: the clone's orders are signed with it),
   *   CliError (Temporal unreachable, a TLS file unreadable), RescueRefusedError (see rescueRefusal;
   *   or the node's agent answers on this machine).
   */
  static async start(opts: RescueWorkerOptions): Promise<RescueWorker> {
    const { config, node, logger } = opts;
    if (!config.nodes.some((n) => n.name === node)) throw new RescueRefusedError(`node '${node}' is not in cluster '${config.cluster}' (known nodes: ${config.nodes.map((n) => n.name).join(', ')})`);
    if (config.nodes.length < 2) throw new RescueRefusedError(`cluster '${config.cluster}' has one node: there is no other node to clone from`);
    // The node's agent on this very machine (its local status socket answers): the same queue twice.
    const local = await readLocalStatus(config.agent.stateDir, node, 1000).then(() => true, () => false);
    if (local) throw new RescueRefusedError(`the agent of node '${node}' runs on this machine (its status socket in ${config.agent.stateDir} answers): stop it first; a rescue worker is for a node whose installed system is not running`);
    // The clone's copy and fix-up orders are signed by the workflow worker with the cluster
    // secret (docs/security.md): without it a forged order could overwrite the target root.
    const secrets = await loadClusterSecrets(config.heartbeat);
    const key = deriveMessageKey(secrets.signing, secrets.accepted);
    // The agent's connection code: the same TLS, mTLS, API key and frontend relay handling.
    const conn = await resolveConnection(config.temporal, { logger });
    let connection: NativeConnection | undefined;
    let client: Client | undefined;
    try {
      connection = await connectWorker(conn);
      client = await connectClient(conn);
      await checkController(client, config.cluster, node, key, logger);
      const worker = await createNodeWorker({
        connection,
        namespace: conn.namespace,
        cluster: config.cluster,
        node,
        // Only the clone: no service, ownership or sync activities (see the file's comment).
        clone: cloneActivityDeps({ config, node, key, exec: opts.exec ?? createExec(logger), logger, heldGroups: () => [] }),
      });
      const done = worker.run();
      const rescue = new RescueWorker(worker, connection, client, conn, done);
      logger.info(
        { cluster: config.cluster, node, taskQueue: worker.options.taskQueue, activities: [...RESCUE_ACTIVITIES] },
        `rescue worker for node ${node}: serving ONLY the clone's steps on task queue ${nodeTaskQueue(config.cluster, node)}; it runs no group, sends no heartbeats and reports nothing to the controller, so the cluster never sees ${node} up through it. Start the clone elsewhere with: haoscar clone --from <node> --to ${node} --target-root <dir>`,
      );
      return rescue;
    } catch (err) {
      await connection?.close().catch(() => undefined);
      await client?.connection.close().catch(() => undefined);
      conn.relay?.close();
      throw err;
    }
  }

  /** Stops taking tasks (a running copy is cancelled after the SDK's grace time) and closes the connections. */
  async stop(): Promise<void> {
    if (this.worker.getState() === 'RUNNING') this.worker.shutdown();
    await this.done.catch(() => undefined);
    await this.connection.close().catch(() => undefined);
    await this.client.connection.close().catch(() => undefined);
    this.conn.relay?.close();
  }
}

/** @throws RescueRefusedError when the controller's view says the rescue worker must not start. */
async function checkController(client: Client, cluster: string, node: string, key: MessageKey, logger: Logger): Promise<void> {
  let view: Ownership;
  try {
    view = await queryOwnershipAuthenticated(client, cluster, key);
  } catch (err) {
    // No controller runs: nobody can own a group or have the node up; the clone's own checks ask it again.
    if (err instanceof WorkflowNotFoundError) {
      logger.warn({ cluster }, 'no controller runs for this cluster (is `haoscar worker` running?): the rescue worker starts; a clone needs the controller and will wait for it');
      return;
    }
    throw err;
  }
  const why = rescueRefusal(view, node);
  if (why) throw new RescueRefusedError(`${why}; the rescue worker did not start`);
}
