/**
 * The chaos suite's checker (test/lab/chaos/checker.ts) on synthetic records: runs that keep
 * every promise pass, and each broken promise is found — two live VIP holders however briefly,
 * two running instances, two MACs answering ARP, a group not running again in time, a
 * controller whose view is not true, a failed observer — while a dead host's VIP and the bounded
 * overlap of a whole-node freeze are not violations.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { check, clientGaps, freezeWindows, settled, type ChaosRecord, type FaultRecord, type HolderPeriod, type LifeEvent, type View } from '../lab/chaos/checker.js';
import type { FaultSpec } from '../lab/chaos/schedule.js';

const T0 = 1_000_000;
const HOSTS = ['n1', 'n2'];
const BOUNDS = { recoveryMs: 60_000, thawReleaseMs: 3_000 };

function period(from: number, to: number, holders: string[], live = holders, frozen: string[] = []): HolderPeriod {
  return { from: T0 + from, to: T0 + to, holders, live, frozen };
}

function view(over: Partial<View> = {}, owner = 'n2'): View {
  return {
    at: T0,
    controller: { owner, state: 'running', epoch: 2, nodes: { n1: 'up', n2: 'up' } },
    vipLive: [owner],
    instances: { [owner]: 1 },
    clientHost: owner,
    agents: [...HOSTS],
    guards: [...HOSTS],
    ...over,
  };
}

function fault(kind: FaultSpec['kind'], injected: number, healed: number, settledAfter: number | undefined, v: View = view(), epochBefore = 1): FaultRecord {
  return {
    spec: { index: 1, kind, target: 'owner', holdMs: healed - injected, quietMs: 1000 },
    targets: ['n1'],
    injectedAt: T0 + injected,
    healedAt: T0 + healed,
    ...(settledAfter !== undefined ? { settledAt: T0 + healed + settledAfter } : {}),
    view: v,
    epochBefore,
  };
}

/** A clean run: n1 dies at +1 s (its VIP stays configured), n2 takes over at +4 s, n1 returns at +8 s without it. */
function cleanRun(): ChaosRecord {
  const probes = [];
  for (let t = 0; t < 20_000; t += 20) probes.push({ t: T0 + t, ok: t < 1000 || t >= 4200, ...(t < 1000 ? { host: 'n1' } : t >= 4200 ? { host: 'n2' } : {}) });
  return {
    seed: 99,
    hosts: HOSTS,
    startedAt: T0,
    stoppedAt: T0 + 20_000,
    vipPeriods: [
      period(0, 1000, ['n1']),
      period(1000, 4000, ['n1'], []),
      period(4000, 7900, ['n1', 'n2'], ['n2']),
      period(7900, 20_000, ['n2']),
    ],
    samplerErrors: [],
    hostEvents: [
      { at: T0 + 1000, host: 'n1', kind: 'died' },
      { at: T0 + 8000, host: 'n1', kind: 'revived' },
    ],
    instanceSamples: [
      { at: T0 + 500, byHost: { n1: [10] }, frozen: [] },
      { at: T0 + 2000, byHost: {}, frozen: [] },
      { at: T0 + 5000, byHost: { n2: [20] }, frozen: [] },
    ],
    arpChecks: [{ at: T0 + 6000, ms: 1000, answers: [{ mac: 'aa', host: 'n2' }] }],
    probes,
    faults: [fault('node-death', 1000, 8000, 3000)],
  };
}

test('a clean run passes, and its figures are computed', () => {
  const v = check(cleanRun(), BOUNDS);
  assert.deepEqual(v.violations, []);
  assert.deepEqual(v.frozenOverlaps, []);
  assert.equal(v.seed, 99);
  const k = v.perKind.find((x) => x.kind === 'node-death')!;
  assert.equal(k.count, 1);
  assert.equal(k.moved, 1);
  assert.equal(k.medianRecoveryMs, 3000);
  assert.equal(k.medianOutageMs, 4200 - 980);
  assert.equal(v.longestOutage.ms, 4200 - 980);
  assert.equal(v.longestOutage.fault, '#1 node-death');
});

test('two live holders of the VIP, even for 3 ms between two samples, is a violation', () => {
  const run = cleanRun();
  run.vipPeriods.splice(3, 0, period(7900, 7903, ['n1', 'n2']));
  run.vipPeriods[4] = period(7903, 20_000, ['n2']);
  const v = check(run, BOUNDS);
  assert.equal(v.violations.length, 1, JSON.stringify(v.violations));
  assert.equal(v.violations[0]!.rule, 'dual-vip');
  assert.equal(v.violations[0]!.ms, 3);
  assert.match(v.violations[0]!.detail, /n1 and n2/);
  assert.equal(v.violations[0]!.fault, '#1 node-death');
  // Even a zero-length one (two events in the same instant).
  const zero = cleanRun();
  zero.vipPeriods.splice(3, 0, period(7900, 7900, ['n1', 'n2']));
  assert.equal(check(zero, BOUNDS).violations[0]?.rule, 'dual-vip');
});

