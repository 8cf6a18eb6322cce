/**
 * The `drbd` driver: a DRBD 9 resource that is Primary on the node owning the group and
 * Secondary elsewhere. start promotes (bringing the resource up first if it is down), stop
 * demotes; the resource stays up and connected on every node so the peers keep replicating.
 *
 * The resync code also uses {@link DrbdDriver.connect}, {@link DrbdDriver.waitUpToDate} and
 * {@link DrbdDriver.splitBrain}. Split brain is reported, never resolved here: which node's
 * changes are thrown away is a decision about data, so it is left to an administrator with
 * the DRBD-documented commands (see docs/drbd.md).
 *
 * Command lines and the status JSON live in `drbd-commands.ts`; every command goes through
 * the injected {@link Exec}. Tests run this driver against the DRBD simulator in
 * `test/support/drbd-sim/`.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { DrbdResource } from '../config/types.js';
import { ExecError, lastLine, type Exec } from '../exec.js';
import type { Logger } from '../log.js';
import {
  drbdCommands,
  parseDrbdStatusJson,
  splitBrainRecoveryCommands,
  type DrbdArgv,
  type DrbdConnectionStatus,
  type DrbdResourceStatus,
  type DrbdTools,
} from './drbd-commands.js';
import type { ServiceDriver, ServiceStatus } from './service-driver.js';
import type { GuardAction } from '../guard/protocol.js';

export interface DrbdDriverDeps {
  exec: Exec;
  logger: Logger;
  /** This node's name, for messages that tell an administrator where to run what. */
  node?: string;
}

/** Options every action takes: the group's ownership epoch, only for the log lines. */
export interface DrbdActionOptions {
  epoch?: number;
}

/** Where a resync stands, as {@link DrbdDriver.waitUpToDate} reports it. */
export interface DrbdSyncProgress {
  /** 0–100; exactly 100 only once every local volume is UpToDate. */
  percent: number;
  /** Still to be copied to this node, in KiB (DRBD's out-of-sync). */
  outOfSyncKiB: number;
  remainingBytes: number;
  /** From the rate at which out-of-sync went down while we watched; DRBD's own estimate before that. */
  etaSeconds: number | undefined;
  rateKiBPerSecond: number | undefined;
  /** The local disk state (the least advanced volume's). */
  diskState: string;
  /** `SyncTarget` while receiving; the connection state (e.g. `Connecting`) while not connected. */
  replicationState: string | undefined;
  /** The peer this node syncs from, when one is. */
  peer: string | undefined;
}

export interface WaitUpToDateOptions extends DrbdActionOptions {
  onProgress?: (progress: DrbdSyncProgress) => void;
  signal?: AbortSignal;
  /** Between two looks at `drbdsetup status`; 1 s unless said. */
  pollMs?: number;
  /** Give up after this long; no limit unless said (the caller's cancellation bounds it). */
  timeoutMs?: number;
}

/** A split brain found on this node, with what an administrator can do about it. */
export interface DrbdSplitBrainReport {
  resource: string;
  /** The peer whose connection dropped to StandAlone. */
  peer: string;
  detail: string;
  /** Each way out, naming whose changes are lost and the commands to run on which node. */
  choices: string[];
  /** DRBD's commands for the node whose changes are discarded (the split brain victim). */
  victimCommands: string[];
  /** DRBD's commands for the node whose data is kept (the survivor), if it is StandAlone too. */
  survivorCommands: string[];
}

/** Thrown by start when a peer is Primary: DRBD allows one Primary (allow-two-primaries is off). */
export class DrbdPeerPrimaryError extends Error {
  constructor(
    readonly resource: string,
    readonly peer: string,
    cause?: unknown,
  ) {
    super(
      `cannot promote DRBD resource ${resource}: peer ${peer} is Primary and DRBD allows one Primary. ` +
        `Stop the group on ${peer} (or there: stop what uses the device, then \`drbdadm secondary ${resource}\`) before starting it here`,
      { cause },
    );
    this.name = 'DrbdPeerPrimaryError';
  }
}

