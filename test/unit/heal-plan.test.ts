import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, decideOnFailure, restartsInWindow, watchRemaining } from '../../workflows/heal-plan.js';
import type { HealingPolicy } from '../../src/config/types.js';

const policy: HealingPolicy = {
  maxRestarts: 3,
  windowMs: 60_000,
  backoff: { initialMs: 1000, maxMs: 5000, multiplier: 2 },
  startTimeoutMs: 10_000,
};

test('backoff: the first restart is immediate, then initial × multiplier^(n-1) capped at max', () => {
  const table: [number, number][] = [[0, 0], [1, 1000], [2, 2000], [3, 4000], [4, 5000], [10, 5000]];
  for (const [n, expected] of table) assert.equal(backoffDelay(n, policy.backoff), expected, `after ${n} restarts`);
  assert.equal(backoffDelay(3, { initialMs: 500, maxMs: 60_000, multiplier: 1.5 }), 1125);
});

test('restarts older than the window no longer count', () => {
  assert.deepEqual(restartsInWindow([0, 10_000, 10_001, 70_000], 70_000, 60_000), [10_001, 70_000]);
  assert.deepEqual(restartsInWindow([0], 60_000, 60_000), []);
});

test('decideOnFailure: restart with backoff until maxRestarts within the window, then give up', () => {
  assert.deepEqual(decideOnFailure([], 0, policy), { action: 'restart', delayMs: 0 });
  assert.deepEqual(decideOnFailure([0], 1, policy), { action: 'restart', delayMs: 1000 });
  assert.deepEqual(decideOnFailure([0, 1], 2, policy), { action: 'restart', delayMs: 2000 });
  assert.deepEqual(decideOnFailure([0, 1, 2], 3, policy), { action: 'give-up', restarts: 3 });
  // The same three restarts spread over more than the window: the oldest has expired.
  assert.deepEqual(decideOnFailure([0, 30_000, 59_000], 60_000, policy), { action: 'restart', delayMs: 2000 });
  // maxRestarts 0: the first failure escalates at once.
  assert.deepEqual(decideOnFailure([], 0, { ...policy, maxRestarts: 0 }), { action: 'give-up', restarts: 0 });
});

test('watchRemaining: watch until the newest restart has left the window', () => {
  assert.equal(watchRemaining([], 5000, 60_000), 0);
  assert.equal(watchRemaining([1000], 5000, 60_000), 56_000);
  assert.equal(watchRemaining([1000, 4000], 5000, 60_000), 59_000);
  assert.equal(watchRemaining([1000], 61_000, 60_000), 0);
});
