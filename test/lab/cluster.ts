/**
 * An HA-OSCAR cluster in the network lab: the dev server and the cluster's workflow worker on
 * the root side (the witness, as DESIGN recommends), a real `haoscar agent` in every host, and
 * one group: the lab's VIP on eth0 plus a real HTTP service (pid-service.mjs on port 8080).
 * Used by the failover tests and by bench/failover.
 */
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { readdirSync, rmdirSync, type Dirent } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { execa, type ResultPromise } from 'execa';
import { Connection, Client } from '@temporalio/client';
import type { GroupOwnership, Ownership } from '../../workflows/shared.js';
import { queryOwnership } from '../../src/agent/controller-link.js';
import { waitFor } from '../support/wait.js';
import type { NetLab } from './netlab.js';
import type { FileSetState } from '../../src/agent/file-sync.js';
import { findCgroup2Mount } from '../../src/cgroup.js';
import { FrontendRelay, parseFrontend } from '../../src/temporal/frontends.js';
import { parseGuardState, type GuardState } from '../../src/guard/protocol.js';

/** rmdir depth first (a cgroup directory cannot be removed with rm -r: its files are not files). */
function removeTree(dir: string): void {
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) removeTree(join(dir, e.name));
  try {
    rmdirSync(dir);
  } catch {
    // Still in use (a process the test left), or gone.
  }
}

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** The `haoscar` command as users run it. */
const HAOSCAR = join(ROOT, 'bin/haoscar.js');
const PID_SERVICE = join(ROOT, 'test/lab/pid-service.mjs');
const WITH_MOUNTS = join(ROOT, 'test/lab/with-mounts.sh');
const WITH_CGROUP = join(ROOT, 'test/lab/with-cgroup.sh');
export const SERVICE_PORT = 8080;
export const GROUP = 'web';

/** Timing in haoscar.yaml terms; the defaults are the product's. */
export interface ClusterTiming {
  heartbeat?: { interval?: string; deadtime?: string };
  lease?: { ttl?: string; margin?: string };
  failover?: { verifyTimeout?: string };
  check?: string;
  /** The `guard:` section (YAML flow mapping), e.g. `{ enabled: false }`; the product's default otherwise. */
  guard?: string;
  /** More resources of the group, after the service (each a YAML flow mapping), e.g. a `command` resource. */
  resources?: (string | ((lab: NetLab) => string))[];
  /** More keys of a node's entry (YAML flow mapping entries) by node, e.g. `{ n1: 'fence: { command: [/x] }' }`. */
  nodes?: Record<string, string>;
  /** The service's `healing:` (YAML flow mapping), e.g. `{ window: 5s }`: a heal then ends 5 s after its last restart. */
  healing?: string;
  /** More keys of the `agent:` section (YAML flow mapping entries), e.g. `metrics: { listen: "0.0.0.0:9464" }`. */
  agent?: string;
  /** More arguments of `haoscar worker`, e.g. `['--metrics-listen', '127.0.0.1:9465']`. */
  workerArgs?: string[];
  /** The `alerts:` list (YAML flow sequence), e.g. `[{ name: f, path: /x, recipients: [/y] }]` (docs/alerts.md). */
  alerts?: string;
}

/**
 * Data of the group: a file set on `<lab>/data` (each host has its own copy, bound there in a
 * private mount namespace, as are the agents' state directories) and the fail-back policy.
 */
export interface ClusterData {
  /** Extra keys of the file set (YAML flow mapping entries), e.g. `continuous: false, bwlimit: 4000`. */
  fileSet?: string;
  /** Directories of the file set under `<lab>/data/` (default: one, the whole directory). */
  dirs?: string[];
  /** The group's `failback:` (YAML flow mapping), e.g. `{ policy: auto, stableFor: 4s }`. */
  failback?: string;
  /** No file set at all (only private state directories and the fail-back policy). */
  noFileSet?: boolean;
  /**
   * A `drbd` resource `disk` (DRBD resource r0) first in the group, driven through the DRBD 9
   * SIMULATOR in test/support/drbd-sim (the kernel module cannot load here); its state is in
   * `<lab>/drbd-sim`, each agent calls it as its own node.
   */
  drbd?: boolean;
}

