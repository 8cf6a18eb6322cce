/**
 * Scale benchmark (issue 14 item 6, "cost growth"): what a cluster of N nodes and G groups costs,
 * and how long failovers take, as N and G grow. For each size NxG it reports:
 *
 * 1. heartbeat packets per second and CPU per node: N REAL heartbeats (src/heartbeat) in this
 *    process, one per node on its own loopback address (127.0.1.i), the product's timing
 *    (150 ms / 600 ms), measured over a window; CPU per node is this process's CPU over N.
 * 2. with the REAL Temporal dev server, the REAL workflow worker (workers/workflow-worker.ts, the
 *    factory `haoscar worker` uses, in a process of its own: bench/scale-worker.ts) running the real
 *    controller and failover workflows and their activities, and N SIMULATED nodes in this
 *    process: each serves its node task queue with the real node activities (activities/service.ts,
 *    activities/ownership.ts over a real GroupRuntime) whose resources are in-memory services
 *    (test/support/scripted-service.ts: start, stop and check succeed at once), and sends the
 *    controller what an agent sends, through the real ControllerLink (signed reports: "up" at
 *    start, a peer "suspect" from every survivor one deadtime after a death) and confirms its
 *    lease every ttl/3 (the authenticated ownership query) while it holds a group. The simulated
 *    nodes do not enforce their lease (a late confirmation is counted, nothing is stopped).
 *    - the controller's workflow task latency (scheduled -> completed, from its histories);
 *    - the lease confirmation (query) latency while idle;
 *    - one group's failover: its owner n1 holds only g0 and dies (its worker stops); outage =
 *      death -> g0 running on n2 (polled every 25 ms), and the history events it cost (controller
 *      and failover workflow); then n1 comes back and g0 is switched back to it. `--runs` times;
 *    - a correlated failure: half the nodes die at once, every group of theirs fails over through
 *      the one controller; time until each runs again, the events written, continue-as-new count.
 *
 * Usage: tsx bench/scale.ts [--sizes 2x1,8x16,32x64,64x256] [--runs 3] [--lease 2s] [--hb-seconds 5]
 * [--steady-seconds 8] [--skip-heartbeat]. Starts a private dev server (or uses $HAOSCAR_TEST_TEMPORAL).
 * Needs no root. Not run by CI.
 */
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createInterface } from 'node:readline';
import type { Client } from '@temporalio/client';
import { Worker, bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { parseConfig } from '../src/config/load.js';
import type { Config, NodeSpec } from '../src/config/types.js';
import { parseDuration } from '../src/config/duration.js';
import { Heartbeat } from '../src/heartbeat/heartbeat.js';
import { ServiceRegistry } from '../src/agent/services.js';
import { GroupRuntime } from '../src/agent/groups.js';
import type { ControllerLink } from '../src/agent/controller-link.js';
import { ResourceMonitor } from '../src/monitor/monitor.js';
import { createServiceActivities } from '../activities/service.js';
import { createOwnershipActivities } from '../activities/ownership.js';
import { createExec } from '../src/exec.js';
import { silentLogger } from '../src/log.js';
import { workflowsPath } from '../workers/workflow-bundle.js';
import { controllerWorkflowId, failoverWorkflowId, nodeTaskQueue, clusterTaskQueue, switchoverWorkflowId, ownershipQuery, type CandidateSyncState, type Ownership } from '../workflows/shared.js';
import { haTags } from '../workflows/search-attributes.js';
import { ScriptedService } from '../test/support/scripted-service.js';
import { TEST_KEY, TEST_SECRET, testLink } from '../test/support/cluster-key.js';
import { closeTemporal, temporalAddress, testClient, testWorkerConnection, uniqueName } from '../test/support/temporal.js';
import { signedSyncState } from '../test/support/workflow-cluster.js';
import { median } from './stats.js';

const { values: opts } = parseArgs({
  options: {
    sizes: { type: 'string', default: '2x1,8x16,32x64,64x256' },
    runs: { type: 'string', default: '3' },
    lease: { type: 'string', default: '2s' },
    'hb-seconds': { type: 'string', default: '5' },
    'steady-seconds': { type: 'string', default: '8' },
    'skip-heartbeat': { type: 'boolean', default: false },
  },
  strict: true,
});
const SIZES = opts.sizes!.split(',').map((s) => {
  const m = /^(\d+)x(\d+)$/.exec(s.trim());
  if (!m || Number(m[1]) < 2 || Number(m[2]) < 1) throw new Error(`--sizes: '${s}' is not NODESxGROUPS with at least 2 nodes and 1 group (e.g. 8x16)`);
  return { nodes: Number(m[1]), groups: Number(m[2]) };
});
const RUNS = Number(opts.runs);
if (!Number.isInteger(RUNS) || RUNS < 1) throw new Error(`--runs must be an integer >= 1 (got '${opts.runs}')`);
const LEASE_MS = parseDuration(opts.lease!) ?? NaN;
if (!(LEASE_MS >= 150)) throw new Error(`--lease must be a duration of at least 150ms (got '${opts.lease}')`);
const HB_SECONDS = Number(opts['hb-seconds']);
const STEADY_SECONDS = Number(opts['steady-seconds']);
/** The product's heartbeat timing: a death is reported by each survivor one deadtime after it. */
const HB_INTERVAL_MS = 150;
const DEADTIME_MS = 600;
/** How long the correlated failure may take before the groups not failed over are counted as stuck. */
const STORM_LIMIT_MS = 180_000;

const out = (line = '') => process.stdout.write(`${line}\n`);
const p90 = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil(s.length * 0.9) - 1)]! : NaN;
};
const loadavg = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
const nodeName = (i: number) => `n${i}`;
const nodeAddress = (i: number) => `127.0.1.${i}`;

