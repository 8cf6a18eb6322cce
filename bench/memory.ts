/**
 * Memory benchmark (issue 10, "agent/worker/server RSS idle and after 20 heals"): a one-node
 * cluster started through the `haoscar` command as users start it — `haoscar server` (the
 * embedded Temporal, a `temporal` child process), `haoscar worker`, `haoscar agent` supervising a
 * `process` service (test/fixtures/http-service.mjs, http check) — then the RSS of each process:
 * idle, once the group runs and is healthy; and again after N heals, each one a real SIGKILL of
 * the service followed by a wait until the heal has completed (the new process answers, the heal
 * workflow has closed, the agent's monitor has seen the service healthy again). Each figure is
 * the median of `--samples` readings of VmRSS, one a second; the peak (VmHWM) is printed too.
 *
 * Usage: tsx bench/memory.ts [--heals N (default 20)] [--samples N (default 5)] [--agent-workflows] [--installed]
 * `--installed`: the package as users install it (npm pack + npm install -g into a cached prefix,
 * test/support/installed-package.ts; compiled code, no tsx); default: this checkout's bin/haoscar.js
 * (TypeScript run through tsx, heavier). `--agent-workflows`: the agent runs the workflow worker
 * too (`agent.workflows: true`); default false, as in the two-node procedure. Not run by CI.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type ResultPromise } from 'execa';
import { Client, Connection } from '@temporalio/client';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';
import { silentLogger } from '../src/log.js';
import { healWorkflowId } from '../workflows/shared.js';
import { parseGuardState } from '../src/guard/protocol.js';
import { ROOT, freePort, httpServiceYaml, probe, waitFor } from '../test/support/lab.js';
import { installPackage } from '../test/support/installed-package.js';
import { uniqueName } from '../test/support/temporal.js';
import { median } from './stats.js';

const { values: opts } = parseArgs({
  options: {
    heals: { type: 'string', default: '20' },
    samples: { type: 'string', default: '5' },
    'agent-workflows': { type: 'boolean', default: false },
    installed: { type: 'boolean', default: false },
  },
  strict: true,
});
const HEALS = Number(opts.heals);
const SAMPLES = Number(opts.samples);
if (!Number.isInteger(HEALS) || HEALS < 1) throw new Error(`--heals must be an integer >= 1 (got '${opts.heals}')`);
if (!Number.isInteger(SAMPLES) || SAMPLES < 1) throw new Error(`--samples must be an integer >= 1 (got '${opts.samples}')`);
const GROUP = 'web';
const RESOURCE = 'httpd';
/** Generous: a 2-core machine shared with other work stretches every step. */
const WAIT_MS = 120_000;

