/**
 * Metrics, scraped by a real Prometheus (Debian's `prometheus` package) from a lab cluster: two
 * agents (`agent.metrics.listen` on every address of their namespaces) and the workflow worker
 * (`--metrics-listen` on the root side). A heal (the service killed) and a failover (the owner's
 * host killed) happen; then every query of every panel of the shipped Grafana dashboard
 * (packaging/grafana/) is run against Prometheus's HTTP API over the test's time range, as
 * Grafana would run it, and must return data; and a few values must be the cluster's truth:
 * the owner and epoch after the failover, the heal and the failover counted by outcome.
 *
 * Grafana itself cannot run here: its variables are substituted as Grafana does ($cluster, and
 * $__rate_interval as four scrape intervals), and the cluster variable's label_values() is
 * asked of Prometheus's label API.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { setUp, expect, agentLogs, LONG_LEASE } from './failover-setup.js';
import { HA_KEYS } from '../../workflows/search-attributes.js';
import { ROOT } from './cluster.js';
import { freeLoopbackPort } from '../../src/metrics/server.js';
import { waitFor } from '../support/wait.js';

const PROMETHEUS = '/usr/bin/prometheus';
const AGENT_PORT = 9464;
const SCRAPE_SECONDS = 1;

interface PromSeries { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }

async function promApi(base: string, path: string, params: Record<string, string>): Promise<PromSeries[]> {
  const res = await fetch(`${base}${path}?${new URLSearchParams(params)}`);
  const body = await res.json() as { status: string; data?: { result: PromSeries[] } | string[]; error?: string };
  if (body.status !== 'success') throw new Error(`Prometheus refused ${params.query ?? path}: ${body.error}`);
  return (body.data as { result: PromSeries[] }).result ?? body.data;
}

test('a real Prometheus scrapes agents and worker; every dashboard query returns data after a heal and a failover', { timeout: 240_000 }, async (t) => {
  const workerPort = await freeLoopbackPort();
  const { lab, cluster } = await setUp(t, [], { fileSet: 'batch: 100ms, verifyEvery: 1h' }, {
    // Scrapes beside everything else on a small machine: leases that survive a slow confirmation.
    ...LONG_LEASE,
    // A heal ends (healed) once its last restart has left the window: seconds, not the default 10 minutes.
    healing: '{ window: 3s }',
    agent: `metrics: { listen: "0.0.0.0:${AGENT_PORT}" }`,
    workerArgs: ['--metrics-listen', `127.0.0.1:${workerPort}`],
  });
  const began = Math.floor(Date.now() / 1000) - 5;
  // Progress on stderr: on a loaded machine, where the time went when the file's limit is hit.
  const step = (what: string) => process.stderr.write(`metrics-prometheus: ${Math.round(Date.now() / 1000 - began)} s: ${what}\n`);
  step('cluster running');

  // Prometheus on the root side: it reaches the hosts over the lab's bridge, the worker on the loopback.
  const dir = join(lab.dir, 'prometheus');
  await mkdir(join(dir, 'data'), { recursive: true });
  const targets = [...lab.hosts.map((h) => `${lab.address(h)}:${AGENT_PORT}`), `127.0.0.1:${workerPort}`];
  await writeFile(join(dir, 'prometheus.yml'), `global: { scrape_interval: ${SCRAPE_SECONDS}s, scrape_timeout: ${SCRAPE_SECONDS}s }
scrape_configs:
  - job_name: haoscar
    static_configs: [{ targets: [${targets.map((x) => `"${x}"`).join(', ')}] }]
`);
  const promPort = await freeLoopbackPort();
  const base = `http://127.0.0.1:${promPort}`;
  const prometheus = execa(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], {
    reject: false, stdin: 'ignore', all: true, cwd: dir,
  });
  t.after(async () => {
    prometheus.kill('SIGTERM');
    await prometheus;
  });
  const query = (q: string) => promApi(base, '/api/v1/query', { query: q });
  const value = async (q: string): Promise<number | undefined> => {
    const r = await query(q).catch(() => []);
    return r[0]?.value ? Number(r[0].value[1]) : undefined;
  };
  await waitFor('Prometheus scrapes the two agents and the worker', async () => {
    const up = await query('up{job="haoscar"} == 1').catch(() => []);
    return up.length === 3 ? true : undefined;
  }, 60_000, 250);
  step('Prometheus scrapes the three targets');
  const c = `cluster="${cluster.cluster}"`;
  const before = await cluster.group();
  assert.equal(before?.owner, 'n1');
  await expect(cluster, 'Prometheus has n1 holding the group under its epoch', async () =>
    (await value(`haoscar_group_epoch{${c},node="n1",group="web"}`)) === before!.epoch ? true : undefined);

  step('the epoch of n1 seen');
  // File sync: a change on the owner, pulled by the standby (its lag is measured).
  await writeFile(join(cluster.hostData('n1'), 'index.html'), 'metrics\n');
  await expect(cluster, 'n2 pulled the change, and Prometheus has its sync lag', async () =>
    (await value(`haoscar_sync_lag_seconds{${c},node="n2"}`)) !== undefined ? true : undefined);

  step('sync lag seen');
  // A heal: the service killed on n1, restarted there.
  const pids: number[] = [];
  for (const pid of await lab.pids('n1')) {
    if ((await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).includes('pid-service.mjs')) pids.push(pid);
  }
  assert.equal(pids.length, 1, 'the service runs on n1');
  process.kill(pids[0]!, 'SIGKILL');
  const heals = await expect(cluster, 'a heal finished, as Temporal records it', async () => {
    const out: string[] = [];
    for await (const w of cluster.client.workflow.list({ query: `HaCluster = "${cluster.cluster}" AND HaOperation = "heal" AND ExecutionStatus != "Running"` })) out.push(w.typedSearchAttributes.get(HA_KEYS.HaOutcome) ?? 'none');
    return out.length > 0 ? out : undefined;
  }, 60_000);
  t.diagnostic(`heal outcomes: ${heals.join(', ')}`);
  // The worker's count is Temporal's: every outcome, as many times.
  for (const outcome of new Set(heals)) {
    const n = heals.filter((o) => o === outcome).length;
    await expect(cluster, `Prometheus counts ${n} heal(s) ${outcome}, from the worker`, async () =>
      (await value(`sum(max by (group, outcome, status) (haoscar_operations{${c},operation="heal",outcome="${outcome}"}))`)) === n ? true : undefined, 30_000);
  }

  step('heal counted');
  // A failover: n1's host dies.
  await lab.killHost('n1');
  const after = await cluster.waitForGroup((g) => g.owner === 'n2' && g.state === 'running', 'n2 owns the group', 60_000);
  assert.equal(after.epoch, before!.epoch + 1);
  await expect(cluster, 'Prometheus has the controller naming n2 the owner under the new epoch', async () =>
    (await value(`haoscar_controller_group_owner{${c},group="web",owner="n2"}`)) === 1
      && (await value(`haoscar_controller_group_epoch{${c},group="web"}`)) === after.epoch ? true : undefined, 60_000);
  await expect(cluster, 'n2 holds the group running under the new epoch, as its own endpoint says', async () =>
    (await value(`haoscar_group_held{${c},node="n2",group="web",state="running"}`)) === 1
      && (await value(`haoscar_group_epoch{${c},node="n2",group="web"}`)) === after.epoch ? true : undefined);
  await expect(cluster, 'the failover counted as moved', async () =>
    ((await value(`max(haoscar_operations{${c},operation="failover",outcome="moved"})`)) ?? 0) >= 1 ? true : undefined, 60_000);
  await expect(cluster, "n2's heartbeats no longer hear n1", async () =>
    (await value(`haoscar_heartbeat_peer_up{${c},node="n2",peer="n1"}`)) === 0 ? true : undefined);
  // n2 asks lease questions once it holds the group: waited for (the CI preview asked once, right
  // after the failover, before n2's first confirmation had been scraped).
  await expect(cluster, 'n2 timed its lease confirmations', async () =>
    (await value(`haoscar_lease_confirmation_seconds_count{${c},node="n2"} > 0`)) !== undefined ? true : undefined, 30_000);
  step('failover seen');
  // A few more scrapes, so that rate() windows after the failover hold samples.
  await new Promise((r) => setTimeout(r, 5 * SCRAPE_SECONDS * 1000));

  step('running the queries of the dashboard');
  // Every panel's every query, as Grafana would run it over the test's time range.
  const dashboard = JSON.parse(await readFile(join(ROOT, 'packaging/grafana/haoscar-dashboard.json'), 'utf8')) as {
    panels: { title: string; targets: { expr: string }[] }[];
    templating: { list: { name: string; definition?: string }[] };
  };
  const end = Math.ceil(Date.now() / 1000);
  const empty: string[] = [];
  let queries = 0;
  for (const panel of dashboard.panels) {
    for (const target of panel.targets) {
      const expr = target.expr.replaceAll('$cluster', cluster.cluster).replaceAll('$__rate_interval', `${4 * SCRAPE_SECONDS}s`);
      const result = await promApi(base, '/api/v1/query_range', { query: expr, start: String(began), end: String(end), step: '1' });
      queries++;
      if (!result.some((s) => (s.values ?? []).length > 0)) empty.push(`${panel.title}: ${expr}`);
    }
  }
  t.diagnostic(`${dashboard.panels.length} panels, ${queries} queries run against Prometheus`);
  assert.deepEqual(empty, [], `dashboard queries without data:\n${empty.join('\n')}\n${await agentLogs(cluster, 10)}`);
  // The cluster variable: label_values(haoscar_agent_info, cluster).
  const variable = dashboard.templating.list.find((v) => v.name === 'cluster')!;
  const m = /^label_values\((\w+), (\w+)\)$/.exec(variable.definition ?? '');
  assert.ok(m, `the cluster variable is label_values(metric, label): ${variable.definition}`);
  const values = await (await fetch(`${base}/api/v1/label/${m[2]}/values?${new URLSearchParams({ 'match[]': m[1]! })}`)).json() as { data: string[] };
  assert.ok(values.data.includes(cluster.cluster), `the cluster variable offers ${cluster.cluster}: ${values.data.join(', ')}`);
});
