/**
 * The controller's update validators as pure functions (workflows/controller-refusals.ts): each
 * request either passes or is refused with one of its update's types (shared.ts
 * CONTROLLER_REFUSALS), and every type of every contract is given by some request here.
 * test/workflow/controller-refusals.test.ts checks the same on the real controller.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  beginOperationRefusal,
  claimGroupRefusal,
  confirmDownRefusal,
  endOperationRefusal,
  operationBlockedRefusal,
  type Refusal,
  type RefusalState,
} from '../../workflows/controller-refusals.js';
import { setMaintenanceRefusal } from '../../workflows/maintenance-plan.js';
import { CONTROLLER_REFUSALS, ERROR_TYPES, isRefusalOf, type ControllerUpdateName } from '../../workflows/shared.js';

const OP = 'failover/c1/web';
const STATE: RefusalState = {
  groups: {
    web: { owner: 'n1', epoch: 4, state: 'running', since: 1, renewable: false, blockedSince: 1, operation: { workflowId: OP, kind: 'node-lost', startedAt: 1, blocked: { node: 'n1', epoch: 4, since: 1, detail: 'stop failed', waitingFor: ['confirm-down'] } } },
    db: { owner: 'n2', epoch: 2, state: 'running', since: 1, renewable: true },
  },
  nodes: { n1: { state: 'suspect', since: 1, reportedBy: 'n2' }, n2: { state: 'up', since: 1, reportedBy: 'n2' } },
};

const CHECKS: Record<ControllerUpdateName, (state: RefusalState, req: unknown) => Refusal | undefined> = {
  beginOperation: beginOperationRefusal,
  claimGroup: claimGroupRefusal,
  endOperation: endOperationRefusal,
  operationBlocked: operationBlockedRefusal,
  confirmDown: confirmDownRefusal,
  // With the groups' nodes from the configuration: web on n1 and n2, db only on n2.
  setMaintenance: (state, req) => setMaintenanceRefusal({ ...state, maintenance: undefined, groupNodes: { web: ['n1', 'n2'], db: ['n2'] } }, req),
};

const hold = { group: 'web', workflowId: OP };
const other = { group: 'web', workflowId: 'failover/c1/other' };
/** update, the request, what it comes to (a refusal's type, or 'accepted'), and a word of its message. */
const CASES: [ControllerUpdateName, unknown, string, RegExp?][] = [
  ['beginOperation', { ...hold, kind: 'node-lost' }, 'accepted'],
  ['beginOperation', { group: 'db', workflowId: 'failover/c1/db', kind: 'operator' }, 'accepted'],
  ['beginOperation', { ...hold, kind: 'bogus' }, ERROR_TYPES.InvalidWorkflowInput, /^invalid beginOperation request: kind: /],
  ['beginOperation', { ...hold, kind: 'operator', extra: 1 }, ERROR_TYPES.InvalidWorkflowInput, /unknown key extra/],
  ['beginOperation', { ...hold, group: 'mail', kind: 'operator' }, ERROR_TYPES.UnknownGroup, /known: web, db/],
  ['beginOperation', { ...other, kind: 'operator' }, ERROR_TYPES.OperationInProgress, /is busy: node-lost operation failover\/c1\/web/],
  ['claimGroup', { ...hold, expectEpoch: 4, owner: 'n2' }, 'accepted'],
  ['claimGroup', { ...hold, expectEpoch: 4, owner: null }, 'accepted'],
  ['claimGroup', { ...hold, expectEpoch: -1, owner: 'n2' }, ERROR_TYPES.InvalidWorkflowInput, /expectEpoch/],
  ['claimGroup', { ...hold, group: 'mail', expectEpoch: 4, owner: 'n2' }, ERROR_TYPES.UnknownGroup],
  ['claimGroup', { ...other, expectEpoch: 4, owner: 'n2' }, ERROR_TYPES.OperationInProgress, /held by failover\/c1\/web/],
  ['claimGroup', { group: 'db', workflowId: OP, expectEpoch: 2, owner: 'n1' }, ERROR_TYPES.OperationInProgress, /no operation is running/],
  ['claimGroup', { ...hold, expectEpoch: 3, owner: 'n2' }, ERROR_TYPES.StaleEpoch, /the current epoch is 4/],
  ['claimGroup', { ...hold, expectEpoch: 4, owner: 'n9' }, ERROR_TYPES.UnknownNode],
  ['endOperation', { ...hold, outcome: 'running', detail: '' }, 'accepted'],
  ['endOperation', { ...hold, outcome: 'bogus', detail: '' }, ERROR_TYPES.InvalidWorkflowInput],
  ['endOperation', { ...hold, group: 'mail', outcome: 'down', detail: '' }, ERROR_TYPES.UnknownGroup],
  ['endOperation', { ...other, outcome: 'running', detail: '' }, ERROR_TYPES.OperationInProgress],
  ['operationBlocked', { ...hold, node: 'n1', epoch: 4, detail: '', waitingFor: ['fencing'] }, 'accepted'],
  ['operationBlocked', { ...hold, node: 'n1', epoch: 4, detail: '', waitingFor: [] }, ERROR_TYPES.InvalidWorkflowInput],
  ['operationBlocked', { ...hold, group: 'mail', node: 'n1', epoch: 4, detail: '', waitingFor: ['fencing'] }, ERROR_TYPES.UnknownGroup],
  ['operationBlocked', { ...other, node: 'n1', epoch: 4, detail: '', waitingFor: ['fencing'] }, ERROR_TYPES.OperationInProgress],
  ['operationBlocked', { ...hold, node: 'n9', epoch: 4, detail: '', waitingFor: ['fencing'] }, ERROR_TYPES.UnknownNode],
  ['operationBlocked', { ...hold, node: 'n1', epoch: 5, detail: '', waitingFor: ['fencing'] }, ERROR_TYPES.StaleEpoch],
  ['confirmDown', { node: 'n1', operator: 'alice' }, 'accepted'],
  ['confirmDown', { node: 'N 1' }, ERROR_TYPES.InvalidWorkflowInput],
  ['confirmDown', { node: 'n9' }, ERROR_TYPES.UnknownNode, /known: n1, n2/],
  ['confirmDown', { node: 'n2' }, ERROR_TYPES.NothingToConfirm],
  ['setMaintenance', { group: 'web', on: true, operator: 'alice', reason: 'new disk' }, 'accepted'],
  ['setMaintenance', { group: 'web', on: false }, 'accepted'],
  ['setMaintenance', { node: 'n1', on: true }, 'accepted'],
  ['setMaintenance', { node: 'n2', on: true, force: true }, 'accepted'],
  ['setMaintenance', { group: 'web', node: 'n1', on: true }, ERROR_TYPES.InvalidWorkflowInput, /exactly one of group and node/],
  ['setMaintenance', { on: true }, ERROR_TYPES.InvalidWorkflowInput, /exactly one of group and node/],
  ['setMaintenance', { group: 'web', on: 'yes' }, ERROR_TYPES.InvalidWorkflowInput, /on: expected on: true or false/],
  ['setMaintenance', { group: 'mail', on: true }, ERROR_TYPES.UnknownGroup, /known: web, db/],
  ['setMaintenance', { node: 'n9', on: false }, ERROR_TYPES.UnknownNode, /known: n1, n2/],
  ['setMaintenance', { node: 'n2', on: true }, ERROR_TYPES.NoStandbyTarget, /no other node of group db is up.*--force/],
];

