/**
 * The network lab: several "hosts" on one machine as Linux network namespaces on a bridge,
 * with addresses of their own (10.213.X.0/24, X chosen free and locked), the Temporal dev
 * server on the root side of the bridge, a client namespace that probes the VIP, and real
 * faults: node death, link loss, partitions, isolation, a host cut off from Temporal, frozen
 * processes. Nothing is routed anywhere else. `close()` removes everything, never throws, and
 * also runs (synchronously) when the process exits or is killed by SIGINT/SIGTERM/SIGHUP;
 * `NetLab.cleanupStale()` removes what a crashed run left behind.
 *
 * Layout of lab X (see README.md): bridge `hlab<X>br` 10.213.X.1/24 (root side, where the dev
 * server listens); hosts `hlab<X>-<host>` .11, .12, ...; client .100; extras .150, .151, ...;
 * `lab.vip` (.200) is free for the tests. In each namespace the link is `eth0`.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { readlinkSync, rmSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa, type Options, type ResultPromise } from 'execa';
import { createLogger, type Logger } from '../../src/log.js';
import { ensureTemporalCli } from '../../src/temporal/cli-binary.js';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import {
  checkPrerequisites,
  command,
  commandSync,
  listLinks,
  listNamespaces,
  listNftTables,
  namespaceError,
  namespacePids,
  pidsByNamespace,
  parseAddresses,
  signalPids,
  type CommandOptions,
  type CommandResult,
} from './commands.js';
import { Prober, type ProbeOptions } from './prober.js';
import { claimStale, labNames, labOfName, lockedLabs, tryLock, usedThirdOctets, type LabLock, type LabNames } from './subnet-lock.js';
import { VipSampler, bareIp } from './vip-sampler.js';

export { LabPrerequisiteError } from './commands.js';

/** Name of the client namespace (when the lab has one). */
export const CLIENT = 'client';
/** Last octets: the bridge (root side), first host, client, first extra, suggested VIP. */
export const OCTETS = { bridge: 1, firstHost: 11, client: 100, firstExtra: 150, vip: 200 } as const;
const MAX_HOSTS = OCTETS.client - OCTETS.firstHost;
const MAX_EXTRA = OCTETS.vip - OCTETS.firstExtra;

export interface NetLabOptions {
  /** The hosts, in order: addresses .11, .12, ... Names: letters, digits and dashes. */
  hosts: string[];
  /** A `client` namespace (.100) for `probe()`; default true. */
  client?: boolean;
  /** More namespaces (.150, .151, ...), e.g. an intruder that grabs the VIP. */
  extra?: string[];
  /** Default: warnings only (HAOSCAR_LAB_LOG=debug shows every command). */
  logger?: Logger;
  /** Keep `dir` (configs, logs) after close(); default: HAOSCAR_LAB_KEEP=1. */
  keepDir?: boolean;
  /**
   * IPv6 too: every namespace's eth0 also gets `fd00:213::<its last octet>/64` (e.g. the first
   * host fd00:213::11), added with `nodad` so it is usable at once; `lab.vip6` (fd00:213::200/64)
   * is free for the tests. Still no link-local addresses, and no IPv6 to or from the root side.
   * `keep_addr_on_down` is set on eth0, so a killed host keeps its IPv6 addresses too.
   * Every lab uses the same /64: labs are separate links that nothing routes between.
   */
  ipv6?: boolean;
}

/** The IPv6 prefix of a lab built with `ipv6: true` (a unique local /64, inside the namespaces only). */
export const LAB_IPV6_PREFIX = 'fd00:213::';

export type RunOptions = CommandOptions;

export interface SpawnOptions {
  /**
   * Where its stdout and stderr go: a file (relative to `lab.dir`, appended; default
   * `<host>-<command name>.log`), `'pipe'` (read them from the subprocess) or `'ignore'`.
   */
  log?: string;
  env?: Record<string, string>;
  cwd?: string;
  stdin?: 'ignore' | 'pipe';
}

/** Which hosts of the lab share a partition's side. */
export type Side = string | readonly string[];

/**
 * A change in a host's life, as the lab's faults made it (Date.now()): `died` once killHost()
 * has taken its link down (from then on nothing reaches it and nothing it has counts),
 * `revived` when reviveHost() starts bringing it back, `frozen` once freeze() has stopped
 * every process, `thawed` when thaw() starts resuming them. A frozen host is alive: its
 * kernel still answers ARP and holds its addresses.
 */
export interface HostEvent {
  at: number;
  host: string;
  kind: 'died' | 'revived' | 'frozen' | 'thawed';
}

/** What the client saw of an address with `arping` (see NetLab.arpingAddress). */
export interface ArpingReport {
  at: number;
  address: string;
  /** Distinct MACs that answered, each with the lab host whose eth0 it is (when it is one). */
  answers: Array<{ mac: string; host?: string }>;
  /** arping's own output, for a failure message. */
  output: string;
}

// Labs of this process, closed synchronously if it exits without closing them.
const openLabs = new Set<NetLab>();
let exitHooksInstalled = false;
const EXIT_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

function closeAllSync(): void {
  for (const lab of openLabs) lab.closeSync();
}

function onExitSignal(signal: NodeJS.Signals): void {
  closeAllSync();
  for (const s of EXIT_SIGNALS) process.removeListener(s, onExitSignal);
  // Die of the signal as we would have without this handler, unless someone else handles it.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installExitHooks(): void {
  if (exitHooksInstalled) return;
  exitHooksInstalled = true;
  process.on('exit', closeAllSync);
  for (const s of EXIT_SIGNALS) process.on(s, onExitSignal);
}

const NAME_RE = /^[a-z][a-z0-9-]{0,30}$/i;

