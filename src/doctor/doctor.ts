/**
 * `haoscar doctor`'s checks, run on one node: each returns findings (finding.ts), none throws
 * for what it finds. What needs root (the secret, ports below 1024, the agent's socket) is
 * reported as skipped, with why, when run by another user.
 */
import { stat } from 'node:fs/promises';
import { createSocket } from 'node:dgram';
import { connect, createServer, isIPv6 } from 'node:net';
import { networkInterfaces } from 'node:os';
import { constants, accessSync } from 'node:fs';
import { ServiceError } from '@temporalio/client';
import type { Exec } from '../exec.js';
import type { Config } from '../config/types.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { configDigest } from '../config/digest.js';
import { HeartbeatSecretError, loadHeartbeatSecret } from '../heartbeat/secret.js';
import { LocalStatusError, readLocalStatus, type LocalStatus } from '../agent/local-status.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import { parseFrontend } from '../temporal/frontends.js';
import { findOnPath, findTemporalCli } from '../temporal/cli-binary.js';
import { CliError, EXIT } from '../cli/errors.js';
import type { Finding } from './finding.js';
import { fencedFrom } from '../config/fence-check.js';
import { fenceDeviceStatus } from '../fence.js';
import { silentLogger } from '../log.js';
import { readOsRelease } from '../distro/os-release.js';
import { KNOWN_FAMILIES, OCF_ROOT, classifyDistro, environmentFile, firewallCommands, firewallNote, type Distro, type Family, type FirewallTool, type Flavour, type PackageManager } from '../distro/families.js';
import { installFix, packageFor } from '../distro/packages.js';
import { DEFAULT_INIT_DIR } from '../drivers/sysv.js';
import { requiredTools } from './prerequisites.js';
import { probeTimeSync } from './time-sync.js';

export interface DoctorOptions {
  configFile: string;
  /** This node's name; found from this host's addresses when undefined. */
  node?: string;
  exec: Exec;
  /** Per network call and per command. */
  timeoutMs: number;
  /** Where programs are looked up (PATH); the process's own by default. */
  env?: NodeJS.ProcessEnv;
}

export interface DoctorReport {
  cluster?: string;
  node?: string;
  /** What os-release says, and (when it is in a known family) what follows from it. */
  distribution?: { id: string; idLike: string[]; name: string; versionId?: string; family?: Family; flavour?: Flavour; packageManager?: PackageManager; firewall?: FirewallTool; environmentFile?: string };
  findings: Finding[];
}

/** Where distributions install programs: a configured path here is the package's. */
const STANDARD_DIRS = ['/usr/bin', '/usr/sbin', '/bin', '/sbin'];
const isRoot = () => process.getuid?.() === 0;
const errnoOf = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code;
const CREATE_SECRET = (file: string) => `head -c 32 /dev/urandom | base64 > ${file}; chmod 600 ${file}   # on one node, then copy the same file to every node`;

/** Every address of this host, from its interfaces. */
function hostAddresses(): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address)));
}

