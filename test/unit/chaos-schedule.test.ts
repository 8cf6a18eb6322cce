/** The chaos suite's schedule (test/lab/chaos/schedule.ts): pure, seeded, replayable. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_KINDS, FAULT_KINDS, FAULT_MENU, makeSchedule, parseSeed, Rng } from '../lab/chaos/schedule.js';

const TIMING = { ttlMs: 2000, deadtimeMs: 500 };

test('the PRNG is deterministic per seed and spreads its values', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const xs = Array.from({ length: 1000 }, () => a.next());
  assert.deepEqual(Array.from({ length: 1000 }, () => b.next()), xs);
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`);
  assert.notDeepEqual(Array.from({ length: 10 }, () => new Rng(43).next()), xs.slice(0, 10));
  // mulberry32's first outputs for seed 1, pinned: a change of generator changes every replay.
  const r = new Rng(1);
  assert.deepEqual([r.next(), r.next()].map((x) => x.toFixed(6)), ['0.627074', '0.002736']);
  const ints = new Set(Array.from({ length: 200 }, () => a.int(3, 5)));
  assert.deepEqual([...ints].sort(), [3, 4, 5]);
});

test('seeds: decimal or hex 32-bit numbers, anything else refused with the reason', () => {
  assert.equal(parseSeed('12345'), 12345);
  assert.equal(parseSeed('0xff'), 255);
  assert.equal(parseSeed('4294967295'), 4294967295);
  for (const bad of ['', '-1', '4294967296', '1.5', 'abc', '0x123456789']) assert.throws(() => parseSeed(bad), /a seed is a number/, bad);
});

test('the same seed gives the same schedule; another seed another one', () => {
  const a = makeSchedule({ seed: 7, faults: 40 }, TIMING);
  assert.deepEqual(makeSchedule({ seed: 7, faults: 40 }, TIMING), a);
  assert.notDeepEqual(makeSchedule({ seed: 8, faults: 40 }, TIMING), a);
  assert.deepEqual(a.map((f) => f.index), Array.from({ length: 40 }, (_, i) => i + 1));
  // A longer schedule of the same seed starts with the shorter one: a run can be replayed in part.
  assert.deepEqual(makeSchedule({ seed: 7, faults: 60 }, TIMING).slice(0, 40), a);
});

test('a short schedule covers every kind once first; the rest is drawn by weight', () => {
  const s = makeSchedule({ seed: 3, faults: DEFAULT_KINDS.length }, TIMING);
  assert.deepEqual(s.map((f) => f.kind).sort(), [...DEFAULT_KINDS].sort());
  assert.ok(!DEFAULT_KINDS.includes('witness-data-lost'), 'losing the witness\'s data is asked for by name, not drawn by default');
  const long = makeSchedule({ seed: 3, faults: 2000 }, TIMING);
  const count = (k: string) => long.filter((f) => f.kind === k).length;
  for (const k of DEFAULT_KINDS) assert.ok(count(k) > 0, `${k} drawn`);
  // node-death (weight 3) comes up more often than worker-kill (weight 1).
  assert.ok(count('node-death') > 2 * count('worker-kill'), `${count('node-death')} vs ${count('worker-kill')}`);
  const only = makeSchedule({ seed: 3, faults: 20, kinds: ['partition', 'guard-kill'] }, TIMING);
  assert.deepEqual([...new Set(only.map((f) => f.kind))].sort(), ['guard-kill', 'partition']);
});

test('durations are drawn relative to the lease, and each kind gets what it needs', () => {
  const s = makeSchedule({ seed: 11, faults: 3000, kinds: [...FAULT_KINDS] }, TIMING);
  const T = TIMING.ttlMs;
  const of = (k: string) => s.filter((f) => f.kind === k);
  for (const f of s) {
    assert.ok(f.holdMs >= 0 && f.quietMs >= 500 && f.quietMs <= 1500, JSON.stringify(f));
    assert.ok(['owner', 'standby', 'all'].includes(f.target));
  }
  assert.ok(of('agent-freeze-short').every((f) => f.holdMs < T), 'a short freeze is shorter than the lease');
  assert.ok(of('agent-freeze-long').every((f) => f.holdMs > T), 'a long freeze outlasts the lease');
  assert.ok(of('node-freeze').every((f) => f.holdMs > T + TIMING.deadtimeMs), 'a whole-node freeze outlasts detection and the lease');
  assert.ok(of('owner-isolated').every((f) => f.holdMs > T && f.target === 'owner'));
  assert.ok(of('guard-kill').every((f) => f.holdMs === 0));
  assert.ok(of('lossy-links').every((f) => f.lossPercent! >= 10 && f.lossPercent! <= 40));
  assert.ok(of('partition-oneway').some((f) => f.fromOwner) && of('partition-oneway').some((f) => !f.fromOwner), 'both directions');
  assert.ok(of('node-death').some((f) => f.target === 'standby') && of('node-death').some((f) => f.target === 'owner'));
  const agentKills = of('agent-kill').map((f) => f.holdMs);
  assert.ok(agentKills.some((ms) => ms < T) && agentKills.some((ms) => ms > 2 * T), 'agents restarted within the lease and well after it');
  for (const f of of('temporal-kill-mid-failover')) {
    assert.ok(f.temporalKillAfterMs! >= TIMING.deadtimeMs && f.temporalKillAfterMs! + f.temporalDownMs! < f.holdMs, `Temporal is back before the dead owner returns: ${JSON.stringify(f)}`);
  }
  // pace scales the durations (a CI schedule runs faster).
  const fast = makeSchedule({ seed: 11, faults: 50, pace: 0.5 }, TIMING);
  const slow = makeSchedule({ seed: 11, faults: 50 }, TIMING);
  assert.deepEqual(fast.map((f) => f.kind), slow.map((f) => f.kind));
  assert.ok(fast.reduce((n, f) => n + f.holdMs, 0) < slow.reduce((n, f) => n + f.holdMs, 0));
});

test('every kind is described, and bad options are refused', () => {
  for (const k of FAULT_KINDS) assert.ok(FAULT_MENU[k].what && FAULT_MENU[k].expect, k);
  assert.throws(() => makeSchedule({ seed: 1, faults: 0 }, TIMING), /positive integer/);
  assert.throws(() => makeSchedule({ seed: 1, faults: 3, kinds: [] }, TIMING), /no fault kind/);
  assert.throws(() => makeSchedule({ seed: 1, faults: 3, kinds: ['nope' as never] }, TIMING), /unknown fault kind.*nope/);
  assert.throws(() => makeSchedule({ seed: 1, faults: 3, pace: 0 }, TIMING), /pace/);
});