function nftTables(n: LabNames): string {
  // Bridge family: frames between the lab's ports (ARP included, so a partition also hides a
  // VIP on the other side) and between a port and the root side (the dev server). The last
  // rules keep anything from being routed into or out of the lab through the root side, even
  // with ip_forward=1 (the namespaces have no route out in the first place), and IPv6 off the
  // root side altogether (the lab is IPv4; the namespaces have no IPv6 address). Not an inet
  // table: with br_netfilter loaded, bridged frames go through the inet hooks too. `lossy`
  // (empty unless lossy() filled it) drops a random share of a host's frames, both ways.
  const ports = `"${n.prefix}v*"`;
  return `table bridge ${n.prefix} {
  set cut { type ifname . ifname; }
  set isolated { type ifname; }
  set no_root { type ifname; }
  chain lossy { }
  chain lab_forward { type filter hook forward priority 0; policy accept; jump lossy; iifname . oifname @cut drop; iifname @isolated drop; oifname @isolated drop; }
  chain lab_input { type filter hook input priority 0; policy accept; jump lossy; iifname @isolated drop; iifname @no_root drop; iifname ${ports} ip daddr != ${n.subnet} drop; iifname ${ports} meta protocol ip6 drop; }
  chain lab_output { type filter hook output priority 0; policy accept; jump lossy; oifname @isolated drop; oifname @no_root drop; oifname ${ports} ip saddr != ${n.subnet} drop; oifname ${ports} meta protocol ip6 drop; }
}
`;
}

/**
 * Removes every namespace, link and nftables table of lab X, after killing every process in
 * its namespaces. Finds them by name, so it also removes a half-built or crashed lab.
 * @returns what could not be removed (empty when all went).
 */
async function teardown(logger: Logger, x: number): Promise<string[]> {
  const n = labNames(x);
  const problems: string[] = [];
  const namespaces = (await listNamespaces(logger)).filter((ns) => ns.startsWith(`${n.prefix}-`));
  // SIGCONT first: a frozen process would not die of anything but SIGKILL, and would keep
  // its children waiting. Repeat: a process may fork while the others die.
  let left: number[] = [];
  for (let round = 0; round < 100; round++) {
    left = [...pidsByNamespace(namespaces).values()].flat();
    if (left.length === 0) break;
    signalPids(left, 'SIGCONT');
    signalPids(left, 'SIGKILL');
    await sleep(10);
  }
  if (left.length > 0) problems.push(`processes still in the namespaces: ${left.join(' ')}`);
  for (const t of (await listNftTables(logger)).filter((t) => labOfName(t.name) === x)) {
    await command(logger, ['nft', 'delete', 'table', t.family, t.name], { reject: false });
  }
  // The veths are deleted from the root side: deleting a namespace destroys its end only
  // later, in the kernel's own time. One `ip` for all (-force: go on after an error).
  const links = (await listLinks(logger)).filter((l) => labOfName(l) === x);
  const batch = [
    ...links.filter((l) => l !== n.bridge).map((l) => `link del ${l}`),
    ...namespaces.map((ns) => `netns del ${ns}`),
    ...(links.includes(n.bridge) ? [`link del ${n.bridge}`] : []),
  ];
  if (batch.length > 0) await command(logger, ['ip', '-force', '-batch', '-'], { input: `${batch.join('\n')}\n`, reject: false });

  const leftNs = (await listNamespaces(logger)).filter((ns) => ns.startsWith(`${n.prefix}-`));
  const leftLinks = (await listLinks(logger)).filter((l) => labOfName(l) === x);
  const leftTables = (await listNftTables(logger)).filter((t) => labOfName(t.name) === x);
  if (leftNs.length > 0) problems.push(`namespaces not deleted: ${leftNs.join(' ')}`);
  if (leftLinks.length > 0) problems.push(`links not deleted: ${leftLinks.join(' ')}`);
  if (leftTables.length > 0) problems.push(`nftables tables not deleted: ${leftTables.map((t) => `${t.family} ${t.name}`).join(', ')}`);
  return problems;
}