/** The node whose addresses are this host's, when exactly one is. */
export function nodeOfHost(config: Config, addresses: ReadonlySet<string>): string | undefined {
  const mine = config.nodes.filter((n) => n.addresses.some((a) => addresses.has(a)));
  return mine.length === 1 ? mine[0]!.name : undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Runs every check; @throws CliError (usage) only for a --node that is not in the configuration. */
export async function runDoctor(opts: DoctorOptions): Promise<DoctorReport> {
  const env = opts.env ?? process.env;
  const findings: Finding[] = [];
  const report: DoctorReport = { findings };

  const release = await readOsRelease();
  const distro = release ? classifyDistro(release.os) : undefined;
  if (release) {
    report.distribution = { ...release.os, ...(distro ? { family: distro.family, flavour: distro.flavour, packageManager: distro.packageManager, firewall: distro.firewall, environmentFile: environmentFile(distro) } : {}) };
  }
  findings.push(distributionFinding(release, distro));

  let config: Config;
  try {
    config = await loadConfig(opts.configFile);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    findings.push({ check: 'config', level: 'error', found: `${opts.configFile} is not a valid configuration: ${err.message}`, fix: `edit ${opts.configFile} as said, then check it with: haoscar validate -c ${opts.configFile}` });
    return report;
  }
  report.cluster = config.cluster;
  findings.push({ check: 'config', level: 'ok', found: `${opts.configFile} is valid (cluster ${config.cluster}, ${config.nodes.length} node(s), ${config.groups.length} group(s))` });

  const addresses = hostAddresses();
  let node = opts.node;
  if (node !== undefined && !config.nodes.some((n) => n.name === node)) {
    throw new CliError(`node '${node}' is not in cluster '${config.cluster}' (known nodes: ${config.nodes.map((n) => n.name).join(', ')})`, EXIT.usage);
  }
  node ??= nodeOfHost(config, addresses);
  if (node === undefined) {
    findings.push({ check: 'node', level: 'error', found: `no single node of the configuration has its addresses on this host (${[...addresses].join(', ')})`, fix: `say which node this is: haoscar doctor -c ${opts.configFile} --node NAME (or add this host's address to its node's addresses)` });
    return report;
  }
  report.node = node;
  const me = config.nodes.find((n) => n.name === node)!;
  const hasPeers = config.nodes.length > 1;

  findings.push(...checkTools(config, node, distro, env));
  const secret = hasPeers ? await checkSecret(config.heartbeat.secretFile, findings) : undefined;
  const local = await readAgent(config, node, opts.timeoutMs, findings);
  findings.push(...(await checkPorts(config, me, addresses, local)));
  if (local) findings.push(...checkPeers(config, opts.configFile, local, secret, distro));
  findings.push(...(await checkTemporal(config, opts.configFile, opts.timeoutMs, local)));
  findings.push(await checkTime(opts.exec, opts.timeoutMs, distro));
  findings.push(...(await checkFencing(config, node, opts.exec, opts.timeoutMs)));
  return report;
}

const FENCE_STATUS_MIN_MS = 20_000;

/**
 * Whether this node could fence each node it may take a group over from, now: the fence agent's
 * `status` action (changes nothing) must reach the device and read the node's power. A node
 * that is off is a warning: fine for a fence, odd for a running cluster.
 */
export async function checkFencing(config: Config, node: string, exec: Exec, timeoutMs: number): Promise<Finding[]> {
  const findings: Finding[] = [];
  for (const victim of fencedFrom(config, node)) {
    const configured = config.nodes.find((n) => n.name === victim)!.fence!;
    // A fence agent is a Python program that logs in to a device: 20 s at least, but not longer
    // than a real fence may take.
    const spec = { ...configured, timeoutMs: Math.min(configured.timeoutMs, Math.max(timeoutMs, FENCE_STATUS_MIN_MS)) };
    const check = `fence ${victim}`;
    const agent = spec.command[0] ?? 'the fence agent';
    const status = await fenceDeviceStatus(spec, victim, { exec, logger: silentLogger });
    if (status.power === 'on') findings.push({ check, level: 'ok', found: `${agent} reaches ${victim}'s fence device: ${status.detail}` });
    else if (status.power === 'off') findings.push({ check, level: 'warning', found: `${victim}'s fence device says it is powered off: ${status.detail}`, fix: `power ${victim} on, if it should run: ${agent} with its nodes[].fence params and --action on` });
    else {
      findings.push({
        check,
        level: 'error',
        found: `this node cannot fence ${victim} now: ${agent} status failed: ${status.detail}`,
        fix: `from this node, run ${agent} --action status with the parameters of ${victim}'s nodes[].fence (docs/fencing.md#check-it-from-every-node): check the device's address and that this node reaches it, the credentials, lanplus and the cipher suite`,
      });
    }
  }
  return findings;
}

/** What os-release says, and how doctor will name packages and firewall rules from it. */
export function distributionFinding(release: { file: string; os: Distro['os'] } | undefined, distro: Distro | undefined): Finding {
  const check = 'distribution';
  const fix = 'install the programs named below with your package manager (docs/install.md lists what each is)';
  if (!release) return { check, level: 'warning', found: 'neither /etc/os-release nor /usr/lib/os-release exists: the distribution is unknown', fix };
  const { os } = release;
  const fields = `ID=${os.id}${os.idLike.length ? `, ID_LIKE=${os.idLike.join(' ')}` : ''}`;
  if (!distro) return { check, level: 'warning', found: `${os.name} (${fields}, ${release.file}) is in none of the distribution families doctor knows the package names of: ${KNOWN_FAMILIES}`, fix };
  const through = distro.matchedBy.field === 'ID_LIKE' ? ` through ID_LIKE ${distro.matchedBy.value} (a derivative: the package names are ${distro.label}'s)` : '';
  return { check, level: 'ok', found: `${os.name} (${fields}): ${distro.label}${through}; packages with ${distro.packageManager}, firewall ${distro.firewall}, environment file ${environmentFile(distro)}` };
}

/** Whether this node serves the embedded Temporal server: a frontend on one of its own addresses, at temporal.server.port. */
function servesEmbedded(config: Config): boolean {
  const local = new Set([...hostAddresses(), 'localhost']);
  return config.temporal.frontends.concat(config.temporal.address).some((f) => {
    const { host, port } = parseFrontend(f);
    return port === config.temporal.server.port && local.has(host);
  });
}

/** Every program this node needs, found or not; a missing one with the command that installs it on `distro`. */
export function checkTools(config: Config, node: string, distro: Distro | undefined, env: NodeJS.ProcessEnv): Finding[] {
  const embeddedServer = servesEmbedded(config);
  return requiredTools(config, node, { embeddedServer }).map(({ tool, why }): Finding => {
    const check = `tool ${tool}`;
    if (tool === 'temporal') {
      const found = findTemporalCliQuietly(env);
      return found
        ? { check, level: 'ok', found: `${found} (${why})` }
        : { check, level: 'error', found: `no Temporal CLI (TEMPORAL_CLI, PATH, or the cache haoscar server builds into), needed for ${why}`, fix: 'go install github.com/temporalio/cli/cmd/temporal@v1.5.1 (Go 1.24+), then put it on PATH or set TEMPORAL_CLI (docs/temporal.md)' };
    }
    const path = tool.includes('/') ? (isExecutable(tool) ? tool : undefined) : findOnPath(tool, env);
    if (path) return { check, level: 'ok', found: `${path} (${why})` };
    const pkg = distro ? packageFor(tool, distro) : undefined;
    const where = tool.includes('/') ? `${tool} is not an executable file` : `${tool} is not on PATH (${env.PATH ?? ''})`;
    const found = `${where}; needed for ${why}`;
    if (tool.startsWith(`${DEFAULT_INIT_DIR}/`)) {
      const linked = distro && distro.initDir !== DEFAULT_INIT_DIR ? ` (here ${DEFAULT_INIT_DIR} is a link to ${distro.initDir}, made by the chkconfig package)` : '';
      return { check, level: 'error', found, fix: `install the package that ships the init script ${tool.slice(DEFAULT_INIT_DIR.length + 1)}${linked}, or correct the script's name in the configuration` };
    }
    return { check, level: 'error', found, fix: pkg && distro ? `${installFix(distro, [pkg])}${whereItInstalls(tool)}` : `install ${tool} (or correct its path in the configuration)` };
  });
}

/** Where a configured path's package puts the program, when the path is elsewhere: the path may be what is wrong. */
function whereItInstalls(tool: string): string {
  if (!tool.includes('/')) return '';
  if (/\/resource\.d\/[^/]+\/[^/]+$/.test(tool)) {
    return tool.startsWith(`${OCF_ROOT}/`) ? '' : ` (it installs under ${OCF_ROOT}: if the agent is not there, correct the resource's ocfRoot)`;
  }
  const inStandardDir = STANDARD_DIRS.some((d) => tool === `${d}/${tool.slice(tool.lastIndexOf('/') + 1)}`);
  return inStandardDir ? '' : ` (it installs into /usr/bin or /usr/sbin: if ${tool} is not where it is, correct the path in the configuration)`;
}

function findTemporalCliQuietly(env: NodeJS.ProcessEnv): string | undefined {
  try {
    return findTemporalCli(env);
  } catch {
    return undefined; // TEMPORAL_CLI names no executable: reported as missing.
  }
}

/** The secret's mode and content, as the agent will check them; @returns it when readable and sound. */
async function checkSecret(file: string, findings: Finding[]): Promise<Buffer | undefined> {
  const check = 'secret';
  try {
    const s = await stat(file);
    if (s.mode & 0o006) {
      const mode = (s.mode & 0o7777).toString(8).padStart(4, '0');
      findings.push({ check, level: 'error', found: `${file} has mode ${mode}: every user of this host can ${s.mode & 0o004 ? 'read' : 'write'} it (and forge heartbeats); the agent refuses to start`, fix: `chmod 600 ${file}` });
      return undefined;
    }
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') {
      findings.push({ check, level: 'error', found: `${file} (heartbeat.secretFile) does not exist; the agent refuses to start`, fix: CREATE_SECRET(file) });
      return undefined;
    }
    // EACCES on a parent directory: the same as below.
  }
  try {
    const secret = await loadHeartbeatSecret(file);
    findings.push({ check, level: 'ok', found: `${file}: ${secret.length} bytes, readable by its owner only (group access allowed)` });
    return secret;
  } catch (err) {
    if (!(err instanceof HeartbeatSecretError)) throw err;
    if (errnoOf(err.cause) === 'EACCES' && !isRoot()) {
      findings.push({ check, level: 'skipped', found: `${file} is not readable by uid ${process.getuid?.()}: run doctor as root to check it (and to compare the configuration digest with the agent's)` });
      return undefined;
    }
    findings.push({ check, level: 'error', found: err.message, fix: /permission denied/.test(err.message) ? `chown root: ${file}; chmod 600 ${file}` : CREATE_SECRET(file) });
    return undefined;
  }
}

