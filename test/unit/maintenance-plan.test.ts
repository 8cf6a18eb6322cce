/**
 * Maintenance as pure decisions (workflows/maintenance-plan.ts): what an update changes and
 * answers, which switchovers a node in standby asks for, and what the controller's group planner
 * and the agents do about a group in maintenance.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyMaintenance,
  maintenanceRefusal,
  outOfStandby,
  STANDBY_MOVE_RETRY_MS,
  standbyMoves,
  standbyTarget,
  type MaintenanceFacts,
} from '../../workflows/maintenance-plan.js';
import { groupStep } from '../../workflows/group-plan.js';
import { ERROR_TYPES, type MaintenanceState } from '../../workflows/shared.js';

const mark = { at: 5, operator: 'alice@ops', reason: 'new disk' };
const up = (state: 'up' | 'suspect' | 'unknown' = 'up') => ({ state, since: 1, reportedBy: 'x' });

const FACTS: MaintenanceFacts = {
  groups: { web: { owner: 'n1', state: 'running' }, db: { owner: 'n1', state: 'running' }, mail: { owner: 'n2', state: 'running' } },
  nodes: { n1: up(), n2: up(), n3: up('suspect') },
  maintenance: undefined,
  groupNodes: { web: ['n1', 'n2'], db: ['n1', 'n3'], mail: ['n2', 'n1'] },
};

test('a group in maintenance refuses every automatic action with InMaintenance, naming the group, who and why', () => {
  const m: MaintenanceState = { groups: { web: mark }, nodes: {} };
  assert.equal(maintenanceRefusal(m, 'db', 'heal'), undefined);
  assert.equal(maintenanceRefusal(undefined, 'web', 'heal'), undefined);
  const r = maintenanceRefusal(m, 'web', 'heal of web/httpd');
  assert.equal(r?.type, ERROR_TYPES.InMaintenance);
  assert.equal(r?.message, 'group web is in maintenance (set by alice@ops: new disk): no heal of web/httpd; `haoscar maintenance off --group web` manages it again');
});

test('standby: the target is the first node of the group, up, not the owner, not in standby', () => {
  const m: MaintenanceState = { groups: {}, nodes: { n2: mark } };
  const liveness = { n1: up(), n2: up(), n3: up(), n4: up('suspect') };
  const CASES: [string[], string, MaintenanceState | undefined, string | undefined][] = [
    [['n1', 'n2', 'n3'], 'n1', undefined, 'n2'],
    [['n1', 'n2', 'n3'], 'n1', m, 'n3'],
    [['n1', 'n4'], 'n1', undefined, undefined],
    [['n4', 'n1'], 'n1', undefined, undefined],
    [['n1', 'n2'], 'n1', m, undefined],
    [['n9', 'n1', 'n3'], 'n1', undefined, 'n3'],
  ];
  for (const [nodes, owner, mm, expected] of CASES) assert.equal(standbyTarget(nodes, owner, liveness, mm), expected, `${nodes.join(',')} from ${owner}`);
  assert.deepEqual(outOfStandby(['n1', 'n2', 'n3'], m), ['n1', 'n3']);
  assert.deepEqual(outOfStandby(['n1', 'n2'], undefined), ['n1', 'n2']);
});

test('applyMaintenance: marks, answers, and setting what already is changes nothing', () => {
  const on = applyMaintenance(FACTS, { group: 'web', on: true, operator: 'alice@ops', reason: 'new disk' }, 5);
  assert.deepEqual(on.maintenance, { groups: { web: mark }, nodes: {} });
  assert.deepEqual(on.result, { target: { group: 'web' }, on: true, changed: true, moves: [], stays: [] });
  const again = applyMaintenance({ ...FACTS, maintenance: on.maintenance }, { group: 'web', on: true, operator: 'bob' }, 9);
  assert.deepEqual(again.maintenance.groups.web, mark, 'the first mark is kept');
  assert.equal(again.result.changed, false);
  const off = applyMaintenance({ ...FACTS, maintenance: on.maintenance }, { group: 'web', on: false }, 9);
  assert.deepEqual(off.maintenance, { groups: {}, nodes: {} });
  assert.equal(off.result.changed, true);
  assert.equal(applyMaintenance(FACTS, { group: 'web', on: false }, 9).result.changed, false);
  assert.deepEqual(FACTS.maintenance, undefined, 'the facts are not changed');

  // n1 in standby (forced): web moves to n2; db has no other node up and stays; with web in maintenance it stays too.
  const standby = applyMaintenance({ ...FACTS, maintenance: { groups: { web: mark }, nodes: {} } }, { node: 'n1', on: true, force: true, operator: 'alice@ops' }, 7);
  assert.deepEqual(standby.maintenance.nodes, { n1: { at: 7, operator: 'alice@ops' } });
  assert.deepEqual(standby.result.moves, []);
  assert.deepEqual(standby.result.stays.map((s) => s.group), ['web', 'db']);
  assert.match(standby.result.stays[0]!.why, /group web is in maintenance: it stays on n1/);
  assert.match(standby.result.stays[1]!.why, /no other node of group db is up and out of standby \(its nodes: n1, n3; up: none\)/);
  const plain = applyMaintenance(FACTS, { node: 'n1', on: true, force: true }, 7);
  assert.deepEqual(plain.result.moves, [{ group: 'web', to: 'n2' }]);
  assert.equal(plain.maintenance.nodes.n1!.operator, 'an operator');
});

test('standbyMoves: each running group of a node in standby, unless busy, in maintenance, without a target, or tried within the retry', () => {
  const m = (extra: Partial<MaintenanceState> = {}): MaintenanceState => ({ groups: {}, nodes: { n1: mark }, ...extra });
  const facts = (maintenance: MaintenanceState | undefined, busy: string[] = [], now = 100_000) => ({ ...FACTS, maintenance, busy: (g: string) => busy.includes(g), now });
  assert.deepEqual(standbyMoves(facts(undefined)), { moves: [] });
  assert.deepEqual(standbyMoves(facts({ groups: {}, nodes: {} })), { moves: [] });
  assert.deepEqual(standbyMoves(facts(m())), { moves: [{ group: 'web', from: 'n1', to: 'n2' }] }, 'db has no target (n3 suspect)');
  assert.deepEqual(standbyMoves(facts(m(), ['web'])), { moves: [] });
  assert.deepEqual(standbyMoves(facts(m({ groups: { web: mark } }))), { moves: [] });
  assert.deepEqual(standbyMoves(facts(m({ moves: { web: 90_000 } }))), { moves: [], wakeAt: 90_000 + STANDBY_MOVE_RETRY_MS });
  assert.deepEqual(standbyMoves(facts(m({ moves: { web: 100_000 - STANDBY_MOVE_RETRY_MS } }))).moves.length, 1);
  // Both nodes of mail in standby: nowhere to go.
  assert.deepEqual(standbyMoves(facts({ groups: {}, nodes: { n1: mark, n2: mark } })), { moves: [] });
  // A group not running (moving, down) is not moved by the standby.
  assert.deepEqual(standbyMoves({ ...facts(m()), groups: { web: { owner: 'n1', state: 'moving' } } }), { moves: [] });
});

test('the controller\'s group planner starts nothing for a group in maintenance: its lost report waits for the end', () => {
  const base = { busy: false, startedAt: 0, graceMs: 5000, now: 10_000, nodes: [{ name: 'n1', liveness: up() }, { name: 'n2', liveness: up() }] };
  const lost = { owner: 'n1', epoch: 3, state: 'running' as const, since: 1, lost: { node: 'n1', epoch: 3, at: 2, detail: 'agent restarted' } };
  assert.deepEqual(groupStep({ ...base, group: lost }).step, 'start');
  assert.deepEqual(groupStep({ ...base, group: lost, maintenance: true }), { step: 'none' });
  const unplaced = { owner: null, epoch: 0, state: 'unplaced' as const, since: 1 };
  assert.deepEqual(groupStep({ ...base, group: unplaced, maintenance: true }), { step: 'none' });
  const deferred = { owner: 'n1', epoch: 3, state: 'running' as const, since: 1, deferred: { kind: 'node-lost' as const, reason: 'n1 suspect', owner: 'n1', epoch: 3, at: 5, delayMs: 500 } };
  assert.deepEqual(groupStep({ ...base, group: deferred, maintenance: true }), { step: 'none' });
  assert.deepEqual(groupStep({ ...base, group: deferred }), { step: 'start', kind: 'node-lost', reason: 'n1 suspect' }, 'done when maintenance ends');
});
