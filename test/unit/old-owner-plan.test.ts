/**
 * The old owner's step of a failover (workflows/old-owner-plan.ts): when the group may be taken
 * from the node that held it, and what a failover waits for when its stop failed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeBlock, fenceRetryDelay, oldOwnerStep, type OldOwnerFacts, type OldOwnerStep } from '../../workflows/old-owner-plan.js';

const lease = { ttlMs: 600, marginMs: 100 };
/** Suspected (renewals blocked) at 10 000: its lease and margin end at 10 700. */
const base: OldOwnerFacts = { report: 'silent', fenceRetries: true, lease, blockedSince: 10_000, confirmed: false, now: 10_050 };
const fence = (attempts: number, succeeded = false, lastAt = 10_100) => ({ attempts, succeeded, ...(attempts > 0 ? { lastAt } : {}) });

test('the lease wait is ttl + margin counted by the failover, whatever the controller\'s clock said (issue 9 item 1)', () => {
  // blockedSince is the controller's time; `now` the failover's: two clocks. A controller clock
  // 10 s behind made the old wait end before it began (no wait at all), one 10 s ahead made it
  // 10 s too long. The wait to use (`ms`) does not depend on either.
  for (const blockedSince of [base.now - 10_000, base.now, base.now + 10_000]) {
    const step = oldOwnerStep({ ...base, blockedSince });
    assert.equal(step.step, 'wait-lease');
    assert.equal((step as { ms?: number }).ms, lease.ttlMs + lease.marginMs, `blockedSince ${blockedSince - base.now} ms from now`);
  }
});

test('oldOwnerStep: the table', () => {
  const table: [string, Partial<OldOwnerFacts>, OldOwnerStep][] = [
    // It let go (stopped it, holds nothing, or there was none): nothing to wait for, fence or not.
    ['let go', { report: 'let-go' }, { step: 'go', why: 'let-go' }],
    ['let go, fence configured: not run', { report: 'let-go', fence: fence(0) }, { step: 'go', why: 'let-go' }],
    // Silent: its lease (and its guard) covers it; a fence agent is run once first.
    ['silent, no fence', {}, { step: 'wait-lease', until: 10_700, ms: 700 }],
    ['silent, fence not tried', { fence: fence(0) }, { step: 'fence' }],
    ['silent, fenced', { fence: fence(1, true) }, { step: 'go', why: 'fenced' }],
    ['silent, fence failed: the lease, never a retry', { fence: fence(1), now: 200_000 }, { step: 'wait-lease', until: 10_700, ms: 700 }],
    ['silent, with a watchdog: the lease only', { watchdogTimeoutMs: 5000 }, { step: 'wait-lease', until: 10_700, ms: 700 }],
    // A failed stop: its lease running out does not make it safe.
    ['stop failed, nothing configured: blocked on a confirm-down, long after the lease', { report: 'stop-failed', now: 1_000_000 }, { step: 'blocked', waitingFor: ['confirm-down'] }],
    ['stop failed, confirmed down', { report: 'stop-failed', confirmed: true }, { step: 'go', why: 'confirmed-down' }],
    ['stop failed, fence not tried', { report: 'stop-failed', fence: fence(0) }, { step: 'fence' }],
    ['stop failed, fenced', { report: 'stop-failed', fence: fence(1, true) }, { step: 'go', why: 'fenced' }],
    ['stop failed, fence failed: blocked, the fence retried 30 s later', { report: 'stop-failed', fence: fence(1) }, { step: 'blocked', waitingFor: ['fencing', 'confirm-down'], fenceAt: 40_100 }],
    ['stop failed, fence failed, retry due', { report: 'stop-failed', fence: fence(1), now: 40_100 }, { step: 'fence' }],
    ['stop failed, fence failed 3 times: 2 min later', { report: 'stop-failed', fence: fence(3) }, { step: 'blocked', waitingFor: ['fencing', 'confirm-down'], fenceAt: 130_100 }],
    ['stop failed, fence failed, no more retries (long history)', { report: 'stop-failed', fence: fence(4), fenceRetries: false }, { step: 'blocked', waitingFor: ['confirm-down'] }],
    ['stop failed, fence failed, confirmed down', { report: 'stop-failed', fence: fence(2), confirmed: true }, { step: 'go', why: 'confirmed-down' }],
    // An armed watchdog: lease + margin + its timeout after the block of renewals.
    ['stop failed, watchdog: blocked until lease + margin + timeout', { report: 'stop-failed', watchdogTimeoutMs: 5000 }, { step: 'blocked', waitingFor: ['watchdog', 'confirm-down'], until: 15_700 }],
    ['stop failed, watchdog, 1 ms before', { report: 'stop-failed', watchdogTimeoutMs: 5000, now: 15_699 }, { step: 'blocked', waitingFor: ['watchdog', 'confirm-down'], until: 15_700 }],
    ['stop failed, watchdog: at its end', { report: 'stop-failed', watchdogTimeoutMs: 5000, now: 15_700 }, { step: 'go', why: 'watchdog' }],
    ['stop failed, watchdog and a fence that failed', { report: 'stop-failed', watchdogTimeoutMs: 5000, fence: fence(1) }, { step: 'blocked', waitingFor: ['fencing', 'watchdog', 'confirm-down'], until: 15_700, fenceAt: 40_100 }],
    ['stop failed, watchdog, confirmed before its end', { report: 'stop-failed', watchdogTimeoutMs: 5000, confirmed: true }, { step: 'go', why: 'confirmed-down' }],
  ];
  for (const [what, facts, expected] of table) assert.deepEqual(oldOwnerStep({ ...base, ...facts }), expected, what);
});

test('fenceRetryDelay: 30 s, doubling, at most 10 min', () => {
  const table: [number, number][] = [[1, 30_000], [2, 60_000], [3, 120_000], [5, 480_000], [6, 600_000], [40, 600_000]];
  for (const [attempts, ms] of table) assert.equal(fenceRetryDelay(attempts), ms, `after ${attempts} attempts`);
});

test('describeBlock: what is blocked and what unblocks it, in words', () => {
  const block = { node: 'n1', epoch: 4, since: 0, detail: "its stop failed: db: timed out; no fence agent is configured for it", waitingFor: ['confirm-down' as const] };
  assert.equal(describeBlock('web', block, 0), "node n1 failed to stop group web (its stop failed: db: timed out; no fence agent is configured for it); waiting for `haoscar confirm-down n1`");
  assert.equal(
    describeBlock('web', { ...block, detail: 'x', waitingFor: ['fencing', 'watchdog', 'confirm-down'], until: 12_001 }, 0),
    'node n1 failed to stop group web (x); waiting for fencing (retried), the watchdog (in 13s) or `haoscar confirm-down n1`',
  );
  assert.equal(
    describeBlock('web', { ...block, detail: 'x', waitingFor: ['watchdog', 'confirm-down'], until: 1000, confirmed: { operator: 'alice', at: 5 } }, 5000),
    'node n1 failed to stop group web (x); waiting for the watchdog (in 0s) or `haoscar confirm-down n1`; confirmed down by alice, moving on',
  );
});
