/**
 * OCF resource agents (issue 12 item 1): the pure parts (agent names, the OCF environment, exit
 * codes, meta-data, parameters against meta-data) as tables, then the driver and the
 * configuration check against the real agents of Debian's resource-agents package
 * (`ocf:heartbeat:Dummy`, `ocf:heartbeat:IPaddr2`'s meta-data) and a test agent whose stop fails
 * (test/fixtures/ocf/resource.d/haoscar-test/StopFails).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { agentPath, monitorVerdict, ocfEnvironment, ocfExitMeaning, ocfSaid, OcfDriver, parseAgentName, parseOcfMetadata, readOcfMetadata } from '../../src/drivers/ocf.js';
import { ocfParamProblems } from '../../src/config/ocf-check.js';
import { checkAgents } from '../../src/config/agent-check.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { OcfResource } from '../../src/config/types.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE_OCF_ROOT = join(ROOT, 'test/fixtures/ocf');
const exec = createExec(silentLogger);
const dir = await mkdtemp(join(tmpdir(), 'haoscar-ocf-'));
after(() => rm(dir, { recursive: true, force: true }));

function ocfResource(over: Partial<OcfResource> & { agent: string }): OcfResource {
  return {
    type: 'ocf',
    name: 'res',
    params: {},
    timeouts: {},
    ocfRoot: '/usr/lib/ocf',
    check: { type: 'status', intervalMs: 2000, timeoutMs: 1000, rise: 1, fall: 1 },
    healing: { maxRestarts: 3, windowMs: 60_000, startTimeoutMs: 30_000, backoff: { initialMs: 1000, maxMs: 30_000, multiplier: 2 } },
    ...over,
  } as OcfResource;
}

test('agent names: provider:type and Pacemaker\'s ocf:provider:type; anything else refused', () => {
  assert.deepEqual(parseAgentName('heartbeat:IPaddr2'), { provider: 'heartbeat', type: 'IPaddr2' });
  assert.deepEqual(parseAgentName('ocf:heartbeat:IPaddr2'), { provider: 'heartbeat', type: 'IPaddr2' });
  for (const bad of ['IPaddr2', 'lsb:heartbeat:x', 'a:b:c:d']) assert.throws(() => parseAgentName(bad), /not an OCF agent name/, bad);
  assert.equal(agentPath(ocfResource({ agent: 'ocf:heartbeat:Dummy' })), '/usr/lib/ocf/resource.d/heartbeat/Dummy');
});

test('exit codes: 0 and 8 are running (8 promoted), 7 is cleanly stopped, 1-6 and 9 are failures with their meaning', () => {
  const table: [number, boolean, boolean, boolean | undefined][] = [
    [0, true, false, undefined], [8, true, false, true], [7, false, false, undefined],
    [1, false, true, undefined], [2, false, true, undefined], [3, false, true, undefined], [4, false, true, undefined],
    [5, false, true, undefined], [6, false, true, undefined], [9, false, true, undefined], [42, false, true, undefined],
  ];
  for (const [code, running, failed, promoted] of table) {
    const v = monitorVerdict(code);
    assert.deepEqual([v.running, v.failed, v.promoted], [running, failed, promoted], `exit ${code}`);
  }
  assert.equal(ocfExitMeaning(5), 'exit 5: a program it needs is not installed (OCF_ERR_INSTALLED)');
  assert.equal(ocfExitMeaning(9), 'exit 9: failed while promoted (OCF_FAILED_PROMOTED)');
  assert.equal(ocfExitMeaning(42), 'exit 42: not an OCF exit code');
  assert.equal(ocfSaid('out', 'noise\nocf-exit-reason:disk full\nmore noise'), 'disk full');
  assert.equal(ocfSaid('out', 'last words\n'), 'last words');
  assert.equal(ocfSaid('out\n', ''), 'out');
});

test('the OCF environment: root, API version, instance, provider, type, timeout, the parameters as OCF_RESKEY_*', () => {
  const env = ocfEnvironment(ocfResource({ agent: 'heartbeat:IPaddr2', name: 'vip', params: { ip: '10.0.0.5', cidr_netmask: '24' } }), 'monitor', 20_000);
  assert.deepEqual(env, {
    OCF_ROOT: '/usr/lib/ocf',
    OCF_FUNCTIONS_DIR: '/usr/lib/ocf/lib/heartbeat',
    OCF_RA_VERSION_MAJOR: '1',
    OCF_RA_VERSION_MINOR: '1',
    OCF_RESOURCE_INSTANCE: 'vip',
    OCF_RESOURCE_PROVIDER: 'heartbeat',
    OCF_RESOURCE_TYPE: 'IPaddr2',
    OCF_CHECK_LEVEL: '0',
    OCF_RESKEY_CRM_meta_timeout: '20000',
    OCF_RESKEY_CRM_meta_interval: '2000',
    OCF_RESKEY_ip: '10.0.0.5',
    OCF_RESKEY_cidr_netmask: '24',
  });
  assert.equal(ocfEnvironment(ocfResource({ agent: 'heartbeat:Dummy' }), 'start', 5000).OCF_RESKEY_CRM_meta_interval, undefined);
});

test('meta-data: parameters (required, defaults) and action timeouts; comments ignored; not an agent document refused', () => {
  const md = parseOcfMetadata(`<?xml version="1.0"?>
<resource-agent name="x">
<!-- <parameter name="commented"/> -->
<parameters>
<parameter name="ip" unique="1" required="1"><content type="string" default=""/></parameter>
<parameter name='nic'><content type="string" default="eth0" /></parameter>
<parameter name="flag" />
<parameter name="mode" deprecated="1"><content type="select" default="a"><option value="a" /><option value="b"/></content></parameter></parameters>
<actions>
<action name="start" timeout="20s" /><action name="stop" timeout="2m"/>
<action name="monitor" depth="0" timeout="500ms" interval="10s" role="Unpromoted"/>
<action name="monitor" timeout="30s" role="Promoted"/>
<action name="meta-data" timeout="5" />
</actions></resource-agent>`);
  assert.deepEqual(md.parameters, [
    { name: 'ip', required: true, default: '', type: 'string' },
    { name: 'nic', required: false, default: 'eth0', type: 'string' },
    { name: 'flag', required: false },
    { name: 'mode', required: false, default: 'a', type: 'select', options: ['a', 'b'], deprecated: true },
  ]);
  assert.deepEqual(md.actions, ['start', 'stop', 'monitor', 'meta-data']);
  assert.deepEqual(md.timeouts, { start: 20_000, stop: 120_000, monitor: 500, 'meta-data': 5000 });
  assert.throws(() => parseOcfMetadata('<html></html>'), /not a <resource-agent> document/);
  assert.deepEqual(
    ocfParamProblems({ agent: 'heartbeat:x', params: { nic: 'eth1', bogus: '1' } }, md).map((p) => p.message),
    ["heartbeat:x has no parameter 'bogus' (its parameters: ip, nic, flag, mode)", "heartbeat:x requires the parameter 'ip': add it under params"],
  );
});

test('the real ocf:heartbeat:Dummy through the driver: stopped (7), started, running, started again, stopped, stopped again', async () => {
  assert.ok(existsSync('/usr/lib/ocf/resource.d/heartbeat/Dummy'), 'resource-agents is not installed (.ci/run installs it)');
  const state = join(dir, 'dummy.state');
  const driver = new OcfDriver(ocfResource({ agent: 'ocf:heartbeat:Dummy', name: 'dummy', params: { state } }), { exec, logger: silentLogger });
  // The agent's OCF 1.1 exit reason (ocf-exit-reason: on stderr) is what the detail quotes.
  assert.deepEqual(await driver.status(), { running: false, detail: 'ocf:heartbeat:Dummy monitor: exit 7: not running (OCF_NOT_RUNNING): No process state file found' });
  await driver.start();
  assert.ok(existsSync(state), 'Dummy keeps its state file where OCF_RESKEY_state says');
  assert.equal((await driver.status()).running, true);
  await driver.start();
  await driver.stop();
  assert.equal(existsSync(state), false);
  assert.equal((await driver.status()).running, false);
  await driver.stop();
  // Its meta-data's default timeouts are the driver's when the configuration gives none.
  const md = await readOcfMetadata(exec, ocfResource({ agent: 'heartbeat:Dummy' }));
  assert.equal(md.timeouts.start, 20_000);
  assert.ok(md.parameters.some((p) => p.name === 'state'));
});

test('an agent whose stop fails: the stop throws with the OCF meaning and what the agent said; the guard gets the same stop', async () => {
  const state = join(dir, 'stopfails.state');
  const resource = ocfResource({ agent: 'haoscar-test:StopFails', name: 'stuck', params: { state }, ocfRoot: FIXTURE_OCF_ROOT });
  const driver = new OcfDriver(resource, { exec, logger: silentLogger });
  await driver.start();
  await assert.rejects(driver.stop(), /^Error: stop of OCF resource stuck \(haoscar-test:StopFails\) failed: exit 1: generic error \(OCF_ERR_GENERIC\): cannot stop: the daemon ignores SIGTERM$/);
  assert.equal((await driver.status()).running, true);
  // The guard runs argv only: env(1) carries the OCF environment, the timeout is the meta-data's stop timeout.
  const [action] = driver.guardActions();
  assert.equal(action?.kind, 'run');
  const argv = (action as { argv: string[] }).argv;
  assert.equal(argv[0], 'env');
  assert.ok(argv.includes(`OCF_RESKEY_state=${state}`));
  assert.deepEqual(argv.slice(-2), [join(FIXTURE_OCF_ROOT, 'resource.d/haoscar-test/StopFails'), 'stop']);
  const r = await execa(argv[0]!, argv.slice(1), { reject: false });
  assert.equal(r.exitCode, 1, 'the guard\'s command is the agent\'s stop, with its environment');
});

test('configuration: a missing agent, an unknown parameter, a missing required one and a validate-all refusal are config errors with their lines', async () => {
  const text = `cluster: ocf
nodes:
  - { name: n1, addresses: [127.0.0.1] }
groups:
  - name: web
    resources:
      - type: ocf
        name: addr
        agent: ocf:heartbeat:IPaddr2
        params:
          cidr_netmask: "24"
          bogus: "1"
      - type: ocf
        name: ghost
        agent: heartbeat:NoSuchAgent
      - { type: ocf, name: fine, agent: "heartbeat:Dummy", params: { state: /tmp/x } }
      - { type: ocf, name: wrongnic, agent: "heartbeat:IPaddr2", params: { ip: 10.213.77.5, nic: nosuchnic0 } }
`;
  const file = join(dir, 'haoscar.yaml');
  await writeFile(file, text);
  const config = parseConfig(text, file);
  const err = await checkAgents(config, file, exec).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ConfigError, String(err));
  const issues = err.issues.map((i) => `${i.path} (line ${i.line}): ${i.message.split(';')[0]}`);
  assert.deepEqual(issues.slice(0, 2), [
    "groups[0].resources[0].params.bogus (line 12): ocf:heartbeat:IPaddr2 has no parameter 'bogus' (its parameters: " + issues[0]!.split('(its parameters: ')[1],
    "groups[0].resources[0].params (line 10): ocf:heartbeat:IPaddr2 requires the parameter 'ip': add it under params",
  ]);
  assert.match(issues[2]!, /^groups\[0\]\.resources\[1\]\.agent \(line 15\): OCF agent heartbeat:NoSuchAgent is not installed on this node/);
  // Its parameters are ones IPaddr2 takes, but its validate-all finds no such interface here.
  assert.match(issues[3]!, /^groups\[0\]\.resources\[3\]\.params \(line 17\): heartbeat:IPaddr2 validate-all refused these parameters on this node: exit 6: not configured correctly \(OCF_ERR_CONFIGURED\)/);
  assert.equal(issues.length, 4);
  assert.match(err.issues[2]!.message, /apt-get install resource-agents/);

  // Through the command users run: exit 3 with the same lines; --no-agents skips the check (the witness).
  const cli = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'validate', file], { reject: false });
  assert.equal(cli.exitCode, 3, cli.stderr);
  assert.match(cli.stderr, /groups\[0\]\.resources\[0\]\.params\.bogus \(line 12\): ocf:heartbeat:IPaddr2 has no parameter 'bogus'/);
  const witness = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'validate', file, '--no-agents'], { reject: false });
  assert.equal(witness.exitCode, 0, witness.stderr);
  assert.match(witness.stdout, /ocf addr \(ocf:heartbeat:IPaddr2\)/);
});