export const DRBD_SIM = join(ROOT, 'test/support/drbd-sim');

/** How systemd would start a host's agent as a unit of Type=notify (packaging/systemd/haoscar-agent.service). */
export interface UnderSystemd {
  /** NOTIFY_SOCKET: a receiver of the test's (test/support/notify-receiver.ts). */
  socket: string;
  /** WatchdogSec=, as WATCHDOG_USEC; WATCHDOG_PID is the agent's own pid, as systemd sets it. */
  watchdogUsec?: number;
}

export interface ClusterOptions {
  /**
   * Starts the Temporal the cluster uses and returns its frontends (temporal.address); default:
   * the lab's dev server. E.g. two server processes on PostgreSQL (temporal-pg.ts).
   */
  temporal?: () => Promise<string[]>;
  /**
   * Each host's agent reads a configuration file of its own (configFileOf), a copy of the
   * shared one at the start: for tests that change one node's file and reload it (the worker and
   * the test's CLI keep the shared one).
   */
  ownConfigFiles?: boolean;
  /**
   * IPv6 (a lab built with `ipv6: true`): the group's VIP is `lab.vip6`, each node has its IPv6
   * address as a second heartbeat link (`addresses: [10.213.X.11, fd00:213::11]`), and the
   * service listens on `::` (IPv6 and IPv4). Temporal stays on the IPv4 bridge.
   */
  ipv6?: boolean;
  /**
   * Hosts whose agent start() does not start (a standby booted into a rescue system, say): they
   * are in `nodes:`, but the controller never hears of them. Default: every host runs one.
   */
  noAgent?: string[];
  /** More top-level sections of haoscar.yaml, appended as they are (e.g. `sync:` and `clone:`). */
  extraYaml?: string;
}

export class LabCluster {
  readonly cluster = `lab${Math.random().toString(36).slice(2, 8)}`;
  readonly agents = new Map<string, ResultPromise>();
  /** Hosts whose agents are started as systemd would start them (set before start()). */
  readonly underSystemd = new Map<string, UnderSystemd>();
  private worker: ResultPromise | undefined;
  /**
   * The bin/haoscar.js each host's agent (and `worker`, the workflow worker) is started from:
   * this checkout's unless set, e.g. a previous release's for the rolling-upgrade test.
   */
  readonly entryPoints = new Map<string, string>();
  private relay: FrontendRelay | undefined;
  client!: Client;
  /** The frontends in the configuration (temporal.address). */
  frontends: string[] = [];
  configFile!: string;
  secretFile!: string;

  constructor(readonly lab: NetLab, readonly timing: ClusterTiming = {}, readonly data?: ClusterData, readonly opts: ClusterOptions = {}) {
    if (opts.ipv6 && !lab.ipv6) throw new Error('an IPv6 cluster needs a lab created with ipv6: true');
  }

  /** The group's VIP with its prefix length: the lab's IPv4 one, or its IPv6 one. */
  get vip(): string {
    return this.opts.ipv6 ? this.lab.vip6 : this.lab.vip;
  }

  private nodeAddresses(host: string): string {
    return this.opts.ipv6 ? `${this.lab.address(host)}, "${this.lab.address6(host)}"` : this.lab.address(host);
  }

  /** The file set's directory as every host sees it. */
  get dataPath(): string {
    return join(this.lab.dir, 'data');
  }

  /** Where `host`'s own copy of the data lives (seen from the test, on the root side). */
  hostData(host: string): string {
    return join(this.lab.dir, 'hosts', host, 'data');
  }

  /** `host`'s file-set state, as `haoscar sync status` reads it. */
  async syncState(host: string): Promise<{ node: string; sets: FileSetState[] } | undefined> {
    const text = await readFile(join(this.lab.dir, 'hosts', host, 'state', 'sync-state.json'), 'utf8').catch(() => undefined);
    return text === undefined ? undefined : JSON.parse(text);
  }