/** Thrown by waitUpToDate when it finds split brain; carries the report for the operator. */
export class DrbdSplitBrainError extends Error {
  constructor(readonly report: DrbdSplitBrainReport) {
    super(`DRBD split brain on resource ${report.resource} with ${report.peer}: an administrator must choose whose changes to discard. ${report.choices.map((c, i) => `(${i + 1}) ${c}`).join(' ')}`);
    this.name = 'DrbdSplitBrainError';
  }
}

/** Thrown when drbdadm does not know the resource on this host: a configuration error, retrying will not help. */
export class DrbdResourceNotConfiguredError extends Error {
  constructor(
    readonly resource: string,
    said: string,
    cause?: unknown,
  ) {
    super(`DRBD resource ${resource} is not configured on this node (drbdadm: ${said}): define it in /etc/drbd.d with an 'on' section for this host, or fix resources[..].resource`, { cause });
    this.name = 'DrbdResourceNotConfiguredError';
  }
}

const SYNC_TARGET_STATES = new Set(['SyncTarget', 'PausedSyncT', 'WFBitMapT', 'WFSyncUUID', 'StartingSyncT', 'Behind']);
const NOT_UP = /No such resource|Unknown resource/;
const NOT_CONFIGURED = /not defined in your config/;
const MULTIPLE_PRIMARIES = /Multiple primaries not allowed/;
const NO_UP_TO_DATE = /Need access to UpToDate data/;
const HELD_OPEN = /held open by someone/;
const NET_CONFIGURED = /\(125\)|has a net-config/;
const DISCARD_ON_PRIMARY = /\(123\)|discard-my-data not allowed when primary/;
const ALREADY_UP = /\(161\)|Minor or volume exists already/;
/** drbdsetup's "no estimate" value. */
const NO_ESTIMATE = 987_654_321;

/** One look at how much is left, for the rate estimate. */
export interface SyncSample {
  atMs: number;
  outOfSyncKiB: number;
}

/**
 * Rate and time to go from the samples of the last `windowMs` (oldest to newest in that
 * window). Undefined while the amount is not going down (fewer than two samples, no time
 * between them, or new writes outpacing the resync). Pure.
 */
export function estimateSync(samples: readonly SyncSample[], windowMs = 30_000): { rateKiBPerSecond: number | undefined; etaSeconds: number | undefined } {
  const newest = samples[samples.length - 1];
  if (!newest) return { rateKiBPerSecond: undefined, etaSeconds: undefined };
  if (newest.outOfSyncKiB === 0) return { rateKiBPerSecond: undefined, etaSeconds: 0 };
  const oldest = samples.find((s) => newest.atMs - s.atMs <= windowMs) ?? newest;
  const seconds = (newest.atMs - oldest.atMs) / 1000;
  const drained = oldest.outOfSyncKiB - newest.outOfSyncKiB;
  if (seconds <= 0 || drained <= 0) return { rateKiBPerSecond: undefined, etaSeconds: undefined };
  const rate = drained / seconds;
  return { rateKiBPerSecond: rate, etaSeconds: Math.ceil(newest.outOfSyncKiB / rate) };
}