/** This node's agent's own view (its heartbeats, peers' digests), when an agent runs. */
async function readAgent(config: Config, node: string, timeoutMs: number, findings: Finding[]): Promise<LocalStatus | undefined> {
  const check = 'agent';
  try {
    const local = await readLocalStatus(config.agent.stateDir, node, timeoutMs);
    findings.push({ check, level: 'ok', found: `the agent of ${node} runs (pid ${local.pid}, release ${local.release}): ${local.phase}` });
    return local;
  } catch (err) {
    if (!(err instanceof LocalStatusError)) throw err;
    if (err.problem === 'absent') {
      findings.push({ check, level: 'skipped', found: `no agent runs for ${node}: the checks that need it (the peers' configuration digests, whether their heartbeats pass with this secret, the links) are skipped`, fix: `start it: systemctl start haoscar-agent (or haoscar agent -c CONFIG --node ${node})` });
    } else if (/root's/.test(err.message) && !isRoot()) {
      findings.push({ check, level: 'skipped', found: `${err.message}: the peer checks are skipped` });
    } else {
      findings.push({ check, level: 'warning', found: err.message, fix: 'systemctl restart haoscar-agent; journalctl -u haoscar-agent says why it stopped' });
    }
    return undefined;
  }
}

/** Tries to bind `port` as the agent would: undefined when free, else the errno. */
async function tryBind(protocol: 'udp' | 'tcp', address: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    if (protocol === 'udp') {
      const socket = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4' });
      socket.once('error', (err) => {
        socket.close();
        resolve(errnoOf(err) ?? String(err));
      });
      socket.bind({ address, port, exclusive: true }, () => socket.close(() => resolve(undefined)));
    } else {
      const server = createServer();
      server.once('error', (err) => resolve(errnoOf(err) ?? String(err)));
      server.listen({ host: address, port, exclusive: true }, () => server.close(() => resolve(undefined)));
    }
  });
}