  /** Dev server, worker, agents (the first host first, so the group lands there); waits until the group runs. */
  async start(): Promise<void> {
    if (this.data) {
      for (const h of this.lab.hosts) {
        await mkdir(join(this.hostData(h), ''), { recursive: true });
        for (const d of this.data.dirs ?? []) await mkdir(join(this.hostData(h), d), { recursive: true });
        await mkdir(join(this.lab.dir, 'hosts', h, 'state'), { recursive: true });
      }
      await mkdir(this.dataPath, { recursive: true });
      await mkdir(join(this.lab.dir, 'state'), { recursive: true });
    }
    if (this.data?.drbd) {
      await mkdir(this.drbdSimDir, { recursive: true });
      await this.drbdSim(['init', 'r0', '--nodes', this.lab.hosts.join(','), '--rate', '51200']);
    }
    this.frontends = this.opts.temporal ? await this.opts.temporal() : [await this.lab.startDevServer()];
    this.secretFile = join(this.lab.dir, 'authkey');
    await writeFile(this.secretFile, `${randomBytes(32).toString('base64')}\n`);
    await chmod(this.secretFile, 0o600);
    this.configFile = join(this.lab.dir, 'haoscar.yaml');
    await writeFile(this.configFile, this.yaml(this.frontends));
    if (this.opts.ownConfigFiles) for (const h of this.lab.hosts) await writeFile(this.configFileOf(h), this.yaml(this.frontends));
    // The test's own client goes on through the other frontends too (the product's relay).
    if (this.frontends.length > 1) this.relay = new FrontendRelay(this.frontends.map(parseFrontend));
    const connection = await Connection.connect({ address: this.relay ? await this.relay.start() : this.frontends[0]! });
    this.client = new Client({ connection });
    this.startWorker();
    const [first, ...rest] = this.lab.hosts;
    this.startAgent(first!);
    // An agent that exits (a configuration error) fails the start at once, with its words.
    const exited = this.agents.get(first!)!.then(async (r) => {
      throw new Error(`the agent on ${first} exited (${r.exitCode ?? r.signal}) while the cluster started:\n${(await this.agentLog(first!)).split('\n').slice(-10).join('\n')}`);
    });
    exited.catch(() => undefined);
    // Generous (polled): the worker's start under tsx alone took over a minute on a loaded 2-core machine.
    await Promise.race([this.waitForGroup((g) => g.state === 'running' && g.owner === first, `${GROUP} running on ${first}`, 180_000), exited]);
    const withAgent = this.lab.hosts.filter((h) => !this.opts.noAgent?.includes(h));
    for (const host of rest) if (withAgent.includes(host)) this.startAgent(host);
    await waitFor('every agent up', async () => {
      const s = await this.ownership();
      return withAgent.every((h) => s?.nodes[h]?.state === 'up') ? true : undefined;
    }, 180_000, 100);
  }

  get drbdSimDir(): string {
    return join(this.lab.dir, 'drbd-sim');
  }

  /** Runs the simulator's control tool (`drbd-sim ARGS`), or its drbdadm/drbdsetup as `node`. */
  async drbdSim(args: string[], opts: { as?: { node: string; tool: 'drbdadm' | 'drbdsetup' } } = {}) {
    const file = join(DRBD_SIM, opts.as?.tool ?? 'drbd-sim');
    return execa(file, args, { reject: false, all: true, env: { DRBD_SIM_DIR: this.drbdSimDir, ...(opts.as ? { DRBD_SIM_NODE: opts.as.node } : {}) } });
  }

  /** The configuration file `host`'s agent reads: its own with ownConfigFiles, else the shared one. */
  configFileOf(host: string): string {
    return this.opts.ownConfigFiles ? join(this.lab.dir, `haoscar-${host}.yaml`) : this.configFile;
  }

  /** Sends the workflow worker a signal (SIGHUP: it reads its secrets again). */
  signalWorker(signal: NodeJS.Signals): void {
    this.worker?.kill(signal);
  }

  /** The workflow worker's log so far. */
  workerLog(): Promise<string> {
    return readFile(join(this.lab.dir, 'worker.log'), 'utf8').catch(() => '');
  }

  /** Runs the haoscar CLI (root side) against this cluster: `haoscar ARGS --config <lab config>`. */
  cli(args: string[], opts: { timeoutMs?: number } = {}) {
    return execa(process.execPath, [HAOSCAR, ...args, '--config', this.configFile], { cwd: ROOT, reject: false, all: true, timeout: opts.timeoutMs ?? 120_000 });
  }

