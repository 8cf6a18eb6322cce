/**
 * alert: delivers one cluster event to every alert configured for it (`alerts:`, docs/alerts.md).
 * Started, not awaited, by whoever saw the event (the controller, an agent): a slow or failing
 * alert delays and fails nothing else. Each run of each alert (one per recipient) is an activity
 * of its own, retried `attempts` times, so the history shows every try and its error; a run that
 * failed them all is reported (logged, and listed in the result), never made the workflow's failure.
 */
import { log, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { AlertActivities, AlertDelivery } from '../activities/alerts.js';
import { alertEventSchema, type AlertEvent } from './alert-event.js';
import { parseWorkflowInput } from './inputs.js';
import { z } from 'zod';

const plan = proxyLocalActivities<AlertActivities>({
  startToCloseTimeout: '5 seconds',
  retry: { initialInterval: '200ms', maximumInterval: '5 seconds', maximumAttempts: 10 },
});

export const alertInputSchema = z.strictObject({ event: alertEventSchema });
export type AlertInput = z.infer<typeof alertInputSchema>;

export interface AlertResult {
  event: AlertEvent['event'];
  sent: { alert: string; recipient: string; detail: string }[];
  failed: { alert: string; recipient: string; error: string }[];
}

export async function alert(rawInput: unknown): Promise<AlertResult> {
  const { event } = parseWorkflowInput(alertInputSchema, rawInput, 'alert');
  const deliveries = await plan.planAlerts({ cluster: event.cluster, event });
  const result: AlertResult = { event: event.event, sent: [], failed: [] };
  await Promise.all(deliveries.map(async (d) => {
    try {
      const detail = await deliver(d).sendAlert({ cluster: event.cluster, alert: d.alert, recipient: d.recipient, event });
      result.sent.push({ alert: d.alert, recipient: d.recipient, detail });
    } catch (err) {
      const error = innermost(err);
      result.failed.push({ alert: d.alert, recipient: d.recipient, error });
      log.error(`alert ${d.alert} could not be delivered${d.recipient ? ` to ${d.recipient}` : ''} (${d.attempts} attempts): ${error}`, { alert: d.alert, recipient: d.recipient, event: event.event });
    }
  }));
  return result;
}

/** The activity of one delivery: its own timeout (the alert's, and room for the worker) and attempts. */
function deliver(d: AlertDelivery) {
  return proxyActivities<AlertActivities>({
    startToCloseTimeout: d.timeoutMs + 5000,
    // Nobody waits for it: it may wait for a worker (all agents down) for a while, not for ever.
    scheduleToCloseTimeout: Math.max(10 * 60_000, d.attempts * (d.timeoutMs + 35_000)),
    retry: { initialInterval: '1s', backoffCoefficient: 2, maximumInterval: '30s', maximumAttempts: d.attempts },
  });
}

/** The message of the innermost cause (an ActivityFailure wraps the activity's ApplicationFailure). */
function innermost(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}