/** teardown() for exit handlers: synchronous, best effort, silent. */
function teardownSync(x: number): void {
  const n = labNames(x);
  const namespaces = (commandSync(['ip', 'netns', 'list']) ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((ns) => ns.startsWith(`${n.prefix}-`));
  for (let round = 0; round < 5; round++) {
    const pids = [...pidsByNamespace(namespaces).values()].flat();
    if (pids.length === 0) break;
    signalPids(pids, 'SIGCONT');
    signalPids(pids, 'SIGKILL');
  }
  for (const line of (commandSync(['nft', 'list', 'tables']) ?? '').split('\n')) {
    const m = /^table\s+(\S+)\s+(\S+)/.exec(line.trim());
    if (m && labOfName(m[2]!) === x) commandSync(['nft', 'delete', 'table', m[1]!, m[2]!]);
  }
  const links = (commandSync(['ip', '-o', 'link', 'show']) ?? '')
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((l): l is string => l !== undefined && labOfName(l) === x);
  for (const l of links) if (l !== n.bridge) commandSync(['ip', 'link', 'del', l]);
  for (const ns of namespaces) commandSync(['ip', 'netns', 'del', ns]);
  commandSync(['ip', 'link', 'del', n.bridge]);
}

function defaultLogger(): Logger {
  return createLogger({ level: process.env.HAOSCAR_LAB_LOG ?? 'warn', name: 'netlab' });
}

export class NetLab {
  /** The third octet: this lab is 10.213.X.0/24. */
  readonly x: number;
  /** `10.213.X.0/24`. */
  readonly subnet: string;
  /** `10.213.X.1`, the root side of the bridge, where the dev server listens. */
  readonly bridgeIp: string;
  /** `10.213.X.200/24`: an address no namespace has, for the tests' VIP. */
  readonly vip: string;
  /** `10.213.X.200`. */
  readonly vipIp: string;
  /** `fd00:213::200/64`: the tests' IPv6 VIP (a lab built with `ipv6: true`). */
  readonly vip6 = `${LAB_IPV6_PREFIX}200/64`;
  /** `fd00:213::200`. */
  readonly vip6Ip = `${LAB_IPV6_PREFIX}200`;
  /** The namespaces have IPv6 addresses too (NetLabOptions.ipv6). */
  readonly ipv6: boolean;
  /** The root-side bridge's name. */
  readonly bridge: string;
  /** The hosts, in the order given. */
  readonly hosts: readonly string[];
  readonly extras: readonly string[];
  /** `'client'`, or undefined when the lab has none. */
  readonly client: string | undefined;
  /** The dev server's web UI (`http://127.0.0.1:PORT`) when startDevServer() was given a `uiPort`. */
  get uiUrl(): string | undefined {
    return this.server?.uiUrl;
  }

  /** The dev server's `ip:port` once startDevServer() ran. */
  temporalAddress: string | undefined;

  private readonly octets = new Map<string, number>();
  private readonly infraPids = new Set<number>();
  private readonly children = new Set<ResultPromise>();
  private readonly samplers = new Set<VipSampler>();
  private readonly probers = new Set<Prober>();
  private readonly frozen = new Set<string>();
  private readonly dead = new Set<string>();
  private readonly events: HostEvent[] = [];
  private macs: Map<string, string> | undefined;
  private devServerOpts: { cli: string; port: number; dbFile?: string; logLevel?: string } | undefined;
  private readonly cuts = new Set<string>();
  private readonly isolated = new Set<string>();
  private readonly noRoot = new Set<string>();
  private readonly nsInodes = new Map<number, string>();
  private readonly pidHosts = new Map<number, string>();
  private server: DevServer | undefined;
  private forwarder: Server | undefined;
  private readonly forwarded = new Set<Socket>();
  private closing: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly names: LabNames,
    private readonly lock: LabLock,
    /** A temporary directory for configs and logs; removed by close() unless kept. */
    readonly dir: string,
    opts: NetLabOptions,
    readonly logger: Logger,
    private readonly keepDir: boolean,
  ) {
    this.x = names.x;
    this.subnet = names.subnet;
    this.bridge = names.bridge;
    this.bridgeIp = names.ip(OCTETS.bridge);
    this.vipIp = names.ip(OCTETS.vip);
    this.vip = `${this.vipIp}/24`;
    this.hosts = [...opts.hosts];
    this.extras = [...(opts.extra ?? [])];
    this.client = opts.client === false ? undefined : CLIENT;
    this.ipv6 = opts.ipv6 === true;
    this.hosts.forEach((h, i) => this.octets.set(h, OCTETS.firstHost + i));
    if (this.client) this.octets.set(this.client, OCTETS.client);
    this.extras.forEach((h, i) => this.octets.set(h, OCTETS.firstExtra + i));
  }

  /** Every namespace of the lab: hosts, client, extras. */
  get all(): string[] {
    return [...this.octets.keys()];
  }

  /**
   * Builds a lab: checks the prerequisites, removes stale labs of crashed runs, takes a free
   * /24 of 10.213.0.0/16, creates the bridge, the namespaces and their links.
   * @throws {LabPrerequisiteError} when a tool is missing or namespaces cannot be created (not root).
   * @throws Error on bad host names or when no /24 is free; nothing is left behind.
   */
  static async create(opts: NetLabOptions): Promise<NetLab> {
    checkPrerequisites();
    const names = [...opts.hosts, ...(opts.client === false ? [] : [CLIENT]), ...(opts.extra ?? [])];
    const bad = names.filter((h) => !NAME_RE.test(h));
    if (bad.length > 0) throw new Error(`lab host names must be letters, digits and dashes, starting with a letter: ${bad.join(', ')}`);
    const dup = names.filter((h, i) => names.indexOf(h) !== i);
    if (dup.length > 0) throw new Error(`lab host names must be unique (\`${CLIENT}\` is the client's): ${dup.join(', ')}`);
    if (opts.hosts.length === 0 || opts.hosts.length > MAX_HOSTS) throw new Error(`a lab has 1 to ${MAX_HOSTS} hosts, not ${opts.hosts.length}`);
    if ((opts.extra?.length ?? 0) > MAX_EXTRA) throw new Error(`a lab has at most ${MAX_EXTRA} extra namespaces`);

    const logger = opts.logger ?? defaultLogger();
    await NetLab.cleanupStale(logger);

    const [addrs, routes, namespaces, links, tables] = await Promise.all([
      command(logger, ['ip', '-o', '-4', 'addr', 'show'], { reject: false }),
      command(logger, ['ip', '-4', 'route', 'show', 'table', 'all'], { reject: false }),
      listNamespaces(logger),
      listLinks(logger),
      listNftTables(logger),
    ]);
    const used = usedThirdOctets(`${addrs.stdout}\n${routes.stdout}`);
    for (const name of [...namespaces, ...links, ...tables.map((t) => t.name)]) {
      const x = labOfName(name);
      if (x !== undefined) used.add(x);
    }
    let lock: LabLock | undefined;
    for (let x = 0; x < 256 && !lock; x++) if (!used.has(x)) lock = await tryLock(x);
    if (!lock) {
      throw new Error(`no free /24 in 10.213.0.0/16 for a network lab: every one is locked or overlaps an address or route of this machine (ip -o -4 addr; ip -4 route show table all)`);
    }
    const keepDir = opts.keepDir ?? process.env.HAOSCAR_LAB_KEEP === '1';
    let dir: string;
    try {
      dir = await mkdtemp(join(tmpdir(), `haoscar-netlab-${lock.x}-`));
      await lock.setDir(dir);
    } catch (e) {
      await lock.release().catch(() => {});
      throw e;
    }
    const lab = new NetLab(labNames(lock.x), lock, dir, opts, logger, keepDir);
    openLabs.add(lab);
    installExitHooks();
    try {
      await lab.build();
    } catch (e) {
      await lab.close();
      const msg = e instanceof Error ? e.message : String(e);
      throw /Operation not permitted|Permission denied|mount --make-shared/i.test(msg) ? namespaceError(e) : e;
    }
    return lab;
  }

  private async build(): Promise<void> {
    const n = this.names;
    const ip = (lines: string[], ns?: string) =>
      command(this.logger, ['ip', ...(ns ? ['-n', ns] : []), '-batch', '-'], { input: `${lines.join('\n')}\n` });
    // No IPv6 link-local addresses anywhere (addrgenmode none): the lab speaks IPv4 only.
    const root = [
      `link add ${n.bridge} type bridge forward_delay 0 stp_state 0 mcast_snooping 0`,
      `link set ${n.bridge} addrgenmode none`,
      `addr add ${this.bridgeIp}/24 dev ${n.bridge}`,
      `link set ${n.bridge} up`,
    ];
    for (const [host, octet] of this.octets) {
      const ns = n.namespace(host);
      const veth = n.veth(octet);
      root.push(
        `netns add ${ns}`,
        `link add ${veth} type veth peer name eth0 netns ${ns}`,
        `link set ${veth} addrgenmode none`,
        `link set ${veth} alias haoscar-lab-${this.x}:${host}`,
        `link set ${veth} master ${n.bridge} up`,
      );
    }
    await ip(root);
    await command(this.logger, ['nft', '-f', '-'], { input: nftTables(n) });
    // Linux deletes an interface's IPv6 addresses when it goes down (IPv4 ones stay): keep them,
    // so that killHost() leaves a dead host its addresses, VIP included, in both families, as a
    // machine that lost power keeps them, and reviveHost() brings the host back with them.
    if (this.ipv6) {
      await Promise.all([...this.octets.keys()].map((host) =>
        command(this.logger, ['ip', 'netns', 'exec', n.namespace(host), 'sysctl', '-q', '-w', 'net.ipv6.conf.eth0.keep_addr_on_down=1'])));
    }
    await Promise.all(
      [...this.octets].map(([host, octet]) =>
        ip([
          'link set eth0 addrgenmode none',
          `addr add ${n.ip(octet)}/24 dev eth0`,
          // nodad: usable at once, as the lab's IPv4 addresses are (nobody else has it).
          ...(this.ipv6 ? [`addr add ${LAB_IPV6_PREFIX}${octet}/64 dev eth0 nodad`] : []),
          'link set lo up',
          'link set eth0 up',
        ], n.namespace(host)),
      ),
    );
    for (const host of this.octets.keys()) this.nsInodes.set(statSync(`/run/netns/${n.namespace(host)}`).ino, host);
    this.logger.info({ subnet: this.subnet, hosts: this.all, dir: this.dir }, 'network lab ready');
  }

  /** The namespace of a lab host. @throws Error for a name that is not the lab's. */
  ns(host: string): string {
    if (!this.octets.has(host)) throw new Error(`'${host}' is not a host of this lab (${this.all.join(', ')})`);
    return this.names.namespace(host);
  }

  /** A host's address, e.g. `10.213.X.11` (no prefix length). */
  address(host: string): string {
    this.ns(host);
    return this.names.ip(this.octets.get(host)!);
  }

  /** A host's IPv6 address in a lab built with `ipv6: true`, e.g. `fd00:213::11` (no prefix length). */
  address6(host: string): string {
    this.ns(host);
    if (!this.ipv6) throw new Error('this lab has no IPv6 addresses: create it with ipv6: true');
    return `${LAB_IPV6_PREFIX}${this.octets.get(host)!}`;
  }

  /** `10.213.X.<lastOctet>`. */
  ip(lastOctet: number): string {
    return this.names.ip(lastOctet);
  }

  /** The root-side (bridge port) end of a host's veth pair. */
  veth(host: string): string {
    this.ns(host);
    return this.names.veth(this.octets.get(host)!);
  }

  /**
   * Runs `argv` in a host's namespace (`ip netns exec`) and waits for it.
   * @throws {LabCommandError} when it fails, unless `reject: false`.
   */
  run(host: string, argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    return command(this.logger, ['ip', 'netns', 'exec', this.ns(host), ...argv], opts);
  }

  /**
   * Starts a long-running process in a host's namespace; close() kills it (and so do the
   * faults that kill a host). Never rejects: await it for its exit code or signal.
   */
  spawn(host: string, argv: readonly string[], opts: SpawnOptions = {}): ResultPromise {
    const ns = this.ns(host);
    if (this.closed || this.closing) throw new Error('the network lab is closed');
    const log = opts.log ?? `${host}-${basename(argv[0] ?? 'process')}.log`;
    const out = log === 'pipe' || log === 'ignore' ? log : { file: isAbsolute(log) ? log : join(this.dir, log), append: true };
    const options: Options = {
      reject: false,
      stdin: opts.stdin ?? 'ignore',
      stdout: out,
      stderr: out,
      cleanup: true,
      ...(opts.env ? { env: opts.env } : {}),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    };
    this.logger.debug({ host, command: argv }, 'lab spawn');
    const child = execa('ip', ['netns', 'exec', ns, ...argv], options);
    this.children.add(child);
    void child.then(() => this.children.delete(child));
    return child;
  }

  /**
   * Starts the Temporal dev server (no UI unless `uiPort`) on the root side, bound to the bridge
   * address only, so the hosts reach it and nothing else does. In memory unless `dbFile` (SQLite) is given:
   * then restartDevServer() brings it back with its state, as a restarted Temporal would.
   * Idempotent (the first call's options hold).
   * @returns its address, `10.213.X.1:PORT`.
   * @throws when the Temporal CLI cannot be found/built or the server does not start.
   */
  async startDevServer(opts: { logLevel?: string; dbFile?: string; uiPort?: number } = {}): Promise<string> {
    if (this.temporalAddress) return this.temporalAddress;
    const cli = await ensureTemporalCli({ logger: this.logger, onProgress: (m) => process.stderr.write(`${m}\n`) });
    // The dev server of Temporal CLI 1.5.1 bound to any other address than a loopback one or
    // 0.0.0.0 cannot start workflows (its services dial each other on 127.0.0.1); bound to
    // 0.0.0.0 it would listen on the machine's real interfaces. So it listens on 127.0.0.1,
    // and a forwarder on the bridge address lets the hosts reach it, and nothing else.
    this.server = await startDevServer({
      cli,
      // The UI (the failover demo's) listens on 127.0.0.1 of this machine, like the frontend.
      uiPort: opts.uiPort ?? false,
      logger: this.logger,
      ...(opts.logLevel ? { logLevel: opts.logLevel } : {}),
      ...(opts.dbFile ? { dbFile: opts.dbFile } : {}),
    });
    const port = Number(this.server.address.split(':').at(-1));
    this.devServerOpts = { cli, port, ...(opts.dbFile ? { dbFile: opts.dbFile } : {}), ...(opts.logLevel ? { logLevel: opts.logLevel } : {}) };
    const target = this.server.address;
    this.forwarder = createServer((inbound) => {
      const outbound = connect(port, '127.0.0.1');
      inbound.pipe(outbound).pipe(inbound);
      // Destroyed at close: a host cut off from the bridge never closes its side.
      this.forwarded.add(inbound).add(outbound);
      const close = () => {
        inbound.destroy();
        outbound.destroy();
        this.forwarded.delete(inbound);
        this.forwarded.delete(outbound);
      };
      inbound.on('error', close).on('close', close);
      outbound.on('error', close).on('close', close);
    });
    await new Promise<void>((resolve, reject) => {
      this.forwarder!.once('error', reject);
      this.forwarder!.listen(port, this.bridgeIp, () => resolve());
    });
    this.logger.debug({ target, via: `${this.bridgeIp}:${port}` }, 'dev server reachable from the lab');
    this.temporalAddress = `${this.bridgeIp}:${port}`;
    return this.temporalAddress;
  }

  /**
   * The Temporal server process dies (SIGKILL): every connection to it breaks, and new ones
   * are refused, until restartDevServer(). An in-memory server loses everything with it.
   */
  async killDevServer(): Promise<void> {
    const server = this.server;
    if (!server) throw new Error('the dev server is not running');
    this.server = undefined;
    signalPids([server.pid], 'SIGKILL');
    await server.exited;
    for (const socket of this.forwarded) socket.destroy();
  }

  /**
   * Starts the dev server again after killDevServer(), on the same port (the forwarder and
   * every configuration keep working) and with the same SQLite file, if it had one — without
   * one it comes back empty: the witness's data is lost.
   * @throws when it does not start (for instance when its port was taken meanwhile).
   */
  async restartDevServer(): Promise<void> {
    const o = this.devServerOpts;
    if (!o) throw new Error('the dev server was never started');
    if (this.server) return;
    this.server = await startDevServer({
      cli: o.cli,
      port: o.port,
      uiPort: false,
      logger: this.logger,
      ...(o.logLevel ? { logLevel: o.logLevel } : {}),
      ...(o.dbFile ? { dbFile: o.dbFile } : {}),
    });
  }

  // ---- faults ------------------------------------------------------------------------------

  /**
   * Every host's deaths, revivals, freezes and thaws so far, in order (see HostEvent). The VIP
   * sampler counts a holder only while its host is alive, from these.
   */
  hostEvents(): readonly HostEvent[] {
    return this.events;
  }

  /**
   * A host killed from outside the lab's code (its simulated BMC powered it off: ipmi-bmc.ts),
   * `at` the moment its link went down, for the VIP sampler's live holders. What killHost() notes.
   */
  noteDied(host: string, at: number): void {
    this.dead.add(host);
    this.events.push({ at, host, kind: 'died' });
    if (this.frozen.delete(host)) this.events.push({ at, host, kind: 'thawed' });
  }

  /** The lab's own observers (VIP samplers, probers): processes in the hosts' namespaces that are not the hosts'. */
  observerPids(): number[] {
    return [...this.infraPids];
  }

  /** Hosts killed by killHost() and not revived. */
  deadHosts(): string[] {
    return [...this.dead];
  }

  /** Not killed (a frozen host is alive). */
  isAlive(host: string): boolean {
    return !this.dead.has(host);
  }

  private note(host: string, kind: HostEvent['kind']): void {
    this.events.push({ at: Date.now(), host, kind });
  }

  /** The processes in a host's namespace, without the lab's own observers (sampler, prober). */
  async pids(host: string): Promise<number[]> {
    return namespacePids(this.ns(host)).filter((p) => !this.infraPids.has(p));
  }

  /** Sends `signal` to every process in a host's namespace. @returns the pids signalled. */
  async signalHost(host: string, signal: NodeJS.Signals): Promise<number[]> {
    const pids = await this.pids(host);
    this.notePids(host, pids);
    return signalPids(pids, signal);
  }

  /**
   * Node death: its link goes down (`ip link set eth0 down` inside: from then on nothing
   * reaches it, not even ARP) and every process in the namespace is SIGKILLed (until none is
   * left). Its addresses stay configured, the VIP included, as on a machine that lost power:
   * removing them would be the harness doing what the product must make unnecessary. So the
   * VIP sampler counts a holder only while its host is alive (hostEvents()), and a revived
   * host comes back with whatever it had: its agent (or guard) must clear it.
   */
  async killHost(host: string): Promise<number[]> {
    const ns = this.ns(host);
    await command(this.logger, ['ip', '-n', ns, 'link', 'set', 'eth0', 'down']);
    // Dead from the moment the link is down (noted after it is, never before).
    this.dead.add(host);
    this.note(host, 'died');
    const killed = new Set<number>();
    for (let round = 0; round < 50; round++) {
      const pids = await this.pids(host);
      if (pids.length === 0) break;
      this.notePids(host, pids);
      for (const p of signalPids(pids, 'SIGKILL')) killed.add(p);
      await sleep(10);
    }
    if (this.frozen.delete(host)) this.note(host, 'thawed');
    this.logger.info({ host, killed: [...killed] }, 'lab: host killed');
    return [...killed];
  }

  /**
   * After killHost(): the link is up again, with the addresses it had (the host's processes
   * are for the test to start; a stale VIP is for them to clear).
   */
  async reviveHost(host: string): Promise<void> {
    // Alive from before the link is up (noted before, never after).
    this.dead.delete(host);
    this.note(host, 'revived');
    await command(this.logger, ['ip', '-n', this.ns(host), 'link', 'set', 'eth0', 'up']);
    await command(this.logger, ['ip', 'link', 'set', this.veth(host), 'up']);
  }

  /**
   * Cable pulled: the bridge-side end of the host's link goes down, so the host sees its
   * `eth0` lose carrier and reaches nobody (peers, client, Temporal) until linkUp().
   */
  async linkDown(host: string): Promise<void> {
    await command(this.logger, ['ip', 'link', 'set', this.veth(host), 'down']);
  }

  async linkUp(host: string): Promise<void> {
    await command(this.logger, ['ip', 'link', 'set', this.veth(host), 'up']);
  }

  private async nft(lines: string[]): Promise<void> {
    if (lines.length > 0) await command(this.logger, ['nft', '-f', '-'], { input: `${lines.join('\n')}\n` });
  }

  private pairs(a: Side, b: Side, oneWay: boolean): string[] {
    const as = (typeof a === 'string' ? [a] : a).map((h) => this.veth(h));
    const bs = (typeof b === 'string' ? [b] : b).map((h) => this.veth(h));
    const out: string[] = [];
    for (const x of as) {
      for (const y of bs) {
        if (x === y) throw new Error('a host cannot be partitioned from itself');
        out.push(`"${x}" . "${y}"`);
        if (!oneWay) out.push(`"${y}" . "${x}"`);
      }
    }
    return out;
  }

  /**
   * Partition: every frame between a host of side `a` and a host of side `b` is dropped on
   * the bridge (ARP too, so neither reaches a VIP the other holds); both still reach the
   * root side (Temporal), the client and the other hosts. `oneWay`: only frames from `a` to `b`.
   */
  async partition(a: Side, b: Side, opts: { oneWay?: boolean } = {}): Promise<void> {
    const add = this.pairs(a, b, opts.oneWay ?? false).filter((p) => !this.cuts.has(p));
    if (add.length === 0) return;
    await this.nft([`add element bridge ${this.names.prefix} cut { ${add.join(', ')} }`]);
    for (const p of add) this.cuts.add(p);
  }

  /** Undoes partition(a, b) (both directions). */
  async healPartition(a: Side, b: Side): Promise<void> {
    const del = this.pairs(a, b, false).filter((p) => this.cuts.has(p));
    if (del.length === 0) return;
    await this.nft([`delete element bridge ${this.names.prefix} cut { ${del.join(', ')} }`]);
    for (const p of del) this.cuts.delete(p);
  }

  /**
   * Isolation: every frame to or from the host is dropped on the bridge — peers, client and
   * Temporal — while its link stays up (it only notices through timeouts; compare linkDown()).
   */
  async isolate(host: string): Promise<void> {
    await this.setMember('isolated', this.isolated, host, true);
  }

  async rejoin(host: string): Promise<void> {
    await this.setMember('isolated', this.isolated, host, false);
  }

  /** The host loses the root side (the dev server) but still reaches its peers and the client. */
  async cutTemporal(host: string): Promise<void> {
    await this.setMember('no_root', this.noRoot, host, true);
  }

  async restoreTemporal(host: string): Promise<void> {
    await this.setMember('no_root', this.noRoot, host, false);
  }

  private async setMember(set: string, mine: Set<string>, host: string, add: boolean): Promise<void> {
    const veth = this.veth(host);
    if (mine.has(veth) === add) return;
    await this.nft([`${add ? 'add' : 'delete'} element bridge ${this.names.prefix} ${set} { "${veth}" }`]);
    if (add) mine.add(veth);
    else mine.delete(veth);
  }

  /**
   * Lossy links: `percent` % of the frames to and from each of `hosts` are dropped at random
   * on the bridge (nftables `numgen random`), in both directions, to peers, client and
   * Temporal alike; a frame between two lossy hosts runs the risk twice. Replaces an earlier
   * loss of the same host. Undone by healLoss() (or healNetwork()).
   */
  async lossy(hosts: Side, percent: number): Promise<void> {
    if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new Error(`a loss is a whole percentage, not ${percent}`);
    const list = typeof hosts === 'string' ? [hosts] : hosts;
    // `numgen random mod 100` is 0-99: `< 100` is not a valid comparison, and 100 % is every frame.
    const when = percent === 100 ? '' : `numgen random mod 100 < ${percent} `;
    const rules = percent === 0 ? [] : list.flatMap((h) => {
      const v = this.veth(h);
      return [
        `add rule bridge ${this.names.prefix} lossy iifname "${v}" ${when}drop`,
        `add rule bridge ${this.names.prefix} lossy oifname "${v}" ${when}drop`,
      ];
    });
    await this.healLoss(list);
    await this.nft(rules);
  }

  /** Undoes lossy() for `hosts` (default: every host). */
  async healLoss(hosts?: Side): Promise<void> {
    const p = this.names.prefix;
    if (hosts === undefined) {
      await this.nft([`flush chain bridge ${p} lossy`]);
      return;
    }
    const veths = new Set((typeof hosts === 'string' ? [hosts] : hosts).map((h) => `"${this.veth(h)}"`));
    const listing = await command(this.logger, ['nft', '-a', 'list', 'chain', 'bridge', p, 'lossy']);
    const handles = listing.stdout
      .split('\n')
      .filter((l) => [...veths].some((v) => l.includes(v)))
      .map((l) => /# handle (\d+)/.exec(l)?.[1])
      .filter((h): h is string => h !== undefined);
    await this.nft(handles.map((h) => `delete rule bridge ${p} lossy handle ${h}`));
  }

  /** Heals every partition, isolation, Temporal cut and loss (links and killed hosts stay as they are). */
  async healNetwork(): Promise<void> {
    const p = this.names.prefix;
    await this.nft([`flush set bridge ${p} cut`, `flush set bridge ${p} isolated`, `flush set bridge ${p} no_root`, `flush chain bridge ${p} lossy`]);
    this.cuts.clear();
    this.isolated.clear();
    this.noRoot.clear();
  }

  /**
   * A frozen node: SIGSTOP every process in the namespace (again until no new one appears:
   * one may have forked meanwhile). Its addresses stay and its kernel still answers ARP and
   * ping; nothing in it runs until thaw().
   */
  async freeze(host: string): Promise<number[]> {
    const stopped = new Set<number>();
    const already = this.frozen.has(host);
    this.frozen.add(host);
    for (let round = 0; round < 20; round++) {
      const fresh = (await this.pids(host)).filter((p) => !stopped.has(p));
      if (fresh.length === 0) break;
      this.notePids(host, fresh);
      for (const p of signalPids(fresh, 'SIGSTOP')) stopped.add(p);
    }
    if (!already) this.note(host, 'frozen');
    return [...stopped];
  }

  /** SIGCONT every process in the namespace. */
  async thaw(host: string): Promise<number[]> {
    if (this.frozen.delete(host)) this.note(host, 'thawed');
    return this.signalHost(host, 'SIGCONT');
  }

  /** Hosts currently frozen by freeze(). */
  frozenHosts(): string[] {
    return [...this.frozen];
  }

  // ---- observation -------------------------------------------------------------------------

  /**
   * The lab host whose namespace process `pid` runs in, or ran in when it was last seen (a
   * process killed by a fault is remembered). A live process is looked up first: pids are
   * reused (pid_max 32768 wraps within a long chaos run), and a remembered host is then another
   * process's.
   */
  hostOfPid(pid: number): string | undefined {
    try {
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/ns/net`));
      const host = m ? this.nsInodes.get(Number(m[1])) : undefined;
      if (host) this.pidHosts.set(pid, host);
      else this.pidHosts.delete(pid); // a process outside the lab has it now
      return host;
    } catch {
      return this.pidHosts.get(pid);
    }
  }

  private notePids(host: string, pids: readonly number[]): void {
    for (const p of pids) this.pidHosts.set(p, host);
  }

  /** The lab namespaces (hosts, client, extras) that have `address` on an interface, now. */
  async vipHolders(address: string = this.vip): Promise<string[]> {
    const ip = bareIp(address);
    const held = await Promise.all(
      this.all.map(async (host) => {
        const r = await command(this.logger, ['ip', '-n', this.ns(host), '-o', ip.includes(':') ? '-6' : '-4', 'addr', 'show']);
        return parseAddresses(r.stdout).some((a) => a.ip === ip);
      }),
    );
    return this.all.filter((_, i) => held[i]);
  }

  /**
   * Who answers ARP for `address` as seen from the client (or `from`): `arping -b` (broadcast
   * requests, so every holder keeps being asked) for `seconds`, each distinct MAC that answered,
   * mapped to the lab host whose eth0 has it. Two answers are a duplicate address that the
   * client's own neighbour cache may pick either of. (`arping -D` is no use for this: it exits
   * 1 and stops at the FIRST reply, one holder or two.) A dead host does not answer (its link
   * is down); a frozen one does (its kernel runs).
   */
  async arpingAddress(address: string = this.vip, opts: { from?: string; seconds?: number } = {}): Promise<ArpingReport> {
    const from = opts.from ?? this.client;
    if (!from) throw new Error('this lab has no client namespace: pass `from`');
    const ip = bareIp(address);
    this.macs ??= await this.readMacs();
    const at = Date.now();
    // -w: the deadline; -c (with -w): stop after that many replies, so more than two holders
    // could ever send in that time.
    const r = await command(this.logger, ['ip', 'netns', 'exec', this.ns(from), 'arping', '-b', '-I', 'eth0', '-w', String(opts.seconds ?? 1), '-c', '1000', ip], { reject: false });
    const seen = new Set<string>();
    for (const m of r.stdout.matchAll(/reply from [\d.]+ \[([0-9A-Fa-f:]{17})\]/g)) seen.add(m[1]!.toLowerCase());
    const byMac = new Map([...this.macs].map(([h, mac]) => [mac, h]));
    return {
      at,
      address: ip,
      answers: [...seen].map((mac) => ({ mac, ...(byMac.has(mac) ? { host: byMac.get(mac)! } : {}) })),
      output: `${r.stdout}${r.stderr}`.trim(),
    };
  }

  private async readMacs(): Promise<Map<string, string>> {
    const macs = new Map<string, string>();
    for (const host of this.all) {
      const r = await command(this.logger, ['ip', '-n', this.ns(host), '-o', 'link', 'show', 'eth0']);
      const mac = /link\/ether ([0-9a-f:]{17})/i.exec(r.stdout)?.[1];
      if (mac) macs.set(host, mac.toLowerCase());
    }
    return macs;
  }

  /**
   * Watches who holds `address` in every lab namespace until `stop()`: samples every
   * `everyMs`, plus the exact periods from address events (see vip-sampler.ts). A holder
   * counts only while its host is alive (killHost/reviveHost); frozen holders are told apart.
   */
  async sampleVip(address: string = this.vip, everyMs = 20): Promise<VipSampler> {
    const sampler = await VipSampler.start(
      address,
      this.all.map((host) => ({ host, namespace: this.ns(host) })),
      everyMs,
      {
        ...this.observerContext(),
        hostState: () => ({ dead: this.dead, frozen: this.frozen }),
        hostEvents: () => this.events,
      },
    );
    this.samplers.add(sampler);
    return sampler;
  }

  /**
   * Requests `url` every `everyMs` from the client namespace (or `from`), until `stop()`.
   * Resolves once the first request has finished.
   */
  async probe(url: string, opts: ProbeOptions & { from?: string } = {}): Promise<Prober> {
    const from = opts.from ?? this.client;
    if (!from) throw new Error('this lab has no client namespace: create it with client: true, or pass `from`');
    const prober = await Prober.start(url, opts, { ...this.observerContext(), namespace: this.ns(from), hostOfPid: (pid) => this.hostOfPid(pid) });
    this.probers.add(prober);
    return prober;
  }

  private observerContext() {
    return {
      logger: this.logger,
      addInfraPid: (pid: number) => this.infraPids.add(pid),
      removeInfraPid: (pid: number) => this.infraPids.delete(pid),
    };
  }

  // ---- cleanup -----------------------------------------------------------------------------

  /**
   * Stops the observers, kills every process of the lab (SIGCONT, then SIGKILL, everything
   * in its namespaces), stops the dev server, deletes the nftables tables, veths, namespaces
   * and bridge, removes `dir` (unless kept) and releases the /24. Never throws: what failed is
   * logged as a warning. Idempotent.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      const problems: string[] = [];
      const step = async (what: string, fn: () => Promise<unknown>) => {
        try {
          await fn();
        } catch (e) {
          problems.push(`${what}: ${e instanceof Error ? e.message : String(e)}`);
        }
      };
      await Promise.all([...this.samplers].map((s) => step('stop the VIP sampler', () => s.stop())));
      await Promise.all([...this.probers].map((p) => step('stop the prober', () => p.stop())));
      await Promise.all([
        step('tear down the namespaces', async () => problems.push(...(await teardown(this.logger, this.x)))),
        step('stop the dev server', async () => {
          this.forwarder?.close();
          for (const socket of this.forwarded) socket.destroy();
          if (!this.server) return;
          // In memory, nothing to save: SIGKILL rather than wait seconds for a graceful stop.
          signalPids([this.server.pid], 'SIGKILL');
          await this.server.stop();
        }),
      ]);
      // Everything spawned ran in a namespace, so it is dead; let execa see it exit.
      for (const c of this.children) c.kill('SIGKILL');
      await step('wait for the spawned processes', async () => {
        const grace = new AbortController();
        const exited = await Promise.race([
          Promise.all([...this.children]).then(() => true),
          sleep(5_000, false, { signal: grace.signal }).catch(() => false),
        ]);
        grace.abort(); // a pending 5 s timer would keep the process alive
        if (!exited) throw new Error(`${this.children.size} spawned processes had not exited 5 s after SIGKILL`);
      });
      if (this.keepDir) this.logger.warn({ dir: this.dir }, 'network lab directory kept');
      else await step('remove the lab directory', () => rm(this.dir, { recursive: true, force: true }));
      await step('release the lab lock', () => this.lock.release());
      openLabs.delete(this);
      this.closed = true;
      if (problems.length > 0) this.logger.warn({ lab: this.x, problems }, 'network lab cleanup was incomplete');
    })();
    return this.closing;
  }

  /** close() for exit handlers: synchronous and best effort. */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    openLabs.delete(this);
    signalPids(this.infraPids, 'SIGKILL');
    for (const c of this.children) c.kill('SIGKILL');
    if (this.server) signalPids([this.server.pid], 'SIGKILL');
    try {
      teardownSync(this.x);
      if (!this.keepDir) rmSync(this.dir, { recursive: true, force: true });
      this.lock.releaseSync();
    } catch {
      // Exit handlers must not throw; cleanupStale() removes what is left on the next run.
    }
  }

  /**
   * Removes the labs of earlier runs that did not clean up (their lock's owner is dead, or
   * there is no lock): kills their processes, deletes their namespaces, links, nftables tables,
   * directories and locks. Labs of live processes are left alone. Never throws.
   * @returns the third octets of the labs removed.
   */
  static async cleanupStale(logger: Logger = defaultLogger()): Promise<number[]> {
    const cleaned: number[] = [];
    try {
      const [locks, namespaces, links, tables] = await Promise.all([lockedLabs(), listNamespaces(logger), listLinks(logger), listNftTables(logger)]);
      const candidates = new Set<number>(locks);
      for (const name of [...namespaces, ...links, ...tables.map((t) => t.name)]) {
        const x = labOfName(name);
        if (x !== undefined) candidates.add(x);
      }
      const mine = new Set([...openLabs].map((l) => l.x));
      for (const x of [...candidates].sort((a, b) => a - b)) {
        if (mine.has(x)) continue;
        const claim = await claimStale(x);
        if (!claim) continue;
        const problems = await teardown(logger, x);
        const dir = claim.previous?.dir;
        if (dir && dir.startsWith(join(tmpdir(), 'haoscar-netlab-'))) await rm(dir, { recursive: true, force: true }).catch(() => {});
        await claim.lock.release().catch(() => {});
        cleaned.push(x);
        logger.warn({ lab: x, previousOwner: claim.previous?.pid, problems }, 'removed a stale network lab');
      }
    } catch (e) {
      logger.warn({ err: e }, 'could not clean up stale network labs');
    }
    return cleaned;
  }
}