async function checkPorts(config: Config, me: Config['nodes'][number], host: ReadonlySet<string>, local: LocalStatus | undefined): Promise<Finding[]> {
  const findings: Finding[] = [];
  const agentRuns = local !== undefined;
  const judge = async (check: string, protocol: 'udp' | 'tcp', address: string, port: number, key: string, own: string) => {
    const errno = await tryBind(protocol, address, port);
    const ss = `ss -${protocol === 'udp' ? 'u' : 't'}lnp 'sport = :${port}'`;
    if (errno === undefined) {
      findings.push(agentRuns
        ? { check, level: 'warning', found: `${port}/${protocol} is free although the agent runs: it does not hold ${own}`, fix: 'journalctl -u haoscar-agent (it says why), then systemctl restart haoscar-agent' }
        : { check, level: 'ok', found: `${port}/${protocol} is free (no agent runs: it will bind it for ${own})` });
    } else if (errno === 'EADDRINUSE') {
      findings.push(agentRuns
        ? { check, level: 'ok', found: `${port}/${protocol} is held (by this node's agent, pid ${local.pid}, for ${own})` }
        : { check, level: 'error', found: `${port}/${protocol} is in use by another program, and no agent runs: the agent cannot bind it for ${own}`, fix: `find it with: ${ss}; stop it, or choose another ${key} (the same on every node)` });
    } else if (errno === 'EACCES' && !isRoot()) {
      findings.push({ check, level: 'skipped', found: `binding ${port}/${protocol} needs root (below 1024): run doctor as root to check it` });
    } else if (errno === 'EADDRNOTAVAIL' || (!host.has(address) && address !== '0.0.0.0')) {
      findings.push({ check, level: 'error', found: `${address} is not an address of this host (${errno})`, fix: `give this host the address (ip address add ${address}/PREFIX dev IFACE, and in its network configuration), or correct node ${me.name}'s addresses` });
    } else {
      findings.push({ check, level: 'error', found: `cannot bind ${address}:${port}/${protocol}: ${errno}`, fix: `check ${key} and ${ss}` });
    }
  };
  if (config.nodes.length > 1) {
    for (const address of me.addresses) await judge(`port heartbeat ${address}:${config.heartbeat.port}`, 'udp', address, config.heartbeat.port, 'heartbeat.port', 'the heartbeats');
    const fileSets = config.groups.some((g) => g.nodes.includes(me.name) && g.fileSets.length > 0);
    if (fileSets && config.sync.transport === 'daemon') await judge(`port rsync ${config.sync.port}`, 'tcp', '0.0.0.0', config.sync.port, 'sync.port', 'the rsync daemon standbys pull file sets from');
  }
  return findings;
}

