/**
 * What the controller does about a group no operation holds (workflows/group-plan.ts): recover
 * one whose owner let go of it during an operation, place one that runs nowhere or a down one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { groupStep, lostIsCurrent, startConflictDelay, type GroupFacts, type GroupStep } from '../../workflows/group-plan.js';

const up = (since = 1000) => ({ state: 'up' as const, since });
const suspect = (since = 1000) => ({ state: 'suspect' as const, since });
const unknown = { state: 'unknown' as const, since: 0 };
const running = { owner: 'n1', epoch: 3, state: 'running' as const, since: 5000 };
const down = { owner: null, epoch: 4, state: 'down' as const, since: 5000 };
const unplaced = { owner: null, epoch: 0, state: 'unplaced' as const, since: 0 };
const lost = { node: 'n1', epoch: 3, at: 6000, detail: 'lease not confirmed' };
/** The controller started at 0 and gives the preferred node 5 s; it is 10 000 now. */
const base: GroupFacts = { group: running, busy: false, nodes: [{ name: 'n1', liveness: up() }, { name: 'n2', liveness: up() }], startedAt: 0, graceMs: 5000, now: 10_000 };
const nodes = (n1?: GroupFacts['nodes'][number]['liveness'], n2?: GroupFacts['nodes'][number]['liveness']) => [{ name: 'n1', ...(n1 ? { liveness: n1 } : {}) }, { name: 'n2', ...(n2 ? { liveness: n2 } : {}) }];
const recover = { step: 'start', kind: 'recover', reason: 'n1 stopped the group at epoch 3 while an operation held it: lease not confirmed' } as const;
const nowhere = { step: 'start', kind: 'place', reason: 'the group runs nowhere yet' } as const;
const upAgain = { step: 'start', kind: 'place', reason: 'a node of the group is up again' } as const;

test('groupStep: the table', () => {
  const table: [string, Partial<GroupFacts>, GroupStep][] = [
    ['running, nothing reported', {}, { step: 'none' }],
    // An operation decides; a lost report waits for its end (whatever the report says).
    ['busy', { busy: true, group: { ...running, lost } }, { step: 'busy' }],
    ['busy, down with every node up', { busy: true, group: down, nodes: nodes(up(1000), up(6000)) }, { step: 'busy' }],
    // Lost during an operation that did not touch the group (a false alarm): started again.
    ['lost, same owner and epoch', { group: { ...running, lost } }, recover],
    ['lost, owner n1 suspect: recovered all the same (the failover picks the node)', { group: { ...running, lost }, nodes: nodes(suspect(), up()) }, recover],
    ['lost, the operation claimed the group (epoch raised): stale', { group: { ...running, owner: 'n2', epoch: 4, lost } }, { step: 'none' }],
    ['lost, same node, newer epoch (it was started there again): stale', { group: { ...running, epoch: 4, lost } }, { step: 'none' }],
    ['lost, left down by the operation: stale, a down group', { group: { ...down, lost } }, { step: 'none' }],
    ['lost, its start conflicted: tried again at retryAt', { group: { ...running, lost: { ...lost, retryAt: 11_000, delayMs: 1000 } } }, { step: 'none', wakeAt: 11_000 }],
    ['lost, its retry due', { group: { ...running, lost: { ...lost, retryAt: 10_000, delayMs: 1000 } } }, recover],
    // Never placed: the preferred node, or after the grace any node that is up.
    ['unplaced, preferred up', { group: unplaced }, nowhere],
    ['unplaced, preferred unknown, in the grace', { group: unplaced, nodes: nodes(unknown, up()), now: 4999 }, { step: 'none' }],
    ['unplaced, preferred unknown, after the grace', { group: unplaced, nodes: nodes(unknown, up()), now: 5000 }, nowhere],
    ['unplaced, preferred not reported at all, after the grace', { group: unplaced, nodes: nodes(undefined, up()), now: 5000 }, nowhere],
    ['unplaced, preferred suspect: the next one is preferred', { group: unplaced, nodes: nodes(suspect(), up()), now: 1 }, nowhere],
    ['unplaced, every node suspect', { group: unplaced, nodes: nodes(suspect(), suspect()) }, { step: 'none' }],
    ['unplaced, nobody up after the grace', { group: unplaced, nodes: nodes(unknown, unknown) }, { step: 'none' }],
    // Down: at once when a node comes up after it went down.
    ['down, a node up since after it went down', { group: down, nodes: nodes(up(1000), up(6000)) }, upAgain],
    ['down, nodes up since before: waits for a node to come up', { group: down }, { step: 'none' }],
    ['down, no node up', { group: down, nodes: nodes(suspect(), unknown) }, { step: 'none' }],
    ['moving: an owner is starting it', { group: { ...running, state: 'moving' } }, { step: 'none' }],
  ];
  for (const [what, facts, expected] of table) assert.deepEqual(groupStep({ ...base, ...facts }), expected, what);
});

test('lostIsCurrent: the node still owns the group under the epoch it reported', () => {
  assert.equal(lostIsCurrent({ owner: 'n1', epoch: 3, lost }), true);
  assert.equal(lostIsCurrent({ owner: 'n1', epoch: 4, lost }), false);
  assert.equal(lostIsCurrent({ owner: 'n2', epoch: 3, lost }), false);
  assert.equal(lostIsCurrent({ owner: null, epoch: 3, lost }), false);
  assert.equal(lostIsCurrent({ owner: 'n1', epoch: 3 }), false);
});

test('startConflictDelay: 1 s, doubling, at most 30 s', () => {
  const table: [number | undefined, number][] = [[undefined, 1000], [1000, 2000], [8000, 16_000], [16_000, 30_000], [30_000, 30_000]];
  for (const [previous, ms] of table) assert.equal(startConflictDelay(previous), ms, `after ${previous}`);
});