/** What a status says about this node catching up. Pure. */
export function syncView(status: DrbdResourceStatus): {
  upToDate: boolean;
  percent: number;
  outOfSyncKiB: number;
  diskState: string;
  replicationState: string | undefined;
  peer: string | undefined;
  drbdEtaSeconds: number | undefined;
} {
  let weighted = 0;
  let weights = 0;
  let outOfSyncKiB = 0;
  let diskState = 'UpToDate';
  let replicationState: string | undefined;
  let peer: string | undefined;
  let drbdEtaSeconds: number | undefined;
  for (const device of status.devices) {
    const weight = device.sizeKiB ?? 1;
    weights += weight;
    if (device.diskState === 'UpToDate') {
      weighted += 100 * weight;
      continue;
    }
    if (diskState === 'UpToDate') diskState = device.diskState;
    const receiving = status.connections
      .flatMap((c) => c.peerDevices.filter((p) => p.volume === device.volume).map((p) => ({ connection: c, p })))
      .find(({ p }) => SYNC_TARGET_STATES.has(p.replicationState));
    if (receiving) {
      outOfSyncKiB += receiving.p.outOfSyncKiB;
      weighted += (receiving.p.percentResyncDone ?? receiving.p.percentInSync ?? 0) * weight;
      replicationState ??= receiving.p.replicationState;
      peer ??= receiving.connection.name;
      const eta = receiving.p.estimatedSecondsToFinish;
      if (eta !== undefined && eta < NO_ESTIMATE) drbdEtaSeconds = Math.max(drbdEtaSeconds ?? 0, eta);
    }
  }
  // Up to date for us means: every volume UpToDate, and connected to a peer (if there is any),
  // so that a node just brought up is not taken for current before DRBD's handshake ran.
  const allUpToDate = status.devices.length > 0 && status.devices.every((d) => d.diskState === 'UpToDate');
  const established = status.connections.length === 0 || status.connections.some((c) => c.connectionState === 'Connected' && c.peerDevices.every((p) => p.replicationState === 'Established'));
  const upToDate = allUpToDate && established;
  if (!replicationState) {
    const waiting = status.connections.find((c) => c.connectionState !== 'Connected');
    if (!upToDate && waiting) replicationState = waiting.connectionState;
  }
  const raw = weights === 0 ? 0 : weighted / weights;
  let percent: number;
  if (upToDate) percent = 100;
  // UpToDate on disk but not compared with a peer yet: how far behind it is, nobody knows.
  else if (allUpToDate) percent = 0;
  // Not 100 until it is true, or a progress bar says "done" while DRBD is still at it.
  else percent = Math.min(99.99, Math.round(raw * 100) / 100);
  return { upToDate, percent, outOfSyncKiB, diskState, replicationState, peer, drbdEtaSeconds };
}

/** A one-line summary of a status, for `detail` and logs. Pure. */
export function describeDrbdStatus(status: DrbdResourceStatus): string {
  const disks = status.devices.map((d) => d.diskState).join('/') || 'no volumes';
  const peers = status.connections.map((c) => describeConnection(c));
  return [`role:${status.role}`, `disk:${disks}`, ...peers].join(' ');
}

function describeConnection(c: DrbdConnectionStatus): string {
  if (c.connectionState !== 'Connected') return `${c.name}:${c.connectionState}`;
  const repl = c.peerDevices.map((p) => p.replicationState).join('/');
  const disks = c.peerDevices.map((p) => p.peerDiskState).join('/');
  return `${c.name}:${c.peerRole}/${repl}/peer-disk:${disks}`;
}

export class DrbdDriver implements ServiceDriver {
  readonly kind = 'drbd' as const;
  readonly #resource: string;
  readonly #tools: DrbdTools;
  readonly #timeoutMs: number;
  readonly #exec: Exec;
  readonly #logger: Logger;
  readonly #node: string | undefined;
  /**
   * Peers this driver disconnected itself: their StandAlone is ours, not split brain, and
   * {@link connect} may reconnect them. Only for this process: a StandAlone left by another
   * process (an administrator's `drbdadm disconnect`, an agent that restarted in between) is
   * reported as split brain, whose report says how to reconnect it. HA-OSCAR itself never
   * leaves a connection StandAlone for long.
   */
  readonly #disconnectedByUs = new Set<string>();

  constructor(resource: DrbdResource, deps: DrbdDriverDeps) {
    this.#resource = resource.resource;
    this.#tools = { drbdadm: resource.drbdadm, drbdsetup: resource.drbdsetup };
    this.#timeoutMs = resource.timeoutMs;
    this.#exec = deps.exec;
    this.#node = deps.node;
    this.#logger = deps.logger.child({ driver: 'drbd', drbdResource: resource.resource });
  }