/**
 * The commands that open this node's heartbeat port to `peer`'s addresses with this
 * distribution's firewall tool (and the same the other way round on the peer); docs/packaging.md
 * when the distribution is unknown.
 */
function openHeartbeatPort(config: Config, peer: string, distro: Distro | undefined): string {
  const from = config.nodes.find((n) => n.name === peer)?.addresses ?? [];
  if (!distro || from.length === 0) return 'docs/packaging.md#firewall';
  const here = firewallCommands(distro.firewall, [{ port: config.heartbeat.port, protocol: 'udp', from }]).join('; ');
  return `here (${distro.firewall}): ${here} (${firewallNote(distro.firewall)}); on ${peer} the same with this node's addresses (docs/packaging.md#firewall)`;
}

/** What the agent's heartbeats tell: the peers' digests (same configuration and secret) and packets refused. */
export function checkPeers(config: Config, configFile: string, local: LocalStatus, secret: Buffer | undefined, distro?: Distro): Finding[] {
  const hb = local.heartbeat;
  if (!hb) return [];
  const findings: Finding[] = [];
  const file = config.heartbeat.secretFile;
  if (secret && hb.configDigest !== undefined) {
    const fromFile = configDigest(config, secret);
    findings.push(fromFile === hb.configDigest
      ? { check: 'config agent', level: 'ok', found: `the agent runs with ${configFile} as it is now (digest ${fromFile})` }
      : { check: 'config agent', level: 'warning', found: `the agent runs with another configuration than ${configFile} now holds (digest ${hb.configDigest}, the file's ${fromFile}): the file changed since it started, or it was started with another file`, fix: 'systemctl restart haoscar-agent (after haoscar validate), on one node at a time' });
  }
  const forged = hb.rejected.forged ?? 0;
  for (const peer of hb.peers) {
    const check = `peer ${peer.node}`;
    if (peer.state !== 'alive') {
      const heard = peer.lastHeardAgoMs === undefined ? 'never heard' : `not heard for ${Math.round(peer.lastHeardAgoMs / 1000)} s (${peer.state})`;
      findings.push(forged > 0
        ? { check, level: 'error', found: `${heard}; ${forged} heartbeat packet(s) were refused for a bad signature: a node whose secret differs from this one's (or forged traffic)`, fix: `copy ${file} from this node to ${peer.node} (scp -p ${file} ${peer.node}:${file}) and restart its agent` }
        : { check, level: peer.lastHeardAgoMs === undefined ? 'error' : 'warning', found: `${heard} on any link: its agent does not run, or UDP port ${config.heartbeat.port} is blocked between the nodes`, fix: `on ${peer.node}: systemctl start haoscar-agent; between the nodes open ${config.heartbeat.port}/udp: ${openHeartbeatPort(config, peer.node, distro)}` });
      continue;
    }
    // Its packets passed the HMAC: it has this node's secret. The digest is an HMAC under that secret too.
    if (peer.configMatches === true) {
      findings.push({ check, level: 'ok', found: `alive; its heartbeats pass with this node's secret, and its configuration digest ${peer.configDigest} equals this node's: the same secret and the same cluster-wide settings` });
    } else if (peer.configMatches === false) {
      findings.push({ check, level: 'error', found: `its configuration digest ${peer.configDigest} differs from this node's ${hb.configDigest ?? '?'}: the cluster-wide settings differ (its heartbeats pass, so the secret is the same)`, fix: `make the configurations equal: compare with: diff <(ssh ${peer.node} cat ${configFile}) ${configFile}; copy the right one to every node, restart the agents one at a time` });
    } else {
      findings.push({ check, level: 'warning', found: `alive; its heartbeats pass with this node's secret, but it sends no configuration digest (heartbeat protocol ${peer.protocol ?? '?'}${peer.protocolProblem ? `: ${peer.protocolProblem}` : ''})`, fix: `upgrade ${peer.node} to this release (docs/upgrading.md)` });
    }
    for (const link of peer.links.filter((l) => !l.alive)) {
      findings.push({ check: `link ${link.link}`, level: 'warning', found: `silent${link.lastHeardAgoMs !== undefined ? ` for ${Math.round(link.lastHeardAgoMs / 1000)} s` : ' (never heard)'} while ${peer.node} is heard on another link`, fix: `check the link (ping ${link.link.split('->')[0]}) and that ${config.heartbeat.port}/udp is open on it` });
    }
  }
  if (forged > 0 && !findings.some((f) => f.level === 'error' && /bad signature/.test(f.found))) {
    findings.push({ check: 'secret peers', level: 'warning', found: `${forged} heartbeat packet(s) refused for a bad signature since the agent started: something sends with another secret (a node that had another one, or forged traffic)`, fix: `make ${file} the same on every node; journalctl -u haoscar-agent names the sender` });
  }
  const CONFIG_REASONS: Record<string, string> = { 'unknown-node': 'a node not in this configuration', misdirected: 'sent to an address not in this node\'s list', 'wrong-cluster': 'another cluster with the same secret and port' };
  for (const [reason, what] of Object.entries(CONFIG_REASONS)) {
    const n = hb.rejected[reason] ?? 0;
    if (n > 0) findings.push({ check: `heartbeats ${reason}`, level: 'warning', found: `${n} packet(s) refused: ${what}`, fix: reason === 'wrong-cluster' ? 'give each cluster its own secret' : 'make haoscar.yaml the same on every node' });
  }
  return findings;
}