test('a dead host\'s VIP is not a holder; the same VIP on a revived host is', () => {
  assert.deepEqual(check(cleanRun(), BOUNDS).violations, [], 'dead: not counted');
  const run = cleanRun();
  // The revived n1 still has it, alive, for 2 s: the sampler says live [n1, n2].
  run.vipPeriods[2] = period(4000, 8000, ['n1', 'n2'], ['n2']);
  run.vipPeriods[3] = period(8000, 10_000, ['n1', 'n2'], ['n1', 'n2']);
  run.vipPeriods.push(period(10_000, 20_000, ['n2']));
  const v = check(run, BOUNDS);
  assert.deepEqual(v.violations.map((x) => [x.rule, x.ms]), [['dual-vip', 2000]]);
});

test('a whole-node freeze: the overlap while frozen and shortly after the thaw is recorded apart; past the bound it is a violation', () => {
  const frozenAt = 1000;
  const thawedAt = 7000;
  const events: LifeEvent[] = [
    { at: T0 + frozenAt, host: 'n1', kind: 'frozen' },
    { at: T0 + thawedAt, host: 'n1', kind: 'thawed' },
  ];
  const base = (releasedAt: number): ChaosRecord => ({
    ...cleanRun(),
    hostEvents: events,
    vipPeriods: [
      period(0, 4000, ['n1'], ['n1'], frozenAt < 4000 ? ['n1'] : []),
      period(4000, thawedAt, ['n1', 'n2'], ['n1', 'n2'], ['n1']),
      period(thawedAt, releasedAt, ['n1', 'n2']),
      period(releasedAt, 20_000, ['n2']),
    ],
    instanceSamples: [
      { at: T0 + 5000, byHost: { n1: [10], n2: [20] }, frozen: [10] },
      { at: T0 + thawedAt + 500, byHost: { n1: [10], n2: [20] }, frozen: [] },
      { at: T0 + releasedAt + 100, byHost: { n2: [20] }, frozen: [] },
    ],
    arpChecks: [{ at: T0 + 5500, ms: 1000, answers: [{ mac: 'aa', host: 'n1' }, { mac: 'bb', host: 'n2' }] }],
    faults: [fault('node-freeze', frozenAt, thawedAt, 2000)],
  });
  // Released 800 ms after the thaw: within the bound.
  const ok = check(base(thawedAt + 800), BOUNDS);
  assert.deepEqual(ok.violations, []);
  assert.deepEqual(ok.frozenOverlaps.map((o) => o.what).sort(), ['arp', 'instance', 'vip', 'vip']);
  assert.equal(Math.round(ok.frozenOverlaps.filter((o) => o.what === 'vip').reduce((s, o) => s + o.ms, 0)), thawedAt + 800 - 4000);
  // Released 5 s after the thaw: the last 2 s are a violation (the guard did not let go in time).
  const late = check(base(thawedAt + 5000), BOUNDS);
  assert.deepEqual(late.violations.map((x) => [x.rule, Math.round(x.ms ?? -1)]), [['dual-vip', 2000]]);
  // An agent freeze is not a node freeze: no excuse for the same overlap.
  const agentOnly = { ...base(thawedAt + 800), hostEvents: [] };
  assert.deepEqual([...new Set(check(agentOnly, BOUNDS).violations.map((x) => x.rule))].sort(), ['dual-instance', 'dual-vip', 'duplicate-arp']);
});

test('two running instances of the service, on two hosts or on one, are a violation; a dead host\'s are not counted', () => {
  const run = cleanRun();
  run.instanceSamples.push(
    { at: T0 + 5020, byHost: { n2: [20, 21] }, frozen: [] },
    { at: T0 + 5040, byHost: { n2: [20, 21] }, frozen: [] },
    { at: T0 + 5060, byHost: { n2: [20] }, frozen: [] },
    { at: T0 + 9000, byHost: { n1: [30], n2: [20] }, frozen: [] },
  );
  const v = check(run, BOUNDS);
  assert.deepEqual(v.violations.map((x) => [x.rule, x.ms]), [['dual-instance', 20], ['dual-instance', 0]]);
  // n1 dead (killed at +1 s): its leftover process (not yet reaped by the kill) does not count.
  const dead = cleanRun();
  dead.instanceSamples.push({ at: T0 + 1010, byHost: { n1: [10], n2: [20] }, frozen: [] });
  assert.deepEqual(check(dead, BOUNDS).violations, []);
});

