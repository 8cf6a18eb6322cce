/**
 * The metrics: the text exposition format (escaping, HELP/TYPE, histograms), the agent's and the
 * cluster's families from a snapshot, the endpoint over real HTTP (with a stand-in for the SDK's
 * exporter: a plain HTTP server answering text, as the SDK's does), and the configuration.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { escapeHelp, escapeLabelValue, Histogram, renderFamilies, type MetricFamily } from '../../src/metrics/exposition.js';
import { agentFamilies, LEASE_CONFIRMATION_BUCKETS } from '../../src/metrics/agent-metrics.js';
import { asFinishedOperation, clusterFamilies, finishedOperationsQuery } from '../../src/metrics/cluster-metrics.js';
import { CONTENT_TYPE, MetricsListenError, serveMetrics, splitListen } from '../../src/metrics/server.js';
import type { LocalStatus } from '../../src/agent/local-status.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { HA_KEYS } from '../../workflows/search-attributes.js';
import { TypedSearchAttributes } from '@temporalio/common';

describe('exposition format', () => {
  it('escapes backslash, double quote and line feed in label values; backslash and line feed in HELP', () => {
    assert.equal(escapeLabelValue('a\\b"c\nd'), 'a\\\\b\\"c\\nd');
    assert.equal(escapeHelp('a\\b"c\nd'), 'a\\\\b"c\\nd');
    const text = renderFamilies([{ name: 'x', help: 'line one\nline "two"', type: 'gauge', samples: [{ labels: { path: 'C:\\data "new"\nx' }, value: 1 }] }]);
    assert.equal(text, '# HELP x line one\\nline "two"\n# TYPE x gauge\nx{path="C:\\\\data \\"new\\"\\nx"} 1\n');
  });

  it('writes HELP and TYPE once per family, then its samples; values as Prometheus spells them', () => {
    const text = renderFamilies([
      { name: 'a_total', help: 'A.', type: 'counter', samples: [{ labels: { k: '1' }, value: 3 }, { labels: { k: '2' }, value: 0 }] },
      { name: 'b', help: 'B.', type: 'gauge', samples: [{ value: 0.25 }, { labels: { w: 'nan' }, value: NaN }, { labels: { w: 'inf' }, value: Infinity }, { labels: { w: '-inf' }, value: -Infinity }] },
      { name: 'empty', help: 'No samples.', type: 'gauge', samples: [] },
    ]);
    assert.equal(text, [
      '# HELP a_total A.', '# TYPE a_total counter', 'a_total{k="1"} 3', 'a_total{k="2"} 0',
      '# HELP b B.', '# TYPE b gauge', 'b 0.25', 'b{w="nan"} NaN', 'b{w="inf"} +Inf', 'b{w="-inf"} -Inf',
      '# HELP empty No samples.', '# TYPE empty gauge', '',
    ].join('\n'));
  });

  it('writes a histogram as cumulative _bucket lines ending with le="+Inf", then _sum and _count', () => {
    const h = new Histogram([0.1, 0.5, 1]);
    for (const v of [0.05, 0.1, 0.3, 0.7, 3]) h.observe(v);
    const text = renderFamilies([{ name: 'lat_seconds', help: 'L.', type: 'histogram', histograms: [{ labels: { node: 'n1' }, snapshot: h.snapshot() }] }]);
    assert.equal(text, [
      '# HELP lat_seconds L.', '# TYPE lat_seconds histogram',
      'lat_seconds_bucket{node="n1",le="0.1"} 2',
      'lat_seconds_bucket{node="n1",le="0.5"} 3',
      'lat_seconds_bucket{node="n1",le="1"} 4',
      'lat_seconds_bucket{node="n1",le="+Inf"} 5',
      'lat_seconds_sum{node="n1"} 4.15',
      'lat_seconds_count{node="n1"} 5', '',
    ].join('\n'));
  });

  it('refuses bad names, a family written twice, and bounds that do not increase', () => {
    const g = (name: string, labels: Record<string, string> = {}): MetricFamily => ({ name, help: 'h', type: 'gauge', samples: [{ labels, value: 1 }] });
    assert.throws(() => renderFamilies([g('1bad')]), /invalid Prometheus metric name '1bad'/);
    assert.throws(() => renderFamilies([g('ok', { 'bad-label': 'x' })]), /invalid Prometheus label name 'bad-label'/);
    assert.throws(() => renderFamilies([g('ok', { __reserved: 'x' })]), /invalid Prometheus label name/);
    assert.throws(() => renderFamilies([g('twice'), g('twice')]), /'twice' is written twice/);
    assert.throws(() => new Histogram([1, 1]), /increasing/);
    assert.throws(() => new Histogram([1, Infinity]), /finite/);
  });
});

const STATUS: LocalStatus = {
  kind: 'haoscar-local-status', node: 'n1', cluster: 'lab', pid: 1, release: '0.1.0', at: 0, phase: 'serving',
  temporal: { connected: true },
  heartbeat: {
    sent: 10, received: 9, accepted: 7, rejected: { 'bad-mac': 2 }, configDigest: 'd',
    peers: [{ node: 'n2', state: 'alive', since: 0, lastHeardAgoMs: 120, links: [{ link: '10.0.0.2->10.0.0.1', alive: true, lastHeardAgoMs: 120 }, { link: '10.1.0.2->10.1.0.1', alive: false }], configMatches: false }],
  },
  held: [{ group: 'web', epoch: 4, state: 'running', lease: { expiresInMs: 450, failSafe: false } }],
  resources: [{ group: 'web', resource: 'httpd', status: 'failing', failures: 2, passes: 0, detail: 'refused' }],
  guard: { ok: true, groups: [{ group: 'web', epoch: 4, deadlineInMs: 700, status: 'held' }] },
  fileSets: [{ group: 'web', set: 'www', role: 'standby', generation: 12, lagMs: 1500, errors: 1, running: false, lastSuccessAt: 1_700_000_000_000 }],
};

/** `name{labels} value` lines of a family, as a map from the label part to the value. */
function series(text: string, name: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) out.set(m[2] ?? '', m[3]!);
  }
  return out;
}

