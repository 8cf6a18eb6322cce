/**
 * Set-up of the cold-start lab tests (cold-start-*.test.ts; issue 9 item 6, docs/failover.md "After
 * a power cut"): after restarts of agents, the workflow worker or Temporal, in any order, every
 * group runs again within a bound, and `haoscar status` tells the truth meanwhile.
 *
 * The bound, BOUND_MS from the moment the last process is ready (the worker polls, Temporal
 * answers): the controller then replays, handles the edges, and a `recover` failover waits out
 * nothing (the node that restarted said it holds nothing) and starts the group; a `node-lost` one
 * (a peer suspected the node first) waits out ttl + margin (4.3 s) too. Measured on the 2-core
 * machine with four other helpers' tests beside (load average about 20): 6 to 26 s. 45 s
 * leaves room for that load, and is far from "never" (before the fix: still nothing after 60 s).
 * The worker's own start (it bundles the workflows, under tsx here) is not counted: under that load
 * it took 15 to 40 s; the diagnostics print the time from its spawn too.
 */
import type { TestContext } from 'node:test';
import { join } from 'node:path';
import { NetLab } from './netlab.js';
import { LabCluster } from './cluster.js';
import { ChaosProcesses } from './chaos/processes.js';
import { expect } from './failover-setup.js';

export const BOUND_MS = 45_000;

/**
 * Slower than the failover tests' timing: these tests are about coming back after restarts, on a
 * machine where other tests run too. With a 500 ms deadtime and a 2 s lease, agents that stalled
 * for 0.5-1.5 s (load average 20) lost their leases to each other again and again after the
 * group was back (epoch 1 -> 4 in one run): a flap of the test's making, not of the restarts.
 */
const TIMING = {
  heartbeat: { interval: '200ms', deadtime: '3s' },
  lease: { ttl: '4s', margin: '300ms' },
  failover: { verifyTimeout: '1s' },
};

/** A two-node lab cluster on a dev server with a SQLite file (so that Temporal can restart with its state). */
export async function setUp(t: TestContext) {
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true });
  const cluster = new LabCluster(lab, TIMING);
  const procs = new ChaosProcesses(lab, cluster);
  t.after(async () => {
    if (process.env.HAOSCAR_LAB_KEEP) process.stderr.write(`lab kept in ${lab.dir}\n`);
    await procs.close();
    await cluster.close();
    await lab.close();
  });
  await lab.startDevServer({ dbFile: join(lab.dir, 'temporal.db') });
  await cluster.start();
  const vip = await lab.sampleVip(lab.vip);
  const client = await lab.probe(cluster.url, { everyMs: 50, timeoutMs: 300 });
  await expect(cluster, 'the client is served through the VIP by n1', async () => (client.lastOk()?.host === 'n1' ? true : undefined));
  return { lab, cluster, procs, vip, client };
}

type Prober = Awaited<ReturnType<typeof setUp>>['client'];

/** The group runs on one node, the client is served by it (since `since`), and the controller says so. */
export async function groupBack(cluster: LabCluster, client: Prober, since: number, timeoutMs = BOUND_MS) {
  const lab = cluster.lab;
  return expect(cluster, `the group runs again, within ${timeoutMs} ms`, async () => {
    const holders = await lab.vipHolders();
    const served = client.lastOk();
    if (holders.length !== 1 || !served || served.t < since || served.host !== holders[0]) return undefined;
    const g = await cluster.group();
    return g?.state === 'running' && g.owner === holders[0] && g.operation === undefined ? { owner: holders[0]!, epoch: g.epoch } : undefined;
  }, timeoutMs);
}

/** Resolves once a workflow worker started after `logLength` says it polls. */
export async function workerReady(cluster: LabCluster, logLength: number): Promise<void> {
  await expect(cluster, 'the workflow worker runs', async () => (/workflow worker running/.test((await cluster.workerLog()).slice(logLength)) ? true : undefined), 180_000);
}


/** `haoscar status`'s output and exit code. */
export async function status(cluster: LabCluster, args: string[] = []) {
  const r = await cluster.cli(['status', ...args], { timeoutMs: 60_000 });
  return { code: r.exitCode, out: r.all ?? '' };
}