// ---- clean-up: everything started registers its undo; run newest first, once, on Ctrl-C too.
const undo: Array<() => Promise<unknown>> = [];
let cleaning: Promise<void> | undefined;
function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    while (undo.length > 0) await undo.pop()!().catch((err: unknown) => process.stderr.write(`clean-up: ${String(err)}\n`));
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: cleaning up\n`);
    void cleanUp().finally(() => process.exit(130));
  });
}

// ---- /proc
function status(pid: number): { rssKb: number; hwmKb: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? Number.NaN);
    return { rssKb: kb('VmRSS'), hwmKb: kb('VmHWM') };
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

/** Every process whose command line contains all of `parts` (the lab's own directory is among them). */
function findPids(...parts: string[]): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => pid !== process.pid && parts.every((p) => cmdline(pid).includes(p)));
}

interface Reading {
  /** Median VmRSS over the samples, MB. */
  rssMb: number;
  /** VmHWM (peak RSS since the process started) at the last sample, MB. */
  peakMb: number;
}

/** `SAMPLES` readings of each process, one a second; median RSS and the last peak. */
async function measure(pids: Record<string, number | undefined>): Promise<Record<string, Reading | undefined>> {
  const rss: Record<string, number[]> = {};
  const peak: Record<string, number> = {};
  for (let i = 0; i < SAMPLES; i++) {
    if (i > 0) await sleep(1000);
    for (const [name, pid] of Object.entries(pids)) {
      const s = pid === undefined ? undefined : status(pid);
      if (!s) continue;
      (rss[name] ??= []).push(s.rssKb / 1024);
      peak[name] = s.hwmKb / 1024;
    }
  }
  return Object.fromEntries(Object.keys(pids).map((name) => [name, rss[name] ? { rssMb: median(rss[name]), peakMb: peak[name]! } : undefined]));
}

function loadLine(): string {
  return loadavg().map((l) => l.toFixed(2)).join(' ');
}

/** The busiest processes of the machine besides this benchmark's, for the report. */
async function busiest(): Promise<string> {
  const ps = await execa('ps', ['-eo', 'pcpu,rss,args', '--sort=-pcpu'], { reject: false });
  return ps.stdout.split('\n').slice(1, 9).map((l) => `    ${l.trim().slice(0, 150)}`).join('\n');
}

// ---- the cluster
const dir = await mkdtemp(join(tmpdir(), 'haoscar-bench-memory-'));
let keepDir = false;
undo.push(() => (keepDir ? Promise.resolve(process.stderr.write(`memory: logs kept in ${dir}\n`)) : rm(dir, { recursive: true, force: true })));
const daemons: ResultPromise[] = [];
undo.push(async () => {
  for (const d of daemons) d.kill('SIGTERM');
  await Promise.all(daemons.map(async (d) => {
    const t = setTimeout(() => d.kill('SIGKILL'), 15_000);
    await d;
    clearTimeout(t);
  }));
});

try {
  let haoscar = join(ROOT, 'bin/haoscar.js');
  if (opts.installed) haoscar = (await installPackage((m) => process.stderr.write(`memory: ${m}\n`))).haoscar;
  const cli = await ensureTemporalCli({ logger: silentLogger, onProgress: (m) => process.stderr.write(`memory: ${m}\n`) });
  const [port, uiPort, webPort] = [await freePort(), await freePort(), await freePort()];
  const cluster = uniqueName('mem');
  const config = join(dir, 'haoscar.yaml');
  // healing: never the limit (maxRestarts), and a heal closes 1 s after its restart (window), so
  // that every kill starts a heal of its own and the bench can wait for it to complete. A long
  // lease: this measures memory, and on a loaded 2-core machine the product's 600 ms was lost
  // (the group stopped and placed again) while heals ran.

  await writeFile(config, `cluster: ${cluster}
temporal: { address: "127.0.0.1:${port}", server: { ip: 127.0.0.1, port: ${port}, uiPort: ${uiPort}, dataDir: ${join(dir, 'temporal')} } }
agent: { stateDir: ${join(dir, 'state')}, workflows: ${opts['agent-workflows']} }
lease: { ttl: 5s }
nodes: [{ name: n1, addresses: [127.0.0.1] }]
groups:
  - name: ${GROUP}
    resources:
      - ${httpServiceYaml(RESOURCE, webPort, { check: 'interval: 500ms, timeout: 300ms, rise: 1, fall: 1', healing: 'maxRestarts: 1000, window: 1s, startTimeout: 10s' })}