// ------------------------------------------------------------------------------- heartbeats
interface HeartbeatFigures { sentPerS: number; receivedPerS: number; cpuPerNodePct: number; processCpuPct: number; suspects: number }

async function heartbeatCost(n: number, seconds: number): Promise<HeartbeatFigures> {
  const nodes: NodeSpec[] = Array.from({ length: n }, (_, k) => ({ name: nodeName(k + 1), addresses: [nodeAddress(k + 1)], priority: 0 }));
  const port = 20_000 + Math.floor(Math.random() * 12_000);
  const stateDir = mkdtempSync(join(tmpdir(), 'haoscar-scale-hb-'));
  const suspects: string[] = [];
  const beats: Heartbeat[] = [];
  try {
    for (const node of nodes) {
      beats.push(await Heartbeat.start({
        cluster: 'scale', node: node.name, nodes,
        settings: { port, intervalMs: HB_INTERVAL_MS, deadtimeMs: DEADTIME_MS, secretFile: '(given)', acceptSecretFiles: [] },
        secret: Buffer.from(TEST_SECRET), logger: silentLogger,
        onEdge: (e) => void (e.to === 'suspect' && suspects.push(`${e.node}`)),
        configDigest: '0123456789abcdef0123456789abcdef', stateDir,
        view: { groups: {} },
      }));
    }
    await sleep(2000);
    const before = beats.map((b) => b.stats());
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    suspects.length = 0;
    await sleep(seconds * 1000);
    const used = process.cpuUsage(cpu);
    const tookS = (performance.now() - t0) / 1000;
    const after = beats.map((b) => b.stats());
    const sent = after.map((a, k) => (a.sent - before[k]!.sent) / tookS);
    const received = after.map((a, k) => (a.received - before[k]!.received) / tookS);
    const processCpuPct = ((used.user + used.system) / 1e6 / tookS) * 100;
    return { sentPerS: median(sent), receivedPerS: median(received), cpuPerNodePct: processCpuPct / n, processCpuPct, suspects: suspects.length };
  } finally {
    for (const b of beats) await b.close();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------- the cluster
/**
 * The configuration: n1 may run only g0 (with n2), so that its death fails over one group; the
 * other groups are spread over n2..nN, each with a node of the other half as its second.
 */
function clusterYaml(name: string, address: string, stateDir: string, n: number, g: number): string {
  const lines = [
    `cluster: ${name}`,
    `temporal: { address: '${address}' }`,
    `agent: { stateDir: '${stateDir}' }`,
    `heartbeat: { secretFile: '${join(stateDir, 'authkey')}' }`,
    `lease: { ttl: ${LEASE_MS}ms, margin: 150ms }`,
    'failover: { verifyTimeout: 500ms }',
    'defaults:',
    '  check: { interval: 1s, timeout: 500ms, rise: 1, fall: 1 }',
    'nodes:',
    ...Array.from({ length: n }, (_, k) => `  - { name: ${nodeName(k + 1)}, addresses: [${nodeAddress(k + 1)}] }`),
    'groups:',
  ];
  const others = Math.max(1, n - 1);
  for (let i = 0; i < g; i++) {
    let nodes: string[];
    if (i === 0) nodes = ['n1', 'n2'];
    else if (n === 2) nodes = ['n2', 'n1'];
    else {
      // The second node in the other half of the cluster: when half the nodes die, each group of theirs has a taker.
      const first = 2 + ((i - 1) % others);
      const second = ((first - 1 + Math.floor(n / 2)) % n) + 1;
      nodes = [nodeName(first), nodeName(second === first ? (first % n) + 1 : second)];
    }
    lines.push(`  - name: g${i}`, `    nodes: [${nodes.join(', ')}]`, '    resources:', '      - { type: command, name: r, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }');
  }
  return `${lines.join('\n')}\n`;
}

interface SimNode {
  name: string;
  groups: GroupRuntime;
  registry: ServiceRegistry;
  link: ControllerLink;
  worker?: Worker;
  running?: Promise<void>;
  leaseTimer?: NodeJS.Timeout;
  inFlight: boolean;
  alive: boolean;
}

class SimCluster {
  readonly nodes = new Map<string, SimNode>();
  /** Lease confirmation round trips (ms), answered ones; and the failed or late ones. */
  readonly confirmations: number[] = [];
  confirmationFailures = 0;
  confirmationsLate = 0;
  private connection!: Awaited<ReturnType<typeof testWorkerConnection>>;

  constructor(readonly name: string, readonly config: Config, readonly client: Client) {}

  async start(): Promise<void> {
    this.connection = await testWorkerConnection();
    for (const spec of this.config.nodes) {
      const registry = new ServiceRegistry();
      const monitors = new Map<unknown, ResourceMonitor>();
      for (const group of this.config.groups) {
        if (!group.nodes.includes(spec.name)) continue;
        for (const r of group.resources) {
          const s = new ScriptedService();
          s.running = false;
          const managed = { group, spec: r, driver: s.driver, check: s.check };
          registry.add(managed);
          monitors.set(managed, new ResourceMonitor({ name: r.name, check: s.check, timing: r.check, logger: silentLogger, onEdge: () => undefined }));
        }
      }
      const groups = new GroupRuntime({ node: spec.name, config: this.config, services: registry, logger: silentLogger, monitorOf: (s) => monitors.get(s)!, claimWaitMs: 1000 });
      this.nodes.set(spec.name, { name: spec.name, groups, registry, link: testLink(this.client, this.name), inFlight: false, alive: false });
    }
    await Promise.all([...this.nodes.values()].map((n) => this.bringUp(n)));
  }

  /** The node's agent starts: its queue is served, it reports itself up, and confirms its leases. */
  async bringUp(node: SimNode): Promise<void> {
    const ownership = createOwnershipActivities({ node: node.name, config: this.config, groups: node.groups, services: node.registry, exec: createExec(silentLogger), logger: silentLogger, key: TEST_KEY });
    node.worker = await Worker.create({
      connection: this.connection,
      taskQueue: nodeTaskQueue(this.name, node.name),
      activities: {
        ...createServiceActivities({ node: node.name, services: node.registry, logger: silentLogger, recoveryPollMs: 20, whileHolding: (g, fn) => node.groups.whileHolding(g, fn) }),
        ...ownership,
        // No file sets: an empty sync state, signed as an agent signs it.
        syncState: async (req: { group: string; nonce?: string }): Promise<CandidateSyncState> => signedSyncState(this.name, node.name, { node: node.name, group: req.group, sets: [] }, req.nonce),
      },
      maxConcurrentActivityTaskPolls: 2,
      shutdownGraceTime: '1s',
    });
    node.running = node.worker.run();
    node.alive = true;
    node.leaseTimer = setInterval(() => void this.confirm(node), Math.floor(LEASE_MS / 3));
    void node.link.report({ node: node.name, to: 'up', reporter: node.name, at: Date.now(), detail: 'agent started' });
  }

  private async confirm(node: SimNode): Promise<void> {
    if (node.inFlight || !node.alive || node.groups.heldGroups().length === 0) return;
    node.inFlight = true;
    const sent = performance.now();
    try {
      await node.link.ownership(LEASE_MS);
      const took = performance.now() - sent;
      this.confirmations.push(took);
      if (took > LEASE_MS / 2) this.confirmationsLate++;
    } catch {
      this.confirmationFailures++;
    } finally {
      node.inFlight = false;
    }
  }

  /** The node dies: its queue is not served any more, nothing is confirmed; its groups are dropped (a reset). */
  async kill(name: string): Promise<void> {
    const node = this.nodes.get(name)!;
    node.alive = false;
    clearInterval(node.leaseTimer);
    if (node.worker?.getState() === 'RUNNING') node.worker.shutdown();
    await node.running;
  }

  /** Every survivor's heartbeat misses the dead nodes for a deadtime, then its agent reports each (in its own order). */
  reportDeaths(dead: string[]): void {
    for (const survivor of this.nodes.values()) {
      if (!survivor.alive) continue;
      const order = [...dead].sort(() => Math.random() - 0.5);
      setTimeout(() => {
        for (const d of order) void survivor.link.report({ node: d, to: 'suspect', reporter: survivor.name, at: Date.now(), detail: `every link silent for ${DEADTIME_MS}ms` });
      }, DEADTIME_MS + Math.random() * HB_INTERVAL_MS);
    }
  }

  /** A dead node comes back holding nothing. */
  async revive(name: string): Promise<void> {
    const node = this.nodes.get(name)!;
    for (const [g] of node.groups.heldGroups()) await node.groups.stopGroup(g, 'bench: the node was reset').catch(() => undefined);
    await this.bringUp(node);
  }

  ownership(): Promise<Ownership> {
    return this.client.workflow.getHandle(controllerWorkflowId(this.name)).query(ownershipQuery);
  }

  async close(): Promise<void> {
    for (const n of this.nodes.values()) {
      clearInterval(n.leaseTimer);
      n.alive = false;
      n.link.close();
      if (n.worker?.getState() === 'RUNNING') n.worker.shutdown();
    }
    await Promise.all([...this.nodes.values()].map((n) => n.running));
    for (const n of this.nodes.values()) await n.groups.close();
  }
}

// ------------------------------------------------------------------------------- histories
interface RunHistory { runId: string; events: { type: string; at: number }[] }

/** Every run of the controller (oldest first), with its events' types and times. */
async function controllerHistories(client: Client, cluster: string): Promise<RunHistory[]> {
  const runs: { runId: string; start: number }[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${controllerWorkflowId(cluster)}'` })) runs.push({ runId: w.runId, start: w.startTime.getTime() });
  runs.sort((a, b) => a.start - b.start);
  const out: RunHistory[] = [];
  for (const r of runs) {
    const h = await client.workflow.getHandle(controllerWorkflowId(cluster), r.runId).fetchHistory();
    out.push({
      runId: r.runId,
      events: (h.events ?? []).map((e) => ({ type: String(e.eventType ?? ''), at: Number(e.eventTime?.seconds ?? 0) * 1000 + Math.floor((e.eventTime?.nanos ?? 0) / 1e6) })),
    });
  }
  return out;
}

/** WORKFLOW_TASK_SCHEDULED -> COMPLETED latencies (ms) of tasks scheduled in [from, to). Event types are numbers in the proto (5, 7). */
function taskLatencies(runs: RunHistory[], from: number, to: number): number[] {
  const lat: number[] = [];
  for (const r of runs) {
    let scheduled: number | undefined;
    for (const e of r.events) {
      if (e.type === '5' || e.type === 'EVENT_TYPE_WORKFLOW_TASK_SCHEDULED') scheduled = e.at;
      else if ((e.type === '7' || e.type === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED') && scheduled !== undefined) {
        if (scheduled >= from && scheduled < to) lat.push(e.at - scheduled);
        scheduled = undefined;
      }
    }
  }
  return lat;
}

function eventsIn(runs: RunHistory[], from: number, to: number): number {
  return runs.reduce((n, r) => n + r.events.filter((e) => e.at >= from && e.at < to).length, 0);
}
function runsStartedIn(runs: RunHistory[], from: number, to: number): number {
  return runs.filter((r) => r.events[0] && r.events[0].at >= from && r.events[0].at < to).length;
}

async function historyLengthOf(client: Client, workflowId: string): Promise<number> {
  return (await client.workflow.getHandle(workflowId).describe()).historyLength;
}

// ------------------------------------------------------------------------------- processes
function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return NaN;
  }
}
function devServerPid(address: string): number | undefined {
  const port = address.split(':').at(-1);
  for (const e of readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
    try {
      const line = readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ');
      if (line.includes('start-dev') && line.includes(`--port ${port}`)) return Number(e);
    } catch { /* gone */ }
  }
  return undefined;
}

async function startWorkerProcess(configFile: string, bundleFile: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'scale-worker.ts'), configFile, bundleFile], {
    env: { ...process.env, SCALE_SECRET: TEST_SECRET },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the workflow worker exited (${code}) before it was ready`)));
    lines.on('line', (l) => l === 'ready' && resolve());
  });
  return child;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, everyMs: number): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

// ------------------------------------------------------------------------------- one size
interface SizeFigures {
  nodes: number; groups: number;
  placeS: number;
  confirmMedian: number; confirmP90: number; confirmFailed: number; confirmLate: number; confirmations: number;
  steadyTask: number[]; singleTask: number[]; stormTask: number[];
  single: { outageMs: number; controllerEvents: number; failoverEvents: number; phases: string }[];
  storm: { groups: number; stuck: number; medianMs: number; maxMs: number; controllerEvents: number; continuedAsNew: number; failoverEventsMedian: number };
  workerCpuPct: { steady: number; storm: number };
  devServerCpuPct: { steady: number; storm: number };
  benchCpuPct: number;
  load: string[];
}

async function runSize(address: string, bundleFile: string, n: number, g: number): Promise<SizeFigures> {
  const name = uniqueName(`sc${n}x${g}`);
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-scale-'));
  writeFileSync(join(dir, 'authkey'), `${TEST_SECRET}\n`, { mode: 0o600 });
  const yaml = clusterYaml(name, address, dir, n, g);
  writeFileSync(join(dir, 'haoscar.yaml'), yaml);
  const config = parseConfig(yaml);
  const client = await testClient();
  const worker = await startWorkerProcess(join(dir, 'haoscar.yaml'), bundleFile);
  const sim = new SimCluster(name, config, client);
  const devPid = devServerPid(address);
  const load: string[] = [];
  const benchCpu0 = process.cpuUsage();
  const benchT0 = performance.now();
  try {
    const t0 = performance.now();
    await sim.start();
    await waitFor(`all ${g} groups placed`, async () => {
      const o = await sim.ownership();
      return Object.values(o.groups).every((x) => x.state === 'running' && !x.operation && x.owner) ? o : undefined;
    }, 600_000, 200);
    const placeS = (performance.now() - t0) / 1000;
    process.stderr.write(`  ${n}x${g}: placed in ${placeS.toFixed(1)} s; steady ${STEADY_SECONDS} s\n`);

    // Steady state: confirmations only.
    sim.confirmations.length = 0;
    sim.confirmationFailures = sim.confirmationsLate = 0;
    const steadyFrom = Date.now();
    const w0 = cpuTicks(worker.pid!);
    const d0 = devPid ? cpuTicks(devPid) : NaN;
    const s0 = performance.now();
    await sleep(STEADY_SECONDS * 1000);
    const steadyS = (performance.now() - s0) / 1000;
    const workerSteady = (cpuTicks(worker.pid!) - w0) / steadyS;
    const devSteady = devPid ? (cpuTicks(devPid) - d0) / steadyS : NaN;
    const steadyTo = Date.now();
    const confirmations = [...sim.confirmations];
    const confirmFailed = sim.confirmationFailures;
    const confirmLate = sim.confirmationsLate;
    load.push(loadavg());

    // One group's failover, `RUNS` times: n1 (g0 only) dies; then comes back and g0 is switched back.
    const single: SizeFigures['single'] = [];
    const singleFrom = Date.now();
    for (let run = 1; run <= RUNS; run++) {
      const before = await historyLengthOf(client, controllerWorkflowId(name));
      const runBefore = (await client.workflow.getHandle(controllerWorkflowId(name)).describe()).runId;
      const killedAt = performance.now();
      const killedAtWall = Date.now();
      await sim.kill('n1');
      sim.reportDeaths(['n1']);
      await waitFor('g0 running on n2', async () => {
        const o = await sim.ownership();
        const x = o.groups.g0!;
        return x.state === 'running' && x.owner === 'n2' && !x.operation ? x : undefined;
      }, 120_000, 25);
      const outageMs = performance.now() - killedAt;
      const result = await client.workflow.getHandle(failoverWorkflowId(name, 'g0')).result() as { phases?: Record<string, number> };
      const failoverEvents = await historyLengthOf(client, failoverWorkflowId(name, 'g0'));
      const desc = await client.workflow.getHandle(controllerWorkflowId(name)).describe();
      const controllerEvents = desc.runId === runBefore
        ? desc.historyLength - before
        : NaN; // continued as new: counted from the histories below
      single.push({ outageMs, controllerEvents, failoverEvents, phases: JSON.stringify(result.phases ?? {}) });
      process.stderr.write(`  ${n}x${g}: single failover ${run}: ${Math.round(outageMs)} ms, controller +${controllerEvents} events, failover ${failoverEvents} events\n`);
      void killedAtWall;
      // Back: n1 up again, g0 switched back to it (as an operator's `haoscar switchover g0 --to n1`).
      await sim.revive('n1');
      await waitFor('n1 up', async () => ((await sim.ownership()).nodes.n1?.state === 'up' ? true : undefined), 60_000, 50);
      const sw = await client.workflow.start('switchover', {
        workflowId: switchoverWorkflowId(name, 'g0'),
        taskQueue: clusterTaskQueue(name),
        args: [{ cluster: name, group: 'g0', to: 'n1' }],
        typedSearchAttributes: haTags({ cluster: name, group: 'g0', node: 'n1', operation: 'switchover' }),
        memo: { trigger: 'operator' },
      });
      await sw.result();
      await waitFor('g0 back on n1', async () => {
        const x = (await sim.ownership()).groups.g0!;
        return x.state === 'running' && x.owner === 'n1' && !x.operation ? x : undefined;
      }, 120_000, 50);
    }
    const singleTo = Date.now();
    load.push(loadavg());

    // Correlated failure: half the nodes (n1 .. n(N/2)) die at once.
    const dead = Array.from({ length: Math.max(1, Math.floor(n / 2)) }, (_, k) => nodeName(k + 1));
    const o0 = await sim.ownership();
    const affected = Object.entries(o0.groups).filter(([gName, x]) => x.owner !== null && dead.includes(x.owner)
      && config.groups.find((c) => c.name === gName)!.nodes.some((m) => !dead.includes(m))).map(([gName]) => gName);
    const stormFrom = Date.now();
    const w1 = cpuTicks(worker.pid!);
    const d1 = devPid ? cpuTicks(devPid) : NaN;
    const killedAt = performance.now();
    await Promise.all(dead.map((d) => sim.kill(d)));
    sim.reportDeaths(dead);
    const back = new Map<string, number>();
    // A group still on a dead node after this long is reported as never failed over.
    await waitFor(`all ${affected.length} groups of the dead nodes running again`, async () => {
      const o = await sim.ownership();
      const at = performance.now() - killedAt;
      for (const gName of affected) {
        const x = o.groups[gName]!;
        if (!back.has(gName) && x.state === 'running' && x.owner !== null && !dead.includes(x.owner) && !x.operation) back.set(gName, at);
      }
      return back.size === affected.length ? true : undefined;
    }, STORM_LIMIT_MS, 100).catch(() => undefined);
    const stuck = affected.filter((x) => !back.has(x));
    if (stuck.length > 0) process.stderr.write(`  ${n}x${g}: ${stuck.length} groups never failed over in ${STORM_LIMIT_MS / 1000} s: ${stuck.join(', ')}\n`);
    const stormS = (performance.now() - killedAt) / 1000;
    const workerStorm = (cpuTicks(worker.pid!) - w1) / stormS;
    const devStorm = devPid ? (cpuTicks(devPid) - d1) / stormS : NaN;
    await sleep(1000);
    const stormTo = Date.now();
    load.push(loadavg());
    const failoverLengths: number[] = [];
    for (const gName of affected.slice(0, 16)) failoverLengths.push(await historyLengthOf(client, failoverWorkflowId(name, gName)));

    const histories = await controllerHistories(client, name);
    // A single failover's controller events across a continue-as-new: from the histories.
    for (const s of single) if (Number.isNaN(s.controllerEvents)) s.controllerEvents = -1;
    const benchUsed = process.cpuUsage(benchCpu0);
    return {
      nodes: n, groups: g, placeS,
      confirmMedian: median(confirmations), confirmP90: p90(confirmations), confirmFailed, confirmLate, confirmations: confirmations.length,
      steadyTask: taskLatencies(histories, steadyFrom, steadyTo),
      singleTask: taskLatencies(histories, singleFrom, singleTo),
      stormTask: taskLatencies(histories, stormFrom, stormTo),
      single,
      storm: {
        groups: affected.length,
        stuck: stuck.length,
        medianMs: median([...back.values()]),
        maxMs: Math.max(...back.values()),
        controllerEvents: eventsIn(histories, stormFrom, stormTo),
        continuedAsNew: runsStartedIn(histories, stormFrom, stormTo),
        failoverEventsMedian: median(failoverLengths),
      },
      workerCpuPct: { steady: workerSteady, storm: workerStorm },
      devServerCpuPct: { steady: devSteady, storm: devStorm },
      benchCpuPct: ((benchUsed.user + benchUsed.system) / 1e6 / ((performance.now() - benchT0) / 1000)) * 100,
      load,
    };
  } finally {
    // The controller and whatever it started (failovers, switchovers, alerts) that still runs.
    for await (const w of client.workflow.list({ query: `HaCluster = '${name}' AND ExecutionStatus = 'Running'` })) {
      await client.workflow.getHandle(w.workflowId, w.runId).terminate('bench over').catch(() => undefined);
    }
    await client.workflow.getHandle(controllerWorkflowId(name)).terminate('bench over').catch(() => undefined);
    await sim.close();
    worker.kill('SIGTERM');
    await new Promise((resolve) => (worker.exitCode !== null ? resolve(undefined) : worker.once('exit', resolve)));
    rmSync(dir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------- main
const f0 = (x: number) => (Number.isFinite(x) ? Math.round(x).toString() : '-');
const f1 = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');

out(`bench:scale on ${new Date().toISOString()}, load average ${loadavg()} at the start; heartbeat ${HB_INTERVAL_MS}ms/${DEADTIME_MS}ms, lease ${LEASE_MS}ms (+150ms), verifyTimeout 500ms`);
if (!opts['skip-heartbeat']) {
  out(`\n1. Heartbeats (real src/heartbeat, N instances in one process on 127.0.1.x, ${HB_SECONDS} s window)`);
  out('nodes  sent/s per node  received/s per node  CPU % per node  process CPU %  false suspects  load');
  for (const n of [...new Set(SIZES.map((s) => s.nodes))]) {
    const h = await heartbeatCost(n, HB_SECONDS);
    out(`${String(n).padStart(5)}  ${f1(h.sentPerS).padStart(15)}  ${f1(h.receivedPerS).padStart(19)}  ${h.cpuPerNodePct.toFixed(2).padStart(14)}  ${f1(h.processCpuPct).padStart(13)}  ${String(h.suspects).padStart(14)}  ${loadavg()}`);
  }
}

const address = await temporalAddress();
const bundleDir = mkdtempSync(join(tmpdir(), 'haoscar-scale-bundle-'));
const bundleFile = join(bundleDir, 'workflows.js');
writeFileSync(bundleFile, (await bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: new DefaultLogger('WARN') })).code);
const results: SizeFigures[] = [];
const table1 = () => {
  out(`\n2. Controller and failovers (real dev server, real workflow worker process, simulated nodes; medians, p90 in brackets; ${RUNS} single failovers)`);
  out('size     place s  confirm ms (p90) [n, late, failed]  ctl task ms steady / single / storm (p90)  worker CPU% steady/storm  server CPU% steady/storm');
  for (const r of results) {
    out(`${`${r.nodes}x${r.groups}`.padEnd(8)} ${f1(r.placeS).padStart(7)}  ${f0(r.confirmMedian)} (${f0(r.confirmP90)}) [${r.confirmations}, ${r.confirmLate}, ${r.confirmFailed}]`.padEnd(55)
      + `  ${f0(median(r.steadyTask))} (${f0(p90(r.steadyTask))}) / ${f0(median(r.singleTask))} (${f0(p90(r.singleTask))}) / ${f0(median(r.stormTask))} (${f0(p90(r.stormTask))})`
      + `  ${f1(r.workerCpuPct.steady)}/${f1(r.workerCpuPct.storm)}  ${f1(r.devServerCpuPct.steady)}/${f1(r.devServerCpuPct.storm)}`);
  }
  out('\nsize     one group: outage ms (runs)            ctl events  failover events  | half the nodes die: groups  stuck  median ms  max ms  ctl events  CAN  failover events | bench CPU%  load');
  for (const r of results) {
    out(`${`${r.nodes}x${r.groups}`.padEnd(8)} ${f0(median(r.single.map((s) => s.outageMs)))} (${r.single.map((s) => f0(s.outageMs)).join(', ')})`.padEnd(48)
      + ` ${f0(median(r.single.map((s) => s.controllerEvents)))}`.padStart(11) + ` ${f0(median(r.single.map((s) => s.failoverEvents)))}`.padStart(17)
      + `  | ${String(r.storm.groups).padStart(6)} ${String(r.storm.stuck).padStart(6)} ${f0(r.storm.medianMs).padStart(10)} ${f0(r.storm.maxMs).padStart(7)} ${String(r.storm.controllerEvents).padStart(11)} ${String(r.storm.continuedAsNew).padStart(4)} ${f0(r.storm.failoverEventsMedian).padStart(15)} | ${f1(r.benchCpuPct)}  ${r.load.join(' / ')}`);
  }
  for (const r of results) out(`${r.nodes}x${r.groups} single-failover phases: ${r.single.map((s) => s.phases).join(' ')}`);
};
try {
  for (const s of SIZES) {
    process.stderr.write(`size ${s.nodes}x${s.groups}\n`);
    results.push(await runSize(address, bundleFile, s.nodes, s.groups));
    // Printed after every size (all so far): a later size that fails leaves the earlier ones' figures.
    table1();
  }
} finally {
  rmSync(bundleDir, { recursive: true, force: true });
  await closeTemporal();
}
