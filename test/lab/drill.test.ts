/**
 * `haoscar drill` in the network lab (issue 11 item 6), run through bin/haoscar.js from the lab's
 * client namespace as an operator runs it from a client machine on the VIP's network:
 * 1. a switchover drill n1 -> n2 passes, with a report whose phases, epochs, outage and holders
 *    are plausible (and agree with the lab's own VIP sampler: never two live holders);
 * 2. the two-holder check from the client detects: during the next drill's baseline the VIP is
 *    added by hand on the standby n1, both hosts answer ARP for it, and the drill FAILS saying
 *    two holders were seen from here (the lab's sampler saw the same overlap);
 * 3. with the standby's agent stopped (a degraded cluster) the drill is refused (exit 2) and
 *    nothing moves.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setUp } from './failover-setup.js';
import { ROOT, type LabCluster } from './cluster.js';
import type { NetLab } from './netlab.js';
import { waitFor } from '../support/wait.js';
import type { DrillReport } from '../../src/drill/report.js';

const HAOSCAR = join(ROOT, 'bin/haoscar.js');

/** Runs `haoscar drill ARGS` in the client namespace; `onStderr` sees its progress lines. */
function drill(lab: NetLab, cluster: LabCluster, args: string[], onStderr?: (text: string) => void) {
  const child = lab.spawn(lab.client!, [process.execPath, HAOSCAR, 'drill', 'web', '--probe', cluster.url, '--config', cluster.configFile, ...args], { cwd: ROOT, log: 'pipe' });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    onStderr?.(stderr);
  });
  return child.then((r) => ({ exitCode: r.exitCode, stdout: String(r.stdout ?? ''), stderr }));
}

async function macOf(lab: NetLab, host: string): Promise<string> {
  const r = await lab.run(host, ['ip', '-o', 'link', 'show', 'eth0']);
  return /link\/ether ([0-9a-f:]{17})/i.exec(r.stdout)![1]!.toLowerCase();
}

