/**
 * The pure parts of `haoscar drill` (src/drill): the probe timeline summarised into gaps and
 * failures, arping's answers parsed (real outputs of iputils 20221126 in the lab), the route to
 * the VIP, the holding intervals the nodes reported in a failover's history (synthetic histories
 * for the overlaps a correct failover never produces, and a recorded one), the verdict and the
 * renderers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { summarizeProbeSamples, type ProbeSample } from '../../src/drill/probe-summary.js';
import { parseArpingAnswers, parseRouteGet, summarizeArpRounds } from '../../src/drill/arp.js';
import { nodeReports } from '../../src/drill/holders.js';
import { drillVerdict, renderDrillMarkdown, renderDrillText, type DrillReport } from '../../src/drill/report.js';
import type { History, HistoryEvent } from '../../src/history/events.js';

const ok = (t: number, body = 'ok 1'): ProbeSample => ({ t, end: t + 2, ok: true, status: 200, body });
const ko = (t: number): ProbeSample => ({ t, end: t + 5, ok: false, error: 'ECONNREFUSED' });

test('probe summary: the longest gap between answers, the failures, first and last failure', () => {
  const s = summarizeProbeSamples([ok(0), ok(50), ko(100), ko(150), ko(200), ok(250), ok(300)], { url: 'u', everyMs: 50, startedAt: 0, stoppedAt: 320 });
  assert.deepEqual({ requests: s.requests, ok: s.ok, failures: s.failures, longest: s.longestGapMs, first: s.firstFailureAt, last: s.lastFailureAt },
    { requests: 7, ok: 4, failures: 3, longest: 200, first: 100, last: 200 });
  assert.deepEqual(s.gaps, [{ from: 50, to: 250, ms: 200, failures: 3, ongoing: false }]);
});

test('probe summary: an outage not over at the stop is ongoing; failures before the first answer are not a gap', () => {
  const s = summarizeProbeSamples([ko(0), ok(50), ok(100), ko(150), ko(200)], { url: 'u', everyMs: 50, startedAt: 0, stoppedAt: 260 });
  assert.equal(s.failuresBeforeFirstOk, 1);
  assert.deepEqual(s.gaps, [{ from: 100, to: 260, ms: 160, failures: 2, ongoing: true }]);
  assert.deepEqual([s.firstFailureAt, s.lastFailureAt], [150, 200]);
  const none = summarizeProbeSamples([ko(0), ko(50)], { url: 'u', everyMs: 50, startedAt: 0, stoppedAt: 100 });
  assert.equal(none.longestGapMs, 100);
  assert.equal(none.firstFailureAt, 0);
  const clean = summarizeProbeSamples([ok(0), ok(50)], { url: 'u', everyMs: 50, startedAt: 0, stoppedAt: 60 });
  assert.equal(clean.firstFailureAt, undefined);
  assert.deepEqual(clean.gaps, []);
});

// Outputs of iputils arping 20221126 in the lab (10.213.0.200 held by n1, then by n1 and n2).
const TWO = `ARPING 10.213.0.200 from 10.213.0.100 eth0
Unicast reply from 10.213.0.200 [92:2F:E8:88:33:03]  0.639ms
Unicast reply from 10.213.0.200 [06:05:E7:43:57:16]  0.662ms
Sent 1 probes (1 broadcast(s))
Received 2 response(s)`;
const DAD_TWO = `ARPING 10.213.0.200 from 0.0.0.0 eth0
Unicast reply from 10.213.0.200 [92:2F:E8:88:33:03]  0.626ms
Sent 1 probes (1 broadcast(s))
Received 1 response(s)`;

test('arping answers: every distinct MAC answering for the address', () => {
  assert.deepEqual(parseArpingAnswers(TWO, '10.213.0.200'), { macs: ['92:2f:e8:88:33:03', '06:05:e7:43:57:16'], sent: 1 });
  // -D stops at the first answer: with two holders it names one (why the drill does not use it).
  assert.deepEqual(parseArpingAnswers(DAD_TWO, '10.213.0.200').macs, ['92:2f:e8:88:33:03']);
  assert.deepEqual(parseArpingAnswers('ARPING 10.213.0.200 from 10.213.0.100 eth0\nSent 1 probes (1 broadcast(s))\nReceived 0 response(s)\n', '10.213.0.200'), { macs: [], sent: 1 });
  // The same MAC twice is one holder; an answer for another address is not counted.
  assert.deepEqual(parseArpingAnswers(`${TWO}\nUnicast reply from 10.213.0.200 [92:2F:E8:88:33:03]  1.0ms\nUnicast reply from 10.213.0.9 [AA:AA:AA:AA:AA:AA]  1.0ms`, '10.213.0.200').macs.length, 2);
  const rounds = summarizeArpRounds('10.213.0.200', 'eth0', [{ at: 1, macs: ['a'] }, { at: 2, macs: ['a', 'b'] }, { at: 3, macs: ['b'] }, { at: 4, macs: [] }]);
  assert.deepEqual({ macs: rounds.macs, dup: rounds.duplicates.map((d) => d.at) }, { macs: ['a', 'b'], dup: [2] });
});

test('route to the VIP: on a link, through a router, or local', () => {
  assert.deepEqual(parseRouteGet('10.213.0.200 dev eth0 src 10.213.0.100 uid 0 \\    cache \n'), { dev: 'eth0', src: '10.213.0.100', local: false });
  assert.deepEqual(parseRouteGet('10.9.0.5 via 192.168.1.1 dev wlan0 src 192.168.1.20 uid 1000 \\    cache \n'), { dev: 'wlan0', src: '192.168.1.20', via: '192.168.1.1', local: false });
  assert.equal(parseRouteGet('local 10.0.0.100 dev lo src 10.0.0.100 uid 0 \\    cache <local> \n').local, true);
});

// --- the nodes' own reports, from failover histories
const payload = (v: unknown) => ({ payloads: [{ metadata: { encoding: Buffer.from('json/plain') }, data: Buffer.from(JSON.stringify(v)) }] });
const time = (ms: number) => ({ seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 });
let nextId = 1;
function scheduled(at: number, name: string, node: string, input: Record<string, unknown>): HistoryEvent {
  return { eventId: nextId++, eventTime: time(at), activityTaskScheduledEventAttributes: { activityType: { name }, taskQueue: { name: `haoscar.c.node.${node}` }, input: payload(input) } } as unknown as HistoryEvent;
}
function completed(at: number, of: HistoryEvent, result?: unknown): HistoryEvent {
  return { eventId: nextId++, eventTime: time(at), activityTaskCompletedEventAttributes: { scheduledEventId: of.eventId, ...(result !== undefined ? { result: payload(result) } : {}) } } as unknown as HistoryEvent;
}
function failed(at: number, of: HistoryEvent): HistoryEvent {
  return { eventId: nextId++, eventTime: time(at), activityTaskFailedEventAttributes: { scheduledEventId: of.eventId, failure: { message: 'no' } } } as unknown as HistoryEvent;
}
const history = (...events: HistoryEvent[]): History => ({ events });

test("nodes' reports: the old owner until it reported the group stopped, then the new one; no overlap", () => {
  const stop = scheduled(1000, 'stopGroup', 'n1', { group: 'web', epoch: 3 });
  const ip = scheduled(1200, 'startResource', 'n2', { group: 'web', resource: 'ip', epoch: 4 });
  const r = nodeReports(history(stop, completed(1100, stop), ip, completed(1300, ip)), { group: 'web', owner: 'n1', ownerEpoch: 3, since: 0 });
  assert.deepEqual(r.intervals.map((i) => [i.node, i.from, i.to, i.epoch, i.ended]), [['n1', 0, 1100, 3, 'reported the group stopped'], ['n2', 1200, undefined, 4, undefined]]);
  assert.deepEqual(r.overlaps, []);
  assert.deepEqual(r.notes, []);
});

test("nodes' reports: a start ordered before the old owner reported its stop is two holders", () => {
  const stop = scheduled(1000, 'stopGroup', 'n1', { group: 'web', epoch: 3 });
  const ip = scheduled(1050, 'startResource', 'n2', { group: 'web', resource: 'ip', epoch: 4 });
  const r = nodeReports(history(stop, ip, completed(1100, stop), completed(1300, ip)), { group: 'web', owner: 'n1', ownerEpoch: 3, since: 0 });
  assert.deepEqual(r.overlaps, [{ nodes: ['n1', 'n2'], from: 1050, to: 1100, ms: 50 }]);
});

test("nodes' reports: a node answering a ping holding the group while another holds it is two holders", () => {
  const ip = scheduled(1000, 'startResource', 'n2', { group: 'web', resource: 'ip', epoch: 4 });
  const ping = scheduled(1100, 'ping', 'n3', { group: 'web' });
  const r = nodeReports(history(ip, ping, completed(1150, ping, { node: 'n3', at: 1, holds: { epoch: 2, state: 'running' } })), { group: 'web', since: 0 });
  assert.deepEqual(r.overlaps, [{ nodes: ['n2', 'n3'], from: 1150, to: 1150, ms: 0 }]);
  // An answer holding nothing is not a holding.
  const ping2 = scheduled(1100, 'ping', 'n3', { group: 'web' });
  assert.deepEqual(nodeReports(history(ip, ping2, completed(1150, ping2, { node: 'n3', at: 1 })), { group: 'web', since: 0 }).overlaps, []);
});

test("nodes' reports: an old owner that never reported its stop is a note, not an overlap (the lease wait covers it)", () => {
  const ip = scheduled(1200, 'startResource', 'n2', { group: 'web', resource: 'ip', epoch: 4 });
  const r = nodeReports(history(ip, completed(1300, ip)), { group: 'web', owner: 'n1', ownerEpoch: 3, since: 0 });
  assert.deepEqual(r.overlaps, []);
  assert.match(r.notes[0]!, /^n1 never reported the group stopped/);
});

test("nodes' reports: a candidate whose start failed and was undone, then the old owner back: no overlap", () => {
  const stop = scheduled(1000, 'stopGroup', 'n1', { group: 'web', epoch: 3 });
  const ip = scheduled(1200, 'startResource', 'n2', { group: 'web', resource: 'ip', epoch: 4 });
  const svc = scheduled(1300, 'startResource', 'n2', { group: 'web', resource: 'httpd', epoch: 4 });
  const undo = scheduled(1400, 'stopResource', 'n2', { group: 'web', resource: 'ip', epoch: 4 });
  const back = scheduled(1600, 'startResource', 'n1', { group: 'web', resource: 'ip', epoch: 5 });
  const r = nodeReports(history(stop, completed(1100, stop), ip, completed(1250, ip), svc, failed(1350, svc), undo, completed(1500, undo), back, completed(1700, back)), { group: 'web', owner: 'n1', ownerEpoch: 3, since: 0 });
  assert.deepEqual(r.intervals.map((i) => [i.node, i.from, i.to]), [['n1', 0, 1100], ['n2', 1200, 1500], ['n1', 1600, undefined]]);
  assert.deepEqual(r.overlaps, []);
  // Undone only in part (its ip never reported stopped) while n1 starts again: two holders.
  const r2 = nodeReports(history(stop, completed(1100, stop), ip, completed(1250, ip), svc, failed(1350, svc), back, completed(1700, back)), { group: 'web', owner: 'n1', ownerEpoch: 3, since: 0 });
  assert.deepEqual(r2.overlaps.map((o) => [o.nodes, o.from]), [[['n2', 'n1'], 1600]]);
});

test("nodes' reports of a recorded switchover's failover (test/histories): no overlap", async () => {
  const file = fileURLToPath(new URL('../histories/failover-switchover.json', import.meta.url));
  const h = historyFromJSON(JSON.parse(await readFile(file, 'utf8')));
  const since = Number(String(h.events![0]!.eventTime!.seconds)) * 1000;
  const r = nodeReports(h, { group: 'web', owner: 'n1', ownerEpoch: 1, since });
  assert.deepEqual(r.overlaps, []);
  assert.deepEqual(r.intervals.map((i) => i.node), ['n1', 'n2', 'n1']);
  assert.equal(r.intervals[1]!.ended, 'reported what it started stopped');
});

// --- verdict and rendering
function report(over: { outage?: Partial<DrillReport['outage']>; operation?: Partial<DrillReport['operation']>; holders?: Partial<DrillReport['holders']> } = {}): Omit<DrillReport, 'verdict'> {
  return {
    cluster: 'prod', group: 'web', url: 'http://10.0.0.100/', rtoMs: 2000, startedAt: 1_000_000, endedAt: 1_010_000,
    precheck: { code: 0, line: 'HAOSCAR OK - web on n1; 2 node(s) up', forced: false },
    operation: { workflowId: 'switchover/prod/web', kind: 'switchover', status: 'completed', outcome: 'moved', from: 'n1', to: 'n2', epochBefore: 3, epoch: 4, phases: [{ name: 'stop', ms: 120 }, { name: 'start', ms: 300 }, { name: 'total', ms: 600 }], startedAt: 1_002_000, endedAt: 1_002_600, ...over.operation },
    outage: { url: 'http://10.0.0.100/', everyMs: 50, startedAt: 1_000_000, stoppedAt: 1_010_000, requests: 200, ok: 190, failures: 10, failuresBeforeFirstOk: 0, longestGapMs: 550, gaps: [{ from: 1_002_100, to: 1_002_650, ms: 550, failures: 10, ongoing: false }], firstFailureAt: 1_002_150, lastFailureAt: 1_002_600, ...over.outage },
    answers: [{ body: 'ok 1', count: 100 }, { body: 'ok 2', count: 90 }],
    holders: {
      nodes: { intervals: [{ node: 'n1', from: 1_000_000, to: 1_002_200, epoch: 3, began: 'owner when the drill began', ended: 'reported the group stopped' }], overlaps: [], notes: [] },
      here: { address: '10.0.0.100', interface: 'eth0', macs: ['aa', 'bb'], duplicates: [], errors: [], roundCount: 30 },
      ...over.holders,
    },
  };
}

test('verdict: PASS within the RTO with one holder at a time; each failing reason first', () => {
  const pass = drillVerdict(report());
  assert.equal(pass.pass, true);
  assert.deepEqual(pass.reasons, ['the switchover moved web from n1 to n2', 'the client-observed outage 550ms is within the RTO 2s', "never two holders by the nodes' own reports", 'never two MACs answering ARP for 10.0.0.100 from here (30 rounds)']);
  const slow = drillVerdict(report({ outage: { longestGapMs: 2500 } }));
  assert.deepEqual([slow.pass, slow.reasons[0]], [false, 'the client-observed outage 2500ms exceeds the RTO 2s']);
  const dup = drillVerdict(report({ holders: { here: { address: '10.0.0.100', interface: 'eth0', macs: ['aa', 'bb'], duplicates: [{ at: 1_002_000, macs: ['aa', 'bb'] }], errors: [], roundCount: 30 } } }));
  assert.deepEqual([dup.pass, dup.reasons[0]], [false, 'two holders of 10.0.0.100 seen from here: 1 of 30 ARP rounds were answered by two or more MACs (aa, bb)']);
  const nodes = drillVerdict(report({ holders: { nodes: { intervals: [], overlaps: [{ nodes: ['n1', 'n2'], from: 1, to: 51, ms: 50 }], notes: [] } } }));
  assert.deepEqual([nodes.pass, nodes.reasons[0]], [false, "two holders by the nodes' own reports: n1 and n2 for 50ms"]);
  const ongoing = drillVerdict(report({ outage: { longestGapMs: 900, gaps: [{ from: 1, to: 901, ms: 900, failures: 18, ongoing: true }] } }));
  assert.match(ongoing.reasons[0]!, /^the service did not answer again before the drill ended/);
  const failedOp = drillVerdict(report({ operation: { status: 'failed', outcome: 'unchanged', failure: 'n2 could not start httpd' } }));
  assert.deepEqual([failedOp.pass, failedOp.reasons[0]], [false, 'the switchover did not move the group: failed (unchanged): n2 could not start httpd']);
  // What could not be checked is said, and does not fail the drill by itself.
  const unchecked = drillVerdict(report({ holders: { here: { notChecked: 'turned off (--no-arp)' } } }));
  assert.equal(unchecked.pass, true);
  assert.ok(unchecked.reasons.includes('ARP from here not checked: turned off (--no-arp)'));
  // Not root, or no arping: no round completed; said so, in the verdict and the text.
  const noArping = report({ holders: { here: { address: '10.0.0.100', interface: 'eth0', macs: [], duplicates: [], errors: ['command "arping -b -c 1 -I eth0 10.0.0.100" could not be run'], roundCount: 0 } } });
  const v = drillVerdict(noArping);
  assert.equal(v.pass, true);
  assert.ok(v.reasons.includes('ARP from here not checked: command "arping -b -c 1 -I eth0 10.0.0.100" could not be run'), v.reasons.join('\n'));
  assert.match(renderDrillText({ ...noArping, verdict: v }), /^ {2}ARP from here: not checked: command "arping -b -c 1 -I eth0 10\.0\.0\.100" could not be run$/m);
});

test('renderers: the verdict first, the outage, the phases, the holders', () => {
  const r = report();
  const full: DrillReport = { ...r, verdict: drillVerdict(r) };
  const text = renderDrillText(full);
  assert.match(text, /^Drill of web \(cluster prod\), 1970-01-01 00:16:40Z: PASS\nverdict:\n {2}the switchover moved web from n1 to n2\n/);
  assert.match(text, /longest gap between answers: 550ms \(RTO 2s\)/);
  assert.match(text, /first failure \+2150ms, last failure \+2600ms/);
  assert.match(text, /phases: stop 120ms, start 300ms, total 600ms/);
  assert.match(text, /ARP from here \(eth0, 30 rounds\): never two MACs for one request; MACs seen: aa, bb/);
  const md = renderDrillMarkdown(full);
  assert.match(md, /^## Drill of web \(cluster prod\), 1970-01-01 00:16:40Z: PASS\n\n### Verdict\n\n- the switchover moved web from n1 to n2\n/);
  assert.match(md, /^ {2}- n1 epoch 3: \+0ms \(owner when the drill began\) to \+2200ms \(reported the group stopped\)$/m);
});

test('haoscar drill: bad arguments are a usage error (exit 2) before anything is contacted', async () => {
  const { main } = await import('../../src/cli/main.js');
  const example = fileURLToPath(new URL('../../examples/haoscar.yaml', import.meta.url));
  const write = process.stderr.write.bind(process.stderr);
  let said = '';
  process.stderr.write = ((chunk: string) => ((said += String(chunk)), true)) as typeof process.stderr.write;
  const run = async (args: string[]) => {
    said = '';
    // temporal.address of the example is not contacted: every case fails before connecting.
    return { code: await main(['node', 'haoscar', 'drill', ...args, '--config', example]), said };
  };
  try {
    const cases: [string[], RegExp][] = [
      [['mail', '--probe', 'http://10.0.0.100/'], /unknown group 'mail' \(known: web, database\)/],
      [['web', '--probe', 'ftp://10.0.0.100/'], /expected an http:\/\/ or https:\/\/ URL/],
      [['web', '--probe', 'not a url'], /expected an http:\/\/ or https:\/\/ URL/],
      [['web', '--probe', 'http://10.0.0.100/', '--to', 'gamma'], /node 'gamma' may not run group 'web'/],
      [['web', '--probe', 'http://10.0.0.100/', '--kind', 'reboot'], /argument 'reboot' is invalid\. Allowed choices are switchover, failover/],
      [['web', '--probe', 'http://10.0.0.100/', '--rto', 'soon'], /expected a duration such as 2s/],
      [['web', '--probe', 'http://10.0.0.100/', '--interface', 'eth0; reboot'], /--interface 'eth0; reboot' is not an interface name/],
      [['web'], /required option '--probe <url>' not specified/],
    ];
    for (const [args, message] of cases) {
      const r = await run(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.said}`);
      assert.match(r.said, message, args.join(' '));
    }
  } finally {
    process.stderr.write = write;
  }
});
