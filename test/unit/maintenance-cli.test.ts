/**
 * `haoscar maintenance` before anything is sent (src/cli/maintenance.ts maintenanceRequest: bad input
 * is a clear error, exit 2), what it prints for the controller's answer, what `haoscar status` shows,
 * and the agent's view of which groups entered and left maintenance (src/agent/maintenance-view.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeMaintenance, maintenanceRequest } from '../../src/cli/maintenance.js';
import { CliError, EXIT } from '../../src/cli/errors.js';
import { formatStatus } from '../../src/cli/status-text.js';
import { maintenanceChanges, MaintenanceView } from '../../src/agent/maintenance-view.js';
import type { Ownership } from '../../workflows/shared.js';

const config = { groups: [{ name: 'web' }, { name: 'db' }], nodes: [{ name: 'n1' }, { name: 'n2' }] } as Parameters<typeof maintenanceRequest>[0];

test('maintenanceRequest: a valid request, or a usage error naming the problem (nothing is sent)', () => {
  assert.deepEqual(maintenanceRequest(config, 'on', { group: 'web', reason: 'disk' }, 'root@ops'), { group: 'web', on: true, operator: 'root@ops', reason: 'disk' });
  assert.deepEqual(maintenanceRequest(config, 'on', { node: 'n1', force: true }, 'root@ops'), { node: 'n1', on: true, operator: 'root@ops', force: true });
  assert.deepEqual(maintenanceRequest(config, 'off', { node: 'n1' }, 'root@ops'), { node: 'n1', on: false, operator: 'root@ops' });
  const CASES: [Parameters<typeof maintenanceRequest>[1], Parameters<typeof maintenanceRequest>[2], RegExp][] = [
    ['on', {}, /name either a group \(--group G\) or a node \(--node N\); nothing was sent/],
    ['on', { group: 'web', node: 'n1' }, /name either a group/],
    ['on', { group: 'mail' }, /unknown group 'mail' \(known: web, db\); nothing was sent/],
    ['off', { node: 'n9' }, /unknown node 'n9' \(known: n1, n2\); nothing was sent/],
    ['on', { group: 'Web!' }, /group: expected a group name of lowercase letters/],
    ['on', { group: 'web', force: true }, /--force only goes with `maintenance on --node`/],
    ['off', { node: 'n1', force: true }, /--force only goes with/],
    ['on', { group: 'web', reason: 'x'.repeat(3000) }, /reason: /],
  ];
  for (const [onOff, opts, message] of CASES) {
    assert.throws(() => maintenanceRequest(config, onOff, opts, 'root@ops'), (err: unknown) => err instanceof CliError && err.exitCode === EXIT.usage && message.test(err.message), `${onOff} ${JSON.stringify(opts)}`);
  }
});

test('describeMaintenance: what the operator reads', () => {
  assert.match(describeMaintenance({ target: { group: 'web' }, on: true, changed: true, moves: [], stays: [] }), /^group web is in maintenance: unmanaged — no heals.*\n {2}A failover or switchover by hand still runs\. `haoscar maintenance off --group web` manages it again\.\n$/s);
  assert.match(describeMaintenance({ target: { group: 'web' }, on: true, changed: false, moves: [], stays: [] }), /in maintenance \(it already was\)/);
  assert.equal(describeMaintenance({ target: { group: 'web' }, on: false, changed: true, moves: [], stays: [] }), 'group web is managed again: what was asked for meanwhile and still stands is done now.\n');
  assert.equal(
    describeMaintenance({ target: { node: 'n1' }, on: true, changed: true, moves: [{ group: 'web', to: 'n2' }], stays: [{ group: 'db', why: 'no other node of group db is up' }] }),
    'node n1 is in standby: nothing is placed on it until `haoscar maintenance off --node n1`.\n  moving: web → n2 (switchover started by the controller)\n  stays: db: no other node of group db is up\n',
  );
  assert.equal(describeMaintenance({ target: { node: 'n1' }, on: false, changed: false, moves: [], stays: [] }), 'node n1 is out of standby (it was not in standby): groups may be placed on it again.\n');
});

test('status shows a group in maintenance (with what was asked for meanwhile) and a node in standby', () => {
  const state: Ownership = {
    cluster: 'c1',
    groups: { web: { owner: 'n1', epoch: 3, state: 'running', since: 0, renewable: true, deferred: { kind: 'node-lost', reason: 'n1 suspect', owner: 'n1', epoch: 3, at: 1, delayMs: 500 } } as Ownership['groups'][string] },
    nodes: { n1: { state: 'up', since: 0, reportedBy: 'n1' }, n2: { state: 'up', since: 0, reportedBy: 'n2' } },
    falseAlarms: [],
    reverify: {},
    maintenance: { groups: { web: { at: 40_000, operator: 'root@ops', reason: 'disk\x1b[2J' } }, nodes: { n2: { at: 50_000, operator: 'root@ops' } } },
  };
  const text = formatStatus(state, 60_000);
  assert.match(text, /\n {6}MAINTENANCE \(by root@ops 20s ago: disk\\x1b\[2J\): unmanaged — no heals, no automatic failover; asked for meanwhile: node-lost \(n1 suspect\)\n/);
  assert.match(text, /n2 +up .*\n {6}STANDBY \(maintenance by root@ops 10s ago\): its groups move away, nothing is placed on it\n/);
  assert.doesNotMatch(formatStatus({ ...state, maintenance: undefined }, 60_000), /MAINTENANCE|STANDBY/);
});

test('the agent\'s view: which groups entered and left maintenance, and its refusal', () => {
  const mark = { at: 1, operator: 'root@ops' };
  assert.deepEqual(maintenanceChanges(undefined, undefined), { entered: [], left: [] });
  assert.deepEqual(maintenanceChanges(undefined, { groups: { web: mark, db: mark }, nodes: {} }), { entered: ['db', 'web'], left: [] });
  assert.deepEqual(maintenanceChanges({ groups: { web: mark }, nodes: {} }, { groups: { db: mark }, nodes: { n1: mark } }), { entered: ['db'], left: ['web'] });
  const view = new MaintenanceView();
  assert.equal(view.refusal('web', 'heal'), undefined, 'nothing is known before the first answer');
  assert.deepEqual(view.learn({ groups: { web: mark }, nodes: {} }), { entered: ['web'], left: [] });
  assert.equal(view.refusal('web', 'heal of web/httpd')?.type, 'InMaintenance');
  assert.equal(view.refusal('db', 'heal'), undefined);
  assert.deepEqual(view.learn(undefined), { entered: [], left: ['web'] });
  assert.equal(view.refusal('web', 'heal'), undefined);
});
