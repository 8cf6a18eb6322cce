/**
 * What the controller does about a group no operation holds (workflows/group-plan.ts): recover
 * one whose owner let go of it during an operation, place one that runs nowhere, try a down one
 * again (backing off).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { downRetryDelay, groupStep, lostIsCurrent, retryAfter, startConflictDelay, type GroupFacts, type GroupStep } from '../../workflows/group-plan.js';

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
    ['busy, down with every node up', { busy: true, group: { ...down, retry: { at: 0, delayMs: 5000 } } }, { step: 'busy' }],
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
    ['down, a node up since after it, with a retry not due', { group: { ...down, retry: { at: 20_000, delayMs: 5000 } }, nodes: nodes(up(1000), up(6000)) }, upAgain],
    // Down with its nodes up since before: the retry (recorded histories have none: wait for a node).
    ['down, nodes up since before, no retry (recorded histories)', { group: down }, { step: 'none' }],
    ['down, nodes up since before, retry not due', { group: { ...down, retry: { at: 10_001, delayMs: 5000 } } }, { step: 'none', wakeAt: 10_001 }],
    ['down, nodes up since before, retry due', { group: { ...down, retry: { at: 10_000, delayMs: 5000 } } }, { step: 'start', kind: 'place', reason: 'the group is down with n1, n2 up: trying again (5s after the last try)' }],
    ['down, only n2 up, retry due', { group: { ...down, retry: { at: 10_000, delayMs: 20_000 } }, nodes: nodes(suspect(), up()) }, { step: 'start', kind: 'place', reason: 'the group is down with n2 up: trying again (20s after the last try)' }],
    ['down, no node up: nothing to try, nothing to wake for', { group: { ...down, retry: { at: 10_000, delayMs: 5000 } }, nodes: nodes(suspect(), unknown) }, { step: 'none' }],
    ['down with an owner (today a down group has none): placed like any down group', { group: { ...down, owner: 'n1', retry: { at: 9000, delayMs: 5000 } } }, { step: 'start', kind: 'place', reason: 'the group is down with n1, n2 up: trying again (5s after the last try)' }],
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

test('downRetryDelay: 5 s, doubling, at most 5 min, never under the lease and its margin', () => {
  const table: [number | undefined, number, number][] = [
    [undefined, 700, 5000], [5000, 700, 10_000], [10_000, 700, 20_000], [160_000, 700, 300_000], [300_000, 700, 300_000],
    // A long lease: the claim for nobody's lease has run out before the first retry.
    [undefined, 12_000, 12_000], [12_000, 12_000, 24_000], [undefined, 400_000, 400_000],
  ];
  for (const [previous, min, ms] of table) assert.equal(downRetryDelay(previous, min), ms, `after ${previous}, min ${min}`);
});

test('retryAfter: a group left down is tried again later, unless the operation ended blocked; any other state has no retry', () => {
  const ended = { state: 'down' as const, endedBlocked: false, previous: undefined, now: 10_000, minMs: 700 };
  assert.deepEqual(retryAfter(ended), { at: 15_000, delayMs: 5000 });
  assert.deepEqual(retryAfter({ ...ended, previous: { at: 15_000, delayMs: 5000 }, now: 16_000 }), { at: 26_000, delayMs: 10_000 });
  assert.deepEqual(retryAfter({ ...ended, minMs: 15_050 }), { at: 25_050, delayMs: 15_050 });
  // Cancelled while a node that failed to stop the group still holds it: nothing by itself.
  assert.equal(retryAfter({ ...ended, endedBlocked: true }), undefined);
  assert.equal(retryAfter({ ...ended, endedBlocked: true, previous: { at: 15_000, delayMs: 5000 } }), undefined);
  assert.equal(retryAfter({ ...ended, state: 'running', previous: { at: 15_000, delayMs: 5000 } }), undefined);
  assert.equal(retryAfter({ ...ended, state: 'moving' }), undefined);
  assert.equal(retryAfter({ ...ended, state: 'unplaced' }), undefined);
});

test('startConflictDelay: 1 s, doubling, at most 30 s', () => {
  const table: [number | undefined, number][] = [[undefined, 1000], [1000, 2000], [8000, 16_000], [16_000, 30_000], [30_000, 30_000]];
  for (const [previous, ms] of table) assert.equal(startConflictDelay(previous), ms, `after ${previous}`);
});
