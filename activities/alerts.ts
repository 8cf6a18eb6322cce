/**
 * The alert workflow's activities (workflows/alert.ts), on the cluster's shared queue: every
 * node runs the same haoscar.yaml, so any workflow worker knows the alerts, and an alert agent
 * must be installed on every node (as with Pacemaker).
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { Config } from '../src/config/types.js';
import type { Exec } from '../src/exec.js';
import { deliverAlert } from '../src/alerts/deliver.js';
import { alertEventSchema, type AlertEvent } from '../workflows/alert-event.js';
import { ERROR_TYPES } from '../workflows/shared.js';

/** One run of one alert: its recipient, and how long and how often it may be tried. */
export interface AlertDelivery {
  alert: string;
  recipient: string;
  timeoutMs: number;
  attempts: number;
}

export function createAlertActivities(deps: { config: Config; exec: Exec }) {
  const { config } = deps;
  const fail = (type: string, message: string) => ApplicationFailure.create({ type, nonRetryable: true, message });
  const checked = (cluster: string, raw: unknown): AlertEvent => {
    if (cluster !== config.cluster) throw fail(ERROR_TYPES.WrongCluster, `this alert names cluster '${cluster}' but runs on the queue of cluster '${config.cluster}'`);
    const parsed = alertEventSchema.safeParse(raw);
    if (!parsed.success) throw fail(ERROR_TYPES.InvalidWorkflowInput, `not an alert event: ${parsed.error.message}`);
    return parsed.data;
  };

  return {
    /** The runs an event makes: one per recipient (one with '' for an alert without) of each alert whose `events` take it. */
    async planAlerts(req: { cluster: string; event: AlertEvent }): Promise<AlertDelivery[]> {
      const event = checked(req.cluster, req.event);
      return config.alerts
        .filter((a) => a.events === undefined || a.events.includes(event.event))
        .flatMap((a) => (a.recipients.length > 0 ? a.recipients : ['']).map((recipient) => ({ alert: a.name, recipient, timeoutMs: a.timeoutMs, attempts: a.attempts })));
    },

    /** Runs the alert for the recipient; throws (and is retried) when the delivery failed. */
    async sendAlert(req: { cluster: string; alert: string; recipient: string; event: AlertEvent }): Promise<string> {
      const event = checked(req.cluster, req.event);
      const spec = config.alerts.find((a) => a.name === req.alert);
      // haoscar.yaml changed between the plan and now (a worker restarted with another one).
      if (!spec) throw fail(ERROR_TYPES.InvalidWorkflowInput, `no alert '${req.alert}' in this worker's haoscar.yaml (known: ${config.alerts.map((a) => a.name).join(', ') || '(none)'})`);
      return deliverAlert(spec, req.recipient, event, { exec: deps.exec, config });
    },
  };
}

export type AlertActivities = ReturnType<typeof createAlertActivities>;
