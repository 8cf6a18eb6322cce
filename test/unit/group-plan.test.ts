/**
 * What the controller does about a group no operation holds (workflows/group-plan.ts): recover
 * one whose owner let go of it during an operation, place one that runs nowhere, try a down one
 * again (backing off).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  deferredIsCurrent,
  deferStart,
  downRetryDelay,
  groupStep,
  healGaveUpTakers,
  lostIsCurrent,
  retryAfter,
  startConflictDelay,
  startConflictStep,
  type GroupFacts,
  type GroupStep,
  type StartConflict,
} from '../../workflows/group-plan.js';

const up = (since = 1000) => ({ state: 'up' as const, since });
const suspect = (since = 1000) => ({ state: 'suspect' as const, since });
const unknown = { state: 'unknown' as const, since: 0 };
const running = { owner: 'n1', epoch: 3, state: 'running' as const, since: 5000 };
const down = { owner: null, epoch: 4, state: 'down' as const, since: 5000 };
const unplaced = { owner: null, epoch: 0, state: 'unplaced' as const, since: 0 };
const lost = { node: 'n1', epoch: 3, at: 6000, detail: 'lease not confirmed' };
/** A node-lost of n1 at epoch 3 whose start met the closing workflow of the last operation at 9000. */
const deferred = { kind: 'node-lost', reason: 'node n1 suspect (n2: every link silent)', owner: 'n1', epoch: 3, at: 10_000, delayMs: 1000 } as const;
const lostAgain = { step: 'start', kind: 'node-lost', reason: 'node n1 suspect (n2: every link silent)' } as const;
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
    // A request whose start met a workflow of the group still closing: tried again when due, while the group is as it was.
    ['deferred node-lost, not due', { group: { ...running, deferred }, now: 9999 }, { step: 'none', wakeAt: 10_000 }],
    ['deferred node-lost, due', { group: { ...running, deferred } }, lostAgain],
    ['deferred node-lost, due, n1 heard again meanwhile: served all the same (a false alarm ends it)', { group: { ...running, deferred }, nodes: nodes(up(9500), up()) }, lostAgain],
    ['deferred heal-gave-up, due', { group: { ...running, deferred: { ...deferred, kind: 'heal-gave-up', reason: 'healing gave up' } } }, { step: 'start', kind: 'heal-gave-up', reason: 'healing gave up' }],
    ['deferred recover (no lost report), due', { group: { ...running, deferred: { ...deferred, kind: 'recover', reason: 'n1 restarted' } } }, { step: 'start', kind: 'recover', reason: 'n1 restarted' }],
    ['deferred, busy: an operator\'s failover began the group meanwhile', { busy: true, group: { ...running, deferred } }, { step: 'busy' }],
    ['deferred, the group moved meanwhile (newer epoch): stale', { group: { ...running, owner: 'n2', epoch: 4, deferred } }, { step: 'none' }],
    ['deferred, same owner, newer epoch: stale', { group: { ...running, epoch: 4, deferred } }, { step: 'none' }],
    ['deferred, left down meanwhile: stale, a down group', { group: { ...down, deferred } }, { step: 'none' }],
    ['deferred and lost: the lost report\'s recover first', { group: { ...running, lost, deferred } }, recover],
    ['deferred place, not due', { group: { ...unplaced, deferred: { ...deferred, kind: 'place', reason: 'the group runs nowhere yet', owner: null, epoch: 0 } }, now: 9999 }, { step: 'none', wakeAt: 10_000 }],
    ['deferred place, due: decided again (runs nowhere, n1 up)', { group: { ...unplaced, deferred: { ...deferred, kind: 'place', reason: 'stale words', owner: null, epoch: 0 } } }, nowhere],
    ['deferred place, due, nobody up now: nothing', { group: { ...unplaced, deferred: { ...deferred, kind: 'place', reason: 'stale words', owner: null, epoch: 0 } }, nodes: nodes(unknown, unknown) }, { step: 'none' }],
    ['deferred place of a down group, due, no retry: decided again (nothing to do)', { group: { ...down, deferred: { ...deferred, kind: 'place', reason: 'a node of the group is up again', owner: null, epoch: 4 } } }, { step: 'none' }],
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

test('deferredIsCurrent: the group has the owner and epoch the request was made for', () => {
  assert.equal(deferredIsCurrent({ owner: 'n1', epoch: 3, deferred }), true);
  assert.equal(deferredIsCurrent({ owner: 'n1', epoch: 4, deferred }), false);
  assert.equal(deferredIsCurrent({ owner: 'n2', epoch: 3, deferred }), false);
  assert.equal(deferredIsCurrent({ owner: null, epoch: 3, deferred }), false);
  assert.equal(deferredIsCurrent({ owner: null, epoch: 0, deferred: { ...deferred, owner: null, epoch: 0 } }), true);
  assert.equal(deferredIsCurrent({ owner: 'n1', epoch: 3 }), false);
});

