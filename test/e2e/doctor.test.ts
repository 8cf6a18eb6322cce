/**
 * `haoscar doctor` on this machine (issue 11 item 7), through bin/haoscar.js, with a real config
 * of a two-node cluster (this node 127.0.0.1, a peer that runs nothing) and the run's real dev
 * server: healthy (no error; the JSON form), then one fault at a time, each reported as an error
 * with the command that fixes it — Temporal unreachable, a world-readable secret, programs
 * missing from PATH, an rsync path that does not exist, the heartbeat port taken by another
 * program.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { chmod, mkdir, symlink, writeFile } from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { execa } from 'execa';
import { Lab, ROOT, freePort } from '../support/lab.js';
import { closeTemporal, temporalAddress } from '../support/temporal.js';
import type { Finding } from '../../src/doctor/finding.js';

interface DoctorJson {
  cluster: string;
  node: string;
  distribution?: { id: string; packageManager?: string };
  findings: Finding[];
  exitCode: number;
}

const doctor = async (config: string, env?: Record<string, string>) => {
  const r = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'doctor', '--json', '--timeout', '3s', '--node', 'a', '-c', config], {
    reject: false, cwd: ROOT, timeout: 120_000, ...(env ? { env, extendEnv: false } : {}),
  });
  assert.equal(r.stderr, '', 'nothing on stderr');
  const json = JSON.parse(r.stdout) as DoctorJson;
  assert.equal(r.exitCode, json.exitCode, 'the exit code is the one the report gives');
  return json;
};
const finding = (report: DoctorJson, check: string): Finding => {
  const f = report.findings.find((x) => x.check === check);
  assert.ok(f, `a finding '${check}' in ${report.findings.map((x) => x.check).join(', ')}`);
  return f;
};

test('doctor on this machine: a healthy node, then each fault with its fix', async (t) => {
  const lab = await Lab.create();
  t.after(async () => {
    await lab.close();
    await closeTemporal();
  });
  const secret = join(lab.dir, 'authkey');
  await writeFile(secret, 'doctor-e2e-secret-0123456789abcdef\n', { mode: 0o600 });
  const heartbeatPort = await freePort();
  const syncPort = await freePort();
  const yaml = (opts: { address?: string; rsync?: string } = {}) => `cluster: doctor-e2e
temporal: { address: "${opts.address ?? ''}" }
agent: { stateDir: ${join(lab.dir, 'state')} }
heartbeat: { port: ${heartbeatPort}, secretFile: ${secret} }
sync: { port: ${syncPort}${opts.rsync ? `, rsync: ${opts.rsync}` : ''} }
nodes:
  - { name: a, addresses: [127.0.0.1] }
  - { name: b, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: vip, name: ip, address: 10.213.250.10/24, interface: lo }
    fileSets:
      - { name: data, paths: [${join(lab.dir, 'data')}] }
`;
  const address = await temporalAddress();
  const healthy = await lab.writeConfig('healthy.yaml', yaml({ address }));

  const ok = await doctor(healthy);
  assert.deepEqual(ok.findings.filter((f) => f.level === 'error'), [], 'no error on a sound node');
  assert.equal(ok.node, 'a');
  for (const check of ['config', 'tool ip', 'tool arping', 'tool /usr/bin/rsync', 'secret', `port heartbeat 127.0.0.1:${heartbeatPort}`, `temporal ${address}`, 'temporal namespace']) {
    assert.equal(finding(ok, check).level, 'ok', check);
  }
  assert.match(finding(ok, 'temporal namespace').found, /namespace default is registered/);
  assert.equal(finding(ok, 'agent').level, 'skipped', 'no agent runs: the peer checks are skipped, and said so');
  // The clock: whatever this machine's state, doctor says which, and never "ok" without knowing.
  const time = finding(ok, 'time');
  assert.ok(time.level === 'ok' ? /^synchronised: /.test(time.found) : /^(not synchronised|unknown): /.test(time.found) && time.fix !== undefined, JSON.stringify(time));
  if (ok.distribution?.packageManager === 'apt') assert.equal(finding(ok, 'distribution').level, 'ok');

  // The human form: the same findings, and the exit code.
  const text = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'doctor', '--timeout', '3s', '-c', healthy], { reject: false, cwd: ROOT, timeout: 120_000 });
  assert.equal(text.exitCode, ok.exitCode);
  assert.match(text.stdout, /^haoscar doctor: cluster doctor-e2e, node a/);
  assert.match(text.stdout, /^ok {6}secret: /m);
  assert.match(text.stdout, /^\d+ error\(s\), \d+ warning\(s\), \d+ ok, \d+ skipped$/m);

  // Bad input: a node that is not in the configuration is a usage error (exit 2), nothing checked.
  const nope = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'doctor', '--node', 'nope', '-c', healthy], { reject: false, cwd: ROOT, timeout: 120_000 });
  assert.equal(nope.exitCode, 2);
  assert.equal(nope.stdout, '');
  assert.match(nope.stderr, /^haoscar: node 'nope' is not in cluster 'doctor-e2e' \(known nodes: a, b\)$/m);

  // Temporal unreachable: nothing listens on the port.
  const away = await doctor(await lab.writeConfig('away.yaml', yaml({ address: `127.0.0.1:${await freePort()}` })));
  assert.equal(away.exitCode, 2);
  const refused = away.findings.find((f) => f.check.startsWith('temporal 127.0.0.1:'));
  assert.equal(refused?.level, 'error');
  assert.match(refused.found, /connection refused/);
  assert.match(refused.fix ?? '', /haoscar server -c .*away\.yaml/);
  assert.equal(away.findings.find((f) => f.check === 'temporal namespace'), undefined, 'no Temporal call without a connection');

  // A world-readable secret: the agent would refuse to start.
  await chmod(secret, 0o644);
  const open = await doctor(healthy);
  assert.equal(open.exitCode, 2);
  assert.deepEqual(finding(open, 'secret'), { check: 'secret', level: 'error', found: `${secret} has mode 0644: every user of this host can read it (and forge heartbeats); the agent refuses to start`, fix: `chmod 600 ${secret}` });
  await chmod(secret, 0o600);

  // Programs missing: a PATH with only some of them, and an rsync path where there is none.
  const bin = join(lab.dir, 'bin');
  await mkdir(bin);
  await symlink('/usr/bin/arping', join(bin, 'arping'));
  const missing = await doctor(await lab.writeConfig('no-rsync.yaml', yaml({ address, rsync: join(lab.dir, 'nowhere/rsync') })), { PATH: bin });
  assert.equal(missing.exitCode, 2);
  assert.equal(finding(missing, 'tool arping').level, 'ok');
  const ip = finding(missing, 'tool ip');
  assert.equal(ip.level, 'error');
  assert.match(ip.found, new RegExp(`ip is not on PATH \\(${bin}\\); needed for resource web/ip \\(vip\\)`));
  const rsync = finding(missing, `tool ${join(lab.dir, 'nowhere/rsync')}`);
  assert.equal(rsync.level, 'error');
  if (missing.distribution?.packageManager === 'apt') {
    assert.equal(ip.fix, 'apt-get install -y iproute2');
    assert.match(rsync.fix ?? '', /^apt-get install -y rsync \(it installs into \/usr\/bin or \/usr\/sbin: if .*nowhere\/rsync is not where it is, correct the path in the configuration\)$/);
  }

  // The heartbeat port taken by another program, and no agent here.
  const squatter = createSocket('udp4');
  await new Promise<void>((resolve) => squatter.bind(heartbeatPort, '127.0.0.1', resolve));
  try {
    const taken = await doctor(healthy);
    assert.equal(taken.exitCode, 2);
    const port = finding(taken, `port heartbeat 127.0.0.1:${heartbeatPort}`);
    assert.equal(port.level, 'error');
    assert.match(port.found, /in use by another program, and no agent runs/);
    assert.equal(port.fix, `find it with: ss -ulnp 'sport = :${heartbeatPort}'; stop it, or choose another heartbeat.port (the same on every node)`);
  } finally {
    squatter.close();
  }
});
