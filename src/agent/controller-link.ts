/**
 * The agent's side of the conversation with its cluster's controller: edges go in as
 * signals (the first one starts the controller if it is not running), ownership comes out of
 * the `ownership` query. Edges are delivered in the order they were seen and retried until
 * Temporal takes them: an edge lost would be a failover never started.
 *
 * The link exists before Temporal is reached (an agent starts while Temporal is down, and
 * waits for it): edges seen meanwhile are queued and delivered once `attach()` gives it a
 * client; the query fails at once with NotConnectedError until then.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import type { Logger } from '../log.js';
import type { ControllerInput } from '../../workflows/inputs.js';
import type { controller } from '../../workflows/controller.js';
import { HA_KEYS } from '../../workflows/search-attributes.js';
import type { SignalDefinition } from '@temporalio/common';
import {
  clusterTaskQueue,
  controllerWorkflowId,
  groupLostSignal,
  nodeAnnounceSignal,
  nodeEdgeSignal,
  ownershipQuery,
  type GroupLostReport,
  type NodeAnnounce,
  type NodeEdge,
  type Ownership,
} from '../../workflows/shared.js';

/** The controller's view of the cluster (the `ownership` query: no history is written). */
export function queryOwnership(client: Client, cluster: string): Promise<Ownership> {
  return client.workflow.getHandle(controllerWorkflowId(cluster)).query(ownershipQuery);
}

/** Thrown by the link's query before the agent has reached Temporal. */
export class NotConnectedError extends Error {
  constructor() {
    super('not connected to Temporal yet');
    this.name = 'NotConnectedError';
  }
}

export class ControllerLink {
  private queue: Promise<void>;
  private readonly stopped = new AbortController();
  private client: Client | undefined;
  private attached: (() => void) | undefined;

  /** Without a client (undefined), edges wait in order for attach(). */
  constructor(
    client: Client | undefined,
    private readonly cluster: string,
    private readonly logger: Logger,
  ) {
    this.client = client;
    this.queue = client
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          this.attached = resolve;
        });
  }

  /** Temporal is reached: queued edges go out, in order. */
  attach(client: Client): void {
    if (this.client) return;
    this.client = client;
    this.attached?.();
  }

  /** Sends the edge after those before it; retried until delivered or the agent stops. */
  report(edge: NodeEdge): Promise<void> {
    this.queue = this.queue.then(() => this.deliver(nodeEdgeSignal, edge, `${edge.node} ${edge.to}`));
    return this.queue;
  }

  /** This node stopped a group by itself; in order with the edges, retried the same way. */
  reportLost(report: GroupLostReport): Promise<void> {
    this.queue = this.queue.then(() => this.deliver(groupLostSignal, report, `${report.group} lost by ${report.node}`));
    return this.queue;
  }

  /**
   * What this node holds, has seen and enforces, again (announcer.ts); in order with the edges,
   * retried the same way. Starts the controller if it is not running (Temporal's data was lost).
   */
  announce(a: NodeAnnounce): Promise<void> {
    this.queue = this.queue.then(() => this.deliver(nodeAnnounceSignal, a, `${a.node} announces`));
    return this.queue;
  }

  /** The controller's view; rejects after `timeoutMs` or when it is not running. */
  ownership(timeoutMs: number): Promise<Ownership> {
    const client = this.client;
    if (!client) return Promise.reject(new NotConnectedError());
    return client.withDeadline(Date.now() + timeoutMs, () => queryOwnership(client, this.cluster));
  }

  close(): void {
    this.stopped.abort();
    // Edges still waiting for a connection are dropped with the agent.
    this.attached?.();
  }

  private async deliver<T>(signalDef: SignalDefinition<[T]>, arg: T, what: string): Promise<void> {
    const signal = this.stopped.signal;
    const client = this.client;
    if (!client) return; // closed before Temporal was reached
    let delay = 200;
    for (let attempt = 1; !signal.aborted; attempt++) {
      try {
        await client.withAbortSignal(signal, () =>
          client.workflow.signalWithStart<typeof controller, [T]>('controller', {
            workflowId: controllerWorkflowId(this.cluster),
            taskQueue: clusterTaskQueue(this.cluster),
            args: [{ cluster: this.cluster } satisfies ControllerInput],
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.USE_EXISTING,
            typedSearchAttributes: [
              { key: HA_KEYS.HaCluster, value: this.cluster },
              { key: HA_KEYS.HaOperation, value: 'controller' },
            ],
            signal: signalDef,
            signalArgs: [arg],
          }),
        );
        this.logger.info({ what, attempt }, 'reported to the controller');
        return;
      } catch (err) {
        if (signal.aborted) return;
        this.logger.error({ what, attempt, retryInMs: delay, err: err instanceof Error ? err.message : String(err) }, 'cannot report to the controller (retrying)');
        await sleep(delay, undefined, { signal }).catch(() => undefined);
        delay = Math.min(delay * 2, 5000);
      }
    }
  }
}
