/**
 * What a starting agent keeps of what ran here before, and whether its "up" edge says it
 * restarted (src/agent/start-plan.ts; issue 9 item 6: with no answer from the controller, the
 * agent stopped the group and did not say so, and the controller kept it "running" here for ever).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startPlan, type StartFacts, type StartGroupFacts } from '../../src/agent/start-plan.js';

const owned = (epoch = 7, renewable = true) => ({ owner: 'n1', epoch, renewable });
const web = (f: Partial<StartGroupFacts> = {}): StartGroupFacts => ({ name: 'web', allRunning: true, ...f });

test('startPlan: the table', () => {
  const table: [string, StartFacts['answer'], StartGroupFacts[], { keep: [string, number][]; restarted: boolean; dropped: [string, number][] }][] = [
    // The defect: no answer (no worker, a slow one, Temporal down). Nothing is adopted, and the
    // edge says "restarted" so that the controller starts again what it had here.
    ['no answer, the group still runs here', undefined, [web()], { keep: [], restarted: true, dropped: [] }],
    ['no answer, nothing runs', undefined, [web({ allRunning: false })], { keep: [], restarted: true, dropped: [] }],
    ['no answer, no group here', undefined, [], { keep: [], restarted: true, dropped: [] }],
    // An answer: a group owned here that is stopped is reported lost at its epoch (below).
    // Adopted when owned here, renewable, not released by the guard, all running.
    ['owned, all running: adopted', { groups: { web: owned() } }, [web()], { keep: [['web', 7]], restarted: false, dropped: [] }],
    ['owned, guard still holds it at that epoch: adopted', { groups: { web: owned() } }, [web({ guarded: { epoch: 7, status: 'held' } })], { keep: [['web', 7]], restarted: false, dropped: [] }],
    ['owned, guard released an older epoch: adopted', { groups: { web: owned() } }, [web({ guarded: { epoch: 6, status: 'released' } })], { keep: [['web', 7]], restarted: false, dropped: [] }],
    ['owned, guard released it', { groups: { web: owned() } }, [web({ guarded: { epoch: 7, status: 'released' } })], { keep: [], restarted: false, dropped: [['web', 7]] }],
    ['owned, guard failed to release it', { groups: { web: owned() } }, [web({ guarded: { epoch: 7, status: 'failed' } })], { keep: [], restarted: false, dropped: [['web', 7]] }],
    ['owned, not all running', { groups: { web: owned() } }, [web({ allRunning: false })], { keep: [], restarted: false, dropped: [['web', 7]] }],
    ['owned, an operation moves it', { groups: { web: owned(7, false) } }, [web()], { keep: [], restarted: false, dropped: [['web', 7]] }],
    // Not owned here: stopped, nothing to say (the controller does not have it here).
    ['owned by n2', { groups: { web: { owner: 'n2', epoch: 7, renewable: true } } }, [web()], { keep: [], restarted: false, dropped: [] }],
    ['owned by nobody', { groups: { web: { owner: null, epoch: 7, renewable: true } } }, [web()], { keep: [], restarted: false, dropped: [] }],
    ['unknown to the controller (a new controller)', { groups: {} }, [web()], { keep: [], restarted: false, dropped: [] }],
    // Two groups, one adopted, one not: the one is reported lost at its epoch, not the node
    // "restarted" (the controller would start again the adopted one too).
    ['one adopted, one dropped', { groups: { web: owned(), db: owned(3) } }, [web(), { name: 'db', allRunning: false }], { keep: [['web', 7]], restarted: false, dropped: [['db', 3]] }],
  ];
  for (const [what, answer, groups, expected] of table) {
    const plan = startPlan({ node: 'n1', answer, groups });
    assert.deepEqual([...plan.keep], expected.keep, `${what}: kept`);
    assert.equal(plan.restarted, expected.restarted, `${what}: restarted`);
    assert.deepEqual(plan.dropped.map((d) => [d.group, d.epoch]), expected.dropped, `${what}: dropped`);
  }
});
