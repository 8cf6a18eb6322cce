/**
 * `haoscar doctor` on the nodes of a two-node lab cluster (issue 11 item 7), run in each node's
 * own network namespace through bin/haoscar.js: with the same configuration everywhere, each
 * node's doctor says its peer has the same secret and configuration (the digest its heartbeats
 * carry) and that the heartbeat port is held by its own agent; then n2's agent is restarted
 * with a configuration that differs in one cluster-wide setting, and both doctors report the
 * other's digest as different, with the fix.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { NetLab } from './netlab.js';
import { LabCluster, ROOT } from './cluster.js';
import { waitFor } from '../support/wait.js';
import type { Finding } from '../../src/doctor/finding.js';

const TIMING = { heartbeat: { interval: '100ms', deadtime: '500ms' }, lease: { ttl: '4s', margin: '150ms' }, failover: { verifyTimeout: '500ms' } };

interface DoctorJson {
  node: string;
  findings: Finding[];
  exitCode: number;
}

test('doctor on each node: the same secret and configuration as its peer, then a peer whose configuration differs', async (t) => {
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: false });
  const cluster = new LabCluster(lab, TIMING);
  t.after(async () => {
    await cluster.close();
    await lab.close();
  });
  await cluster.start();

  const doctor = async (host: string, config: string): Promise<DoctorJson> => {
    const r = await lab.run(host, [process.execPath, join(ROOT, 'bin/haoscar.js'), 'doctor', '--json', '--timeout', '5s', '--node', host, '-c', config], { reject: false, timeoutMs: 120_000 });
    return JSON.parse(r.stdout) as DoctorJson;
  };
  const peerFinding = (report: DoctorJson, peer: string) => report.findings.find((f) => f.check === `peer ${peer}`);

  // The same configuration everywhere: each peer's digest is this node's own.
  const same = await waitFor('doctor on n1 finds n2 alive with the same digest', async () => {
    const r = await doctor('n1', cluster.configFile);
    return peerFinding(r, 'n2')?.level === 'ok' ? r : undefined;
  }, 60_000, 500);
  assert.match(peerFinding(same, 'n2')!.found, /^alive; its heartbeats pass with this node's secret, and its configuration digest [0-9a-f]{32} equals this node's/);
  const level = (r: DoctorJson, check: string) => r.findings.find((f) => f.check === check)?.level;
  assert.equal(level(same, 'config agent'), 'ok', 'the agent runs with the file as it is');
  assert.equal(level(same, 'agent'), 'ok');
  assert.equal(level(same, `port heartbeat ${lab.address('n1')}:694`), 'ok', 'the heartbeat port is held by our agent');
  assert.match(same.findings.find((f) => f.check === `port heartbeat ${lab.address('n1')}:694`)!.found, /held \(by this node's agent, pid \d+/);

  // n2 restarted with another cluster-wide setting (the failover's verify timeout).
  const original = await readFile(cluster.configFile, 'utf8');
  const changed = original.replace(/verifyTimeout: 500ms/, 'verifyTimeout: 700ms');
  assert.notEqual(changed, original, 'the edit applies');
  const otherConfig = join(lab.dir, 'haoscar-n2.yaml');
  await writeFile(otherConfig, changed);
  await cluster.stopAgent('n2');
  const shared = cluster.configFile;
  cluster.configFile = otherConfig;
  try {
    cluster.startAgent('n2');
  } finally {
    cluster.configFile = shared;
  }

  const differs = await waitFor("doctor on n1 reports n2's digest as different", async () => {
    const r = await doctor('n1', cluster.configFile);
    return peerFinding(r, 'n2')?.level === 'error' ? r : undefined;
  }, 120_000, 1000);
  assert.equal(differs.exitCode, 2);
  const finding = peerFinding(differs, 'n2')!;
  assert.match(finding.found, /^its configuration digest [0-9a-f]{32} differs from this node's [0-9a-f]{32}: the cluster-wide settings differ \(its heartbeats pass, so the secret is the same\)$/);
  assert.match(finding.fix ?? '', /^make the configurations equal: compare with: diff <\(ssh n2 cat .*haoscar\.yaml\) .*haoscar\.yaml;/);

  const fromN2 = await doctor('n2', otherConfig);
  assert.equal(peerFinding(fromN2, 'n1')?.level, 'error', JSON.stringify(fromN2.findings));
  assert.equal(level(fromN2, 'config agent'), 'ok', "n2's agent runs with its own file as it is");
});
