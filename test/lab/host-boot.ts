/**
 * A dead lab host comes back (after NetLab.killHost): its lease guard first, then its network,
 * then its agent — the order of a node whose `haoscar-guard` runs as a unit of its own that
 * starts before the network (docs/guard.md: its own process and unit).
 *
 * Why the guard first: killHost() leaves the dead host's addresses where they were (the VIP
 * included), as a machine that lost power does. reviveHost() brings its link back with them.
 * If only the agent is started then, the stale VIP is on a live link for as long as the agent
 * takes to start its guard (about 2 s in the lab, under tsx), and the client may be answered by
 * a host that runs nothing: two live holders that no product could prevent, since nothing of
 * it runs yet. The guard, started first, reloads what it held in this boot and releases it at
 * once (its deadlines are long past) — the product's own code clears the stale address, not
 * the harness; if it did not, the VIP sampler would count two live holders once the link is up.
 */
import { join } from 'node:path';
import { mkdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseGuardState } from '../../src/guard/protocol.js';
import { bootClockCs } from '../../src/guard/guard-link.js';
import { waitFor } from '../support/wait.js';
import type { NetLab } from './netlab.js';
import type { LabCluster } from './cluster.js';

const GUARD_PROGRAM = fileURLToPath(new URL('../../bin/haoscar-guard', import.meta.url));
const WITH_CGROUP = fileURLToPath(new URL('./with-cgroup.sh', import.meta.url));

/** The guard's directory and log of `host` in a LabCluster without data (as the agent names them). */
export function guardPaths(cluster: LabCluster, host: string): { dir: string; log: string } {
  const state = cluster.data ? join(cluster.lab.dir, 'hosts', host, 'state') : join(cluster.lab.dir, 'state');
  return { dir: join(state, 'guard', host), log: join(state, 'log', `guard-${host}.log`) };
}

/**
 * Starts the host's guard the way its own unit would (in its namespace, with cgroup v2 mounted
 * as the agent has it) and waits until it has written its state with nothing past its deadline
 * still `held` (it releases such holds at once).
 * @throws when it does not within `timeoutMs`.
 */
export async function startGuard(cluster: LabCluster, host: string, timeoutMs = 10_000): Promise<void> {
  const { dir, log } = guardPaths(cluster, host);
  await mkdir(join(dir, '..', '..', 'log'), { recursive: true });
  const startedCs = bootClockCs();
  // Never rejects (reject: false); close() or killHost() ends it.
  void cluster.lab.spawn(host, [WITH_CGROUP, GUARD_PROGRAM, dir], { log });
  await waitFor(`the lease guard of ${host} runs and holds nothing past its deadline`, async () => {
    const state = parseGuardState(await readFile(join(dir, 'state'), 'utf8').catch(() => ''));
    if (!state || state.nowCs < startedCs) return undefined;
    return [...state.groups.values()].every((g) => g.status !== 'held' || g.deadlineCs > state.nowCs) ? true : undefined;
  }, timeoutMs, 20);
}

/**
 * Brings a host killed by NetLab.killHost back: its guard, its link, its agent (by
 * `startAgent`, default LabCluster.startAgent). Does not wait for the agent to be up.
 */
export async function bootHost(lab: NetLab, cluster: LabCluster, host: string, startAgent: () => void = () => cluster.startAgent(host)): Promise<void> {
  await startGuard(cluster, host);
  await lab.reviveHost(host);
  startAgent();
}