test('each update\'s requests pass or are refused with a type of its contract, and the table covers every contract', () => {
  for (const [update, req, expected, words] of CASES) {
    const refusal = CHECKS[update](STATE, req);
    const what = `${update} ${JSON.stringify(req)}`;
    assert.equal(refusal?.type ?? 'accepted', expected, what);
    if (refusal) {
      assert.equal(refusal.update, update, what);
      assert.ok(isRefusalOf(update, refusal.type), `${what}: ${refusal.type} is in ${update}'s contract`);
      if (words) assert.match(refusal.message, words, what);
    }
  }
  const given = new Set(CASES.filter(([, , t]) => t !== 'accepted').map(([u, , t]) => `${u} → ${t}`));
  // Unauthenticated is the handler's (a MAC is checked in a local activity, not by these pure
  // validators): test/workflow/controller-authenticated-updates.test.ts and controller-refusals.test.ts.
  const contract = Object.entries(CONTROLLER_REFUSALS).flatMap(([u, types]) => types.filter((t) => t !== ERROR_TYPES.Unauthenticated).map((t) => `${u} → ${t}`));
  assert.deepEqual([...given].sort(), contract.sort());
});

test('a validator changes nothing', () => {
  const before = structuredClone(STATE);
  for (const [update, req] of CASES) CHECKS[update](STATE, req);
  assert.deepEqual(STATE, before);
});
