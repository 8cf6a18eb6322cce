/**
 * The failover's data policy (workflows/sync-lag-plan.ts): which candidates may take a group
 * over, given how far each one's copy is behind in the owner's announced generations.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { planSyncCandidates, type SyncLagFacts } from '../../workflows/sync-lag-plan.js';
import type { CandidateSyncState, FileSetSyncRecord } from '../../workflows/shared.js';

const state = (node: string, records: Record<string, FileSetSyncRecord | undefined>): CandidateSyncState => ({
  node,
  group: 'web',
  sets: Object.entries(records).map(([set, record]) => (record ? { set, record } : { set })),
});
const rec = (owner: string, epoch: number, announced: number, pulled: number | null): FileSetSyncRecord => ({ owner, epoch, announced, pulled });

const base: SyncLagFacts = { candidates: ['n2', 'n3'], sets: ['www'], from: 'n1', fromEpoch: 7, answers: {}, maxSyncLag: 1, acceptDataLoss: false };

void describe('planSyncCandidates', () => {
  const cases: Array<[string, Partial<SyncLagFacts>, { allowed: string[]; lags: Array<number | undefined> }]> = [
    ['both up to date: preference order', { answers: { n2: state('n2', { www: rec('n1', 7, 12, 12) }), n3: state('n3', { www: rec('n1', 7, 12, 12) }) } }, { allowed: ['n2', 'n3'], lags: [0, 0] }],
    ['the last batch missing (lag 1) is within maxSyncLag 1', { answers: { n2: state('n2', { www: rec('n1', 7, 12, 11) }) } }, { allowed: ['n2'], lags: [1, undefined] }],
    ['further behind than maxSyncLag: refused; the other one taken', { answers: { n2: state('n2', { www: rec('n1', 7, 12, 4) }), n3: state('n3', { www: rec('n1', 7, 12, 12) }) } }, { allowed: ['n3'], lags: [8, 0] }],
    ['maxSyncLag 0: only a copy with every announced change', { maxSyncLag: 0, answers: { n2: state('n2', { www: rec('n1', 7, 12, 11) }), n3: state('n3', { www: rec('n1', 7, 12, 12) }) } }, { allowed: ['n3'], lags: [1, 0] }],
    ['no pull completed from this owner: unknown, refused', { answers: { n2: state('n2', { www: rec('n1', 7, 0, null) }), n3: state('n3', { www: rec('n1', 7, 3, 3) }) } }, { allowed: ['n3'], lags: [undefined, 0] }],
    ['an older series (it never heard this owner tenure): unknown', { answers: { n2: state('n2', { www: rec('n1', 5, 9, 9) }), n3: state('n3', { www: rec('n1', 7, 3, 3) }) } }, { allowed: ['n3'], lags: [undefined, 0] }],
    ['no record, no answer: unknown', { answers: { n2: state('n2', { www: undefined }), n3: 'timed out' } }, { allowed: [], lags: [undefined, undefined] }],
    ['the worst set counts', { sets: ['www', 'uploads'], answers: { n2: state('n2', { www: rec('n1', 7, 3, 3), uploads: rec('n1', 7, 9, 2) }) } }, { allowed: [], lags: [7, undefined] }],
    ['it was the owner itself in the newest series: 0', { from: null, fromEpoch: 9, answers: { n2: state('n2', { www: rec('n1', 7, 12, 2) }), n3: state('n3', { www: rec('n3', 9, 0, 0) }) } }, { allowed: ['n3'], lags: [undefined, 0] }],
    ['no owner: counted against the newest series any candidate followed', { from: null, fromEpoch: 9, answers: { n2: state('n2', { www: rec('n1', 7, 12, 12) }), n3: state('n3', { www: rec('n1', 7, 12, 2) }) } }, { allowed: ['n2'], lags: [0, 10] }],
    ['a new cluster\'s first placement: nobody followed any owner, nothing to compare: 0', { from: null, fromEpoch: 0, answers: { n2: state('n2', { www: undefined }), n3: state('n3', { www: undefined }) } }, { allowed: ['n2', 'n3'], lags: [0, 0] }],
    ['no owner, but one candidate followed one: the other is unknown', { from: null, fromEpoch: 3, answers: { n2: state('n2', { www: undefined }), n3: state('n3', { www: rec('n1', 2, 5, 5) }) } }, { allowed: ['n3'], lags: [undefined, 0] }],
    ['the owner itself as a candidate (a restart in place): 0', { candidates: ['n1'], answers: {} }, { allowed: ['n1'], lags: [0] }],
  ];
  for (const [name, facts, want] of cases) {
    void test(name, () => {
      const plan = planSyncCandidates({ ...base, ...facts });
      assert.deepEqual(plan.allowed, want.allowed);
      assert.deepEqual(plan.lags.map((l) => l.lag), want.lags);
      assert.deepEqual(plan.refused.map((r) => r.node).sort(), plan.lags.filter((l) => !want.allowed.includes(l.node)).map((l) => l.node).sort());
    });
  }

  void test('acceptDataLoss: the qualified first, then the least behind, unknown last, each in preference order', () => {
    const plan = planSyncCandidates({
      ...base,
      candidates: ['n2', 'n3', 'n4', 'n5'],
      acceptDataLoss: true,
      answers: { n2: 'no answer', n3: state('n3', { www: rec('n1', 7, 12, 2) }), n4: state('n4', { www: rec('n1', 7, 12, 12) }), n5: state('n5', { www: rec('n1', 7, 12, 8) }) },
    });
    assert.deepEqual(plan.allowed, ['n4', 'n5', 'n3', 'n2']);
    assert.deepEqual(plan.acceptedBehind.map((c) => c.node), ['n5', 'n3', 'n2']);
    assert.deepEqual(plan.refused, []);
  });

  void test('acceptDataLoss with nobody behind changes nothing', () => {
    const plan = planSyncCandidates({ ...base, acceptDataLoss: true, answers: { n2: state('n2', { www: rec('n1', 7, 1, 1) }), n3: state('n3', { www: rec('n1', 7, 1, 1) }) } });
    assert.deepEqual(plan.allowed, ['n2', 'n3']);
    assert.deepEqual(plan.acceptedBehind, []);
  });

  void test('the detail says what was counted, with the owner\'s numbers', () => {
    const plan = planSyncCandidates({ ...base, answers: { n2: state('n2', { www: rec('n1', 7, 12, 4) }) } });
    assert.match(plan.refused[0]!.detail, /www: 8 behind n1 \(announced generation 12, pulled 4\)/);
    assert.match(plan.refused[1]!.detail, /did not tell its sync state/);
  });
});