describe('agent metrics', () => {
  const text = renderFamilies(agentFamilies(STATUS, {
    leaseConfirmation: new Histogram(LEASE_CONFIRMATION_BUCKETS).snapshot(),
    leaseConfirmationFailures: 3,
    guardActions: { released: 1, 'release-failed': 0 },
    owners: [{ group: 'web', owner: { node: 'n1', epoch: 4 } }, { group: 'db' }],
    heartbeatRejected: { 'bad-mac': 2, replayed: 0 },
  }));

  it('says what the node holds, under which epoch, and the owner it knows of', () => {
    assert.equal(series(text, 'haoscar_group_held').get('{cluster="lab",node="n1",group="web",state="running"}'), '1');
    assert.equal(series(text, 'haoscar_group_held').get('{cluster="lab",node="n1",group="web",state="failed"}'), '0');
    assert.equal(series(text, 'haoscar_group_epoch').get('{cluster="lab",node="n1",group="web"}'), '4');
    assert.deepEqual([...series(text, 'haoscar_group_owner').keys()], ['{cluster="lab",node="n1",group="web",owner="n1"}'], 'no series for a group without a known owner');
    assert.equal(series(text, 'haoscar_lease_expires_in_seconds').get('{cluster="lab",node="n1",group="web"}'), '0.45');
  });

  it('says the heartbeat links, rejections by reason, checks, guard and sync lag', () => {
    assert.equal(series(text, 'haoscar_heartbeat_rejected_total').get('{cluster="lab",node="n1",reason="bad-mac"}'), '2');
    assert.equal(series(text, 'haoscar_heartbeat_rejected_total').get('{cluster="lab",node="n1",reason="replayed"}'), '0', 'a reason never seen is 0, not absent');
    assert.equal(series(text, 'haoscar_heartbeat_link_up').get('{cluster="lab",node="n1",peer="n2",link="10.1.0.2->10.1.0.1"}'), '0');
    assert.equal(series(text, 'haoscar_heartbeat_link_last_heard_seconds').size, 1, 'a link never heard has no age');
    assert.equal(series(text, 'haoscar_heartbeat_peer_config_matches').get('{cluster="lab",node="n1",peer="n2"}'), '0');
    assert.equal(series(text, 'haoscar_resource_check_failures').get('{cluster="lab",node="n1",group="web",resource="httpd"}'), '2');
    assert.equal(series(text, 'haoscar_guard_actions_total').get('{cluster="lab",node="n1",action="released"}'), '1');
    assert.equal(series(text, 'haoscar_guard_deadline_seconds').get('{cluster="lab",node="n1",group="web"}'), '0.7');
    assert.equal(series(text, 'haoscar_sync_lag_seconds').get('{cluster="lab",node="n1",group="web",set="www",role="standby"}'), '1.5');
    assert.equal(series(text, 'haoscar_lease_confirmation_failures_total').get('{cluster="lab",node="n1"}'), '3');
    assert.equal(series(text, 'haoscar_lease_confirmation_seconds_bucket').get('{cluster="lab",node="n1",le="+Inf"}'), '0');
  });

  it('leaves out the heartbeat and guard families in a one-node cluster', () => {
    const { heartbeat: _h, guard: _g, ...alone } = STATUS;
    const t = renderFamilies(agentFamilies(alone, { leaseConfirmation: new Histogram([1]).snapshot(), leaseConfirmationFailures: 0, guardActions: { released: 0, 'release-failed': 0 }, owners: [] }));
    assert.ok(!t.includes('haoscar_heartbeat_'));
    assert.ok(!t.includes('haoscar_guard_up'));
  });
});