/** Can this node reach Temporal: a TCP connection to each frontend, then a real call with a deadline. */
async function checkTemporal(config: Config, configFile: string, timeoutMs: number, local: LocalStatus | undefined): Promise<Finding[]> {
  const findings: Finding[] = [];
  const startIt = `start Temporal (the embedded server: systemctl start haoscar-server, or haoscar server -c ${configFile}), or correct temporal.address in ${configFile}`;
  let reachable = 0;
  for (const frontend of config.temporal.frontends.length > 0 ? config.temporal.frontends : [config.temporal.address]) {
    const { host, port } = parseFrontend(frontend);
    const check = `temporal ${frontend}`;
    const why = await new Promise<string | undefined>((resolve) => {
      const socket = connect({ host, port, timeout: timeoutMs });
      socket.once('connect', () => {
        socket.destroy();
        resolve(undefined);
      });
      socket.once('timeout', () => {
        socket.destroy();
        resolve(`no answer within ${timeoutMs} ms (a firewall dropping it, or no such host)`);
      });
      socket.once('error', (err) => resolve(errnoOf(err) === 'ECONNREFUSED' ? 'connection refused: nothing listens there' : err.message));
    });
    if (why === undefined) reachable++;
    findings.push(why === undefined
      ? { check, level: 'ok', found: `TCP connection to ${host}:${port} opened` }
      : { check, level: 'error', found: `cannot open a TCP connection to ${host}:${port}: ${why}`, fix: startIt });
  }
  if (reachable === 0) return findings;
  const check = 'temporal namespace';
  try {
    const conn = await resolveConnection(config.temporal);
    try {
      const client = await connectClient(conn);
      try {
        const answer = await client.withDeadline(Date.now() + timeoutMs, () => client.workflowService.describeNamespace({ namespace: config.temporal.namespace }));
        findings.push({ check, level: 'ok', found: `Temporal answers: namespace ${config.temporal.namespace} is ${answer.namespaceInfo?.state === 1 ? 'registered' : `in state ${answer.namespaceInfo?.state ?? '?'}`}` });
        if (local && !local.temporal.connected) {
          findings.push({ check: 'temporal agent', level: 'warning', found: 'doctor reaches Temporal, but the agent says it is not connected', fix: 'journalctl -u haoscar-agent (it says why); systemctl restart haoscar-agent' });
        }
      } finally {
        await client.connection.close();
      }
    } finally {
      conn.relay?.close();
    }
  } catch (err) {
    if (err instanceof ServiceError && (err.cause as { code?: number } | undefined)?.code === 5) {
      findings.push({ check, level: 'error', found: `Temporal answers but has no namespace ${config.temporal.namespace}`, fix: `temporal operator namespace create --namespace ${config.temporal.namespace} --address ${config.temporal.address}` });
    } else {
      const message = err instanceof Error ? err.message : String(err);
      findings.push({ check, level: 'error', found: `the TCP port answers, but a Temporal call (DescribeNamespace) failed within ${timeoutMs} ms: ${message}`, fix: `check that ${config.temporal.address} is Temporal's frontend (not another service), and temporal.tls / apiKeyFile in ${configFile}` });
    }
  }
  return findings;
}

