/**
 * Alerts an agent raises itself: what only its node sees (a file set's pulls failing and working
 * again, the lease guard releasing a group). They go the controller's way: the agent starts the
 * `alert` workflow (workflows/alert.ts), whose activities deliver them (retried, in the history),
 * on any node's workflow worker. Rather than a signal to the controller, which would need a MAC
 * and would put the agent's events into the controller's history and ordering for nothing: the
 * event changes nothing in the cluster, it is only told.
 *
 * Nothing waits for an alert: raise() returns at once; the start is tried again (backing off)
 * while Temporal cannot be reached, for a while, then the alert is given up loudly in the log.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { Client } from '@temporalio/client';
import type { Config } from '../config/types.js';
import type { Logger } from '../log.js';
import { alertSummary, alertWorkflowId, nextAlertSequence, type AlertEvent } from '../../workflows/alert-event.js';
import { HA_KEYS } from '../../workflows/search-attributes.js';
import { clusterTaskQueue } from '../../workflows/shared.js';

/** How long a start is tried while Temporal cannot be reached, and the pauses between tries. */
const GIVE_UP_AFTER_MS = 5 * 60_000;
const FIRST_PAUSE_MS = 1000;
const MAX_PAUSE_MS = 30_000;

export class AgentAlerts {
  private sequence = 0;
  private stopped = false;
  /** Ends the pauses between tries when the agent stops. */
  private readonly stopping = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly opts: {
    config: Config;
    node: string;
    logger: Logger;
    /** The agent's Temporal client once it has one. */
    client: () => Client | undefined;
    /** For tests; default 1 s doubling to 30 s, for 5 minutes. */
    pauses?: { firstMs: number; maxMs: number; giveUpAfterMs: number };
  }) {}

  /** Whether some alert takes this event (nothing is started otherwise). */
  wanted(event: AlertEvent['event']): boolean {
    return this.opts.config.alerts.some((a) => a.events === undefined || a.events.includes(event));
  }

  /** Starts the alert workflow for the event, in the background. */
  raise(e: Omit<AlertEvent, 'cluster' | 'at' | 'sequence' | 'source'>): void {
    if (this.stopped || !this.wanted(e.event)) return;
    const at = Date.now();
    this.sequence = nextAlertSequence(this.sequence, at);
    const event: AlertEvent = { ...e, cluster: this.opts.config.cluster, at, sequence: this.sequence, source: this.opts.node };
    const p = this.start(event).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  /** Stops trying; waits for the starts under way (each ends at its next try). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    await Promise.all([...this.inFlight]);
  }

  private async start(event: AlertEvent): Promise<void> {
    const pauses = this.opts.pauses ?? { firstMs: FIRST_PAUSE_MS, maxMs: MAX_PAUSE_MS, giveUpAfterMs: GIVE_UP_AFTER_MS };
    const workflowId = alertWorkflowId(event.cluster, event);
    const log = this.opts.logger;
    let pause = pauses.firstMs;
    let lastError = 'the agent has no Temporal client yet';
    const until = performance.now() + pauses.giveUpAfterMs;
    while (!this.stopped) {
      const client = this.opts.client();
      if (client) {
        try {
          await client.workflow.start('alert', {
            workflowId,
            taskQueue: clusterTaskQueue(event.cluster),
            args: [{ event }],
            typedSearchAttributes: [
              { key: HA_KEYS.HaCluster, value: event.cluster },
              { key: HA_KEYS.HaNode, value: this.opts.node },
              ...(event.group !== undefined ? [{ key: HA_KEYS.HaGroup, value: event.group }] : []),
              { key: HA_KEYS.HaOperation, value: 'alert' },
            ],
            staticSummary: alertSummary(event),
            staticDetails: event.detail,
          });
          log.info({ event: event.event, workflowId }, 'alert started');
          return;
        } catch (err) {
          // A try that reached Temporal and was not answered: the first one started it.
          if (err instanceof WorkflowExecutionAlreadyStartedError) return;
          lastError = err instanceof Error ? err.message : String(err);
        }
      }
      if (performance.now() + pause > until) break;
      await sleep(pause, undefined, { signal: this.stopping.signal }).catch(() => undefined);
      pause = Math.min(pause * 2, pauses.maxMs);
    }
    log.error({ event: event.event, workflowId, err: lastError }, `alert ${event.event} not sent${this.stopped ? ' (the agent stopped)' : ''}: Temporal could not be reached (${lastError})`);
  }
}
