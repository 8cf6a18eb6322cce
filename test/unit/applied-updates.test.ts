/**
 * The controller's record of applied updates (workflows/applied-updates.ts): what a repeat is
 * answered from after a continue-as-new, and how it is bounded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AppliedUpdates, MAX_APPLIED_UPDATES } from '../../workflows/applied-updates.js';

const entry = (i: number) => ({ id: `failover/c1/web/run/${i}/claimGroup`, update: 'claimGroup', at: 1000 + i, result: { epoch: i } });

test('an applied update is found by its ID with its answer; an unknown or missing ID is not', () => {
  const applied = new AppliedUpdates();
  applied.add(entry(1));
  assert.deepEqual(applied.get(entry(1).id)?.result, { epoch: 1 });
  assert.equal(applied.get('failover/c1/web/run/2/claimGroup'), undefined);
  assert.equal(applied.get(undefined), undefined);
});

test('the record keeps the newest entries, oldest first, and rebuilds the same from its entries (continue-as-new)', () => {
  const cases: { max: number; added: number; kept: number[] }[] = [
    { max: 3, added: 2, kept: [1, 2] },
    { max: 3, added: 3, kept: [1, 2, 3] },
    { max: 3, added: 5, kept: [3, 4, 5] },
    { max: 1, added: 4, kept: [4] },
  ];
  for (const c of cases) {
    const applied = new AppliedUpdates([], c.max);
    for (let i = 1; i <= c.added; i += 1) applied.add(entry(i));
    assert.deepEqual(applied.entries().map((e) => e.at - 1000), c.kept, JSON.stringify(c));
    const next = new AppliedUpdates(JSON.parse(JSON.stringify(applied.entries())) as ReturnType<typeof applied.entries>, c.max);
    assert.deepEqual(next.entries(), applied.entries(), 'carried over as JSON');
  }
});

test('the default bound', () => {
  const applied = new AppliedUpdates();
  for (let i = 0; i < MAX_APPLIED_UPDATES + 50; i += 1) applied.add(entry(i));
  assert.equal(applied.size, MAX_APPLIED_UPDATES);
  assert.equal(applied.get(entry(49).id), undefined, 'the oldest went first');
  assert.ok(applied.get(entry(50).id));
  // About 200 bytes an entry in the continue-as-new input (its payload limit is 2 MB).
  assert.ok(JSON.stringify(applied.entries()).length < 150_000, `${JSON.stringify(applied.entries()).length} bytes`);
});
