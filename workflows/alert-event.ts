/**
 * A cluster event an administrator is told about (`alerts:` in haoscar.yaml, docs/alerts.md):
 * the one contract between where events arise (the controller workflow, an agent) and the alert
 * workflow that delivers them. Its zod schema, its type and the list of event names are kept
 * side by side; workflow-safe (zod only), so the config schema and the workflows share the names.
 */
import { z } from 'zod';

/** Every event an alert can be sent for, in the order docs/alerts.md lists them. */
export const ALERT_EVENTS = [
  'node-suspect',
  'node-back',
  'failover-started',
  'failover-ended',
  'false-alarm',
  'heal-gave-up',
  'sync-failing',
  'sync-recovered',
  'guard-released',
  'maintenance-changed',
] as const;
export type AlertEventName = (typeof ALERT_EVENTS)[number];

export const alertEventSchema = z.strictObject({
  event: z.enum(ALERT_EVENTS),
  cluster: z.string().min(1).max(63),
  /** When it happened (ms since the epoch, the issuer's clock: a workflow's time, an agent's). */
  at: z.number().int().nonnegative(),
  /** Increases with every alert its issuer sends (CRM_alert_node_sequence). */
  sequence: z.number().int().nonnegative(),
  /** Who saw it: `controller`, or the node whose agent did. */
  source: z.string().min(1).max(63),
  /** The node it is about (the suspect node, a failover's old owner or new one, ...). */
  node: z.string().max(63).optional(),
  group: z.string().max(63).optional(),
  /** A resource (heal gave up) or a file set (sync). */
  resource: z.string().max(63).optional(),
  /** A failover's kind (node-lost, heal-gave-up, operator, switchover, ...). */
  operation: z.string().max(63).optional(),
  /** How a failover ended (running, down, unchanged, false-alarm). */
  outcome: z.string().max(63).optional(),
  /** Whether the action succeeded (a guard's release); absent: not an action. */
  ok: z.boolean().optional(),
  /** maintenance-changed: on or off. */
  on: z.boolean().optional(),
  detail: z.string().max(2000),
});
export type AlertEvent = z.infer<typeof alertEventSchema>;

/** One alert workflow per event: its issuer and sequence make the ID unique and a retried start a duplicate. */
export const alertWorkflowId = (cluster: string, e: Pick<AlertEvent, 'source' | 'sequence' | 'event'>): string =>
  `alert/${cluster}/${e.source}/${e.sequence}/${e.event}`;

/** The next sequence number of an issuer: above the last one and, across restarts, the time in ms. */
export function nextAlertSequence(last: number, nowMs: number): number {
  return Math.max(last + 1, Math.floor(nowMs));
}

/** One line for the UI and logs: what happened, where. */
export function alertSummary(e: AlertEvent): string {
  const where = [e.group, e.resource, e.node].filter((x) => x !== undefined).join(' ');
  const how = e.outcome ?? (e.on === undefined ? undefined : e.on ? 'on' : 'off') ?? (e.ok === false ? 'failed' : undefined);
  return `alert: ${e.event}${where ? ` ${where}` : ''}${how ? ` (${how})` : ''}`;
}
