import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { clusterWideConfig, configDigest } from '../../src/config/digest.js';
import { parseConfig } from '../../src/config/load.js';
import { CONFIG_DIGEST_PATTERN } from '../../src/heartbeat/packet.js';

const EXAMPLE = readFileSync(new URL('../../examples/haoscar.yaml', import.meta.url), 'utf8');
const SECRET = Buffer.from('config-digest-test-secret-0123456789');

/** The example with `from` replaced by `to` (once; the replacement must apply). */
function edited(from: string | RegExp, to: string): string {
  const text = EXAMPLE.replace(from, to);
  assert.notEqual(text, EXAMPLE, `the edit ${String(from)} applies to the example`);
  return text;
}
const digestOf = (text: string, secret = SECRET) => configDigest(parseConfig(text), secret);

void describe('configDigest: the cluster-wide configuration, keyed with the cluster secret', () => {
  const base = digestOf(EXAMPLE);

  void test('32 lowercase hex digits, what heartbeats of version 2 carry; the same input gives the same digest', () => {
    assert.match(base, CONFIG_DIGEST_PATTERN);
    assert.equal(digestOf(EXAMPLE), base);
  });

  void test('another secret gives another digest (nothing can be checked without it)', () => {
    assert.notEqual(digestOf(EXAMPLE, Buffer.from('another-secret-another-secret-0000')), base);
  });

  const same: Array<[string, string | RegExp, string]> = [
    ['another secret file path', 'secretFile: /etc/haoscar/authkey', 'secretFile: /etc/haoscar/other-key'],
    ['another state directory', 'stateDir: /var/lib/haoscar', 'stateDir: /srv/haoscar-state'],
    ['another log level', 'logLevel: info', 'logLevel: debug'],
    ['this agent does not run workflows', 'workflows: true', 'workflows: false'],
    ['another workflow cache', 'maxCachedWorkflows: 100', 'maxCachedWorkflows: 20'],
    ['another Temporal frontend (how this node reaches it)', 'address: temporal.example.internal:7233', 'address: 10.213.0.5:7233'],
    ['other TLS files', 'keyFile: /etc/haoscar/tls/client.key', 'keyFile: /root/client.key'],
    ['a watchdog on this node', '# watchdog: { device: /dev/watchdog, timeout: 10s }', 'watchdog: { device: /dev/watchdog, timeout: 10s }'],
    ['a duration written another way', 'window: 10m', 'window: 600s'],
    ['another duration written another way', 'stableFor: 2m', 'stableFor: 120s'],
    ['defaults left out', 'sync:\n  transport: daemon\n  port: 8873\n', 'sync: {}\n'],
    ['the nodes listed in another order', / {2}- name: alpha\n([\s\S]*?) {2}- name: beta\n([\s\S]*?)\ngroups:/, '  - name: beta\n$2\n  - name: alpha\n$1groups:'],
  ];
  for (const [what, from, to] of same) {
    void test(`the same with ${what}`, () => assert.equal(digestOf(edited(from, to)), base));
  }

  void test('the same when the groups are listed in another order', () => {
    const at = EXAMPLE.indexOf('\n  # Listed nodes: beta is preferred');
    const groupsAt = EXAMPLE.indexOf('groups:\n') + 'groups:\n'.length;
    const swapped = EXAMPLE.slice(0, groupsAt) + EXAMPLE.slice(at + 1) + '\n' + EXAMPLE.slice(groupsAt, at) + '\n';
    const config = parseConfig(swapped);
    assert.deepEqual(config.groups.map((g) => g.name), ['database', 'web'], 'the edit swapped them');
    assert.equal(configDigest(config, SECRET), base);
  });

  const different: Array<[string, string | RegExp, string]> = [
    ['another heartbeat interval', 'interval: 150ms ', 'interval: 200ms '],
    ['another heartbeat port', 'port: 694 ', 'port: 695 '],
    ['another deadtime', 'deadtime: 600ms', 'deadtime: 700ms'],
    ['another lease ttl', 'ttl: 600ms', 'ttl: 900ms'],
    ['another lease margin', 'margin: 100ms', 'margin: 200ms'],
    ['another verify timeout', 'verifyTimeout: 300ms', 'verifyTimeout: 400ms'],
    ['another sync port', 'port: 8873', 'port: 8874'],
    ['another cluster name', 'cluster: web-prod', 'cluster: web-test'],
    ['another Temporal namespace', 'namespace: haoscar', 'namespace: other'],
    ['another node address', 'addresses: [10.213.0.12, 192.168.100.12]', 'addresses: [10.213.0.13, 192.168.100.12]'],
    ['the links of a node in another order', 'addresses: [10.213.0.12, 192.168.100.12]', 'addresses: [192.168.100.12, 10.213.0.12]'],
    ['another priority', 'priority: 50', 'priority: 60'],
    ['another fence password', 'password: change-me', 'password: changed'],
    ['another VIP', 'address: 10.213.0.100/24', 'address: 10.213.0.101/24'],
    ['another service environment', 'NODE_ENV: production', 'NODE_ENV: staging'],
    ['another check', 'url: http://127.0.0.1:8080/healthz', 'url: http://127.0.0.1:8080/health'],
    ['another default healing policy (applied to every resource)', 'maxRestarts: 3 ', 'maxRestarts: 4 '],
    ['another group preference', 'nodes: [beta, alpha]', 'nodes: [alpha, beta]'],
    ['another fail-back policy', 'policy: auto', 'policy: manual'],
    ['another file set', 'paths: [/srv/www, /srv/api/uploads]', 'paths: [/srv/www]'],
  ];
  for (const [what, from, to] of different) {
    void test(`another digest with ${what}`, () => assert.notEqual(digestOf(edited(from, to)), base));
  }

  void test('what it covers holds no local path and no agent setting', () => {
    const covered = JSON.stringify(clusterWideConfig(parseConfig(EXAMPLE)));
    for (const local of ['/etc/haoscar/authkey', '/var/lib/haoscar', 'temporal.example.internal', '/etc/haoscar/tls', 'maxCachedWorkflows', 'logLevel', 'secretFile', 'stateDir']) {
      assert.ok(!covered.includes(local), `covers ${local}`);
    }
  });
});