  /**
   * Promotes this node: brings the resource up if it is down, then `drbdadm primary`.
   * Succeeds at once when already Primary.
   * @throws DrbdPeerPrimaryError when a connected peer is Primary; DrbdResourceNotConfiguredError
   *   when drbdadm does not know the resource here; Error when DRBD has no UpToDate data to
   *   offer (it says what to check) or a command fails otherwise.
   */
  async start(options: DrbdActionOptions = {}): Promise<void> {
    let status = await this.state();
    if (!status) {
      await this.#bringUp(options);
      status = await this.#requireState('after drbdadm up');
    }
    if (status.role === 'Primary') {
      this.#logger.info({ epoch: options.epoch }, 'already Primary');
      return;
    }
    const primaryPeer = status.connections.find((c) => c.peerRole === 'Primary');
    if (primaryPeer) throw new DrbdPeerPrimaryError(this.#resource, primaryPeer.name);
    const argv = drbdCommands.primary(this.#tools, this.#resource);
    this.#logger.info({ epoch: options.epoch, command: argv }, 'promoting to Primary');
    try {
      await this.#run(argv);
    } catch (error) {
      if (error instanceof ExecError && MULTIPLE_PRIMARIES.test(error.stderr)) {
        // A peer was promoted between our look and our promote: name it if we can.
        const again = await this.state().catch(() => undefined);
        throw new DrbdPeerPrimaryError(this.#resource, again?.connections.find((c) => c.peerRole === 'Primary')?.name ?? 'a peer', error);
      }
      if (error instanceof ExecError && NO_UP_TO_DATE.test(error.stderr)) {
        throw new Error(
          `cannot promote DRBD resource ${this.#resource}: DRBD has no UpToDate data for it here (${describeDrbdStatus(status)}): ` +
            `this node's disk is not UpToDate and no connected peer's is. Bring up a peer with good data and let it resync; ` +
            `only if you are sure this node has the newest data, promote it by hand with \`drbdadm primary --force ${this.#resource}\``,
          { cause: error },
        );
      }
      throw this.#describe(argv, error);
    }
  }

  /**
   * Demotes this node (`drbdadm secondary`); succeeds at once when it is Secondary or the
   * resource is not up. The resource stays up and connected.
   * @throws Error when the device is still in use (what to stop is in the message) or the
   *   command fails otherwise.
   */
  async stop(options: DrbdActionOptions = {}): Promise<void> {
    const status = await this.state();
    if (!status) {
      this.#logger.info({ epoch: options.epoch }, 'resource not up: nothing to demote');
      return;
    }
    if (status.role !== 'Primary') {
      this.#logger.info({ epoch: options.epoch, role: status.role }, 'not Primary: nothing to demote');
      return;
    }
    const argv = drbdCommands.secondary(this.#tools, this.#resource);
    this.#logger.info({ epoch: options.epoch, command: argv }, 'demoting to Secondary');
    try {
      await this.#run(argv);
    } catch (error) {
      if (error instanceof ExecError && HELD_OPEN.test(error.stderr)) {
        const devices = status.devices.map((d) => `/dev/drbd${d.minor}`).join(', ');
        throw new Error(
          `cannot demote DRBD resource ${this.#resource}: ${devices} is still in use on this node (mounted, or open by a process). ` +
            `Stop the filesystem and services on it first (\`fuser -vm ${status.devices[0] ? `/dev/drbd${status.devices[0].minor}` : devices}\` shows who holds it), then stop again`,
          { cause: error },
        );
      }
      throw this.#describe(argv, error);
    }
  }

  /**
   * Running means this node is Primary; `detail` has the role, disk state and every peer's
   * connection. A resource that is not up is not running.
   * @throws Error when drbdsetup cannot be run or prints something unreadable.
   */
  /** Demotion, bounded, after the group's processes (and its filesystem) are gone. */
  guardActions(): GuardAction[] {
    return [{ kind: 'run', timeoutMs: this.#timeoutMs, argv: [...drbdCommands.secondary(this.#tools, this.#resource)] }];
  }

  async status(): Promise<ServiceStatus> {
    const status = await this.state();
    if (!status) return { running: false, detail: `DRBD resource ${this.#resource} is not up on this node` };
    return { running: status.role === 'Primary', detail: describeDrbdStatus(status) };
  }

  /**
   * The resource's state from `drbdsetup status --json`, or undefined when it is not up here
   * (drbdsetup then says "No such resource").
   * @throws Error when drbdsetup cannot be run; DrbdStatusParseError when its output is unreadable.
   */
  async state(): Promise<DrbdResourceStatus | undefined> {
    const argv = drbdCommands.status(this.#tools, this.#resource);
    let stdout: string;
    try {
      ({ stdout } = await this.#run(argv));
    } catch (error) {
      if (error instanceof ExecError && error.exitCode !== undefined && NOT_UP.test(error.stderr)) return undefined;
      throw this.#describe(argv, error);
    }
    return parseDrbdStatusJson(stdout).find((r) => r.name === this.#resource);
  }

  /**
   * Makes sure the replication link is being established: brings the resource up if it is
   * down (`up` connects too) and reconnects the StandAlone connections this driver
   * disconnected. A StandAlone connection it did not disconnect is left alone: it is what
   * split brain looks like, and reconnecting would only make DRBD find it again while this
   * side shows Connecting, where the split brain no longer shows ({@link waitUpToDate} then
   * reports it). `discardMyData` makes this node the split brain victim and reconnects every
   * StandAlone connection; only an administrator's explicit choice may ask for it, and DRBD
   * needs the connection StandAlone and this node Secondary for it.
   * @throws DrbdResourceNotConfiguredError; Error when a command fails.
   */
  async connect(options: DrbdActionOptions & { discardMyData?: boolean } = {}): Promise<void> {
    const status = await this.state();
    if (!status) {
      if (options.discardMyData) throw new Error(`DRBD resource ${this.#resource} is not up on this node: \`drbdadm up ${this.#resource}\` first, then disconnect, then connect --discard-my-data`);
      await this.#bringUp(options);
      this.#disconnectedByUs.clear();
      return;
    }
    const standalone = status.connections.filter((c) => c.connectionState === 'StandAlone');
    const ours = standalone.filter((c) => this.#disconnectedByUs.has(c.name));
    if (options.discardMyData && standalone.length === 0) {
      throw new Error(`connect --discard-my-data needs the connections of DRBD resource ${this.#resource} StandAlone; disconnect first (\`drbdadm disconnect ${this.#resource}\`)`);
    }
    if (!options.discardMyData && ours.length === 0) {
      if (standalone.length > 0) {
        this.#logger.warn({ epoch: options.epoch, peers: standalone.map((c) => c.name) }, 'StandAlone connections left alone: this driver did not disconnect them (split brain?)');
      } else {
        this.#logger.debug({ epoch: options.epoch }, 'already connected or connecting');
      }
      return;
    }
    const argv = drbdCommands.connect(this.#tools, this.#resource, { discardMyData: options.discardMyData ?? false });
    const peers = (options.discardMyData ? standalone : ours).map((c) => c.name);
    this.#logger.info({ epoch: options.epoch, command: argv, peers }, options.discardMyData ? "reconnecting, discarding this node's changes" : 'reconnecting');
    try {
      await this.#run(argv);
    } catch (error) {
      if (error instanceof ExecError && DISCARD_ON_PRIMARY.test(error.stderr)) {
        throw new Error(`DRBD refuses --discard-my-data on resource ${this.#resource} because this node is Primary: demote it first (\`drbdadm secondary ${this.#resource}\`)`, { cause: error });
      }
      // With several peers, drbdadm also tries those already connecting; DRBD says (125) for them.
      if (!(error instanceof ExecError && NET_CONFIGURED.test(error.stderr))) throw this.#describe(argv, error);
    }
    for (const peer of peers) this.#disconnectedByUs.delete(peer);
  }

  /**
   * Drops the replication link to every peer (`drbdadm disconnect`); succeeds when already
   * StandAlone or not up.
   * @throws Error when the command fails.
   */
  async disconnect(options: DrbdActionOptions = {}): Promise<void> {
    const status = await this.state();
    if (!status) return;
    for (const c of status.connections) this.#disconnectedByUs.add(c.name);
    if (status.connections.every((c) => c.connectionState === 'StandAlone')) return;
    const argv = drbdCommands.disconnect(this.#tools, this.#resource);
    this.#logger.info({ epoch: options.epoch, command: argv }, 'disconnecting');
    try {
      await this.#run(argv);
    } catch (error) {
      throw this.#describe(argv, error);
    }
  }

  /**
   * Split brain as this node sees it, or undefined. DRBD shows no flag for it: it drops the
   * connection to StandAlone when its handshake finds both sides changed the data while apart
   * (and logs "Split-Brain detected but unresolved" in the kernel log). So a connection found
   * StandAlone that this driver did not disconnect is reported, with the recovery choices;
   * HA-OSCAR never leaves a connection StandAlone on purpose.
   * @throws Error as {@link state} does.
   */
  async splitBrain(_options: DrbdActionOptions = {}): Promise<DrbdSplitBrainReport | undefined> {
    const status = await this.state();
    return status ? this.#splitBrainOf(status) : undefined;
  }

  /**
   * Polls `drbdsetup status` until every local volume is UpToDate and this node is connected
   * to a peer, reporting progress on the way (the last report has percent 100).
   * @throws DrbdSplitBrainError when a connection drops to StandAlone (see {@link splitBrain});
   *   the signal's reason when aborted; Error when the resource is not up, `timeoutMs` passes
   *   or drbdsetup fails.
   */
  async waitUpToDate(options: WaitUpToDateOptions = {}): Promise<DrbdSyncProgress> {
    const pollMs = options.pollMs ?? 1000;
    const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
    const samples: SyncSample[] = [];
    this.#logger.info({ epoch: options.epoch }, 'waiting for the local disk to be UpToDate');
    for (;;) {
      options.signal?.throwIfAborted();
      const status = await this.state();
      if (!status) throw new Error(`DRBD resource ${this.#resource} is not up on this node, so it cannot catch up: connect() (or \`drbdadm up ${this.#resource}\`) first`);
      const report = this.#splitBrainOf(status);
      if (report) {
        this.#logger.error({ epoch: options.epoch, report }, 'split brain');
        throw new DrbdSplitBrainError(report);
      }
      const view = syncView(status);
      const now = Date.now();
      samples.push({ atMs: now, outOfSyncKiB: view.outOfSyncKiB });
      while (samples.length > 2 && now - (samples[0]?.atMs ?? now) > 60_000) samples.shift();
      const estimate = estimateSync(samples);
      const progress: DrbdSyncProgress = {
        percent: view.percent,
        outOfSyncKiB: view.outOfSyncKiB,
        remainingBytes: view.outOfSyncKiB * 1024,
        etaSeconds: view.upToDate ? 0 : (estimate.etaSeconds ?? view.drbdEtaSeconds),
        rateKiBPerSecond: estimate.rateKiBPerSecond,
        diskState: view.diskState,
        replicationState: view.upToDate ? 'Established' : view.replicationState,
        peer: view.peer,
      };
      options.onProgress?.(progress);
      if (view.upToDate) {
        this.#logger.info({ epoch: options.epoch }, 'UpToDate');
        return progress;
      }
      if (deadline !== undefined && now >= deadline) {
        throw new Error(
          `DRBD resource ${this.#resource} is still not UpToDate after ${options.timeoutMs} ms (${describeDrbdStatus(status)}; ${progress.percent}% with ${progress.outOfSyncKiB} KiB to go)`,
        );
      }
      try {
        await delay(pollMs, undefined, options.signal ? { signal: options.signal } : {});
      } catch (error) {
        // Callers (Temporal's cancellation signal) recognise their own reason, not Node's AbortError.
        if (options.signal?.aborted) throw options.signal.reason;
        throw error;
      }
    }
  }

  #splitBrainOf(status: DrbdResourceStatus): DrbdSplitBrainReport | undefined {
    const standalone = status.connections.filter((c) => c.connectionState === 'StandAlone' && !this.#disconnectedByUs.has(c.name));
    const first = standalone[0];
    if (!first) return undefined;
    const res = this.#resource;
    const here = this.#node ? `this node (${this.#node})` : 'this node';
    const peer = first.name;
    const { victim, survivor } = splitBrainRecoveryCommands(res);
    const others = standalone.slice(1).map((c) => c.name);
    const disks = status.devices.map((d) => d.diskState).join('/');
    return {
      resource: res,
      peer,
      detail:
        `the connection of DRBD resource ${res} to ${peer}${others.length > 0 ? ` (and to ${others.join(', ')})` : ''} is StandAlone. ` +
        `DRBD drops a connection to StandAlone when its handshake finds that both sides changed the data while apart (split brain; ` +
        `the kernel log then says "Split-Brain detected but unresolved, dropping connection!", see \`journalctl -k | grep -i split-brain\`). ` +
        `${here} is ${status.role} with disk ${disks}. HA-OSCAR does not choose whose changes to discard: pick the node whose changes ` +
        `since the split may be lost (copy them away first if unsure), then run one of the choices. ` +
        `If an administrator disconnected ${peer} on purpose, \`drbdadm connect ${res}\` reconnects it.`,
      choices: [
        `keep ${peer}'s data and discard the changes made on ${here} since the split: on ${here} run \`${victim.join('`, `')}\`; then on ${peer}, if it is StandAlone too, run \`${survivor.join('`, `')}\``,
        `keep the data of ${here} and discard ${peer}'s changes since the split: on ${peer} run \`${victim.join('`, `')}\`; then on ${here}, if it is StandAlone too, run \`${survivor.join('`, `')}\``,
      ],
      victimCommands: victim,
      survivorCommands: survivor,
    };
  }

  async #bringUp(options: DrbdActionOptions): Promise<void> {
    const argv = drbdCommands.up(this.#tools, this.#resource);
    this.#logger.info({ epoch: options.epoch, command: argv }, 'bringing the resource up');
    try {
      await this.#run(argv);
    } catch (error) {
      if (error instanceof ExecError && NOT_CONFIGURED.test(error.stderr)) throw new DrbdResourceNotConfiguredError(this.#resource, lastLine(error.stderr), error);
      // Brought up by someone else between our look and our `up`: the state we want.
      if (error instanceof ExecError && ALREADY_UP.test(error.stderr)) return;
      throw this.#describe(argv, error);
    }
  }

  async #requireState(when: string): Promise<DrbdResourceStatus> {
    const status = await this.state();
    if (!status) throw new Error(`DRBD resource ${this.#resource} is still not up ${when}: see \`drbdadm status ${this.#resource}\` and the kernel log`);
    return status;
  }

  #run(argv: DrbdArgv) {
    const [file, ...args] = argv;
    return this.#exec(file, args, { timeoutMs: this.#timeoutMs });
  }

  #describe(argv: DrbdArgv, error: unknown): Error {
    const what = argv.join(' ');
    if (error instanceof ExecError) {
      if (error.timedOut) return new Error(`${what} timed out after ${this.#timeoutMs} ms (raise the resource's timeout, or see the kernel log)`, { cause: error });
      if (error.exitCode === undefined) {
        return new Error(`${what} could not be run (${lastLine(error.stderr) || 'no such program?'}): install drbd-utils 9, or set the resource's drbdadm/drbdsetup paths`, { cause: error });
      }
      const said = error.stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
      return new Error(`${what} failed (exit ${error.exitCode})${said ? `: ${said}` : ''}`, { cause: error });
    }
    return new Error(`${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