  /** Starts `haoscar worker` on the root side (the witness); close() ends it. */
  startWorker(): void {
    this.worker = execa(process.execPath, [this.entryPoints.get('worker') ?? HAOSCAR, 'worker', '--config', this.configFile, ...(this.timing.workerArgs ?? [])], {
      cwd: ROOT,
      reject: false,
      stdin: 'ignore',
      stdout: { file: join(this.lab.dir, 'worker.log'), append: true },
      stderr: { file: join(this.lab.dir, 'worker.log'), append: true },
    });
  }

  /** Stops the workflow worker as its service manager would (SIGTERM), and waits for it to exit. */
  async stopWorker(): Promise<void> {
    this.worker?.kill('SIGTERM');
    await this.worker?.catch(() => undefined);
    this.worker = undefined;
  }

  /** Stops the host's agent with SIGTERM (its groups are stopped and fail over) and waits for it to exit. */
  async stopAgent(host: string): Promise<void> {
    const agent = this.agents.get(host);
    agent?.kill('SIGTERM');
    await agent?.catch(() => undefined);
    this.agents.delete(host);
  }

  /** Starts `haoscar agent` in the host's namespace; close() (or killHost) ends it. */
  startAgent(host: string): void {
    const systemd = this.underSystemd.get(host);
    // systemd sets WATCHDOG_PID to the main pid: the shell's, which execs (here and in
    // with-cgroup.sh) until it is node's.
    const agent = [
      ...(systemd?.watchdogUsec ? ['sh', '-c', 'WATCHDOG_PID=$$; export WATCHDOG_PID; exec "$@"', 'sh'] : []),
      WITH_CGROUP, process.execPath, this.entryPoints.get(host) ?? HAOSCAR, 'agent', '--config', this.configFileOf(host), '--node', host,
    ];
    const systemdEnv = systemd ? { NOTIFY_SOCKET: systemd.socket, ...(systemd.watchdogUsec ? { WATCHDOG_USEC: String(systemd.watchdogUsec) } : {}) } : {};
    // With data, the host's own directories are bound over the shared paths, for it alone.
    const argv = this.data
      ? ['unshare', '--mount', '--propagation', 'private', WITH_MOUNTS, this.hostData(host), this.dataPath, join(this.lab.dir, 'hosts', host, 'state'), join(this.lab.dir, 'state'), '--', ...agent]
      : agent;
    const child = this.lab.spawn(host, argv, {
      cwd: ROOT,
      ...(this.data?.drbd || systemd
        ? { env: { ...process.env, ...(this.data?.drbd ? { DRBD_SIM_DIR: this.drbdSimDir, DRBD_SIM_NODE: host } : {}), ...systemdEnv } as Record<string, string> }
        : {}),
      log: join(this.lab.dir, `agent-${host}.log`),
    });
    this.agents.set(host, child);
  }

  async ownership(): Promise<Ownership | undefined> {
    return queryOwnership(this.client, this.cluster).catch(() => undefined);
  }

  async group(): Promise<GroupOwnership | undefined> {
    return (await this.ownership())?.groups[GROUP];
  }

  waitForGroup(ok: (g: GroupOwnership) => boolean, what: string, timeoutMs = 30_000): Promise<GroupOwnership> {
    return waitFor(what, async () => {
      const g = await this.group();
      return g && ok(g) ? g : undefined;
    }, timeoutMs, 50);
  }

  /** The host's state directory: with data, each host's is its own (bound over the shared path). */
  private stateDir(host: string): string {
    return this.data ? join(this.lab.dir, 'hosts', host, 'state') : join(this.lab.dir, 'state');
  }

  /** The log of the host's lease guard (started by its agent). */
  guardLog(host: string): Promise<string> {
    return readFile(join(this.stateDir(host), 'log', `guard-${host}.log`), 'utf8').catch(() => '');
  }

  /**
   * What the host's lease guard holds now (its `state` file: each group's epoch and deadline on the
   * boot clock, moved on by every confirmed lease), or undefined while it is caught mid-rewrite.
   */
  async guardState(host: string): Promise<GuardState | undefined> {
    return parseGuardState(await readFile(join(this.stateDir(host), 'guard', host, 'state'), 'utf8').catch(() => ''));
  }

