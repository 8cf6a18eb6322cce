/**
 * Fence parameters checked against the fence agent as it ships (issue 12 item 2): Debian's
 * fence-agents `fence_ipmilan -o metadata` and its validate-all, through the agent check that
 * `haoscar validate` and `haoscar agent` run, and through `haoscar validate` itself.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { fenceParamProblems, fencedFrom, readFenceMetadata } from '../../src/config/fence-check.js';
import { checkAgents } from '../../src/config/agent-check.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { parseOcfMetadata } from '../../src/drivers/ocf.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { ROOT } from '../lab/cluster.js';

const IPMILAN = '/usr/sbin/fence_ipmilan';
const noIpmilan = !existsSync(IPMILAN) && `${IPMILAN} is missing: apt-get install fence-agents`;
const exec = createExec(silentLogger);
const dir = await mkdtemp(join(tmpdir(), 'haoscar-fence-check-'));
after(() => rm(dir, { recursive: true, force: true }));

/** A small agent's metadata, in fence-agents' format. */
const METADATA = parseOcfMetadata(`<?xml version="1.0" ?>
<resource-agent name="fence_x" shortdesc="x">
<parameters>
  <parameter name="action" unique="0" required="1"><content type="string" default="reboot" /></parameter>
  <parameter name="ip" unique="0" required="1" obsoletes="ipaddr"><content type="string" /></parameter>
  <parameter name="ipaddr" unique="0" required="0" deprecated="1"><content type="string" /></parameter>
  <parameter name="port" unique="0" required="1"><content type="string" /></parameter>
  <parameter name="ipport" unique="0" required="0"><content type="integer" default="623" /></parameter>
  <parameter name="lanplus" unique="0" required="0"><content type="boolean" default="0" /></parameter>
  <parameter name="power_wait" unique="0" required="0"><content type="second" default="2" /></parameter>
  <parameter name="auth" unique="0" required="0"><content type="select"><option value="md5" /><option value="none" /></content></parameter>
</parameters>
<actions><action name="off" /><action name="status" /><action name="metadata" /><action name="validate-all" /></actions>
</resource-agent>`);

test('fence parameters against the metadata: names, kinds of value, required ones, the action, and the keys HA-OSCAR sets', () => {
  const cases: { params: Record<string, string>; action?: 'off' | 'reboot'; problems: string[] }[] = [
    { params: { ip: '10.0.0.9', ipport: '6230', lanplus: '1', power_wait: '1.5', auth: 'md5' }, problems: [] },
    // Deprecated names still work in fencing.py; yes/on/true are booleans to it as well.
    { params: { ipaddr: '10.0.0.9', lanplus: 'yes' }, problems: ["fence_x requires the parameter 'ip': add it under params"] },
    { params: { ip: 'a', bogus: '1' }, problems: ["bogus: fence_x has no parameter 'bogus' (its parameters: ip, ipport, lanplus, power_wait, auth)"] },
    { params: { ip: 'a', lanplus: 'yes please' }, problems: ["lanplus: fence_x's 'lanplus' is a boolean: expected \"1\" or \"0\" (or yes/no, on/off, true/false), got \"yes please\""] },
    { params: { ip: 'a', ipport: '623x' }, problems: ["ipport: fence_x's 'ipport' is an integer, got \"623x\""] },
    { params: { ip: 'a', power_wait: '2s' }, problems: ["power_wait: fence_x's 'power_wait' is a number of seconds, got \"2s\""] },
    { params: { ip: 'a', auth: 'md2' }, problems: ["auth: fence_x's 'auth' takes one of md5, none, got \"md2\""] },
    { params: { ip: 'a', action: 'on', nodename: 'x' }, problems: ["action: 'action' is set by HA-OSCAR (use fence.action); remove it from params", "nodename: 'nodename' is set by HA-OSCAR (it is the victim's node name); remove it from params"] },
    { params: { ip: 'a' }, action: 'reboot', problems: ["(action) fence_x has no action 'reboot' (its actions: off, status, metadata, validate-all)"] },
  ];
  for (const c of cases) {
    const got = fenceParamProblems({ command: ['/usr/sbin/fence_x'], params: c.params, action: c.action ?? 'off' }, METADATA)
      .map((p) => (p.param ? `${p.param}: ${p.message}` : p.field ? `(${p.field}) ${p.message}` : p.message));
    assert.deepEqual(got, c.problems, JSON.stringify(c.params));
  }
});

