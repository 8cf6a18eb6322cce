/**
 * The lease wait counted on one process's monotonic clock (src/monotonic-mark.ts): it never
 * compares two processes' clocks, so a clock step, a skew between machines, or a mark from
 * another (or a restarted) process can only make the wait longer, never shorter.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { markNow, remainingMs } from '../../src/monotonic-mark.js';

test('remainingMs: the table', () => {
  const here = (at: number) => ({ process: 'p1', at });
  const table: [string, number, Parameters<typeof remainingMs>[1], number, number][] = [
    ['no mark: the whole wait', 700, undefined, 5000, 700],
    ['marked here 300 ms ago', 700, here(4700), 5000, 400],
    ['marked here longer ago than the wait', 700, here(1000), 5000, 0],
    ['marked here "in the future" (cannot happen on one clock): the whole wait', 700, here(9000), 5000, 700],
    ['marked in another process, its clock far behind: the whole wait', 700, { process: 'p2', at: 1 }, 5000, 700],
    ['marked in another process, its clock far ahead: the whole wait', 700, { process: 'p2', at: 1e12 }, 5000, 700],
    ['a negative wait is none', -5, here(4000), 5000, 0],
    ['a NaN mark: the whole wait', 700, here(Number.NaN), 5000, 700],
  ];
  for (const [name, ms, since, now, expected] of table) assert.equal(remainingMs(ms, since, here(now)), expected, name);
});

test('markNow: this process, a monotonic clock', async () => {
  const a = markNow();
  await new Promise((r) => setTimeout(r, 20));
  const b = markNow();
  assert.equal(a.process, b.process);
  assert.ok(b.at - a.at >= 15, `${b.at - a.at} ms`);
  assert.ok(remainingMs(1000, a, b) <= 985);
});