  agentLog(host: string): Promise<string> {
    return readFile(join(this.lab.dir, `agent-${host}.log`), 'utf8').catch(() => '');
  }

  get url(): string {
    return this.opts.ipv6 ? `http://[${this.lab.vip6Ip}]:${SERVICE_PORT}/` : `http://${this.lab.vipIp}:${SERVICE_PORT}/`;
  }

  async close(): Promise<void> {
    for (const a of this.agents.values()) a.kill('SIGTERM');
    this.worker?.kill('SIGTERM');
    const deadline = setTimeout(() => {
      for (const a of this.agents.values()) a.kill('SIGKILL');
      this.worker?.kill('SIGKILL');
    }, 10_000);
    await Promise.all([...this.agents.values(), this.worker].map((p) => p?.catch(() => undefined)));
    clearTimeout(deadline);
    await this.client?.connection.close().catch(() => undefined);
    this.relay?.close();
    // The cgroups the agents made for their process services (empty once they stopped).
    const mount = findCgroup2Mount();
    if (mount) removeTree(join(mount, 'haoscar', this.cluster));
  }

  private yaml(frontends: string[]): string {
    const t = this.timing;
    const section = (name: string, fields: Record<string, string | undefined>) => {
      const set = Object.entries(fields).filter(([, v]) => v !== undefined);
      return set.length === 0 ? '' : `${name}: { ${set.map(([k, v]) => `${k}: ${v}`).join(', ')} }\n`;
    };
    return `cluster: ${this.cluster}
temporal: { address: ${frontends.length === 1 ? `"${frontends[0]}"` : `[${frontends.map((f) => `"${f}"`).join(', ')}]`} }
agent: { stateDir: ${join(this.lab.dir, 'state')}, logLevel: info, workflows: false${t.agent ? `, ${t.agent}` : ''} }
${section('heartbeat', { secretFile: this.secretFile, interval: t.heartbeat?.interval, deadtime: t.heartbeat?.deadtime })}${section('lease', { ttl: t.lease?.ttl, margin: t.lease?.margin })}${section('failover', { verifyTimeout: t.failover?.verifyTimeout })}${t.guard ? `guard: ${t.guard}\n` : ''}nodes:
${this.lab.hosts.map((h, i) => `  - { name: ${h}, addresses: [${this.nodeAddresses(h)}], priority: ${100 - i}${t.nodes?.[h] ? `, ${t.nodes[h]}` : ''} }`).join('\n')}
groups:
  - name: ${GROUP}
    resources:
${this.data?.drbd ? `      - { type: drbd, name: disk, resource: r0, drbdadm: ${join(DRBD_SIM, 'drbdadm')}, drbdsetup: ${join(DRBD_SIM, 'drbdsetup')}, timeout: 10s, check: { type: status, interval: 1s, timeout: 1s } }
` : ''}      - { type: vip, name: ip, address: "${this.vip}", interface: eth0, arpCount: 2, check: { type: status, interval: 500ms, timeout: 400ms } }
      - type: service
        name: httpd
        driver: process
        command: [${process.execPath}, ${PID_SERVICE}, "${SERVICE_PORT}"${this.opts.ipv6 ? ', "::"' : ''}]
        check: { type: http, url: "http://127.0.0.1:${SERVICE_PORT}/", ${t.check ?? 'interval: 200ms, timeout: 150ms, rise: 1, fall: 2'} }
${t.healing ? `        healing: ${t.healing}\n` : ''}${(t.resources ?? []).map((r) => `      - ${typeof r === 'function' ? r(this.lab) : r}\n`).join('')}${this.dataYaml()}${t.alerts ? `alerts: ${t.alerts}\n` : ''}${this.opts.extraYaml ?? ''}`;
  }

  private dataYaml(): string {
    const d = this.data;
    if (!d) return '';
    const paths = (d.dirs ?? ['']).map((x) => join(this.dataPath, x));
    const fileSet = d.noFileSet ? '' : `    fileSets:
      - { name: www, paths: [${paths.join(', ')}]${d.fileSet ? `, ${d.fileSet}` : ''} }
`;
    return `${fileSet}${d.failback ? `    failback: ${d.failback}
` : ''}`;
  }
}
