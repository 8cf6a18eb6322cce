/**
 * The event → CRM_alert_* mapping (src/alerts/crm-env.ts, the table of docs/alerts.md), the
 * timestamp formats Pacemaker agents are given, the webhook body, the `alerts:` config and the
 * planning of deliveries (activities/alerts.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crmAlertEnv, formatTimestamp, webhookBody } from '../../src/alerts/crm-env.js';
import { alertEventSchema, nextAlertSequence, type AlertEvent } from '../../workflows/alert-event.js';
import { parseConfig } from '../../src/config/load.js';
import { createAlertActivities } from '../../activities/alerts.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';

const base = { cluster: 'c1', at: 1_700_000_000_000, sequence: 42, source: 'controller', detail: 'd' } as const;
const ev = (e: Partial<AlertEvent> & Pick<AlertEvent, 'event'>): AlertEvent => alertEventSchema.parse({ ...base, ...e });

// event → the Pacemaker fields an agent switches on (kind) and prints (node, rsc, task, desc, rc, status, attribute).
const TABLE: [string, AlertEvent, Record<string, string | undefined>][] = [
  ['node suspect', ev({ event: 'node-suspect', node: 'n1' }), { kind: 'node', node: 'n1', desc: 'lost', nodeid: '1', task: undefined, rsc: undefined }],
  ['node back', ev({ event: 'node-back', node: 'n2' }), { kind: 'node', node: 'n2', desc: 'member', nodeid: '2' }],
  ['failover started', ev({ event: 'failover-started', node: 'n1', group: 'web', operation: 'node-lost' }), { kind: 'resource', node: 'n1', rsc: 'web', task: 'failover', desc: 'pending', rc: '193', status: '-1', target_rc: '0', interval: '0', nodeid: undefined }],
  ['failover ended running', ev({ event: 'failover-ended', node: 'n2', group: 'web', outcome: 'running' }), { kind: 'resource', node: 'n2', rsc: 'web', task: 'failover', desc: 'ok', rc: '0', status: '0' }],
  ['failover ended down', ev({ event: 'failover-ended', group: 'web', outcome: 'down' }), { kind: 'resource', node: '', rsc: 'web', task: 'failover', desc: 'not running', rc: '7', status: '0' }],
  ['failover ended unchanged', ev({ event: 'failover-ended', node: 'n1', group: 'web', outcome: 'unchanged' }), { kind: 'resource', desc: 'ok (unchanged)', rc: '0' }],
  ['false alarm', ev({ event: 'false-alarm', node: 'n1', group: 'web', outcome: 'false-alarm' }), { kind: 'resource', node: 'n1', rsc: 'web', task: 'failover', desc: 'false alarm', rc: '0', status: '0' }],
  ['heal gave up', ev({ event: 'heal-gave-up', node: 'n1', group: 'web', resource: 'httpd' }), { kind: 'resource', node: 'n1', rsc: 'httpd', task: 'heal', desc: 'error', rc: '1', status: '0' }],
  ['sync failing', ev({ event: 'sync-failing', node: 'n2', group: 'web', resource: 'docroot' }), { kind: 'resource', node: 'n2', rsc: 'docroot', task: 'sync', desc: 'error', rc: '1', status: '4' }],
  ['sync recovered', ev({ event: 'sync-recovered', node: 'n2', group: 'web', resource: 'docroot' }), { kind: 'resource', rsc: 'docroot', task: 'sync', desc: 'ok', rc: '0', status: '0' }],
  ['guard released', ev({ event: 'guard-released', node: 'n1', group: 'web', ok: true }), { kind: 'resource', node: 'n1', rsc: 'web', task: 'stop', desc: 'ok', rc: '0', status: '0' }],
  ['guard release failed', ev({ event: 'guard-released', node: 'n1', group: 'web', ok: false }), { kind: 'resource', task: 'stop', desc: 'error', rc: '1', status: '4' }],
  ['node standby on', ev({ event: 'maintenance-changed', node: 'n2', on: true }), { kind: 'attribute', node: 'n2', attribute_name: 'standby', attribute_value: 'on', rsc: undefined }],
  ['group maintenance off', ev({ event: 'maintenance-changed', node: 'n1', group: 'web', on: false }), { kind: 'attribute', node: 'n1', attribute_name: 'maintenance:web', attribute_value: 'off' }],
];

const config = parseConfig([
  'cluster: c1',
  'nodes:',
  '  - { name: n1, addresses: [127.0.0.1] }',
  '  - { name: n2, addresses: [127.0.0.2] }',
  'alerts:',
  '  - { name: file, path: /bin/true, recipients: [/tmp/a.log, /tmp/b.log] }',
  '  - { name: hook, webhook: "http://127.0.0.1:9/x", events: [failover-ended, false-alarm], timeout: 2s, attempts: 5 }',
  '',
].join('\n'));

for (const [name, event, want] of TABLE) {
  test(`CRM_alert_* of ${name}`, () => {
    const env = crmAlertEnv(event, { recipient: '/tmp/x.log', timestampFormat: '%H:%M:%S.%06N', nowMs: base.at + 0.5, nodeId: event.node === 'n1' ? 1 : event.node === 'n2' ? 2 : undefined });
    for (const [k, v] of Object.entries(want)) assert.equal(env[`CRM_alert_${k}`], v, `CRM_alert_${k}`);
    // What every alert has.
    assert.equal(env.CRM_alert_version, '2.1.5');
    assert.equal(env.CRM_alert_recipient, '/tmp/x.log');
    assert.equal(env.CRM_alert_node_sequence, '42');
    assert.equal(env.CRM_alert_timestamp_epoch, '1700000000');
    assert.equal(env.CRM_alert_timestamp_usec, '500');
    assert.equal(env.CRM_alert_haoscar_event, event.event);
    assert.equal(env.CRM_alert_haoscar_cluster, 'c1');
    // Environment values are text; nothing undefined slips in as "undefined".
    for (const v of Object.values(env)) assert.notEqual(v, 'undefined');
  });
}

test('timestamps: Pacemaker\'s default %H:%M:%S.%06N, %3N, %N (9 digits) and strftime conversions in local time', () => {
  const when = new Date(2026, 11, 7, 9, 5, 3, 123);
  assert.equal(formatTimestamp(when, 123456, '%H:%M:%S.%06N'), '09:05:03.123456');
  assert.equal(formatTimestamp(when, 123456, '%Y-%m-%d %T.%3N'), '2026-12-07 09:05:03.123');
  assert.equal(formatTimestamp(when, 123456, '%N'), '123456000');
  assert.equal(formatTimestamp(when, 7, '%F %R %j %b %a %% %q'), '2026-12-07 09:05 341 Dec Mon % %q');
  assert.equal(formatTimestamp(when, 0, '%s'), String(Math.floor(when.getTime() / 1000)));
});

test('the webhook body: the same variables without their prefix, and the event', () => {
  const event = ev({ event: 'failover-ended', node: 'n2', group: 'web', outcome: 'running' });
  const env = crmAlertEnv(event, { recipient: '', timestampFormat: '%s', nowMs: base.at });
  const body = webhookBody(env, event);
  assert.equal(body.kind, 'resource');
  assert.equal(body.rsc, 'web');
  assert.equal(body.haoscar_event, 'failover-ended');
  assert.deepEqual(body.event, event);
  assert.ok(!Object.keys(body).some((k) => k.startsWith('CRM_alert_')));
});

test('sequence numbers increase within a run and, from the clock, across runs', () => {
  assert.equal(nextAlertSequence(0, 1000), 1000);
  assert.equal(nextAlertSequence(1000, 1000), 1001);
  assert.equal(nextAlertSequence(1001, 900), 1002);
});

test('planAlerts: one run per recipient of each alert whose events take the event; none for others', async () => {
  const a = createAlertActivities({ config, exec: createExec(silentLogger) });
  const suspect = await a.planAlerts({ cluster: 'c1', event: ev({ event: 'node-suspect', node: 'n1' }) });
  assert.deepEqual(suspect.map((d) => [d.alert, d.recipient]), [['file', '/tmp/a.log'], ['file', '/tmp/b.log']]);
  const ended = await a.planAlerts({ cluster: 'c1', event: ev({ event: 'failover-ended', group: 'web', outcome: 'running' }) });
  assert.deepEqual(ended.map((d) => [d.alert, d.recipient, d.timeoutMs, d.attempts]), [['file', '/tmp/a.log', 30_000, 3], ['file', '/tmp/b.log', 30_000, 3], ['hook', '', 2000, 5]]);
  await assert.rejects(a.planAlerts({ cluster: 'other', event: ev({ event: 'node-back' }) }), /names cluster 'other'/);
  await assert.rejects(a.sendAlert({ cluster: 'c1', alert: 'gone', recipient: '', event: ev({ event: 'node-back' }) }), /no alert 'gone'.*known: file, hook/);
});

test('sendAlert: the agent gets the variables in its environment only (no shell), and its failure is an error', async () => {
  const calls: { file: string; args: readonly string[]; env?: Record<string, string>; timeoutMs?: number }[] = [];
  const a = createAlertActivities({
    config,
    exec: async (file, args, options) => {
      calls.push({ file, args, ...(options?.env ? { env: options.env } : {}), ...(options?.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}) });
      return { exitCode: 0, stdout: '', stderr: '' };
    },
  });
  await a.sendAlert({ cluster: 'c1', alert: 'file', recipient: '/tmp/a.log', event: ev({ event: 'node-suspect', node: 'n1', detail: '$(rm -rf /); `x`' }) });
  assert.equal(calls[0]!.file, '/bin/true');
  assert.deepEqual(calls[0]!.args, []);
  assert.equal(calls[0]!.timeoutMs, 30_000);
  assert.equal(calls[0]!.env!.CRM_alert_haoscar_detail, '$(rm -rf /); `x`');
  assert.equal(calls[0]!.env!.CRM_alert_nodeid, '1');
  const failing = createAlertActivities({ config: parseConfig(['cluster: c1', 'nodes: [{ name: n1, addresses: [127.0.0.1] }]', 'alerts: [{ name: f, path: /bin/false }]', ''].join('\n')), exec: createExec(silentLogger) });
  await assert.rejects(failing.sendAlert({ cluster: 'c1', alert: 'f', recipient: '', event: ev({ event: 'node-back', node: 'n1' }) }), /\/bin\/false.*exited with 1/);
});

const bad: [string, string, RegExp][] = [
  ['neither path nor webhook', '[{ name: x }]', /alerts\[0\].*either `path` \(an executable\) or `webhook`/],
  ['both', '[{ name: x, path: /bin/true, webhook: "http://h/" }]', /either `path`/],
  ['a relative path', '[{ name: x, path: alert.sh }]', /alerts\[0\]\.path.*absolute path/],
  ['an unknown event', '[{ name: x, path: /bin/true, events: [failover] }]', /alerts\[0\]\.events\[0\].*expected one of node-suspect, node-back/],
  ['a webhook that is not http', '[{ name: x, webhook: "ftp://h/" }]', /alerts\[0\]\.webhook.*http/],
  ['a duplicate name', '[{ name: x, path: /bin/true }, { name: x, path: /bin/true }]', /alerts\[1\]\.name.*duplicate alert name 'x'/],
  ['a bare-number timeout', '[{ name: x, path: /bin/true, timeout: 5 }]', /alerts\[0\]\.timeout.*5s or 5ms/],
  ['an unknown key', '[{ name: x, path: /bin/true, recipient: a }]', /alerts\[0\].*recipient/],
  ['a bad env name', '[{ name: x, path: /bin/true, env: { "a-b": c } }]', /alerts\[0\]\.env.*environment variable NAME/],
];
for (const [what, alerts, message] of bad) {
  test(`alerts config: ${what} is refused with a message naming the field`, () => {
    assert.throws(() => parseConfig(['cluster: c1', 'nodes: [{ name: n1, addresses: [127.0.0.1] }]', `alerts: ${alerts}`, ''].join('\n')), message);
  });
}
