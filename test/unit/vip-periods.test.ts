/**
 * The VIP sampler's exact periods (test/lab/vip-sampler.ts, holderPeriods): a holder counts only
 * while its host is alive; a dead host's address is a holder but not a live one; a revived host
 * with a stale address is live again; frozen holders are named; an overlap of 0 ms is kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { holderPeriods, type HostLifeEvent } from '../lab/vip-sampler.js';

const HOSTS = ['n1', 'n2', 'client'];
const change = (at: number, host: string, added: boolean) => ({ at, host, dev: 'eth0', added });
const show = (ps: ReturnType<typeof holderPeriods>) => ps.map((p) => `${p.from}-${p.to} ${p.holders.join('+') || '-'} live:${p.live.join('+') || '-'}${p.frozen.length ? ` frozen:${p.frozen.join('+')}` : ''}`);

test('a dead host keeps its address but is no live holder; revived with it, it is one again', () => {
  const events: HostLifeEvent[] = [
    { at: 100, host: 'n1', kind: 'died' },
    { at: 500, host: 'n1', kind: 'revived' },
  ];
  const periods = holderPeriods(HOSTS, new Map([['n1', new Set(['eth0'])]]), [change(300, 'n2', true), change(600, 'n1', false)], events, 0, 1000);
  assert.deepEqual(show(periods), [
    '0-100 n1 live:n1',
    '100-300 n1 live:-',
    '300-500 n1+n2 live:n2',
    '500-600 n1+n2 live:n1+n2',
    '600-1000 n2 live:n2',
  ]);
  assert.deepEqual(periods.filter((p) => p.live.length >= 2).map((p) => [p.from, p.to]), [[500, 600]]);
});

test('a host dead before the sampler started is not counted; frozen holders are named', () => {
  const events: HostLifeEvent[] = [
    { at: 50, host: 'n2', kind: 'died' },
    { at: 200, host: 'n1', kind: 'frozen' },
    { at: 400, host: 'n1', kind: 'thawed' },
  ];
  const initial = new Map([['n1', new Set(['eth0'])], ['n2', new Set(['eth0'])]]);
  const periods = holderPeriods(HOSTS, initial, [change(450, 'n1', false)], events, 100, 1000);
  assert.deepEqual(show(periods), [
    '100-200 n1+n2 live:n1',
    '200-400 n1+n2 live:n1 frozen:n1',
    '400-450 n1+n2 live:n1',
    '450-1000 n2 live:-',
  ]);
});

test('two live holders for no time at all (two events in the same instant) is still a dual period', () => {
  const periods = holderPeriods(HOSTS, new Map([['n1', new Set(['eth0'])]]), [change(300, 'n2', true), change(300, 'n1', false)], [], 0, 1000);
  assert.deepEqual(show(periods), ['0-300 n1 live:n1', '300-300 n1+n2 live:n1+n2', '300-1000 n2 live:n2']);
});
