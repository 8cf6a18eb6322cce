/**
 * `haoscar status`'s text (src/cli/status-text.ts): what the operator reads, and nothing in the
 * controller's state (details reported by agents, operators' notes) can drive the terminal
 * (issue 9, item 11: control characters were printed as they came).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CHECK, formatHeals, formatLocalStatus, formatStatus, printable, runningCaveat, statusCheck, statusWarnings } from '../../src/cli/status-text.js';
import { runningHealsQuery } from '../../src/cli/running-heals.js';
import type { LocalStatus } from '../../src/agent/local-status.js';
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

const healthy = (): Ownership => ({
  cluster: 'c1',
  nodes: { n1: { state: 'up', since: NOW - 5000, reportedBy: 'n1' }, n2: { state: 'up', since: NOW - 5000, reportedBy: 'n1' } },
  groups: { web: { owner: 'n1', epoch: 4, state: 'running', since: NOW - 60_000, renewable: true } },
  falseAlarms: [],
  reverify: {},
}) as Ownership;

const node = (): LocalStatus => ({
  kind: 'haoscar-local-status',
  node: 'n1',
  cluster: 'c1',
  pid: 100,
  release: '0.2.0',
  at: NOW,
  phase: 'serving: connected to Temporal at t:7233; holds web (epoch 4, running)',
  temporal: { connected: true },
  heartbeat: {
    sent: 10,
    received: 10,
    accepted: 9,
    rejected: { replayed: 1 },
    configDigest: 'a'.repeat(32),
    peers: [{ node: 'n2', state: 'alive', since: NOW - 9000, lastHeardAgoMs: 80, protocol: 2, configDigest: 'a'.repeat(32), configMatches: true, links: [{ link: '10.0.0.2->10.0.0.1', alive: true, lastHeardAgoMs: 80 }, { link: '10.1.0.2->10.1.0.1', alive: true, lastHeardAgoMs: 90 }] }],
  },
  held: [{ group: 'web', epoch: 4, state: 'running', lease: { expiresInMs: 2500, failSafe: false } }],
  resources: [{ group: 'web', resource: 'httpd', status: 'healthy', failures: 0, passes: 5, detail: 'status 200' }],
  guard: { ok: true, pid: 50, watchdog: 'off', groups: [{ group: 'web', epoch: 4, deadlineInMs: 2400, status: 'held' }] },
  fileSets: [],
});

test('status --check: OK, WARNING when degraded, CRITICAL when a group is down, UNKNOWN without an answer', () => {
  const table: { name: string; controller?: (o: Ownership) => void; local?: (l: LocalStatus) => void; unreachable?: boolean; code: number; line: RegExp }[] = [
    { name: 'healthy', code: CHECK.ok, line: /^HAOSCAR OK - web on n1; 2 node\(s\) up$/ },
    { name: 'a standby down', controller: (o) => (o.nodes.n2 = { state: 'suspect', since: NOW, reportedBy: 'n1' }), code: CHECK.warning, line: /WARNING - node n2 is suspect/ },
    { name: 'a group in maintenance', controller: (o) => (o.maintenance = { groups: { web: { at: NOW, operator: 'root' } }, nodes: {} }), code: CHECK.warning, line: /WARNING - group web is in maintenance \(unmanaged\)/ },
    { name: 'a node in standby', controller: (o) => (o.maintenance = { groups: {}, nodes: { n2: { at: NOW, operator: 'root' } } }), code: CHECK.warning, line: /WARNING - node n2 is in standby/ },
    { name: 'another configuration', local: (l) => Object.assign(l.heartbeat!.peers[0]!, { configDigest: 'b'.repeat(32), configMatches: false }), code: CHECK.warning, line: /WARNING - n2's configuration differs from n1's/ },
    { name: 'a link silent', local: (l) => (l.heartbeat!.peers[0]!.links[1]!.alive = false), code: CHECK.warning, line: /WARNING - heartbeat link 10\.1\.0\.2->10\.1\.0\.1 is silent/ },
    { name: 'the peer not heard', local: (l) => (l.heartbeat!.peers[0]!.state = 'dead'), code: CHECK.warning, line: /does not hear n2/ },
    { name: 'fail-safe', local: (l) => (l.held[0]!.lease = { expiresInMs: 900, failSafe: true }), code: CHECK.warning, line: /serves web under the fail-safe/ },
    { name: 'guard down', local: (l) => (l.guard = { ok: false, why: 'its process 50 is not running', groups: [] }), code: CHECK.warning, line: /lease guard of n1 is not running: its process 50/ },
    { name: 'sync failing', local: (l) => l.fileSets.push({ group: 'web', set: 'docroot', role: 'standby', source: 'n2', generation: 3, errors: 2, lastError: 'rsync exit 23', running: false }), code: CHECK.warning, line: /docroot on n1: the last sync failed: rsync exit 23/ },
    { name: 'sync lagging', local: (l) => l.fileSets.push({ group: 'web', set: 'docroot', role: 'standby', generation: 3, lagMs: 600_000, errors: 0, running: false }), code: CHECK.warning, line: /lags 10m/ },
    { name: 'sync within its lag', local: (l) => l.fileSets.push({ group: 'web', set: 'docroot', role: 'standby', generation: 3, lagMs: 2000, errors: 0, running: false }), code: CHECK.ok, line: /OK/ },
    { name: 'group down', controller: (o) => (o.groups.web = { ...o.groups.web!, owner: null, state: 'down' }), code: CHECK.critical, line: /CRITICAL - group web is down/ },
    { name: 'group moving', controller: (o) => (o.groups.web = { ...o.groups.web!, state: 'moving' }), code: CHECK.critical, line: /CRITICAL - group web is moving \(owner n1\)/ },
    { name: 'owner not up', controller: (o) => (o.nodes.n1 = { state: 'suspect', since: NOW, reportedBy: 'n2' }), code: CHECK.critical, line: /CRITICAL - group web: its owner n1 is not up; node n1 is suspect/ },
    { name: 'a resource failing here', local: (l) => (l.resources[0] = { ...l.resources[0]!, status: 'failing', failures: 3, detail: 'connection refused' }), code: CHECK.critical, line: /CRITICAL - resource web\/httpd fails on n1: connection refused/ },
    { name: 'failed stop here', local: (l) => (l.held[0] = { ...l.held[0]!, state: 'failed', failure: 'VIP still there' }), code: CHECK.critical, line: /group web failed on n1: VIP still there/ },
    { name: 'no answer', unreachable: true, code: CHECK.unknown, line: /^HAOSCAR UNKNOWN - cannot reach Temporal$/ },
    { name: 'no answer, and the node sees a problem', unreachable: true, local: (l) => (l.heartbeat!.peers[0]!.state = 'dead'), code: CHECK.unknown, line: /UNKNOWN - cannot reach Temporal; n1 does not hear n2/ },
    { name: 'no answer, a group failed here', unreachable: true, local: (l) => (l.held[0]!.state = 'failed'), code: CHECK.critical, line: /CRITICAL - group web failed on n1/ },
  ];
  for (const row of table) {
    const controller = row.unreachable ? undefined : healthy();
    if (controller) row.controller?.(controller);
    const local = node();
    row.local?.(local);
    const verdict = statusCheck(controller, local, { maxLagMs: 300_000, ...(row.unreachable ? { unreachable: 'cannot reach Temporal' } : {}) });
    assert.equal(verdict.code, row.code, `${row.name}: ${verdict.line}`);
    assert.match(verdict.line, row.line, row.name);
  }
  assert.equal(statusCheck(healthy(), undefined, { maxLagMs: 1 }).code, CHECK.ok, 'no node view (not run on a node): the controller decides');
});

test('local status text: heartbeat links, leases, checks, the guard and file sets, printable', () => {
  const l = node();
  l.fileSets.push({ group: 'web', set: 'docroot', role: 'standby', source: 'n2\u001b[2J', generation: 3, lastSuccessAt: NOW - 4000, lagMs: 1500, errors: 0, running: false });
  l.held[0]!.lease = { expiresInMs: 900, failSafe: true };
  const text = formatLocalStatus(l);
  assert.match(text, /^this node n1 \(agent pid 100, release 0\.2\.0\): serving/);
  assert.match(text, /heartbeats: 10 sent, 9 accepted, rejected: replayed 1/);
  assert.match(text, /n2 +alive +last heard 80ms ago, protocol 2, same configuration\n +link 10\.0\.0\.2->10\.0\.0\.1 alive \(last heard 80ms ago\)/);
  assert.match(text, /holds web at epoch 4: running; FAIL-SAFE: serving without a confirmed lease/);
  assert.match(text, /resource web\/httpd: healthy: status 200/);
  assert.match(text, /lease guard: running \(pid 50, watchdog off\)\n +web epoch 4: held, released in 2s unless renewed/);
  assert.match(text, /file set web\/docroot: standby from n2\\x1b\[2J, generation 3, last synced 4s ago, lag 2s/);
});

test('local status text: the secrets are named during a secret rotation only (docs/reload.md#rotating-the-cluster-secret)', () => {
  const [OLD, NEW] = ['a'.repeat(16), 'b'.repeat(16)];
  const l = node();
  l.heartbeat!.keys = [OLD];
  Object.assign(l.heartbeat!.peers[0]!, { signsWith: OLD, acceptsKeys: [OLD] });
  assert.doesNotMatch(formatLocalStatus(l), /secret/, 'outside a rotation, nothing about secrets');
  l.heartbeat!.keys = [OLD, NEW];
  Object.assign(l.heartbeat!.peers[0]!, { signsWith: NEW, acceptsKeys: [NEW, OLD] });
  const text = formatLocalStatus(l);
  assert.match(text, new RegExp(`cluster secret: SECRET ROTATION UNDER WAY: signs with ${OLD}, also accepts ${NEW}`));
  assert.match(text, new RegExp(`n2 +alive .*same configuration, signs with ${NEW} \\(accepts ${NEW}, ${OLD}\\)`));
  // This node is done (the new secret alone) while its peer still accepts the old one: still under way.
  l.heartbeat!.keys = [NEW];
  assert.match(formatLocalStatus(l), new RegExp(`SECRET ROTATION UNDER WAY: signs with ${NEW}, accepts no other`));
});

test('status text: refused reports are counted, the last ones say from whom and why (issue 9 item 9)', () => {
  const s = state('x');
  assert.doesNotMatch(formatStatus(s, NOW), /refused reports/);
  s.reports = { nodes: { n1: { incarnation: 7, counter: 3, at: NOW } }, refused: 0, lastRefused: [] };
  assert.doesNotMatch(formatStatus(s, NOW), /refused reports/, 'nothing refused: no line');
  s.reports.refused = 5;
  s.reports.lastRefused = [1, 2, 3, 4].map((i) => ({ at: NOW - i * 1000, signal: 'nodeEdge', sender: 'n2', why: `reason ${i}` }));
  s.reports.lastRefused.push({ at: NOW - 1000, signal: 'groupLost', sender: 'n1\u001b[2J', why: 'it carries no MAC' });
  const text = formatStatus(s, NOW);
  assert.match(text, /\n {2}refused reports: 5 \(unsigned, signed with another secret, or replayed; they changed nothing: docs\/security\.md\)\n {4}nodeEdge from n2 3s ago: reason 3\n {4}nodeEdge from n2 4s ago: reason 4\n {4}groupLost from n1\\x1b\[2J 1s ago: it carries no MAC\n$/);
});

test('running heals: the budget used against the policy, the last attempt, an unanswered heal with its reason; nothing when none runs (issue 11 item 2)', () => {
  const now = 1_700_000_100_000;
  assert.equal(formatHeals([], now), '');
  const text = formatHeals([
    { workflowId: 'heal/lab/web/www', group: 'web', resource: 'www', node: 'n1', since: now - 42_000, phase: 'watching', restartsInWindow: 2, maxRestarts: 3, windowMs: 60_000, lastAttempt: { at: now - 5_000, outcome: 'healthy', detail: 'http 200' } },
    { workflowId: 'heal/lab/db/pg', group: 'db', resource: 'pg', node: 'n2', since: now - 3_000, maxRestarts: 5, windowMs: 600_000, error: 'no answer to its state query (deadline exceeded)' },
    { workflowId: 'heal/lab/x/y', group: 'x', resource: 'y\x1b[2J', node: 'n1', since: now - 1_000, phase: 'restarting', restartsInWindow: 1 },
  ], now);
  assert.equal(
    text,
    '  heals running:\n' +
      '    web/www on n1: watching, 2 of 3 restart(s) in the 1m window, for 42s; last attempt 5s ago: healthy (http 200) [heal/lab/web/www]\n' +
      '    db/pg on n2: state unknown: no answer to its state query (deadline exceeded), for 3s [heal/lab/db/pg]\n' +
      '    x/y\\x1b[2J on n1: restarting, 1 restart(s) in the window, for 1s [heal/lab/x/y]\n',
  );
  assert.equal(runningHealsQuery('a"b'), 'HaCluster = "a\\"b" AND HaOperation = "heal" AND ExecutionStatus = "Running"');
});

test('local status text: the last reload, and a refused one says the agent runs an older configuration (docs/reload.md)', () => {
  const l = node();
  assert.doesNotMatch(formatLocalStatus(l), /reload/i, 'no reload yet: no line');
  l.config = { loadedAt: NOW - 3_600_000 };
  l.reload = { completed: 1, last: { result: 'applied', at: NOW - 120_000, file: '/etc/haoscar/haoscar.yaml', applied: [{ path: 'agent.logLevel', from: 'info', to: 'debug' }], refused: [] } };
  assert.match(formatLocalStatus(l), /\n {2}last reload 2m ago: applied agent\.logLevel\n/);
  l.reload = { completed: 2, last: { result: 'refused', at: NOW - 5000, file: '/etc/haoscar/haoscar.yaml', applied: [], refused: [{ path: 'lease.ttlMs', why: 'x' }, { path: 'heartbeat.port', why: 'y' }] } };
  assert.match(formatLocalStatus(l), /\n {2}LAST RELOAD REFUSED 5s ago: lease\.ttlMs needs a restart, heartbeat\.port needs a restart; it runs the configuration loaded 60m ago\n/);
  l.reload = { completed: 3, last: { result: 'invalid', at: NOW - 5000, file: '/etc/haoscar/haoscar.yaml', applied: [], refused: [], error: 'rise: expected an integer' } };
  assert.match(formatLocalStatus(l), /LAST RELOAD REFUSED 5s ago: the file is invalid; it runs/);
});
