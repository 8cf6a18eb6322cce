/**
 * planReload (src/config/reload-plan.ts): which changed settings a running agent applies live and
 * which need a restart (all or nothing), and applyLiveSettings (src/agent/reload.ts): after it,
 * the running configuration is the new one, with the objects the agent's parts hold kept.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/load.js';
import { differences, planReload } from '../../src/config/reload-plan.js';
import { applyLiveSettings } from '../../src/agent/reload.js';

const EXAMPLE = readFileSync(new URL('../../examples/haoscar.yaml', import.meta.url), 'utf8');

/** The example with each `from` replaced by its `to` (each edit must apply). */
function edited(...edits: [string | RegExp, string][]): string {
  let text = EXAMPLE;
  for (const [from, to] of edits) {
    const next = text.replace(from, to);
    assert.notEqual(next, text, `the edit ${String(from)} applies to the example`);
    text = next;
  }
  return text;
}
const plan = (...edits: [string | RegExp, string][]) => planReload(parseConfig(EXAMPLE), parseConfig(edited(...edits)));

void describe('planReload: applied live', () => {
  // Exact paths, or a pattern every applied path matches (a default reaches every resource of both example groups that does not set its own).
  const live: Array<[string, [string | RegExp, string][], string[] | RegExp]> = [
    ['the log level', [['logLevel: info', 'logLevel: debug']], ['agent.logLevel']],
    ['the local-heal delay', [['workflows: true', 'workflows: true\n  localHealAfter: 2s']], ['agent.localHealAfterMs']],
    ['a check interval and timeout', [['interval: 1s\n          timeout: 500ms', 'interval: 3s\n          timeout: 2s']], ['groups[web].resources[api].check.intervalMs', 'groups[web].resources[api].check.timeoutMs']],
    // The defaults reach every resource that does not set its own (web-ip and proxy; api sets both interval and timeout).
    ['the default rise and fall', [['rise: 2 ', 'rise: 1 '], ['fall: 3 ', 'fall: 1 ']], /^groups\[(web|database)\]\.resources\[[a-z-]+\]\.check\.(rise|fall)$/],
    ['a heal policy', [['maxRestarts: 5', 'maxRestarts: 7']], ['groups[web].resources[api].healing.maxRestarts']],
    // A rotation step: the agent checks the contents against its peers (test/unit/secret-rotation.test.ts).
    ['the secret file', [['secretFile: /etc/haoscar/authkey', 'secretFile: /etc/haoscar/authkey.new']], ['heartbeat.secretFile']],
    ['the accepted secret files', [['secretFile: /etc/haoscar/authkey', 'secretFile: /etc/haoscar/authkey\n  acceptSecretFiles: [/etc/haoscar/authkey.new]']], ['heartbeat.acceptSecretFiles']],
    ['the default backoff', [['multiplier: 2', 'multiplier: 3']], /^groups\[(web|database)\]\.resources\[[a-z-]+\]\.healing\.backoff\.multiplier$/],
  ];
  for (const [what, edits, paths] of live) {
    void test(what, () => {
      const p = plan(...edits);
      assert.deepEqual(p.refuse, []);
      const applied = p.apply.map((c) => c.path);
      if (Array.isArray(paths)) assert.deepEqual(applied.sort(), [...paths].sort());
      else {
        assert.ok(applied.length >= 3, applied.join(', '));
        for (const path of applied) assert.match(path, paths);
      }
    });
  }

  void test('no change: nothing to apply, nothing refused; a duration written another way is no change', () => {
    assert.deepEqual(plan(['window: 10m', 'window: 600s']), { apply: [], refuse: [] });
  });

  void test('the applied change carries the values (for the log and `haoscar reload`)', () => {
    assert.deepEqual(plan(['maxRestarts: 5', 'maxRestarts: 7']).apply, [{ path: 'groups[web].resources[api].healing.maxRestarts', from: 5, to: 7 }]);
  });
});

