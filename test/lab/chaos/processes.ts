/**
 * The chaos suite's hold on the cluster's processes: the agents, kept running as systemd would
 * (`Restart=always`: an agent that exits when it should run is started again, and its exit is
 * recorded — an agent that exits by itself is worth knowing about), the workflow worker on the
 * root side (killed and restarted by faults), and the hosts' lease guards.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { ROOT, type LabCluster } from '../cluster.js';
import type { NetLab } from '../netlab.js';
import { pidsByNamespace, signalPids } from '../commands.js';

/** The `haoscar` command as users run it. */
const HAOSCAR = join(ROOT, 'bin/haoscar.js');

function cmdline(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return undefined;
  }
}

function running(child: ResultPromise | undefined): boolean {
  return child !== undefined && child.exitCode === null && child.signalCode === null;
}

export interface AgentExit {
  at: number;
  host: string;
  code: number | null;
  signal: string | null;
}

export class ChaosProcesses {
  /** Agents that should run (a fault that stops one takes it out first). */
  private readonly wanted = new Set<string>();
  private readonly stoppedPids = new Set<number>();
  private readonly workers: ResultPromise[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly lastStart = new Map<string, number>();
  /** Agents that exited while they should have run, and were started again. */
  readonly unexpectedExits: AgentExit[] = [];

  constructor(readonly lab: NetLab, readonly cluster: LabCluster, private readonly onEvent: (line: string) => void = () => {}) {
    for (const h of lab.hosts) this.wanted.add(h);
  }

  /** Starts the supervision of the agents (every 500 ms). */
  supervise(): void {
    this.timer = setInterval(() => this.restartExited(), 500);
  }

  private restartExited(): void {
    for (const host of this.wanted) {
      if (!this.lab.isAlive(host)) continue;
      const child = this.cluster.agents.get(host);
      if (running(child)) continue;
      // systemd's RestartSec: not in a tight loop (an agent that fails at start, a bad config say, exits at once).
      if (Date.now() - (this.lastStart.get(host) ?? 0) < 1000) continue;
      if (child) this.unexpectedExits.push({ at: Date.now(), host, code: child.exitCode, signal: child.signalCode });
      this.onEvent(`agent of ${host} exited (${child?.exitCode ?? child?.signalCode ?? 'never started'}): started again`);
      this.startAgent(host);
    }
  }

  agentRunning(host: string): boolean {
    return running(this.cluster.agents.get(host));
  }

  /** Starts the host's agent and wants it running from now on. */
  startAgent(host: string): void {
    this.wanted.add(host);
    this.lastStart.set(host, Date.now());
    this.cluster.startAgent(host);
  }

  /** The agent is not to be restarted until startAgent() (it is being killed, or its host is). */
  unwant(host: string): void {
    this.wanted.delete(host);
  }

  /** SIGKILLs the host's agent (unwanted first) and waits for it to exit. */
  async killAgent(host: string): Promise<void> {
    this.unwant(host);
    const child = this.cluster.agents.get(host);
    if (!running(child)) return;
    child!.kill('SIGKILL');
    await child!.catch(() => undefined);
  }

  /** SIGTERM (SIGKILL after 15 s), then a new agent: what `systemctl restart` does. */
  async restartAgent(host: string): Promise<void> {
    if (!this.lab.isAlive(host)) return;
    this.unwant(host);
    const child = this.cluster.agents.get(host);
    if (running(child)) {
      child!.kill('SIGTERM');
      const t = setTimeout(() => child!.kill('SIGKILL'), 15_000);
      await child!.catch(() => undefined);
      clearTimeout(t);
    }
    this.startAgent(host);
  }

  /** SIGSTOP/SIGCONT the agent process alone (its guard and services go on). */
  signalAgent(host: string, signal: 'SIGSTOP' | 'SIGCONT'): void {
    const pid = this.cluster.agents.get(host)?.pid;
    if (pid === undefined) throw new Error(`no agent process on ${host}`);
    process.kill(pid, signal);
    if (signal === 'SIGSTOP') this.stoppedPids.add(pid);
    else this.stoppedPids.delete(pid);
  }

  /** The hosts whose agent runs now. */
  agentsRunning(): string[] {
    return this.lab.hosts.filter((h) => this.lab.isAlive(h) && this.agentRunning(h));
  }

  /** The lease guards running in each host's namespace. */
  guardPids(): Map<string, number[]> {
    const byNs = pidsByNamespace(this.lab.hosts.map((h) => this.lab.ns(h)));
    const out = new Map<string, number[]>();
    for (const h of this.lab.hosts) {
      out.set(h, (byNs.get(this.lab.ns(h)) ?? []).filter((pid) => {
        const c = cmdline(pid);
        return c !== undefined && c.includes('haoscar-guard') && !isZombie(pid);
      }));
    }
    return out;
  }

  /** The workflow workers of this cluster that run now (the one LabCluster started, and ours). */
  workerPids(): number[] {
    const needle = `\0worker\0--config\0${this.cluster.configFile}`;
    return readdirSync('/proc')
      .filter((n) => /^\d+$/.test(n))
      .map(Number)
      .filter((pid) => (cmdline(pid) ?? '').includes(needle) && !isZombie(pid));
  }

  /** SIGKILLs every workflow worker of the cluster. @returns their pids. */
  async killWorkers(): Promise<number[]> {
    const pids = this.workerPids();
    signalPids(pids, 'SIGKILL');
    for (let i = 0; i < 100 && this.workerPids().length > 0; i++) await new Promise((r) => setTimeout(r, 20));
    return pids;
  }

  /** Starts a workflow worker as LabCluster does (root side, same config, same log). */
  startWorker(): void {
    const log = join(this.lab.dir, 'worker.log');
    this.workers.push(execa(process.execPath, [HAOSCAR, 'worker', '--config', this.cluster.configFile], {
      cwd: ROOT,
      reject: false,
      stdin: 'ignore',
      stdout: { file: log, append: true },
      stderr: { file: log, append: true },
    }));
  }

  /** Best effort, never throws: every stopped agent resumed (so that cleanup can kill it). */
  resumeAll(): void {
    signalPids(this.stoppedPids, 'SIGCONT');
    this.stoppedPids.clear();
  }

  /** Stops the supervision, resumes what it stopped, ends the workers it started. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    this.resumeAll();
    for (const w of this.workers) w.kill('SIGTERM');
    const t = setTimeout(() => this.workers.forEach((w) => w.kill('SIGKILL')), 5000);
    await Promise.all(this.workers.map((w) => w.catch(() => undefined)));
    clearTimeout(t);
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}