test('drill: a switchover passes with a plausible report, two holders are caught from the client, a degraded cluster is refused', { timeout: 600_000 }, async (t) => {
  // The drill is what is tested, not timing under load: a lease and deadtime that a loaded 2-core
  // machine does not break before the drills (a switchover waits for no lease: the owner stops).
  const { lab, cluster, vip, client } = await setUp(t, [], undefined, { heartbeat: { interval: '200ms', deadtime: '3s' }, lease: { ttl: '8s', margin: '300ms' } });
  await client.stop(); // the drill probes by itself
  const macs = { n1: await macOf(lab, 'n1'), n2: await macOf(lab, 'n2') };
  await waitFor('status --check OK', async () => ((await cluster.cli(['status', '--check', '--timeout', '5s'])).exitCode === 0 ? true : undefined), 60_000, 500);

  // 1. A switchover drill that passes.
  const before = (await cluster.group())!;
  const reportFile = join(lab.dir, 'drill.md');
  const ok = await drill(lab, cluster, ['--to', 'n2', '--rto', '20s', '--json', '--report', reportFile]);
  assert.equal(ok.exitCode, 0, `drill exited ${ok.exitCode}:\n${ok.stdout}\n${ok.stderr}`);
  const r = JSON.parse(ok.stdout) as DrillReport;
  t.diagnostic(`drill 1: outage ${r.outage.longestGapMs} ms, ${r.outage.failures}/${r.outage.requests} failed; phases ${r.operation.phases.map((p) => `${p.name} ${p.ms}`).join(', ')}; ${'roundCount' in r.holders.here ? r.holders.here.roundCount : 0} ARP rounds`);
  assert.equal(r.verdict.pass, true, r.verdict.reasons.join('\n'));
  assert.deepEqual({ kind: r.operation.kind, status: r.operation.status, outcome: r.operation.outcome, from: r.operation.from, to: r.operation.to, epoch: r.operation.epoch, epochBefore: r.operation.epochBefore },
    { kind: 'switchover', status: 'completed', outcome: 'moved', from: 'n1', to: 'n2', epoch: before.epoch + 1, epochBefore: before.epoch });
  const phases = Object.fromEntries(r.operation.phases.map((p) => [p.name, p.ms]));
  for (const name of ['stop', 'start', 'total']) assert.ok(phases[name] !== undefined, `phase ${name} in ${JSON.stringify(phases)}`);
  assert.ok(phases.total! <= r.operation.endedAt! - r.operation.startedAt + 1000, 'the phases fit in the operation');
  // The client saw the move: answered before and after it, by two different service processes
  // (pid-service answers `ok <pid>`), and the outage is at most the operation's length.
  assert.ok(r.outage.ok > 20 && r.outage.requests >= r.outage.ok, JSON.stringify(r.outage));
  assert.equal(r.outage.gaps.filter((g) => g.ongoing).length, 0);
  assert.ok(r.outage.longestGapMs < r.operation.endedAt! - r.operation.startedAt + 2000, `outage ${r.outage.longestGapMs} ms within the operation`);
  assert.equal(r.answers.length, 2, `two services answered: ${JSON.stringify(r.answers)}`);
  // Holders: the nodes' reports (n1 until it reported the group stopped, then n2) and ARP from the client.
  assert.ok(!('notChecked' in r.holders.nodes), JSON.stringify(r.holders.nodes));
  assert.deepEqual(r.holders.nodes.overlaps, []);
  assert.deepEqual(r.holders.nodes.intervals.map((i) => `${i.node}:${i.ended ?? 'holds'}`), ['n1:reported the group stopped', 'n2:holds']);
  assert.ok(r.holders.nodes.intervals[0]!.to! <= r.holders.nodes.intervals[1]!.from);
  assert.ok(!('notChecked' in r.holders.here), JSON.stringify(r.holders.here));
  assert.equal(r.holders.here.interface, 'eth0');
  assert.deepEqual(r.holders.here.duplicates, []);
  assert.ok(r.holders.here.roundCount >= 4, `${r.holders.here.roundCount} ARP rounds`);
  assert.deepEqual([...r.holders.here.macs].sort(), [macs.n1, macs.n2].sort(), 'both owners answered ARP in turn');
  const md = await readFile(reportFile, 'utf8');
  assert.match(md, /^## Drill of web \(cluster lab\w+\), .*: PASS$/m);
  assert.match(md, /^### Client-observed outage$/m);
  assert.match(md, /phases: .*stop \d+ms/);

  // 2. Two holders: the VIP added by hand on the standby n1 during the baseline of a drill n2 -> n1.
  let added: Promise<unknown> | undefined;
  const dup = await drill(lab, cluster, ['--to', 'n1', '--rto', '20s', '--baseline', '4s', '--json'], (stderr) => {
    if (!added && stderr.includes('drill: baseline:')) added = lab.run('n1', ['ip', 'addr', 'add', lab.vip, 'dev', 'eth0']);
  });
  assert.ok(added, `the drill announced its baseline:\n${dup.stderr}`);
  await added;
  assert.equal(dup.exitCode, 1, `the drill fails:\n${dup.stdout}\n${dup.stderr}`);
  const d = JSON.parse(dup.stdout) as DrillReport;
  assert.equal(d.verdict.pass, false);
  assert.ok(!('notChecked' in d.holders.here), JSON.stringify(d.holders.here));
  assert.ok(d.holders.here.duplicates.length >= 1, JSON.stringify(d.holders.here));
  assert.deepEqual([...d.holders.here.duplicates[0]!.macs].sort(), [macs.n1, macs.n2].sort());
  assert.match(d.verdict.reasons[0]!, /^two holders of 10\.213\.\d+\.200 seen from here: \d+ of \d+ ARP rounds/);
  // The product's own reports know nothing of a hand-added address: only the client could see it.
  assert.ok(!('notChecked' in d.holders.nodes) && d.holders.nodes.overlaps.length === 0);
  assert.equal(d.operation.outcome, 'moved', 'the switchover itself went through');
  const samples = await vip.stop();
  assert.ok(samples.dualPeriods.some((p) => p.live.includes('n1') && p.live.includes('n2')), 'the lab sampler saw the same two holders');

  // 3. A degraded cluster: the standby's agent stopped. The drill is refused, nothing moves.
  await cluster.waitForGroup((g) => g.owner === 'n1' && g.state === 'running', 'web on n1');
  const owned = (await cluster.group())!;
  await cluster.stopAgent('n2');
  await waitFor('the controller sees n2 not up', async () => ((await cluster.ownership())?.nodes.n2?.state !== 'up' ? true : undefined), 60_000, 200);
  const refused = await drill(lab, cluster, ['--to', 'n2']);
  assert.equal(refused.exitCode, 2, `refused:\n${refused.stdout}\n${refused.stderr}`);
  assert.match(refused.stderr, /haoscar: refused: the cluster is not healthy \(HAOSCAR WARNING - node n2 is \w+.*\).*nothing was moved/);
  assert.equal(refused.stdout, '');
  assert.equal((await cluster.group())!.epoch, owned.epoch, 'nothing moved');
});
