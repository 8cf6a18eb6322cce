/**
 * `haoscar history` (docs/postmortem.md) against a real Temporal dev server: a failover of a dead
 * owner and a heal, run by the real workflows (test/support/workflow-cluster.ts), then read back
 * through bin/haoscar.js as an operator would: the timeline (trigger, nodes, epoch, phases,
 * outcome), one operation's steps with their summaries, the Markdown report, the documented
 * HaOutcome/HaTrigger queries, and the clear errors for bad arguments and an absent Temporal.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haoscarCli } from '../support/lab.js';
import { closeTemporal, temporalAddress } from '../support/temporal.js';
import { WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';
import { requestHeal } from '../../src/agent/heal-trigger.js';
import { failoverWorkflowId } from '../../workflows/shared.js';
import type { Timeline } from '../../src/history/timeline.js';

const BODY = `
lease: { ttl: 2s, margin: 50ms }
failover: { verifyTimeout: 1500ms }
defaults:
  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }
  healing: { window: 1s, startTimeout: 5s }
nodes:
  - { name: n1, addresses: [127.0.0.1], priority: 10 }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`;

let c: WorkflowCluster;
let dir: string;
let configFile: string;

const haoscar = haoscarCli;

before(async () => {
  c = await WorkflowCluster.start('hist', BODY);
  dir = await mkdtemp(join(tmpdir(), 'haoscar-history-'));
  configFile = join(dir, 'haoscar.yaml');
  await writeFile(configFile, `cluster: ${c.name}\ntemporal: { address: "${await temporalAddress()}" }\n${BODY}`);
  // n1 dies: its peer reports it, the controller fails the group over to n2.
  await c.kill('n1');
  await c.report('n1', 'suspect', 'n2', 'every link silent');
  await c.settled('n2');
  // Then a monitor on n2 reports the service crashed: a heal restarts it.
  const { workflowId } = await requestHeal(c.client, { cluster: c.name, node: 'n2', group: 'web', resource: 'first', failure: { at: Date.now(), detail: 'test: crashed', source: 'monitor@n2' } });
  assert.deepEqual(await c.client.workflow.getHandle(workflowId).result(), await c.client.workflow.getHandle(workflowId).result());
});

after(async () => {
  await c?.close();
  await closeTemporal();
  if (dir) await rm(dir, { recursive: true, force: true });
});

let whole: Promise<Timeline> | undefined;
/** The timeline once visibility has caught up with both operations (the whole cluster's, asked once). */
function timeline(...extra: string[]): Promise<Timeline> {
  if (extra.length === 0) return (whole ??= ask());
  return ask(...extra);
}
async function ask(...extra: string[]): Promise<Timeline> {
  return waitFor('the failover and the heal in `haoscar history --json`', async () => {
    const r = await haoscar('history', '--config', configFile, '--json', ...extra);
    assert.equal(r.exitCode, 0, r.stderr);
    const t = JSON.parse(r.stdout) as Timeline;
    const done = t.operations.filter((s) => s.operation !== 'controller' && s.status !== 'running');
    return done.some((s) => s.operation === 'failover' && s.trigger === 'node-lost') && done.some((s) => s.operation === 'heal') ? t : undefined;
  }, 60_000, 500);
}

test('history --json: the failover (trigger, nodes, epoch, phases, outcome), the heal, the node edge and the controller run', async () => {
  const t = await timeline();
  // The first failover placed the group on n1 when the cluster started; the last one moved it.
  assert.equal(t.operations.find((s) => s.operation === 'failover')?.trigger, 'place');
  const failover = t.operations.filter((s) => s.operation === 'failover').at(-1)!;
  assert.equal(failover.trigger, 'node-lost');
  assert.equal(failover.outcome, 'moved');
  assert.equal(failover.falseAlarm, false);
  assert.equal(failover.from, 'n1');
  assert.equal(failover.to, 'n2');
  assert.ok(typeof failover.epoch === 'number' && failover.epoch >= 2, `epoch ${failover.epoch}`);
  const phases = failover.phases.map((p) => p.name);
  for (const name of ['verify', 'lease wait', 'start', 'total']) assert.ok(phases.includes(name), `phase ${name} in ${phases.join(', ')}`);
  assert.ok(failover.phases.find((p) => p.name === 'verify')!.ms >= 1400, 'n1 was given its verifyTimeout to answer');
  assert.match(failover.summary ?? '', /failover of web \(node-lost\)/);
  const heal = t.operations.find((s) => s.operation === 'heal')!;
  assert.equal(heal.trigger, 'monitor');
  assert.equal(heal.outcome, 'healed');
  assert.equal(heal.node, 'n2');
  assert.deepEqual(heal.phases.map((p) => p.name).filter((n) => n !== 'back-off'), ['restart', 'wait healthy', 'watch', 'total']);
  assert.ok(t.operations.some((s) => s.operation === 'controller'), 'the controller run');
  assert.ok(t.nodeEvents.some((e) => e.node === 'n1' && e.to === 'suspect' && e.reporter === 'n2'), 'n1 suspect, seen by n2');
  assert.equal(t.counts.falseAlarms, 0);
});