test('two MACs answering the client\'s ARP for the VIP is a violation', () => {
  const run = cleanRun();
  run.arpChecks.push({ at: T0 + 9000, ms: 1000, answers: [{ mac: 'aa', host: 'n1' }, { mac: 'bb', host: 'n2' }] });
  run.arpChecks.push({ at: T0 + 9500, ms: 1000, answers: [{ mac: 'bb', host: 'n2' }, { mac: 'cc' }] });
  const v = check(run, BOUNDS);
  assert.deepEqual(v.violations.map((x) => x.rule), ['duplicate-arp', 'duplicate-arp']);
  assert.match(v.violations[1]!.detail, /n2 and cc/, 'an unknown MAC counts too');
});

test('a group not running again within the bound after the heal is a violation, and so is a controller whose view is not true', () => {
  const slow = cleanRun();
  slow.faults = [fault('agent-kill', 1000, 3000, 70_000)];
  const a = check(slow, BOUNDS);
  assert.deepEqual(a.violations.map((x) => x.rule), ['not-recovered']);
  assert.match(a.violations[0]!.detail, /settled only 70000 ms after the heal/);

  const never = cleanRun();
  never.faults = [fault('partition', 1000, 3000, undefined, view({ controller: { owner: null, state: 'down', epoch: 3, nodes: { n1: 'up', n2: 'up' } }, vipLive: [], instances: {}, clientHost: undefined }))];
  const b = check(never, BOUNDS);
  assert.deepEqual(b.violations.map((x) => x.rule), ['not-recovered']);
  assert.match(b.violations[0]!.detail, /group is down/);

  // What the chaos suite found: the controller says n2 runs it, and nothing runs anywhere.
  const lie = cleanRun();
  lie.faults = [fault('agent-kill', 1000, 3000, undefined, view({ vipLive: [], instances: {}, clientHost: undefined }))];
  const c = check(lie, BOUNDS);
  assert.deepEqual(c.violations.map((x) => x.rule), ['view-mismatch']);
  assert.match(c.violations[0]!.detail, /the controller says n2 runs it, the VIP is on \[\]/);
  const elsewhere = cleanRun();
  elsewhere.faults = [fault('agent-kill', 1000, 3000, undefined, view({ vipLive: ['n1'], instances: { n1: 1 }, clientHost: 'n1' }))];
  assert.deepEqual(check(elsewhere, BOUNDS).violations.map((x) => x.rule), ['view-mismatch']);
});

test('what settled means: one owner, everything agreeing, every agent and guard running', () => {
  assert.deepEqual(settled(view(), HOSTS), { ok: true, owner: 'n2' });
  const cases: Array<[Partial<View>, RegExp]> = [
    [{ controller: undefined }, /could not be asked/],
    [{ controller: { owner: 'n2', state: 'running', epoch: 2, nodes: { n1: 'up', n2: 'up' }, blocked: 'n1 at epoch 2: stop failed' } }, /blocked/],
    [{ controller: { owner: 'n2', state: 'moving', epoch: 2, nodes: { n1: 'up', n2: 'up' } } }, /moving/],
    [{ controller: { owner: 'n2', state: 'running', epoch: 2, nodes: { n1: 'suspect', n2: 'up' } } }, /n1 up \(suspect\)/],
    [{ vipLive: ['n1', 'n2'] }, /VIP is on \[n1, n2\]/],
    [{ instances: { n2: 2 } }, /2× on n2/],
    [{ instances: { n1: 1, n2: 1 } }, /1× on n1, 1× on n2/],
    [{ clientHost: 'n1' }, /served by n1/],
    [{ clientHost: undefined }, /not served/],
    [{ agents: ['n2'] }, /no agent runs on n1/],
    [{ guards: ['n1'] }, /no lease guard runs on n2/],
  ];
  for (const [over, why] of cases) {
    const r = settled(view(over), HOSTS);
    assert.equal(r.ok, false, JSON.stringify(over));
    assert.match((r as { why: string }).why, why);
  }
});

test('a failed observer is a violation (its evidence would be incomplete); a harness error is reported apart', () => {
  const run = cleanRun();
  run.samplerErrors.push('n1: the address monitor ended unexpectedly');
  run.faults[0]!.harnessError = 'no lease guard runs on n1';
  const v = check(run, BOUNDS);
  assert.deepEqual(v.violations.map((x) => x.rule), ['sampler']);
  assert.deepEqual(v.harnessErrors, ['#1 node-death: no lease guard runs on n1']);
});

test('freeze windows and client gaps (pure helpers)', () => {
  const w = freezeWindows([
    { at: 10, host: 'n1', kind: 'frozen' },
    { at: 50, host: 'n1', kind: 'thawed' },
    { at: 60, host: 'n2', kind: 'frozen' },
  ], 5);
  assert.deepEqual(w, [{ host: 'n1', from: 10, to: 55 }, { host: 'n2', from: 60, to: Infinity }]);
  const gaps = clientGaps([{ t: 0, ok: true }, { t: 20, ok: true }, { t: 40, ok: false }, { t: 100, ok: true }, { t: 120, ok: false }], 200);
  assert.deepEqual(gaps.map((g) => g.ms), [20, 80, 100]);
});
