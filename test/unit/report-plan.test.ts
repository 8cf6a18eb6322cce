/**
 * The controller's decisions about agents' reports (workflows/report-plan.ts): who signs one, and
 * whether its (incarnation, counter) comes after the newest applied from that node (issue 9 item 9).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { healPosition, MAX_REFUSED_REPORTS, nextReport, takeReportBatch, reportFreshness, reportSender, withAccepted, withAcceptedHeal, withRefusal, type ReportPosition } from '../../workflows/report-plan.js';

test('the sender of a report: an edge\'s reporter, the announcing node, the node that lost the group', () => {
  assert.equal(reportSender('nodeEdge', { node: 'n1', to: 'suspect', reporter: 'n2', at: 1, detail: '' }), 'n2');
  assert.equal(reportSender('nodeAnnounce', { node: 'n1', at: 1, announce: {} }), 'n1');
  assert.equal(reportSender('groupLost', { group: 'web', node: 'n3', epoch: 4, at: 1, detail: '' }), 'n3');
});

test('freshness: only a later incarnation, or a larger counter of the same one, is newer', () => {
  const last: ReportPosition = { incarnation: 100, counter: 5 };
  const cases: [string, ReportPosition | undefined, ReportPosition, 'fresh' | 'duplicate' | 'refused', RegExp?][] = [
    ['the first report of a node', undefined, { incarnation: 1, counter: 1 }, 'fresh'],
    ['the next counter', last, { incarnation: 100, counter: 6 }, 'fresh'],
    ['a gap (a report lost on the way, or not sent)', last, { incarnation: 100, counter: 9 }, 'fresh'],
    ['a restarted agent: a new incarnation, its counter from 1', last, { incarnation: 101, counter: 1 }, 'fresh'],
    ['the newest again (a retry)', last, { incarnation: 100, counter: 5 }, 'duplicate', /applied already/],
    ['an earlier report of the incarnation (a replay)', last, { incarnation: 100, counter: 4 }, 'refused', /not newer than report 5/],
    ['the first report replayed', last, { incarnation: 100, counter: 1 }, 'refused', /not newer/],
    ['an older incarnation, whatever its counter', last, { incarnation: 99, counter: 1000 }, 'refused', /incarnation 99 is older than 100/],
  ];
  for (const [what, before, got, expected, why] of cases) {
    const f = reportFreshness(before, got);
    const verdict = f.fresh ? 'fresh' : f.duplicate ? 'duplicate' : 'refused';
    assert.equal(verdict, expected, what);
    if (why && !f.fresh) assert.match(f.why, why, what);
  }
});

test('the record: refusals counted in full, the last ones kept; the newest report per node', () => {
  let r = withRefusal(undefined, { at: 1, signal: 'nodeEdge', sender: 'n1', why: 'no MAC' });
  assert.deepEqual(r, { nodes: {}, refused: 1, lastRefused: [{ at: 1, signal: 'nodeEdge', sender: 'n1', why: 'no MAC' }] });
  for (let i = 2; i <= MAX_REFUSED_REPORTS + 5; i++) r = withRefusal(r, { at: i, signal: 'groupLost', sender: 'n2', why: `${i}` });
  assert.equal(r.refused, MAX_REFUSED_REPORTS + 5);
  assert.equal(r.lastRefused.length, MAX_REFUSED_REPORTS);
  assert.equal(r.lastRefused[0]!.at, 6, 'the oldest dropped');
  const a = withAccepted(r, 'n1', { incarnation: 7, counter: 2 }, 50);
  assert.deepEqual(a.nodes, { n1: { incarnation: 7, counter: 2, at: 50 } });
  assert.equal(a.refused, r.refused, 'refusals kept');
  assert.deepEqual(withAccepted(a, 'n1', { incarnation: 8, counter: 1 }, 60).nodes, { n1: { incarnation: 8, counter: 1, at: 60 } });
});

test('the next report: the first queued, unless its sender has an earlier one queued behind it (signals handed over by name at a run\'s start)', () => {
  const at = (sender: string, incarnation?: number, counter?: number) => (incarnation === undefined ? { sender } : { sender, position: { incarnation, counter: counter! } });
  const cases: [string, ReturnType<typeof at>[], number][] = [
    ['empty', [], 0],
    ['in order', [at('n1', 5, 1), at('n1', 5, 2), at('n2', 9, 1)], 0],
    ['n1\'s announcement (1) handed over after its edges (2, 3)', [at('n1', 5, 2), at('n1', 5, 3), at('n1', 5, 1)], 2],
    ['another sender\'s earlier counter does not matter', [at('n1', 5, 2), at('n2', 1, 1)], 0],
    ['an earlier incarnation of the sender queued behind', [at('n1', 6, 1), at('n1', 5, 7)], 1],
    ['the smallest of several', [at('n1', 5, 4), at('n1', 5, 2), at('n1', 5, 3)], 1],
    ['an unsigned first report is taken as it is', [at('n1'), at('n1', 5, 1)], 0],
    ['unsigned reports behind are not reordered', [at('n1', 5, 2), at('n1')], 0],
  ];
  for (const [what, queue, expected] of cases) assert.equal(nextReport(queue), expected, what);
});

test('a heal\'s reports: ordered by their time; the newest per heal kept beside the nodes\'', () => {
  const first = withAcceptedHeal(undefined, 'heal/c/web/httpd', 1000);
  assert.deepEqual(first, { nodes: {}, refused: 0, lastRefused: [], heals: { 'heal/c/web/httpd': 1000 } });
  const both = withAcceptedHeal(withAccepted(first, 'n1', { incarnation: 7, counter: 1 }, 5), 'heal/c/web/db', 2000);
  assert.deepEqual(both.heals, { 'heal/c/web/httpd': 1000, 'heal/c/web/db': 2000 });
  assert.equal(both.nodes.n1?.counter, 1);
  const last = healPosition(both.heals?.['heal/c/web/httpd']);
  for (const [at, expected] of [[1001, 'fresh'], [1000, 'duplicate'], [999, 'refused']] as const) {
    const f = reportFreshness(last, healPosition(at)!);
    assert.equal(f.fresh ? 'fresh' : f.duplicate ? 'duplicate' : 'refused', expected, `a report at ${at} after one at 1000`);
  }
  assert.deepEqual(reportFreshness(healPosition(undefined), healPosition(1)!), { fresh: true }, 'the first report of a heal');
});

test('a batch to check together: in the order nextReport gives, up to a heal report (checked alone), at most max', () => {
  const q = (signal: string, sender: string, counter: number) => ({ signal, sender, position: { incarnation: 1, counter } });
  // n2's counter 2 came before its counter 1 (a run's start): 1 is taken first.
  const queue = [q('nodeEdge', 'n2', 2), q('nodeEdge', 'n3', 1), q('nodeEdge', 'n2', 1), q('healGaveUp', 'heal/web/r', 1), q('nodeEdge', 'n4', 1)];
  assert.deepEqual(takeReportBatch(queue).map((r) => `${r.sender}:${r.position.counter}`), ['n2:1', 'n2:2', 'n3:1']);
  assert.deepEqual(takeReportBatch(queue).map((r) => r.signal), ['healGaveUp']);
  assert.deepEqual(takeReportBatch(queue).map((r) => r.sender), ['n4']);
  assert.deepEqual(takeReportBatch(queue), []);
  const many = Array.from({ length: 10 }, (_, i) => q('nodeEdge', `n${i}`, 1));
  assert.equal(takeReportBatch(many, 4).length, 4);
  assert.equal(many.length, 6);
});
