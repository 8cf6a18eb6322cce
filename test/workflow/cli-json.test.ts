/**
 * `--json` on the commands that print a result (issue 11 item 2): validate, failover,
 * switchover, resync and heal, run through bin/haoscar.js against the real workflows on a
 * real Temporal dev server (test/support/workflow-cluster.ts). Each prints one JSON document on
 * stdout and nothing else there, with the same exit code as without `--json`. The nodes'
 * `resyncGroup` is scripted (it would run rsync between hosts; the lab tests run the real one):
 * this test is about what the commands print. And `haoscar status` lists the heals running now,
 * with the budget each has used (issue 11 item 2).
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haoscarCli } from '../support/lab.js';
import { closeTemporal, temporalAddress } from '../support/temporal.js';
import { WorkflowCluster } from '../support/workflow-cluster.js';
import { failoverWorkflowId, switchoverWorkflowId, type ResyncResult } from '../../workflows/shared.js';

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
      - { type: command, name: second, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true], healing: { window: 5m, maxRestarts: 4 } }
`;

let c: WorkflowCluster;
let dir: string;
let configFile: string;

const haoscar = haoscarCli;

/** stdout parsed as one JSON document (the assertion names the command and shows stderr). */
function parsed(r: { stdout: string; stderr: string; exitCode?: number }, what: string): Record<string, unknown> {
  try {
    return JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    assert.fail(`${what}: stdout is not one JSON document (exit ${r.exitCode}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
}

before(async () => {
  c = await WorkflowCluster.start('clijson', BODY, {
    extra: (node) => ({
      async resyncGroup(req: { group: string; source: string }): Promise<ResyncResult> {
        return { group: req.group, node: node.name, source: req.source, steps: [], bytes: 4096, durationMs: 3, attempts: 1 };
      },
    }),
  });
  dir = await mkdtemp(join(tmpdir(), 'haoscar-cli-json-'));
  configFile = join(dir, 'haoscar.yaml');
  await writeFile(configFile, `cluster: ${c.name}\ntemporal: { address: "${await temporalAddress()}" }\n${BODY}`);
  await c.settled('n1');
});

after(async () => {
  await c?.close();
  await closeTemporal();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('validate --json: the cluster as loaded, and every problem of a bad file with exit 3', async () => {
  const ok = await haoscar('validate', configFile, '--json');
  assert.equal(ok.exitCode, 0, ok.stderr);
  const v = parsed(ok, 'validate --json');
  assert.equal(v.valid, true);
  assert.equal(v.cluster, c.name);
  assert.deepEqual(v.nodes, ['n1', 'n2']);
  const groups = v.groups as { name: string; nodes: string[]; resources: { type: string; name: string; check: { intervalMs: number } }[] }[];
  assert.equal(groups[0]!.name, 'web');
  assert.deepEqual(groups[0]!.nodes, ['n1', 'n2']);
  assert.equal(groups[0]!.resources[0]!.name, 'first');
  assert.equal(groups[0]!.resources[0]!.check.intervalMs, 100);

  const badFile = join(dir, 'bad.yaml');
  await writeFile(badFile, 'cluster: Bad Name\nnodes: []\n');
  const bad = await haoscar('validate', badFile, '--json');
  assert.equal(bad.exitCode, 3, bad.stderr);
  const b = parsed(bad, 'validate --json (bad file)');
  assert.equal(b.valid, false);
  const problems = b.problems as { path: string; message: string }[];
  assert.ok(problems.some((p) => p.path === 'cluster'), JSON.stringify(problems));
  assert.ok(problems.length >= 2, JSON.stringify(problems));
});

test('failover --json, switchover --json, resync --json: the workflow and its result', async () => {
  const f = await haoscar('failover', 'web', '--to', 'n2', '--config', configFile, '--json');
  assert.equal(f.exitCode, 0, f.stderr);
  const fo = parsed(f, 'failover --json');
  assert.equal(fo.workflowId, failoverWorkflowId(c.name, 'web'));
  const fr = fo.result as { outcome: string; from: string; to: string; epoch: number; phases: Record<string, number> };
  assert.equal(fr.outcome, 'moved');
  assert.equal(fr.from, 'n1');
  assert.equal(fr.to, 'n2');
  assert.ok(fr.epoch >= 2, `epoch ${fr.epoch}`);
  assert.ok(Object.keys(fr.phases).length > 0);

  const s = await haoscar('switchover', 'web', '--to', 'n1', '--config', configFile, '--json');
  assert.equal(s.exitCode, 0, s.stderr);
  const so = parsed(s, 'switchover --json');
  assert.equal(so.workflowId, switchoverWorkflowId(c.name, 'web'));
  const sr = so.result as { outcome: string; from: string; to: string };
  assert.equal(sr.from, 'n2');
  assert.equal(sr.to, 'n1');
  assert.equal((await c.web()).owner, 'n1');

  const r = await haoscar('resync', 'web', '--node', 'n2', '--config', configFile, '--json');
  assert.equal(r.exitCode, 0, r.stderr);
  const rs = parsed(r, 'resync --json');
  const rr = rs.result as { node: string; source: string; group: string; bytes: number };
  assert.equal(rr.bytes, 4096);
  assert.equal(rr.node, 'n2');
  assert.equal(rr.source, 'n1');
  assert.equal(rr.group, 'web');

  const noWait = await haoscar('failover', 'web', '--to', 'n2', '--config', configFile, '--json', '--no-wait');
  assert.equal(noWait.exitCode, 0, noWait.stderr);
  const nw = parsed(noWait, 'failover --json --no-wait');
  assert.equal(nw.workflowId, failoverWorkflowId(c.name, 'web'));
  assert.equal(nw.result, undefined);
  await c.settled('n2');
});

test('heal --json --wait: the heal workflow and its outcome; unknown resource is a usage error', async () => {
  const owner = (await c.web()).owner!;
  const h = await haoscar('heal', 'web', 'first', '--node', owner, '--wait', '--config', configFile, '--json');
  assert.equal(h.exitCode, 0, h.stderr);
  const he = parsed(h, 'heal --json');
  assert.match(String(he.workflowId), /heal/);
  assert.equal(he.node, owner);
  assert.equal((he.outcome as { outcome: string }).outcome, 'healthy');

  const bad = await haoscar('heal', 'web', 'nope', '--config', configFile, '--json');
  assert.equal(bad.exitCode, 2);
  assert.equal(bad.stdout, '');
  assert.match(bad.stderr, /unknown resource 'nope'/);
});

test('status: a running heal is listed with the restarts it used of its budget, in text and --json', async () => {
  const owner = (await c.web()).owner!;
  // A 5-minute healing window: the heal keeps watching (running) long after its restart.
  const h = await haoscar('heal', 'web', 'second', '--node', owner, '--wait', '--config', configFile, '--json');
  assert.equal(h.exitCode, 0, h.stderr);
  const workflowId = String(parsed(h, 'heal --json').workflowId);
  const s = await haoscar('status', '--config', configFile, '--json');
  assert.equal(s.exitCode, 0, s.stderr);
  const heals = parsed(s, 'status --json').heals as { workflowId: string; group: string; resource: string; node: string; phase: string; restartsInWindow: number; maxRestarts: number; windowMs: number }[];
  const heal = heals.find((x) => x.workflowId === workflowId);
  assert.ok(heal, `the heal ${workflowId} in ${JSON.stringify(heals)}`);
  assert.deepEqual({ group: heal.group, resource: heal.resource, node: heal.node, phase: heal.phase, restartsInWindow: heal.restartsInWindow, maxRestarts: heal.maxRestarts, windowMs: heal.windowMs }, { group: 'web', resource: 'second', node: owner, phase: 'watching', restartsInWindow: 1, maxRestarts: 4, windowMs: 300_000 });
  const text = await haoscar('status', '--config', configFile);
  assert.equal(text.exitCode, 0, text.stderr);
  assert.match(text.stdout, new RegExp(`web/second on ${owner}: watching, 1 of 4 restart\\(s\\) in the 5m window`));
});
