/**
 * An HA-OSCAR event as the environment of a Pacemaker alert agent (`CRM_alert_*`, as Pacemaker
 * 2.1 sets them: "Pacemaker Explained", Alert Agents), so that agents written for Pacemaker (such
 * as the samples Debian's pacemaker-common ships) run unchanged. Pure: the table of
 * docs/alerts.md is pinned by test/unit/alerts-crm-env.test.ts.
 *
 * Pacemaker knows four kinds: `node` (desc: member or lost), `fencing`, `resource` (an operation's
 * task, rc, status and desc) and `attribute` (a node attribute's new value). Each HA-OSCAR event is
 * the kind whose sample line reads right: a failover is a resource operation `failover` on the
 * group, a heal that gave up a failed `heal` of the resource, a file set's sync an operation `sync`,
 * the guard's release a `stop` of the group, maintenance an attribute (`standby` for a node, as
 * `pcs node standby` sets; `maintenance:GROUP` for a group). What Pacemaker has no field for is in
 * `CRM_alert_haoscar_*` (the event name, cluster, group, detail), which Pacemaker agents ignore.
 */
import type { AlertEvent } from '../../workflows/alert-event.js';

/** Pacemaker's operation status codes (PCMK_EXEC_*) and OCF return codes used here. */
export const EXEC_STATUS = { pending: -1, done: 0, error: 4 } as const;
export const OCF_RC = { ok: 0, error: 1, notRunning: 7, unknown: 193 } as const;

/** The CRM_alert_version HA-OSCAR claims: the Pacemaker alert interface it follows. */
export const CRM_ALERT_VERSION = '2.1.5';

export interface CrmAlertContext {
  /** This run's recipient ('' when the alert has none: agents must handle that). */
  recipient: string;
  /** strftime with Pacemaker's %N extension. */
  timestampFormat: string;
  /** The node's 1-based position in haoscar.yaml's `nodes` (Pacemaker's corosync node ID). */
  nodeId?: number;
  /** When the agent runs (ms since the epoch, with a sub-millisecond part if known). */
  nowMs: number;
}

/** What a Pacemaker agent is told of the event: the part that depends on its kind. */
export interface CrmAlertFields {
  kind: 'node' | 'fencing' | 'resource' | 'attribute';
  node: string;
  desc: string;
  rsc?: string;
  task?: string;
  rc?: number;
  status?: number;
  targetRc?: number;
  attributeName?: string;
  attributeValue?: string;
}

/** The Pacemaker fields of an event (the mapping table of docs/alerts.md). */
export function crmAlertFields(e: AlertEvent): CrmAlertFields {
  const node = e.node ?? '';
  const resource = (task: string, rc: number, status: number, desc: string, rsc = e.group ?? '') =>
    ({ kind: 'resource' as const, node, rsc, task, rc, status, targetRc: OCF_RC.ok, desc });
  switch (e.event) {
    case 'node-suspect':
      return { kind: 'node', node, desc: 'lost' };
    case 'node-back':
      return { kind: 'node', node, desc: 'member' };
    case 'failover-started':
      return resource('failover', OCF_RC.unknown, EXEC_STATUS.pending, 'pending');
    case 'failover-ended':
      if (e.outcome === 'running') return resource('failover', OCF_RC.ok, EXEC_STATUS.done, 'ok');
      if (e.outcome === 'unchanged') return resource('failover', OCF_RC.ok, EXEC_STATUS.done, 'ok (unchanged)');
      return resource('failover', OCF_RC.notRunning, EXEC_STATUS.done, 'not running');
    case 'false-alarm':
      return resource('failover', OCF_RC.ok, EXEC_STATUS.done, 'false alarm');
    case 'heal-gave-up':
      return resource('heal', OCF_RC.error, EXEC_STATUS.done, 'error', e.resource ?? '');
    case 'sync-failing':
      return resource('sync', OCF_RC.error, EXEC_STATUS.error, 'error', e.resource ?? '');
    case 'sync-recovered':
      return resource('sync', OCF_RC.ok, EXEC_STATUS.done, 'ok', e.resource ?? '');
    case 'guard-released':
      return e.ok === false ? resource('stop', OCF_RC.error, EXEC_STATUS.error, 'error') : resource('stop', OCF_RC.ok, EXEC_STATUS.done, 'ok');
    case 'maintenance-changed':
      return e.group !== undefined
        ? { kind: 'attribute', node, desc: `maintenance of group ${e.group}`, attributeName: `maintenance:${e.group}`, attributeValue: e.on ? 'on' : 'off' }
        : { kind: 'attribute', node, desc: `standby of node ${node}`, attributeName: 'standby', attributeValue: e.on ? 'on' : 'off' };
  }
}

/**
 * The environment of one agent run: every `CRM_alert_*` variable Pacemaker sets for the kind
 * (numbers as decimal text), and the `CRM_alert_haoscar_*` extras.
 */
