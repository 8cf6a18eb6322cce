/**
 * The chaos suite's faults against the lab (NetLab) and the cluster (LabCluster): inject()
 * applies one and returns its heal. Everything is real: SIGKILL and SIGSTOP, links down,
 * nftables drops, the Temporal server killed. Which fault is which: schedule.ts (FAULT_MENU).
 */
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NetLab } from '../netlab.js';
import type { LabCluster } from '../cluster.js';
import { bootHost } from '../host-boot.js';
import type { ChaosProcesses } from './processes.js';
import type { FaultSpec } from './schedule.js';

export interface ChaosEnv {
  lab: NetLab;
  cluster: LabCluster;
  procs: ChaosProcesses;
  /** The Temporal server's SQLite file (witness-data-lost deletes it). */
  temporalDb: string;
  log(line: string): void;
}

export interface Injected {
  /** The hosts the fault hit (empty for Temporal and the worker). */
  targets: string[];
  /** Undoes the fault; the group may then still be settling. */
  heal(): Promise<void>;
}

/** The group's owner (as the controller says, else the live VIP holder, else the first host) and the other host. */
export async function roles(env: ChaosEnv, vipLive: () => string[]): Promise<{ owner: string; standby: string }> {
  const hosts = env.lab.hosts;
  const said = (await env.cluster.ownership().catch(() => undefined))?.groups.web?.owner ?? undefined;
  const owner = said && hosts.includes(said) ? said : vipLive()[0] ?? hosts[0]!;
  return { owner, standby: hosts.find((h) => h !== owner)! };
}

/** Kills the Temporal server, deletes its data, starts an empty one on the same port. */
async function loseWitnessData(env: ChaosEnv): Promise<void> {
  await env.lab.killDevServer();
  for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(`${env.temporalDb}${suffix}`, { force: true });
}

/**
 * Applies the fault now.
 * @throws when the lab cannot apply it (the runner then heals everything it can).
 */
export async function inject(env: ChaosEnv, f: FaultSpec, who: { owner: string; standby: string }): Promise<Injected> {
  const { lab, procs } = env;
  const target = f.target === 'standby' ? who.standby : who.owner;
  switch (f.kind) {
    case 'node-death': {
      procs.unwant(target);
      await lab.killHost(target);
      return {
        targets: [target],
        heal: async () => {
          await bootHost(lab, env.cluster, target, () => procs.startAgent(target));
        },
      };
    }
    case 'agent-kill': {
      await procs.killAgent(target);
      return { targets: [target], heal: async () => procs.startAgent(target) };
    }
    case 'agent-freeze-short':
    case 'agent-freeze-long': {
      procs.signalAgent(target, 'SIGSTOP');
      return { targets: [target], heal: async () => procs.signalAgent(target, 'SIGCONT') };
    }
    case 'partition': {
      await lab.partition(who.owner, who.standby);
      return { targets: [...lab.hosts], heal: () => lab.healPartition(who.owner, who.standby) };
    }
    case 'partition-oneway': {
      const [from, to] = f.fromOwner ? [who.owner, who.standby] : [who.standby, who.owner];
      await lab.partition(from, to, { oneWay: true });
      return { targets: [from, to], heal: () => lab.healPartition(from, to) };
    }
    case 'owner-isolated': {
      await lab.isolate(who.owner);
      return { targets: [who.owner], heal: () => lab.rejoin(who.owner) };
    }
    case 'witness-cut': {
      const hosts = f.target === 'all' ? [...lab.hosts] : [who.owner];
      for (const h of hosts) await lab.cutTemporal(h);
      return {
        targets: hosts,
        heal: async () => {
          for (const h of hosts) await lab.restoreTemporal(h);
        },
      };
    }
    case 'worker-kill': {
      const killed = await procs.killWorkers();
      if (killed.length === 0) throw new Error('no workflow worker was running');
      return { targets: [], heal: async () => procs.startWorker() };
    }
    case 'temporal-restart': {
      await lab.killDevServer();
      return { targets: [], heal: () => lab.restartDevServer() };
    }
    case 'witness-data-lost': {
      await loseWitnessData(env);
      return { targets: [], heal: () => lab.restartDevServer() };
    }
    case 'temporal-kill-mid-failover': {
      procs.unwant(who.owner);
      await lab.killHost(who.owner);
      const killAfter = f.temporalKillAfterMs ?? 1000;
      const down = f.temporalDownMs ?? 1000;
      // While the failover runs: Temporal dies, and comes back `down` ms later.
      const temporal = (async () => {
        await sleep(killAfter);
        await lab.killDevServer();
        env.log(`  Temporal killed ${killAfter} ms after the death of ${who.owner}`);
        await sleep(down);
        await lab.restartDevServer();
        env.log(`  Temporal back after ${down} ms`);
      })();
      temporal.catch(() => undefined);
      return {
        targets: [who.owner],
        heal: async () => {
          await temporal;
          await bootHost(lab, env.cluster, who.owner, () => procs.startAgent(who.owner));
        },
      };
    }
    case 'node-freeze': {
      await lab.freeze(who.owner);
      return { targets: [who.owner], heal: async () => void (await lab.thaw(who.owner)) };
    }
    case 'guard-kill': {
      const pids = procs.guardPids().get(target) ?? [];
      if (pids.length === 0) throw new Error(`no lease guard runs on ${target}`);
      for (const pid of pids) process.kill(pid, 'SIGKILL');
      // Nothing to heal: the agent must notice and start its guard again.
      return { targets: [target], heal: async () => {} };
    }
    case 'lossy-links': {
      const hosts = f.target === 'all' ? [...lab.hosts] : [who.owner];
      await lab.lossy(hosts, f.lossPercent ?? 20);
      return { targets: hosts, heal: () => lab.healLoss(hosts) };
    }
  }
}

/**
 * After a fault that could not be applied or healed: undoes everything it can (network, frozen
 * processes, Temporal, dead hosts, agents, worker). Never throws; returns what failed.
 */
export async function healEverything(env: ChaosEnv): Promise<string[]> {
  const { lab, procs } = env;
  const problems: string[] = [];
  const step = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
    } catch (e) {
      problems.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };
  procs.resumeAll();
  await step('heal the network', () => lab.healNetwork());
  for (const h of lab.frozenHosts()) await step(`thaw ${h}`, () => lab.thaw(h));
  await step('restart Temporal', () => lab.restartDevServer());
  for (const h of lab.deadHosts()) await step(`boot ${h}`, () => bootHost(lab, env.cluster, h, () => procs.startAgent(h)));
  for (const h of lab.hosts) if (!procs.agentRunning(h)) procs.startAgent(h);
  if (procs.workerPids().length === 0) procs.startWorker();
  return problems;
}