`);
  // Run as a program, as users run `haoscar`: its `#!` line carries node's flags.
  const env = { ...process.env, TEMPORAL_CLI: cli } as Record<string, string>;
  const start = (args: string[], log: string): ResultPromise => {
    const child = execa(haoscar, [...args, '--config', config], { cwd: dir, env, reject: false, stdin: 'ignore', stdout: { file: join(dir, log), append: true }, stderr: { file: join(dir, log), append: true } });
    daemons.push(child);
    return child;
  };
  const logOf = (log: string) => readFile(join(dir, log), 'utf8').catch(() => '');
  const failWith = (log: string) => async (err: Error) => Promise.reject(new Error(`${err.message}\n${log}:\n${(await logOf(log)).split('\n').slice(-30).join('\n')}`));

  process.stderr.write(`memory: ${opts.installed ? 'the installed package' : 'this checkout\'s bin/haoscar.js'} (${haoscar}); lab ${dir}; load ${loadLine()}\n`);
  const server = start(['server'], 'server.log');
  await waitFor('the embedded Temporal server ready', async () => /Temporal frontend: /.test(await logOf('server.log')), WAIT_MS, 200).catch(failWith('server.log'));
  const worker = start(['worker'], 'worker.log');
  await waitFor('the worker running', async () => /workflow worker running/.test(await logOf('worker.log')), WAIT_MS, 200).catch(failWith('worker.log'));
  const agent = start(['agent', '--node', 'n1'], 'agent.log');
  const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
  undo.push(() => connection.close());
  const client = new Client({ connection });

  const healthyEdges = async () => (await logOf('agent.log')).split('\n').filter((l) => l.includes(`"msg":"resource ${GROUP}/${RESOURCE} is healthy"`)).length;
  let pid = await waitFor('the service answers', () => probe(webPort), WAIT_MS, 100).catch(failWith('agent.log'));
  await waitFor('the agent sees the service healthy', async () => (await healthyEdges()) >= 1, WAIT_MS, 100).catch(failWith('agent.log'));

  const temporalPid = () => findPids(cli, 'start-dev', String(port))[0];
  // The lease guard (bin/haoscar-guard, a bash script the agent starts) writes its pid in its state file.
  const guardPid = () => {
    try {
      return parseGuardState(readFileSync(join(dir, 'state', 'guard', 'n1', 'state'), 'utf8'))?.pid;
    } catch {
      return undefined;
    }
  };
  const pids = () => ({
    agent: agent.pid,
    guard: guardPid(),
    worker: worker.pid,
    'server (node)': server.pid,
    'server (temporal)': temporalPid(),
  });
  // Idle: started, the group running and healthy; let start-up garbage settle first.
  await sleep(5000);
  const machineIdle = { load: loadLine(), busy: await busiest() };
  const idle = await measure(pids());

  const handle = client.workflow.getHandle(healWorkflowId(cluster, GROUP, RESOURCE));
  const runs = new Set<string>();
  const healStarted = Date.now();
  for (let i = 1; i <= HEALS; i++) {
    const edgesBefore = await healthyEdges();
    const killed = pid;
    process.kill(killed, 'SIGKILL');
    pid = await waitFor(`heal ${i}: a new service process answers`, async () => {
      const p = await probe(webPort);
      return p !== undefined && p !== killed ? p : undefined;
    }, WAIT_MS, 20).catch(failWith('agent.log'));
    await waitFor(`heal ${i}: its workflow has completed`, async () => {
      const d = await handle.describe().catch(() => undefined);
      if (!d || runs.has(d.runId) || d.status.name === 'RUNNING') return undefined;
      if (d.status.name !== 'COMPLETED') throw new Error(`heal ${i}: the heal workflow ended ${d.status.name}`);
      runs.add(d.runId);
      return true;
    }, WAIT_MS, 100).catch(failWith('worker.log'));
    await waitFor(`heal ${i}: the agent sees the restarted service healthy`, async () => (await healthyEdges()) > edgesBefore, WAIT_MS, 50).catch(failWith('agent.log'));
    process.stderr.write(`  heal ${i}/${HEALS} done (${Math.round((Date.now() - healStarted) / 1000)} s)\n`);
  }
  await sleep(5000);
  const machineAfter = { load: loadLine(), busy: await busiest() };
  const after = await measure(pids());

  const fmt = (r: Reading | undefined) => (r ? `${r.rssMb.toFixed(1).padStart(7)} (${r.peakMb.toFixed(0).padStart(4)})` : '      -       ');
  process.stdout.write(`\nRSS in MB, median of ${SAMPLES} samples 1 s apart (peak VmHWM in parentheses); ${opts.installed ? 'installed package' : 'checkout, bin/haoscar.js under tsx'}; agent.workflows: ${opts['agent-workflows']}\n`);
  process.stdout.write(`process               idle            after ${HEALS} heals   change\n`);
  for (const name of Object.keys(idle)) {
    const a = idle[name];
    const b = after[name];
    if (name === 'guard' && !a && !b) {
      process.stdout.write(`${name.padEnd(20)} (none: the agent of a one-node cluster starts no lease guard)\n`);
      continue;
    }
    const change = a && b ? `${b.rssMb - a.rssMb >= 0 ? '+' : ''}${(b.rssMb - a.rssMb).toFixed(1)}` : '-';
    process.stdout.write(`${name.padEnd(20)} ${fmt(a)}    ${fmt(b)}     ${change}\n`);
  }
  process.stdout.write(`${HEALS} heals (SIGKILL of the service, each waited for until its heal workflow completed and the agent saw the service healthy) in ${Math.round((Date.now() - healStarted) / 1000)} s\n`);
  process.stdout.write(`load average (1, 5, 15 min) while idle: ${machineIdle.load}; after the heals: ${machineAfter.load}\nbusiest processes while idle:\n${machineIdle.busy}\n`);
  await cleanUp();
  process.exit(0);
} catch (err) {
  process.stderr.write(`memory: failed: ${err instanceof Error ? err.message : String(err)}\n`);
  keepDir = true;
  await cleanUp();
  process.exit(1);
}
