/**
 * Which workflow may start a failover of each kind (workflows/inputs.ts failoverKindRefusal): the
 * internal kinds skip safety steps an operator's failover takes, so a failover copied in the UI
 * ("start like this one") or started by hand must not run as one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failoverKindRefusal, OPERATION_KINDS } from '../../workflows/inputs.js';

const IDS = { controller: 'controller/c1', switchover: 'switchover/c1/web' };

test('each kind is accepted from its own starter only', () => {
  const starters: Array<[string, string | undefined]> = [
    ['a client or the UI', undefined],
    ['the controller', IDS.controller],
    ['the switchover workflow', IDS.switchover],
    ["another cluster's controller", 'controller/c2'],
    ['some other workflow', 'failover/c1/web'],
  ];
  const table: Record<(typeof OPERATION_KINDS)[number], string[]> = {
    operator: ['a client or the UI', 'the controller', 'the switchover workflow', "another cluster's controller", 'some other workflow'],
    'node-lost': ['the controller'],
    'heal-gave-up': ['the controller'],
    place: ['the controller'],
    recover: ['the controller'],
    switchover: ['the switchover workflow'],
  };
  for (const kind of OPERATION_KINDS) {
    for (const [who, parent] of starters) {
      const refusal = failoverKindRefusal(kind, parent, IDS);
      assert.equal(refusal === undefined, table[kind].includes(who), `${kind} started by ${who}: ${refusal ?? 'accepted'}`);
    }
  }
});

test('a refusal says who may start it, who did, and what to do instead', () => {
  assert.equal(
    failoverKindRefusal('recover', undefined, IDS),
    "a failover of kind 'recover' is started only by the controller (controller/c1), and it was started from outside (a client, the UI): to move the group yourself, start it with kind 'operator' or without a kind (haoscar failover GROUP)",
  );
  assert.match(failoverKindRefusal('switchover', 'failover/c1/web', IDS)!, /only by the switchover workflow \(switchover\/c1\/web\), and it was started by workflow failover\/c1\/web: .*haoscar switchover GROUP --to NODE/);
});
