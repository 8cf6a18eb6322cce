/**
 * Delivers one event to one alert's recipient: runs the agent through the exec layer (no shell,
 * the event only in environment variables, killed after the alert's timeout) or POSTs the JSON
 * body to the webhook (abandoned after the timeout; a non-2xx answer is a failure). Throws
 * {@link AlertDeliveryError} (or the exec layer's ExecError) when the delivery failed: the
 * activity that calls it is retried by Temporal.
 */
import type { AlertSpec, Config } from '../config/types.js';
import type { Exec } from '../exec.js';
import type { AlertEvent } from '../../workflows/alert-event.js';
import { crmAlertEnv, webhookBody } from './crm-env.js';

export class AlertDeliveryError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'AlertDeliveryError';
  }
}

export interface AlertDeliveryDeps {
  exec: Exec;
  config: Config;
  /** When the delivery starts (ms since the epoch, may carry a fraction); default now. */
  nowMs?: () => number;
}

/** The node ID Pacemaker would give: the node's 1-based position in `nodes` (absent for an unknown node). */
export function alertNodeId(config: Config, node: string | undefined): number | undefined {
  const i = config.nodes.findIndex((n) => n.name === node);
  return i < 0 ? undefined : i + 1;
}

/** @returns what the agent printed (its last lines) or the webhook's status, for the history. */
export async function deliverAlert(spec: AlertSpec, recipient: string, event: AlertEvent, deps: AlertDeliveryDeps): Promise<string> {
  const nowMs = deps.nowMs?.() ?? performance.timeOrigin + performance.now();
  const env = crmAlertEnv(event, { recipient, timestampFormat: spec.timestampFormat, nowMs, ...optionalNodeId(deps.config, event.node) });
  if (spec.target.type === 'command') {
    // The alert's own variables (Pacemaker's instance attributes) first: CRM_alert_* always win.
    const result = await deps.exec(spec.target.path, [], { env: { ...spec.env, ...env }, timeoutMs: spec.timeoutMs });
    return `${spec.target.path} exited 0${result.stdout.trim() ? `: ${result.stdout.trim().split('\n').slice(-3).join(' | ')}` : ''}`;
  }
  const url = spec.target.url;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'user-agent': 'haoscar-alert' },
      body: JSON.stringify(webhookBody({ ...env }, event)),
      signal: AbortSignal.timeout(spec.timeoutMs),
      redirect: 'error',
    });
  } catch (err) {
    const why = err instanceof Error && err.name === 'TimeoutError' ? `no answer within ${spec.timeoutMs}ms` : err instanceof Error ? `${err.message}${err.cause instanceof Error ? ` (${err.cause.message})` : ''}` : String(err);
    throw new AlertDeliveryError(`webhook ${url} failed: ${why}`, err);
  }
  const text = (await response.text().catch(() => '')).slice(0, 300);
  if (!response.ok) throw new AlertDeliveryError(`webhook ${url} answered ${response.status} ${response.statusText}${text ? `: ${text}` : ''}`);
  return `webhook ${url} answered ${response.status}`;
}

function optionalNodeId(config: Config, node: string | undefined): { nodeId?: number } {
  const id = alertNodeId(config, node);
  return id === undefined ? {} : { nodeId: id };
}
