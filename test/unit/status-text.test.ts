/**
 * `haoscar status`'s text (src/cli/status-text.ts): what the operator reads, and nothing in the
 * controller's state (details reported by agents, operators' notes) can drive the terminal
 * (issue 9, item 11: control characters were printed as they came).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatStatus, printable, runningCaveat, statusWarnings } from '../../src/cli/status-text.js';
import type { GroupOwnership, Ownership } from '../../workflows/shared.js';

const NOW = 1_800_000_000_000;

function state(detail: string): Ownership {
  return {
    cluster: 'c1',
    nodes: { n1: { state: 'up', since: NOW - 5000, reportedBy: 'n1' }, n2: { state: 'suspect', since: NOW - 2000, reportedBy: `n1\u001b]0;owned\u0007` } },
    groups: {
      web: { owner: 'n1', epoch: 4, state: 'running', since: NOW - 60_000, renewable: true, lost: { node: 'n1', epoch: 4, at: NOW - 1000, detail } },
      db: { owner: null, epoch: 7, state: 'down', since: NOW - 10_000, renewable: false, retry: { at: NOW + 20_000, delayMs: 40_000 } },
    },
    falseAlarms: [{ group: 'web', node: 'n2', at: NOW - 3000, detail, workflowId: 'failover/c1/web' }],
    reverify: {},
  } as Ownership;
}

test('printable: control and bidirectional characters become visible escapes; text, tabs and accents stay', () => {
  assert.equal(printable('a\u001b[2Jb\r\n\u007f\u009b\u202ec'), 'a\\x1b[2Jb\\x0d\\x0a\\x7f\\x9b\\u202ec');
  assert.equal(printable('déjà vu\tok — 10.0.0.1'), 'déjà vu\tok — 10.0.0.1');
});

test('status text: the groups with what is pending on them, and no control character from the state reaches the terminal', () => {
  const text = formatStatus(state('lease lost\u001b[2J\u001b[H\rfake: all good\u202e'), NOW);
  // eslint-disable-next-line no-control-regex
  assert.doesNotMatch(text.replace(/\n/g, ''), /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e]/, text);
  assert.match(text, /lease lost\\x1b\[2J\\x1b\[H\\x0dfake: all good\\u202e/);
  assert.match(text, /n2 +suspect +since 2s ago \(n1\\x1b\]0;owned\\x07\)/);
  assert.match(text, /web +running +on n1 +epoch 4 since 60s ago\n +lost by n1 at epoch 4 1s ago/);
  assert.match(text, /db +down +on - +epoch 7 since 10s ago\n +down: tried again in 20s while a node of it is up \(40s after the last try, doubling up to 5 min\)/);
  assert.ok(text.endsWith('\n') && !text.endsWith('\n\n'));
});

test('status text: nodes that announced a lease other than the worker\'s are named on a WARNING line (issue 9 item 2)', () => {
  const s = state('x');
  assert.doesNotMatch(formatStatus(s, NOW), /WARNING/);
  s.leases = { worker: { ttlMs: 600, marginMs: 100 }, nodes: { n1: { ttlMs: 3000, marginMs: 500, at: NOW }, n2: { ttlMs: 600, marginMs: 100, at: NOW } } };
  assert.deepEqual(statusWarnings(s), ['lease settings differ: the workflow worker has ttl 600ms, margin 100ms; n1 enforces ttl 3000ms, margin 500ms. Failovers wait out the largest; make every haoscar.yaml the same']);
  assert.match(formatStatus(s, NOW), /^cluster c1\n {2}WARNING: lease settings differ: the workflow worker has ttl 600ms, margin 100ms; n1 enforces ttl 3000ms, margin 500ms\./);
  s.leases.nodes.n1 = { ttlMs: 600, marginMs: 100, at: NOW };
  assert.deepEqual(statusWarnings(s), []);
});

test('runningCaveat: a group the controller has running is not printed as plainly running when its owner is not up, or is about to lose it (issue 9 item 6)', () => {
  const running: GroupOwnership = { owner: 'n1', epoch: 4, state: 'running', since: NOW - 60_000, renewable: true };
  const up = { state: 'up' as const, since: NOW - 5000, reportedBy: 'n1' };
  const table: [string, GroupOwnership, Ownership['nodes'], RegExp | undefined][] = [
    ['owner up', running, { n1: up }, undefined],
    ['owner suspect', running, { n1: { state: 'suspect', since: NOW - 3000, reportedBy: 'n2' } }, /^NOT CONFIRMED: its owner n1 is suspect since 3s ago \(n2\); it serves the group only while its lease holds$/],
    ['owner never reported to this controller', running, { n1: { state: 'unknown', since: NOW - 9000, reportedBy: 'controller' } }, /^NOT CONFIRMED: its owner n1 is unknown since 9s ago/],
    ['owner not in the state', running, {}, /not known to the controller/],
    ['renewals blocked, no operation yet', { ...running, renewable: false, blockedSince: NOW - 2000 }, { n1: up }, /^its owner's lease is not renewed since 2s ago: an operation is about to move it$/],
    ['renewals blocked by a running operation (printed with it)', { ...running, renewable: false, blockedSince: NOW - 2000, operation: { workflowId: 'failover/c1/web', kind: 'node-lost', startedAt: NOW - 2000 } }, { n1: up }, undefined],
    ['down: nothing to add', { ...running, state: 'down', owner: null }, {}, undefined],
    ['moving: the operation says it', { ...running, state: 'moving' }, {}, undefined],
  ];
  for (const [what, g, nodes, expected] of table) {
    const caveat = runningCaveat(g, nodes, NOW);
    if (expected === undefined) assert.equal(caveat, undefined, what);
    else assert.match(caveat ?? '', expected, what);
  }
  const text = formatStatus({ cluster: 'c1', nodes: { n1: { state: 'suspect', since: NOW - 3000, reportedBy: 'n2' } }, groups: { web: running }, falseAlarms: [], reverify: {} }, NOW);
  assert.match(text, /web +running +on n1 +epoch 4 since 60s ago\n +NOT CONFIRMED: its owner n1 is suspect/);
});
