/**
 * Found by the chaos suite (`npm run chaos -- --seed 777`, fault #26 guard-kill): a failover was
 * starting the group on n1 under epoch 23 — the VIP started, the service not yet — when n1's
 * lease guard was killed. n1 lost its lease and stopped the group (the VIP deleted). The
 * failover's next order, `startResource(httpd, 23)`, then came: the group was not held any more,
 * and GroupRuntime.startResource takes a start of a group it does not hold for the claim of a
 * new epoch — so n1 took the group again at epoch 23 and started the service, without its VIP.
 * The failover saw every resource started and healthy (the service's check is local) and ended
 * with the group `running` on n1; nothing watched the VIP any more (its monitor ended with the
 * stop). The controller said n1 ran it, n1's heartbeats said so, clients got nothing: 65 s until
 * the suite gave up, and for ever in a quiet cluster.
 *
 * A node that let go of a group under an epoch must not take it again under the same epoch
 * (a new attempt gets a new epoch): the start must be refused, and the failover then undoes what
 * it started and reports it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import { ServiceRegistry } from '../../src/agent/services.js';
import { GroupRuntime, StopFailedError } from '../../src/agent/groups.js';
import { ResourceMonitor } from '../../src/monitor/monitor.js';
import { silentLogger } from '../../src/log.js';
import { ScriptedService } from '../support/scripted-service.js';

const config = parseConfig(`
cluster: t
nodes:
  - { name: n1, addresses: [127.0.0.1] }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: ip, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
      - { type: command, name: httpd, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`);

function setup() {
  const registry = new ServiceRegistry();
  const services = new Map<string, ScriptedService>();
  const monitors = new Map<unknown, ResourceMonitor>();
  for (const group of config.groups) {
    for (const spec of group.resources) {
      const s = new ScriptedService();
      s.running = false;
      services.set(spec.name, s);
      const managed = { group, spec, driver: s.driver, check: s.check };
      registry.add(managed);
      monitors.set(managed, new ResourceMonitor({ name: spec.name, check: s.check, timing: { ...spec.check, intervalMs: 10_000 }, logger: silentLogger, onEdge: () => undefined }));
    }
  }
  const groups = new GroupRuntime({ node: 'n1', config, services: registry, logger: silentLogger, monitorOf: (s) => monitors.get(s)!, claimWaitMs: 100 });
  return { groups, services };
}

test('a node that lost a group while a failover was starting it does not take it again under the same epoch', async () => {
  const { groups, services } = setup();
  try {
    // The failover's first order: the VIP, under epoch 23.
    await groups.startResource('web', 'ip', 23);
    await groups.watch('web', 'ip', 23);
    // The lease is lost (the guard was killed): the node stops the group and lets it go.
    await groups.stopGroup('web', 'lease lost: the lease guard is not running');
    assert.equal(groups.holding('web'), undefined);
    assert.equal(services.get('ip')!.running, false);
    // The failover's next order, under the same epoch.
    const start = groups.startResource('web', 'httpd', 23);
    const outcome = await start.then(() => 'started', (err: Error) => `refused: ${err.message}`);
    assert.match(outcome, /^refused/, `the service was started again under epoch 23 without its VIP; the node holds ${JSON.stringify(groups.holding('web'))}, ip running: ${services.get('ip')!.running}, httpd running: ${services.get('httpd')!.running}`);
    assert.equal(services.get('httpd')!.running, false);
    assert.equal(groups.holding('web'), undefined);
  } finally {
    await groups.close();
  }
});

test('a node whose stop of the group failed does not start anything of it on top of what is left (the same epoch or a newer one)', async () => {
  const { groups, services } = setup();
  try {
    await groups.startResource('web', 'ip', 30);
    await groups.watch('web', 'ip', 30);
    services.get('ip')!.behaviour.stopError = 'test: the address cannot be removed';
    await assert.rejects(groups.stopGroup('web', 'lease lost'), StopFailedError);
    assert.equal(groups.holding('web')?.state, 'failed');
    for (const epoch of [30, 31]) {
      await assert.rejects(groups.startResource('web', 'httpd', epoch), StopFailedError, `a start under epoch ${epoch} is refused`);
      assert.equal(services.get('httpd')!.running, false, `nothing started under epoch ${epoch}`);
      assert.equal(groups.holding('web')?.state, 'failed', 'still held, failed');
    }
  } finally {
    services.get('ip')!.behaviour.stopError = undefined;
    await groups.close();
  }
});