describe('cluster metrics', () => {
  it('counts finished operations by operation, group, outcome and status; says what it could not read', () => {
    const text = renderFamilies(clusterFamilies({
      cluster: 'lab',
      ownership: { cluster: 'lab', falseAlarms: [], reverify: {}, groups: { web: { owner: 'n2', epoch: 5, state: 'running', since: 0, renewable: true } }, nodes: { n1: { state: 'suspect', since: 0, reportedBy: 'n2' } } },
      operations: [
        { operation: 'heal', group: 'web', outcome: 'healed', status: 'completed' },
        { operation: 'heal', group: 'web', outcome: 'healed', status: 'completed' },
        { operation: 'failover', group: 'web', outcome: 'moved', status: 'completed' },
      ],
      problems: [],
    }));
    assert.equal(series(text, 'haoscar_operations').get('{cluster="lab",operation="heal",group="web",outcome="healed",status="completed"}'), '2');
    assert.equal(series(text, 'haoscar_operations').get('{cluster="lab",operation="failover",group="web",outcome="moved",status="completed"}'), '1');
    assert.equal(series(text, 'haoscar_controller_group_owner').get('{cluster="lab",group="web",owner="n2"}'), '1');
    assert.equal(series(text, 'haoscar_controller_group_epoch').get('{cluster="lab",group="web"}'), '5');
    assert.equal(series(text, 'haoscar_controller_node_state').get('{cluster="lab",node="n1",state="suspect"}'), '1');
    assert.equal(series(text, 'haoscar_cluster_scrape_ok').get('{cluster="lab",part="operations"}'), '1');
    const down = renderFamilies(clusterFamilies({ cluster: 'lab', problems: ['no answer'] }));
    assert.equal(series(down, 'haoscar_cluster_scrape_ok').get('{cluster="lab",part="controller"}'), '0');
    assert.equal(series(down, 'haoscar_operations').size, 0);
  });

  it('reads an operation from its search attributes; one without HaOutcome is counted as none', () => {
    const attrs = (pairs: [typeof HA_KEYS[keyof typeof HA_KEYS], string][]) => new TypedSearchAttributes(pairs.map(([key, value]) => ({ key, value })));
    const completed = { code: 2, name: 'COMPLETED' } as const;
    assert.deepEqual(asFinishedOperation({ status: completed, typedSearchAttributes: attrs([[HA_KEYS.HaOperation, 'heal'], [HA_KEYS.HaGroup, 'web'], [HA_KEYS.HaOutcome, 'healed']]) }), { operation: 'heal', group: 'web', outcome: 'healed', status: 'completed' });
    assert.deepEqual(asFinishedOperation({ status: { code: 3, name: 'FAILED' }, typedSearchAttributes: attrs([[HA_KEYS.HaOperation, 'failover'], [HA_KEYS.HaGroup, 'web']]) }), { operation: 'failover', group: 'web', outcome: 'none', status: 'failed' });
    assert.equal(asFinishedOperation({ status: completed, typedSearchAttributes: attrs([]) }), undefined);
    assert.equal(finishedOperationsQuery('a"b'), 'HaCluster = "a\\"b" AND ExecutionStatus != "Running" AND HaOperation != "controller"');
  });
});