async function checkTime(exec: Exec, timeoutMs: number, distro: Distro | undefined): Promise<Finding> {
  const install = distro ? installFix(distro, ['chrony']) : 'install chrony';
  const { answer, tried } = await probeTimeSync(exec, timeoutMs);
  if (answer?.synced) return { check: 'time', level: 'ok', found: `synchronised: ${answer.detail}` };
  if (answer) {
    const fix = answer.source === 'kernel' ? `${install}; systemctl enable --now ${distro?.chronyService ?? 'chronyd'}` : answer.source === 'chrony' ? 'chronyc sources -v (are its servers reachable? UDP 123 out)' : answer.source === 'ntpd' ? 'ntpq -p (are its servers reachable? UDP 123 out)' : 'timedatectl set-ntp true';
    return { check: 'time', level: 'warning', found: `not synchronised: ${answer.detail}${answer.source === 'kernel' ? ' (and no chrony, ntpd or systemd-timesyncd answered)' : ''}; logs, failure reports and the postmortem timeline of different nodes will not line up`, fix };
  }
  return { check: 'time', level: 'warning', found: `unknown: nothing could tell (${tried.join('; ')})`, fix: `${install} (to keep the clock synchronised; if the host keeps it already, ${distro?.family === 'debian' ? installFix(distro, ['adjtimex']) : 'adjtimex(8)'} lets doctor read the kernel's state)` };
}
