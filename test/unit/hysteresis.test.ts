import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { forceFailing, initialHealth, observe, type HealthEdge, type HealthState, type Thresholds } from '../../src/monitor/hysteresis.js';

/** Feeds a sequence ('+' pass, '-' fail) and returns the edge after each step ('.' for none). */
function run(sequence: string, thresholds: Thresholds, from: HealthState = initialHealth()): { edges: string; state: HealthState } {
  let state = from;
  let edges = '';
  for (const c of sequence) {
    const o = observe(state, c === '+', thresholds);
    state = o.state;
    edges += o.edge === undefined ? '.' : o.edge === 'healthy' ? 'H' : 'F';
  }
  return { edges, state };
}

void describe('observe', () => {
  const cases: Array<{ rise: number; fall: number; sequence: string; edges: string; status: HealthState['status'] }> = [
    { rise: 1, fall: 1, sequence: '', edges: '', status: 'unknown' },
    { rise: 1, fall: 1, sequence: '+', edges: 'H', status: 'healthy' },
    { rise: 1, fall: 1, sequence: '-', edges: 'F', status: 'failing' },
    { rise: 1, fall: 1, sequence: '+-+-', edges: 'HFHF', status: 'failing' },
    { rise: 1, fall: 1, sequence: '++++', edges: 'H...', status: 'healthy' },
    { rise: 1, fall: 1, sequence: '----', edges: 'F...', status: 'failing' },
    { rise: 2, fall: 3, sequence: '+', edges: '.', status: 'unknown' },
    { rise: 2, fall: 3, sequence: '++', edges: '.H', status: 'healthy' },
    { rise: 2, fall: 3, sequence: '+-+', edges: '...', status: 'unknown' },
    { rise: 2, fall: 3, sequence: '---', edges: '..F', status: 'failing' },
    { rise: 2, fall: 3, sequence: '+++--+---', edges: '.H......F', status: 'failing' },
    // A flapping check never reaches either threshold: no edges at all.
    { rise: 2, fall: 2, sequence: '++-+-+-+-', edges: '.H.......', status: 'healthy' },
    { rise: 3, fall: 2, sequence: '--++-+++', edges: '.F.....H', status: 'healthy' },
    { rise: 3, fall: 3, sequence: '++--+-', edges: '......', status: 'unknown' },
    // Thresholds below 1 act as 1.
    { rise: 0, fall: 0, sequence: '+-', edges: 'HF', status: 'failing' },
  ];
  for (const c of cases) {
    void test(`rise ${c.rise} fall ${c.fall}: "${c.sequence}" → "${c.edges}"`, () => {
      const { edges, state } = run(c.sequence, { rise: c.rise, fall: c.fall });
      assert.equal(edges, c.edges);
      assert.equal(state.status, c.status);
    });
  }

  void test('counts consecutive passes and failures, each reset by the other', () => {
    assert.deepEqual(run('+++', { rise: 2, fall: 2 }).state, { status: 'healthy', passes: 3, failures: 0 });
    assert.deepEqual(run('+++-', { rise: 2, fall: 2 }).state, { status: 'healthy', passes: 0, failures: 1 });
    assert.deepEqual(run('+++--+', { rise: 2, fall: 2 }).state, { status: 'failing', passes: 1, failures: 0 });
  });

  void test('does not mutate the given state', () => {
    const state = initialHealth();
    observe(state, true, { rise: 1, fall: 1 });
    assert.deepEqual(state, { status: 'unknown', passes: 0, failures: 0 });
  });
});

void describe('forceFailing', () => {
  const cases: Array<{ from: HealthState; edge: HealthEdge | undefined; to: HealthState }> = [
    { from: initialHealth(), edge: 'failing', to: { status: 'failing', passes: 0, failures: 1 } },
    { from: { status: 'healthy', passes: 7, failures: 0 }, edge: 'failing', to: { status: 'failing', passes: 0, failures: 1 } },
    { from: { status: 'healthy', passes: 0, failures: 1 }, edge: 'failing', to: { status: 'failing', passes: 0, failures: 2 } },
    { from: { status: 'failing', passes: 0, failures: 4 }, edge: undefined, to: { status: 'failing', passes: 0, failures: 5 } },
    { from: { status: 'failing', passes: 1, failures: 0 }, edge: undefined, to: { status: 'failing', passes: 0, failures: 1 } },
  ];
  for (const c of cases) {
    void test(`from ${JSON.stringify(c.from)} → edge ${c.edge ?? 'none'}`, () => {
      const o = forceFailing(c.from);
      assert.equal(o.edge, c.edge);
      assert.deepEqual(o.state, c.to);
    });
  }

  void test('recovery after a forced failure needs `rise` fresh passes', () => {
    const healthy = run('++', { rise: 2, fall: 3 }).state;
    const forced = forceFailing(healthy);
    assert.equal(forced.edge, 'failing');
    assert.equal(run('+-++', { rise: 2, fall: 3 }, forced.state).edges, '...H');
  });

  void test('an exit while failures accumulate below `fall` is the only failing edge', () => {
    const { state } = run('++-', { rise: 2, fall: 3 });
    const forced = forceFailing(state);
    assert.equal(forced.edge, 'failing');
    assert.equal(run('--', { rise: 2, fall: 3 }, forced.state).edges, '..');
  });
});