async function listening(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return (server.address() as AddressInfo).port;
}

describe('the endpoint', () => {
  it('serves ours and then the SDK exporter\'s text on GET /metrics; 404 elsewhere; 405 for POST', async (t) => {
    const sdk = createServer((_req, res) => res.end('# TYPE temporal_request counter\ntemporal_request 7'));
    const sdkPort = await listening(sdk);
    t.after(() => sdk.close());
    const probe = createServer();
    const port = await listening(probe);
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const server = await serveMetrics({ listen: `127.0.0.1:${port}`, collect: () => '# TYPE ours gauge\nours 1\n', sdkAddress: `127.0.0.1:${sdkPort}`, logger: silentLogger });
    t.after(() => server.close());
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), CONTENT_TYPE);
    assert.equal(await res.text(), '# TYPE ours gauge\nours 1\n# TYPE temporal_request counter\ntemporal_request 7\n');
    assert.equal((await fetch(`http://127.0.0.1:${port}/`)).status, 404);
    assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status, 405);
    // The SDK's exporter gone: our metrics are still served, with a comment saying so.
    await new Promise<void>((resolve) => sdk.close(() => resolve()));
    const without = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    assert.match(without, /^# TYPE ours gauge\nours 1\n# the Temporal SDK's metrics could not be read: .*\n$/);
  });

  it('answers 500 when collecting fails, and says clearly when it cannot bind', async (t) => {
    const taken = createServer();
    const port = await listening(taken);
    t.after(() => taken.close());
    await assert.rejects(serveMetrics({ listen: `127.0.0.1:${port}`, collect: () => '', logger: silentLogger }), (err: unknown) => {
      assert.ok(err instanceof MetricsListenError);
      assert.match(err.message, new RegExp(`cannot serve metrics on 127.0.0.1:${port} \\(agent.metrics.listen\\): the port is in use`));
      return true;
    });
    const server = await serveMetrics({ listen: '127.0.0.1:0', collect: () => { throw new Error('boom'); }, logger: silentLogger });
    t.after(() => server.close());
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`);
    assert.equal(res.status, 500);
    assert.match(await res.text(), /boom/);
  });

  it('splits host:port, an IPv6 host in brackets', () => {
    assert.deepEqual(splitListen('0.0.0.0:9464'), { host: '0.0.0.0', port: 9464 });
    assert.deepEqual(splitListen('[::1]:9464'), { host: '::1', port: 9464 });
  });
});

describe('configuration', () => {
  const base = (metrics: string) => `cluster: t\nagent: { metrics: ${metrics} }\nnodes: [{ name: n1, addresses: [127.0.0.1] }]\n`;
  it('is off by default, with the SDK metrics on once an address is set', () => {
    assert.deepEqual(parseConfig('cluster: t\nnodes: [{ name: n1, addresses: [127.0.0.1] }]\n').agent.metrics, { temporalSdk: true });
    assert.deepEqual(parseConfig(base('{ listen: "127.0.0.1:9464" }')).agent.metrics, { listen: '127.0.0.1:9464', temporalSdk: true });
    assert.deepEqual(parseConfig(base('{ listen: "[::1]:9464", temporalSdk: false }')).agent.metrics, { listen: '[::1]:9464', temporalSdk: false });
  });
  for (const [bad, says] of [
    ['{ listen: 9464 }', 'expected host:port to serve metrics on'],
    ['{ listen: "9464" }', 'expected host:port to serve metrics on'],
    ['{ listen: "localhost:70000" }', 'port 1-65535'],
    ['{ listen: "http://x:1" }', 'expected host:port'],
    ['{ listen: "127.0.0.1:9464", port: 9464 }', 'port'],
  ] as const) {
    it(`refuses ${bad}, naming the field`, () => {
      assert.throws(() => parseConfig(base(bad)), (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /agent\.metrics/);
        assert.ok(err.message.includes(says), err.message);
        return true;
      });
    });
  }
});
