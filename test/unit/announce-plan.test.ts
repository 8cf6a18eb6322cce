/**
 * What the controller does with a node's announcement (workflows/announce-plan.ts), and the lease
 * a failover waits out (workflows/old-owner-plan.ts leaseToWaitOut): issue 9 items 2 and 12.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { announceStep, describeLeaseMismatch, leaseMismatches, type AnnouncedGroup, type AnnounceStep } from '../../workflows/announce-plan.js';
import { leaseToWaitOut, oldOwnerStep } from '../../workflows/old-owner-plan.js';

test('announceStep: the table (a controller behind the nodes adopts, raises, or trusts neither)', () => {
  const running = (epoch: number) => ({ epoch, state: 'running' });
  type G = { owner: string | null; epoch: number };
  const fresh: G = { owner: null, epoch: 0 };
  const table: [string, G, AnnouncedGroup, AnnounceStep][] = [
    // Normal operation: the controller is never behind, nothing changes.
    ['the owner at the current epoch', { owner: 'n1', epoch: 7 }, { node: 'n1', holds: running(7), seen: 7 }, { step: 'none' }],
    ['a stale holder (it loses at its next round)', { owner: 'n2', epoch: 8 }, { node: 'n1', holds: running(7), seen: 7 }, { step: 'none' }],
    ['a standby that saw the current epoch', { owner: 'n1', epoch: 7 }, { node: 'n2', seen: 7 }, { step: 'none' }],
    ['a standby that saw an older one', { owner: 'n1', epoch: 7 }, { node: 'n2', seen: 3 }, { step: 'none' }],
    ['nothing announced', { owner: 'n1', epoch: 7 }, { node: 'n2' }, { step: 'none' }],
    // Data lost: a fresh controller has every group unplaced at epoch 0.
    ['lost data: the holder is adopted at its epoch', fresh, { node: 'n1', holds: running(7), seen: 7 }, { step: 'adopt', owner: 'n1', epoch: 7 }],
    ['lost data: a standby raises the epoch to what it saw', fresh, { node: 'n2', seen: 7 }, { step: 'raise', epoch: 7, dropOwner: false }],
    ['lost data: then the holder, at that same epoch, is adopted', { owner: null, epoch: 7 }, { node: 'n1', holds: running(7) }, { step: 'adopt', owner: 'n1', epoch: 7 }],
    ['lost data: a holder that is not running (starting, failed) only raises the epoch', fresh, { node: 'n1', holds: { epoch: 7, state: 'failed' } }, { step: 'raise', epoch: 7, dropOwner: false }],
    ['lost data: seen above held counts', fresh, { node: 'n1', holds: running(5), seen: 9 }, { step: 'adopt', owner: 'n1', epoch: 5 }],
    // Two holders: the higher epoch wins, whichever announces first.
    ['two holders, the higher second: it wins', { owner: 'n2', epoch: 5 }, { node: 'n1', holds: running(7) }, { step: 'adopt', owner: 'n1', epoch: 7 }],
    ['two holders, the lower second: nothing (it loses at its next round)', { owner: 'n1', epoch: 7 }, { node: 'n2', holds: running(5) }, { step: 'none' }],
    ['two holders under one epoch: neither is trusted', { owner: 'n1', epoch: 7 }, { node: 'n2', holds: running(7) }, { step: 'conflict', epoch: 8, holders: ['n1', 'n2'] }],
    // An owner recorded under an epoch below what a node has seen is stale.
    ['owner under an epoch below one seen: dropped', { owner: 'n1', epoch: 5 }, { node: 'n2', seen: 7 }, { step: 'raise', epoch: 7, dropOwner: true }],
    ['the owner itself saw a newer epoch (it lost the group since)', { owner: 'n1', epoch: 5 }, { node: 'n1', seen: 6 }, { step: 'raise', epoch: 6, dropOwner: true }],
  ];
  for (const [what, g, a, expected] of table) assert.deepEqual(announceStep(g, a), expected, what);
});

test('announceStep: after any sequence of announcements, the epoch is at least every epoch announced (the next claim never reuses one)', () => {
  const announcements: AnnouncedGroup[] = [
    { node: 'n2', seen: 4 }, { node: 'n1', holds: { epoch: 7, state: 'running' }, seen: 7 }, { node: 'n3', seen: 6 }, { node: 'n2', holds: { epoch: 3, state: 'running' } },
  ];
  // Every order of the four.
  const orders = (xs: AnnouncedGroup[]): AnnouncedGroup[][] => xs.length <= 1 ? [xs] : xs.flatMap((x, i) => orders([...xs.slice(0, i), ...xs.slice(i + 1)]).map((rest) => [x, ...rest]));
  for (const order of orders(announcements)) {
    let g: { owner: string | null; epoch: number } = { owner: null, epoch: 0 };
    for (const a of order) {
      const step = announceStep(g, a);
      if (step.step === 'adopt') g = { owner: step.owner, epoch: step.epoch };
      else if (step.step === 'raise') g = { owner: step.dropOwner ? null : g.owner, epoch: step.epoch };
      else if (step.step === 'conflict') g = { owner: null, epoch: step.epoch };
    }
    const what = order.map((a) => a.node).join(' ');
    assert.deepEqual(g, { owner: 'n1', epoch: 7 }, what);
  }
});

test('leaseToWaitOut: the largest ttl + margin of the configured and the announced leases (issue 9 item 2)', () => {
  const worker = { ttlMs: 600, marginMs: 100 };
  const table: [string, ({ ttlMs: number; marginMs: number } | undefined)[], { ttlMs: number; marginMs: number }][] = [
    ['nobody announced', [], worker],
    ['a node has not announced', [undefined], worker],
    ['same settings everywhere', [{ ttlMs: 600, marginMs: 100 }, { ttlMs: 600, marginMs: 100 }], worker],
    ['an agent still on a longer lease (rolling change)', [{ ttlMs: 3000, marginMs: 500 }, { ttlMs: 600, marginMs: 100 }], { ttlMs: 3000, marginMs: 500 }],
    ['agents already on a shorter lease: the worker\'s (the wait is never shortened)', [{ ttlMs: 300, marginMs: 50 }], worker],
    ['a longer margin alone counts', [{ ttlMs: 600, marginMs: 900 }], { ttlMs: 600, marginMs: 900 }],
    ['the largest sum, not each largest part', [{ ttlMs: 2000, marginMs: 100 }, { ttlMs: 600, marginMs: 1000 }], { ttlMs: 2000, marginMs: 100 }],
  ];
  for (const [what, announced, expected] of table) assert.deepEqual(leaseToWaitOut(worker, announced), expected, what);
  // The old owner's step waits for it.
  const step = oldOwnerStep({ report: 'silent', fenceRetries: true, lease: leaseToWaitOut(worker, [{ ttlMs: 3000, marginMs: 500 }]), blockedSince: 0, confirmed: false, now: 0 });
  assert.deepEqual(step, { step: 'wait-lease', until: 3500, ms: 3500 });
});

test('leaseMismatches and describeLeaseMismatch: the nodes whose lease differs from the worker\'s, in words', () => {
  const worker = { ttlMs: 600, marginMs: 100 };
  assert.deepEqual(leaseMismatches(worker, { n1: { ttlMs: 600, marginMs: 100 } }), []);
  const m = leaseMismatches(worker, { n2: { ttlMs: 600, marginMs: 200 }, n1: { ttlMs: 3000, marginMs: 500 }, n3: worker });
  assert.deepEqual(m, [{ node: 'n1', ttlMs: 3000, marginMs: 500 }, { node: 'n2', ttlMs: 600, marginMs: 200 }]);
  assert.equal(describeLeaseMismatch(worker, m),
    'lease settings differ: the workflow worker has ttl 600ms, margin 100ms; n1 enforces ttl 3000ms, margin 500ms; n2 enforces ttl 600ms, margin 200ms. Failovers wait out the largest; make every haoscar.yaml the same');
});
