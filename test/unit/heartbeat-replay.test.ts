import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkReplay, REPLAY_WINDOW, ReplayGuard, type ReplayWindow } from '../../src/heartbeat/replay.js';

/** Feeds seqs of one incarnation; returns '+' (accepted) or the first letter of why not, per packet. */
function run(seqs: number[], incarnation = 100, from?: ReplayWindow): { verdicts: string; window: ReplayWindow | undefined } {
  let window = from;
  let verdicts = '';
  for (const seq of seqs) {
    const v = checkReplay(window, incarnation, seq);
    if (v.ok) window = v.window;
    verdicts += v.ok ? '+' : v.why === 'duplicate' ? 'd' : v.why === 'too-old' ? 't' : 'o';
  }
  return { verdicts, window };
}

void describe('checkReplay', () => {
  const cases: Array<{ what: string; seqs: number[]; verdicts: string }> = [
    { what: 'in order', seqs: [1, 2, 3, 4], verdicts: '++++' },
    { what: 'the first packet seen may have any seq', seqs: [1000, 1001], verdicts: '++' },
    { what: 'duplicate', seqs: [1, 2, 2, 1], verdicts: '++dd' },
    { what: 'reordered within the window, each once', seqs: [5, 3, 4, 3, 4, 5], verdicts: '+++ddd' },
    { what: 'gaps (lost packets) are fine, and filled later once', seqs: [1, 10, 5, 5, 20], verdicts: '+++d+' },
    { what: 'the oldest seq in the window is accepted', seqs: [1, 64, 1], verdicts: '++d' },
    { what: 'just inside and just outside the window', seqs: [100, 100 - (REPLAY_WINDOW - 1), 100 - REPLAY_WINDOW], verdicts: '++t' },
    { what: 'a jump of more than the window forgets the old bitmap', seqs: [1, 2, 200, 2, 137, 136], verdicts: '+++t+t' },
  ];
  for (const c of cases) {
    void test(`${c.what}: ${c.seqs.join(',')} → ${c.verdicts}`, () => {
      assert.equal(run(c.seqs).verdicts, c.verdicts);
    });
  }

  void test('a larger incarnation (the sender restarted) starts a fresh window, flagged as a restart', () => {
    const { window } = run([1, 2, 500]);
    const v = checkReplay(window, 101, 1);
    assert.equal(v.ok, true);
    assert.equal(v.ok && v.restarted, true);
    assert.deepEqual(v.ok && v.window, { incarnation: 101, highest: 1, seen: 1n });
    assert.equal(run([3, 2, 1], 101, v.ok ? v.window : undefined).verdicts, '++d', 'seq 1 of the new run was the restart packet');
  });

  void test('the first packet of a sender is not a restart', () => {
    const v = checkReplay(undefined, 100, 7);
    assert.equal(v.ok && v.restarted, false);
  });

  void test('an older incarnation is refused, whatever its seq', () => {
    const { window } = run([1, 2, 3], 200);
    assert.equal(run([4, 1, 1000], 199, window).verdicts, 'ooo');
  });

  void test('agrees with a simple model on random streams', () => {
    for (let trial = 0; trial < 50; trial++) {
      let window: ReplayWindow | undefined;
      const seen = new Set<number>();
      let highest = 0;
      for (let i = 0; i < 500; i++) {
        // Mostly forward with reordering, sometimes far back, sometimes repeated.
        const seq = Math.max(1, highest + Math.floor(Math.random() * 12) - (Math.random() < 0.1 ? 80 : 8));
        const expected = seen.size === 0 || seq > highest || (highest - seq < REPLAY_WINDOW && !seen.has(seq));
        const v = checkReplay(window, 1, seq);
        assert.equal(v.ok, expected, `trial ${trial} step ${i}: seq ${seq}, highest ${highest}`);
        if (v.ok) {
          window = v.window;
          seen.add(seq);
          highest = Math.max(highest, seq);
        }
      }
    }
  });
});

void describe('ReplayGuard', () => {
  void test('keeps one window per sender and records only what it accepts', () => {
    const guard = new ReplayGuard();
    assert.equal(guard.check('a', 1, 1).ok, true);
    assert.equal(guard.check('b', 1, 1).ok, true, 'the same seq from another sender is not a replay');
    assert.equal(guard.check('a', 1, 1).ok, false);
    assert.equal(guard.check('a', 0, 5).ok, false, 'older incarnation');
    assert.equal(guard.incarnation('a'), 1, 'a refused packet changes nothing');
    assert.equal(guard.check('a', 2, 1).ok, true);
    assert.equal(guard.incarnation('a'), 2);
    assert.equal(guard.incarnation('c'), undefined);
  });
});