export function crmAlertEnv(e: AlertEvent, ctx: CrmAlertContext): Record<string, string> {
  const f = crmAlertFields(e);
  const when = new Date(Math.floor(ctx.nowMs));
  const usec = Math.floor((ctx.nowMs * 1000) % 1_000_000);
  const env: Record<string, string> = {
    CRM_alert_version: CRM_ALERT_VERSION,
    CRM_alert_recipient: ctx.recipient,
    CRM_alert_node_sequence: String(e.sequence),
    CRM_alert_timestamp: formatTimestamp(when, usec, ctx.timestampFormat),
    CRM_alert_timestamp_epoch: String(Math.floor(ctx.nowMs / 1000)),
    CRM_alert_timestamp_usec: String(usec),
    CRM_alert_kind: f.kind,
    CRM_alert_node: f.node,
    CRM_alert_desc: f.desc,
  };
  if (f.kind === 'node' && ctx.nodeId !== undefined) env.CRM_alert_nodeid = String(ctx.nodeId);
  if (f.kind === 'resource') {
    env.CRM_alert_rsc = f.rsc ?? '';
    env.CRM_alert_task = f.task ?? '';
    env.CRM_alert_interval = '0';
    env.CRM_alert_rc = String(f.rc);
    env.CRM_alert_status = String(f.status);
    env.CRM_alert_target_rc = String(f.targetRc);
  }
  if (f.kind === 'attribute') {
    env.CRM_alert_attribute_name = f.attributeName ?? '';
    env.CRM_alert_attribute_value = f.attributeValue ?? '';
  }
  env.CRM_alert_haoscar_event = e.event;
  env.CRM_alert_haoscar_cluster = e.cluster;
  env.CRM_alert_haoscar_source = e.source;
  env.CRM_alert_haoscar_at = String(e.at);
  env.CRM_alert_haoscar_detail = e.detail;
  if (e.group !== undefined) env.CRM_alert_haoscar_group = e.group;
  if (e.resource !== undefined) env.CRM_alert_haoscar_resource = e.resource;
  if (e.operation !== undefined) env.CRM_alert_haoscar_operation = e.operation;
  if (e.outcome !== undefined) env.CRM_alert_haoscar_outcome = e.outcome;
  return env;
}

/**
 * The webhook's JSON body: the same variables without their `CRM_alert_` prefix (`kind`, `node`,
 * `desc`, ..., `haoscar_event`), and the event as HA-OSCAR describes it.
 */
export function webhookBody(env: Record<string, string>, e: AlertEvent): Record<string, unknown> {
  const fields = Object.fromEntries(Object.entries(env).map(([k, v]) => [k.replace(/^CRM_alert_/, ''), v]));
  return { ...fields, event: e };
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');
const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * strftime in local time, as Pacemaker formats CRM_alert_timestamp: %Y %y %m %d %e %H %I %M %S %p
 * %j %a %b %z %Z %s %T %F %D %R %%, and Pacemaker's %N (the fraction of the second, %3N milliseconds,
 * %6N or %06N microseconds; digits beyond 6 are zero). Unknown conversions stay as written.
 */
export function formatTimestamp(when: Date, usec: number, format: string): string {
  const offset = -when.getTimezoneOffset();
  const tz = `${offset >= 0 ? '+' : '-'}${pad(Math.floor(Math.abs(offset) / 60), 2)}${pad(Math.abs(offset) % 60, 2)}`;
  const dayOfYear = Math.floor((Date.UTC(when.getFullYear(), when.getMonth(), when.getDate()) - Date.UTC(when.getFullYear(), 0, 1)) / 86_400_000) + 1;
  const conv = (c: string): string | undefined => {
    switch (c) {
      case 'Y': return String(when.getFullYear());
      case 'y': return pad(when.getFullYear() % 100, 2);
      case 'm': return pad(when.getMonth() + 1, 2);
      case 'd': return pad(when.getDate(), 2);
      case 'e': return String(when.getDate()).padStart(2, ' ');
      case 'H': return pad(when.getHours(), 2);
      case 'I': return pad(when.getHours() % 12 || 12, 2);
      case 'M': return pad(when.getMinutes(), 2);
      case 'S': return pad(when.getSeconds(), 2);
      case 'p': return when.getHours() < 12 ? 'AM' : 'PM';
      case 'j': return pad(dayOfYear, 3);
      case 'a': return DAYS[when.getDay()];
      case 'b': return MONTHS[when.getMonth()];
      case 'z': return tz;
      case 'Z': return Intl.DateTimeFormat(undefined, { timeZoneName: 'short' }).formatToParts(when).find((p) => p.type === 'timeZoneName')?.value ?? tz;
      case 's': return String(Math.floor(when.getTime() / 1000));
      case 'T': return `${conv('H')}:${conv('M')}:${conv('S')}`;
      case 'F': return `${conv('Y')}-${conv('m')}-${conv('d')}`;
      case 'D': return `${conv('m')}/${conv('d')}/${conv('y')}`;
      case 'R': return `${conv('H')}:${conv('M')}`;
      case '%': return '%';
      default: return undefined;
    }
  };
  return format.replace(/%(0?)(\d*)(N)|%([A-Za-z%])/g, (whole, _zero: string, digits: string, n: string | undefined, c: string | undefined) => {
    if (n) {
      // Pacemaker: the fraction with this many digits (default 9), i.e. nanoseconds cut to width.
      const width = digits ? Math.min(Number(digits), 9) : 9;
      return (pad(usec, 6) + '000').slice(0, width);
    }
    return conv(c!) ?? whole;
  });
}