test('startConflictStep: the lock is kept only for a workflow that began the group; otherwise the request is tried again', () => {
  const none: StartConflict = { kind: 'node-lost', lostCurrent: false, begunBefore: false, begunDuring: false, patched: true };
  const table: [string, Partial<StartConflict>, ReturnType<typeof startConflictStep>][] = [
    // Issue 9 item 3: the last operation's run closing, nobody began: the request is not lost.
    ['node-lost, nobody began', {}, 'defer'],
    ['heal-gave-up, nobody began', { kind: 'heal-gave-up' }, 'defer'],
    ['place, nobody began', { kind: 'place' }, 'defer'],
    ['recover without a lost report (a restarted node, a groupLost with no operation)', { kind: 'recover' }, 'defer'],
    ['recover of a lost report that stands: its own retry (lost.retryAt)', { kind: 'recover', lostCurrent: true }, 'retry-lost'],
    ['node-lost with a lost report that stands: deferred (the lost report is looked at on its own)', { lostCurrent: true }, 'defer'],
    // An operator's failover (same workflow ID) began the group: it holds it.
    ['began while the start was under way', { begunDuring: true }, 'keep-lock'],
    ['began after the request, before the start', { begunBefore: true }, 'keep-lock'],
    ['recover of a lost report, began during the start', { kind: 'recover', lostCurrent: true, begunDuring: true }, 'keep-lock'],
    ['recover of a lost report, began before the start', { kind: 'recover', lostCurrent: true, begunBefore: true }, 'keep-lock'],
    // Recorded histories (not patched): as before.
    ['unpatched node-lost', { patched: false }, 'keep-lock'],
    ['unpatched place', { kind: 'place', patched: false }, 'keep-lock'],
    ['unpatched recover without a lost report', { kind: 'recover', patched: false }, 'keep-lock'],
    ['unpatched recover of a lost report', { kind: 'recover', lostCurrent: true, patched: false }, 'retry-lost'],
    ['unpatched recover of a lost report, began before the start (as before: retried)', { kind: 'recover', lostCurrent: true, begunBefore: true, patched: false }, 'retry-lost'],
    ['unpatched recover of a lost report, began during the start', { kind: 'recover', lostCurrent: true, begunDuring: true, patched: false }, 'keep-lock'],
  ];
  for (const [what, facts, expected] of table) assert.equal(startConflictStep({ ...none, ...facts }), expected, what);
});

test('deferStart: kept for the owner and epoch now, tried again after 1 s, doubling while it stands', () => {
  const req = { kind: 'node-lost' as const, reason: 'node n1 suspect' };
  assert.deepEqual(deferStart({ owner: 'n1', epoch: 3 }, req, 9000), { ...req, owner: 'n1', epoch: 3, at: 10_000, delayMs: 1000 });
  assert.deepEqual(deferStart({ owner: 'n1', epoch: 3, deferred: { ...deferred, delayMs: 4000 } }, req, 9000), { ...req, owner: 'n1', epoch: 3, at: 17_000, delayMs: 8000 });
  assert.deepEqual(deferStart({ owner: 'n1', epoch: 3, deferred: { ...deferred, delayMs: 30_000 } }, { kind: 'place', reason: 'r' }, 9000), { kind: 'place', reason: 'r', owner: 'n1', epoch: 3, at: 39_000, delayMs: 30_000 });
  // One that no longer stands (the group moved) does not double the next.
  assert.deepEqual(deferStart({ owner: 'n2', epoch: 4, deferred: { ...deferred, delayMs: 4000 } }, req, 9000), { ...req, owner: 'n2', epoch: 4, at: 10_000, delayMs: 1000 });
});

test('healGaveUpTakers: the group\'s other nodes that are up', () => {
  const table: [string, string[], Record<string, { state: 'up' | 'suspect' } | undefined>, string, string[]][] = [
    ['a one-node group: nobody', ['n1'], { n1: { state: 'up' } }, 'n1', []],
    ['the standby suspect: nobody', ['n1', 'n2'], { n1: { state: 'up' }, n2: { state: 'suspect' } }, 'n1', []],
    ['the standby never reported: nobody', ['n1', 'n2'], { n1: { state: 'up' } }, 'n1', []],
    ['the standby up', ['n1', 'n2'], { n1: { state: 'up' }, n2: { state: 'up' } }, 'n1', ['n2']],
    ['a node up that is not in the group: nobody', ['n1', 'n2'], { n1: { state: 'up' }, n2: { state: 'suspect' }, n3: { state: 'up' } }, 'n1', []],
    ['two others, one up', ['n1', 'n2', 'n3'], { n2: { state: 'suspect' }, n3: { state: 'up' } }, 'n1', ['n3']],
  ];
  for (const [name, nodes, liveness, owner, expected] of table) assert.deepEqual(healGaveUpTakers(nodes, liveness, owner), expected, name);
});