void describe('planReload: refused (needs a restart), named with why', () => {
  // The path of the refusal (and every path refused, when one edit changes more than one setting).
  const restart: Array<[string, [string | RegExp, string][], string, RegExp, string[]?]> = [
    ['the cluster name', [['cluster: web-prod', 'cluster: web-test']], 'cluster', /task queue/],
    ['a node address', [['10.213.0.12, 192.168.100.12', '10.213.0.13, 192.168.100.12']], 'nodes[beta].addresses', /heartbeat links/],
    ['a fence password', [['password: change-me', 'password: changed']], 'nodes[beta].fence.params.password', /fence/],
    ['a node added', [[/\ngroups:/, '\n  - name: gamma\n    addresses: [10.213.0.13]\ngroups:']], 'nodes', /nodes/, ['groups[web].nodes', 'nodes']],
    ['the heartbeat port', [['port: 694 ', 'port: 695 ']], 'heartbeat.port', /heartbeat sockets/],
    ['the heartbeat deadtime', [['deadtime: 600ms', 'deadtime: 900ms']], 'heartbeat.deadtimeMs', /deadtime/],
    ['the lease ttl', [['ttl: 600ms', 'ttl: 900ms']], 'lease.ttlMs', /guard/],
    ['the guard', [['enabled: true', 'enabled: false']], 'guard.enabled', /guard/],
    ['the failover verify timeout', [['verifyTimeout: 300ms', 'verifyTimeout: 500ms']], 'failover.verifyTimeoutMs', /controller/],
    ['the Temporal address', [['address: temporal.example.internal:7233', 'address: 10.213.0.5:7233']], 'temporal.address', /Temporal/, ['temporal.address', 'temporal.frontends']],
    ['the sync port', [['port: 8873', 'port: 8874']], 'sync.port', /rsync daemon/],
    ['the state directory', [['stateDir: /var/lib/haoscar', 'stateDir: /srv/haoscar']], 'agent.stateDir', /at start/],
    ['whether the agent runs workflows', [['workflows: true', 'workflows: false']], 'agent.workflows', /at start/],
    ['a VIP address', [['address: 10.213.0.100/24', 'address: 10.213.0.101/24']], 'groups[web].resources[web-ip].address', /resources are started, stopped and guarded/],
    ['a service command', [['--port, "8080"]', '--port, "8081"]']], 'groups[web].resources[api].command', /resources/],
    ['a check url', [['url: http://127.0.0.1:8080/healthz', 'url: http://127.0.0.1:8080/ready']], 'groups[web].resources[api].check.url', /what a check probes/],
    ['a start timeout', [['startTimeout: 1m30s', 'startTimeout: 2m']], 'groups[web].resources[api].healing.startTimeoutMs', /start timeout/],
    ['a resource removed', [[/ {6}- type: service\n {8}name: proxy\n[\s\S]*?pidFile: \/run\/haproxy.pid\n/, '']], 'groups[web].resources', /resources/],
    ['a file set path', [['paths: [/srv/www, /srv/api/uploads]', 'paths: [/srv/www]']], 'groups[web].fileSets[docroot].paths', /file sets/],
    ['a fail-back policy', [['policy: auto', 'policy: manual']], 'groups[web].failback.policy', /fail-back/],
  ];
  for (const [what, edits, path, why, all] of restart) {
    void test(what, () => {
      const p = plan(...edits);
      assert.deepEqual(p.apply, []);
      assert.deepEqual(p.refuse.map((r) => r.path), all ?? [path]);
      assert.match(p.refuse.find((r) => r.path === path)!.why, why);
    });
  }

  void test('a live change beside a refused one: both are listed (the agent then applies neither)', () => {
    const p = plan(['logLevel: info', 'logLevel: debug'], ['ttl: 600ms', 'ttl: 900ms']);
    assert.deepEqual(p.apply.map((c) => c.path), ['agent.logLevel']);
    assert.deepEqual(p.refuse.map((r) => r.path), ['lease.ttlMs']);
  });

  void test('a refusal gives no values (a fence password or a service environment is a secret)', () => {
    const p = plan(['password: change-me', 'password: changed']);
    assert.doesNotMatch(JSON.stringify(p.refuse), /change-me|changed"/);
  });

  void test('a setting the table does not know is refused, not applied', () => {
    const running = parseConfig(EXAMPLE);
    const next = structuredClone(running) as typeof running & { agent: { somethingNew?: number } };
    next.agent.somethingNew = 1;
    assert.deepEqual(planReload(running, next).refuse, [{ path: 'agent.somethingNew', why: 'the agent sets this up at start (its state directory, workflow cache, whether it runs workflows)' }]);
    const top = { ...structuredClone(running), extra: true };
    assert.deepEqual(planReload(running, top).refuse, [{ path: 'extra', why: 'not known to be safe to change in a running agent' }]);
  });
});

void describe('applyLiveSettings', () => {
  void test('after it, the running configuration equals the new one; the objects the monitors hold are kept', () => {
    const running = parseConfig(EXAMPLE);
    const next = parseConfig(edited(['logLevel: info', 'logLevel: debug'], ['interval: 1s\n          timeout: 500ms', 'interval: 3s\n          timeout: 2s'], ['rise: 2 ', 'rise: 1 '], ['multiplier: 2', 'multiplier: 3'], ['maxRestarts: 5', 'maxRestarts: 7']));
    assert.deepEqual(planReload(running, next).refuse, []);
    const api = running.groups[0]!.resources[1]!;
    const check = api.check;
    applyLiveSettings(running, next);
    assert.deepEqual(differences(running, next), []);
    assert.equal(api.check, check, 'the same check object (a monitor holds it as its timing)');
    assert.equal(check.intervalMs, 3000);
  });

  void test('a policy shared by resources that inherit it is not changed in place for the others', () => {
    const running = parseConfig(EXAMPLE);
    const [vip, , proxy] = running.groups[0]!.resources;
    assert.equal(vip!.healing, proxy!.healing, 'the example shares the inherited policy object');
    const shared = vip!.healing;
    const before = structuredClone(shared);
    applyLiveSettings(running, parseConfig(edited(['multiplier: 2', 'multiplier: 3'])));
    assert.deepEqual(shared, before, 'the old object is untouched');
    assert.equal(proxy!.healing.backoff.multiplier, 3);
  });
});
