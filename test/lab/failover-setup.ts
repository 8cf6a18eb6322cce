/**
 * Set-up of the failover lab tests (failover-*.test.ts): two hosts with real agents, the VIP and a real HTTP service,
 * the dev server and the workflow worker on the root side, a client that requests the service
 * through the VIP every 20 ms, and a sampler of who holds the VIP in every namespace. Faults
 * are real (test/lab/README.md). Each test builds its own lab, so one failure does not leak
 * into the next.
 */
import type { TestContext } from 'node:test';
import { NetLab } from './netlab.js';
import { LabCluster, type ClusterData, type ClusterOptions, type ClusterTiming } from './cluster.js';
import { waitFor } from '../support/wait.js';

export const TIMING = {
  heartbeat: { interval: '100ms', deadtime: '500ms' },
  // Longer than the product's default: on a 2-core CI machine running everything, lease
  // confirmations can take over half a second, and a false alarm's verification (during
  // which the owner's lease is not renewed) over a second; these tests are about behaviour.
  lease: { ttl: '2s', margin: '150ms' },
  failover: { verifyTimeout: '500ms' },
};

/**
 * For tests that assert that nothing changed hands (epochs stay the same): the owner's lease
 * is confirmed by a workflow query, and on this 2-core machine, running a CLI under tsx beside
 * the dev server, the worker and the agents, a confirmation has taken more than 2 s; the owner
 * then rightly stops its group and the controller places it again under a new epoch. 4 s keeps
 * these tests about what they test.
 */
export const LONG_LEASE = { lease: { ttl: '4s', margin: '150ms' } };

/**
 * `temporal`: starts the cluster's Temporal in the new lab and returns its frontends (default:
 * the lab's dev server), e.g. two server processes on PostgreSQL (temporal-pg.ts).
 */
export async function setUp(
  t: TestContext, extra: string[] = [], data?: ClusterData, timing: Partial<typeof TIMING> & Pick<ClusterTiming, 'agent' | 'workerArgs' | 'healing' | 'alerts' | 'resources'> = {},
  temporal?: (lab: NetLab) => Promise<string[]>, more: Pick<ClusterOptions, 'ownConfigFiles'> = {},
) {
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true, extra });
  const opts: ClusterOptions = { ...more, ...(temporal ? { temporal: () => temporal(lab) } : {}) };
  const cluster = new LabCluster(lab, { ...TIMING, ...timing }, data, opts);
  t.after(async () => {
    if (process.env.HAOSCAR_LAB_KEEP) process.stderr.write(`lab kept in ${lab.dir}\n`);
    await cluster.close();
    await lab.close();
  });
  await cluster.start();
  const vip = await lab.sampleVip(lab.vip);
  const client = await lab.probe(cluster.url, { everyMs: 20, timeoutMs: 300 });
  await waitFor('the client is served through the VIP by n1', async () => (client.lastOk()?.host === 'n1' ? true : undefined), 30_000, 50);
  return { lab, cluster, vip, client };
}

/** The last lines of every agent's log, for a failure message. */
export async function agentLogs(cluster: LabCluster, lines = 40): Promise<string> {
  const logs = await Promise.all(cluster.lab.hosts.map(async (h) => {
    const guard = (await cluster.guardLog(h)).split('\n').slice(-lines / 2).join('\n');
    return `--- ${h}\n${(await cluster.agentLog(h)).split('\n').slice(-lines).join('\n')}\n--- ${h} guard\n${guard}`;
  }));
  return logs.join('\n');
}

/** Fails with the logs when `what` does not happen in time. */
export async function expect<T>(cluster: LabCluster, what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  try {
    return await waitFor(what, fn, timeoutMs, 50);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await agentLogs(cluster)}`);
  }
}