test('the fence agents a node may run: those of the nodes it shares a group with', () => {
  const config = parseConfig(`cluster: f
nodes:
  - { name: a, addresses: [127.0.0.1], fence: { command: [/bin/true] } }
  - { name: b, addresses: [127.0.0.2], fence: { command: [/bin/true] } }
  - { name: c, addresses: [127.0.0.3], fence: { command: [/bin/true] } }
  - { name: w, addresses: [127.0.0.4] }
groups:
  - { name: ab, nodes: [a, b], resources: [{ type: service, name: s, driver: systemd, unit: x.service }] }
  - { name: bc, nodes: [b, c], resources: [{ type: service, name: s, driver: systemd, unit: y.service }] }
`);
  assert.deepEqual(fencedFrom(config, 'a'), ['b']);
  assert.deepEqual(fencedFrom(config, 'b'), ['a', 'c']);
  assert.deepEqual(fencedFrom(config, 'w'), [], 'the witness fences nobody');
  assert.deepEqual(fencedFrom(config), ['a', 'b', 'c'], 'without a node: every fence spec');
});

test('fence_ipmilan as shipped: its metadata read, and a configuration with its mistakes refused with their lines, by the check and by haoscar validate', { skip: noIpmilan }, async () => {
  const md = await readFenceMetadata(exec, { command: [IPMILAN] });
  assert.ok(md.parameters.some((p) => p.name === 'lanplus' && p.type === 'boolean'), 'lanplus is a boolean');
  assert.deepEqual(md.parameters.find((p) => p.name === 'auth')?.options, ['md5', 'password', 'none']);
  assert.ok(md.actions.includes('off') && md.actions.includes('reboot'));

  const text = `cluster: fence
nodes:
  - name: n1
    addresses: [127.0.0.1]
    fence:
      command: [${IPMILAN}]
      params:
        ip: 10.213.9.1
        username: admin
        password: secret
        lanplus: "yes please"
        bogus: "1"
  - name: n2
    addresses: [127.0.0.2]
    fence:
      command: [${IPMILAN}]
      params: { username: admin, password: secret, lanplus: "1" }
  - name: n3
    addresses: [127.0.0.3]
    fence: { command: [/usr/sbin/fence_no_such_agent] }
  - name: n4
    addresses: [127.0.0.4]
    fence: { command: [${IPMILAN}], params: { ip: 10.213.9.4, username: admin, password: secret, lanplus: "1", cipher: "3" } }
groups:
  - { name: web, resources: [{ type: service, name: s, driver: systemd, unit: x.service }] }
`;
  const file = join(dir, 'haoscar.yaml');
  await writeFile(file, text);
  const err = await checkAgents(parseConfig(text, file), file, exec).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ConfigError, String(err));
  const issues = err.issues.map((i) => `${i.path} (line ${i.line}): ${i.message}`);
  assert.match(issues[0]!, /^nodes\[0\]\.fence\.params\.lanplus \(line 11\): fence_ipmilan's 'lanplus' is a boolean: expected "1" or "0"/);
  assert.match(issues[1]!, /^nodes\[0\]\.fence\.params\.bogus \(line 12\): fence_ipmilan has no parameter 'bogus' \(its parameters: .*\busername\b/);
  // Every parameter is one it takes, but its own validate-all wants an address.
  assert.match(issues[2]!, /^nodes\[1\]\.fence\.params \(line 17\): fence_ipmilan validate-all refused these parameters on this node: You have to enter fence address/);
  assert.match(issues[3]!, /^nodes\[2\]\.fence\.command \(line 20\): fence agent \/usr\/sbin\/fence_no_such_agent is not installed on this node .*apt-get install fence-agents/);
  assert.equal(issues.length, 4, issues.join('\n'));

  const cli = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'validate', file], { reject: false });
  assert.equal(cli.exitCode, 3, cli.stderr);
  assert.match(cli.stderr, /nodes\[0\]\.fence\.params\.bogus \(line 12\): fence_ipmilan has no parameter 'bogus'/);
  assert.doesNotMatch(cli.stderr, /secret/, 'no password in what validate prints');
  const witness = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'validate', file, '--no-agents'], { reject: false });
  assert.equal(witness.exitCode, 0, witness.stderr);
});