test('the documented queries: HaOutcome and HaTrigger find the failover', async () => {
  await timeline();
  const ids = async (query: string) => {
    const out: string[] = [];
    for await (const w of c.client.workflow.list({ query })) out.push(w.workflowId);
    return out;
  };
  await waitFor('HaOutcome and HaTrigger indexed', async () => {
    const moved = await ids(`HaCluster = "${c.name}" AND HaOperation = "failover" AND HaOutcome = "moved"`);
    const lost = await ids(`HaCluster = "${c.name}" AND HaTrigger = "node-lost"`);
    const healed = await ids(`HaCluster = "${c.name}" AND HaOutcome = "healed" AND HaTrigger = "monitor"`);
    return moved.includes(failoverWorkflowId(c.name, 'web')) && lost.includes(failoverWorkflowId(c.name, 'web')) && healed.length === 1 ? true : undefined;
  }, 30_000, 500);
  assert.deepEqual(await ids(`HaCluster = "${c.name}" AND HaOutcome = "false-alarm"`), []);
});

test('history show: the failover step by step, each activity with its summary', async () => {
  await timeline();
  const r = await haoscar('history', 'show', failoverWorkflowId(c.name, 'web'), '--config', configFile);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /^failover web$/m);
  assert.match(r.stdout, /outcome +moved/);
  assert.match(r.stdout, /ping n1 through its task queue/);
  assert.match(r.stdout, /claim web for n2 \(epoch \d+\)/);
  assert.match(r.stdout, /start first on n2 and verify it/);
  const md = await haoscar('history', 'show', failoverWorkflowId(c.name, 'web'), '--config', configFile, '--markdown');
  assert.match(md.stdout, /^## Steps$/m);
});

test('history web --markdown: a report for an incident ticket', async () => {
  await timeline('web');
  const r = await haoscar('history', 'web', '--config', configFile, '--markdown', '--since', '1h');
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`^# HA-OSCAR history: cluster ${c.name}, group web$`, 'm'));
  assert.match(r.stdout, /\| failover web \| node-lost \| n1 → n2, epoch \d+ \| moved \|/);
  assert.match(r.stdout, /\| heal web\/first on n2 \| monitor \| {2}\| healed \|/);
  assert.match(r.stdout, /## Node events/);
});

test('bad arguments and an absent Temporal: clear errors, exit codes', async () => {
  const away = join(dir, 'away.yaml');
  await writeFile(away, `cluster: ${c.name}\ntemporal: { address: "127.0.0.1:1" }\n${BODY}`);
  // Side by side: each start of bin/haoscar.js takes seconds on a loaded machine.
  const [both, group, since, none, down] = await Promise.all([
    haoscar('history', '--config', configFile, '--json', '--markdown'),
    haoscar('history', 'nope', '--config', configFile),
    haoscar('history', '--config', configFile, '--since', 'yesterday'),
    haoscar('history', 'show', 'failover/nope/web', '--config', configFile),
    haoscar('history', '--config', away, '--timeout', '2s'),
  ]);
  assert.equal(both.exitCode, 2);
  assert.match(both.stderr, /--json and --markdown do not go together/);
  assert.equal(group.exitCode, 2);
  assert.match(group.stderr, /unknown group 'nope' \(known: web\)/);
  assert.equal(since.exitCode, 2);
  assert.match(since.stderr, /expected a duration back from now/);
  assert.equal(none.exitCode, 1);
  assert.match(none.stderr, /no workflow failover\/nope\/web/);
  assert.equal(down.exitCode, 4);
  assert.match(down.stderr, /cannot reach Temporal at 127\.0\.0\.1:1/);
});
