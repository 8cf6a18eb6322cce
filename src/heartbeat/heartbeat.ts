/**
 * Heartbeats between agents: authenticated UDP on every configured link, turned into peer
 * edges (suspect / alive) for the agent. The pieces are pure and tested on their own — the
 * codec (`packet.ts`), anti-replay (`replay.ts`), freshness after a restart (`challenge.ts`),
 * liveness (`peers.ts`), link naming (`links.ts`), the version written to each peer
 * (`negotiation.ts`) — and this module only wires them to
 * sockets, timers and the state file (`state.ts`: the incarnation, peers that answered).
 *
 * Nothing a peer or a stranger sends can crash it: every bad packet is counted by reason and
 * logged at most once per {@link LOG_EVERY_MS} per reason; socket errors (a link whose cable
 * is pulled gives EHOSTUNREACH/ENETUNREACH on send) are counted and logged the same way, and
 * sending goes on, so the link is used again as soon as it works.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP, isIPv6 } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { HeartbeatSettings, NodeSpec } from '../config/types.js';
import type { Logger } from '../log.js';
import { incomingLink, incomingLinks, senderIndex } from './links.js';
import {
  CONFIG_DIGEST_PATTERN, DECODE_FAILURE_REASONS, decodePacket, encodePacket, MAX_ADVERTISED_KEYS, MAX_PACKET_BYTES, PROTOCOL_VERSIONS,
  type DecodeFailureReason, type HeartbeatPacket, type HeartbeatView, type ProtocolVersion,
} from './packet.js';
import { VersionNegotiator, type VersionChange } from './negotiation.js';
import { judgeFreshness, newNonce, type FreshnessWhy } from './challenge.js';
import { PeerTracker, type PeerEdge, type PeerState } from './peers.js';
import { LogRateLimiter } from './rate-limit.js';
import { ReplayGuard, type ReplayWhy } from './replay.js';
import { MIN_SECRET_BYTES, secretKeyId } from './secret.js';
import { HeartbeatStateStore } from './state.js';

/** At most one log line per reason (bad packets) or per error and link (socket errors) this often. */
export const LOG_EVERY_MS = 10_000;
/**
 * A peer whose configuration digest differs from ours is logged at once, and again at most this
 * often while it lasts (per peer and digest: a peer that changes to yet another one is logged at once).
 */
export const CONFIG_MISMATCH_LOG_EVERY_MS = 5 * 60_000;

export type HeartbeatRejectReason = DecodeFailureReason | 'unknown-node' | 'from-self' | 'misdirected' | 'replayed' | 'unproven';
export const HEARTBEAT_REJECT_REASONS = [...DECODE_FAILURE_REASONS, 'unknown-node', 'from-self', 'misdirected', 'replayed', 'unproven'] as const satisfies readonly HeartbeatRejectReason[];

/** A {@link PeerEdge} whose times (`at`, `lastHeardAt`) are wall-clock milliseconds since the epoch. */
export type HeartbeatEdge = PeerEdge;

export interface HeartbeatLinkStatus {
  /** `<peer address>-><own address>`. */
  link: string;
  alive: boolean;
  lastHeardAgoMs?: number;
}

export interface HeartbeatPeerStatus {
  node: string;
  state: PeerState;
  /** When the state last changed (ms since the epoch). */
  since: number;
  lastHeardAgoMs?: number;
  incarnation?: number;
  view?: HeartbeatView;
  links: HeartbeatLinkStatus[];
  /** The protocol version this agent writes to the peer (negotiation.ts). */
  protocol: number;
  /** The versions the peer's current run advertised; absent when it said nothing (0.1.0) or is not heard yet. */
  speaks?: readonly number[];
  /** The version of the last packet believed from it. */
  heardProtocol?: number;
  /** Set when the peer and this agent have no version in common: what to do. */
  protocolProblem?: string;
  /** The peer's configuration digest (protocol version 2 only; absent from a peer speaking 1). */
  configDigest?: string;
  /** Whether `configDigest` is this agent's own, under one of the secrets it accepts (absent with it). */
  configMatches?: boolean;
  /** The name (secretKeyId) of the secret its last believed packet was signed with. */
  signsWith?: string;
  /** The names of the secrets it says it accepts, the one it signs with first (absent from a release before rotation). */
  acceptsKeys?: string[];
}

export interface HeartbeatStats {
  /** Packets handed to the kernel without error. */
  sent: number;
  /** Sends that failed (see `socketErrors` for why). */
  sendErrors: number;
  received: number;
  accepted: number;
  rejected: Record<HeartbeatRejectReason, number>;
  /** By error code (EHOSTUNREACH, ENETUNREACH, ...), sending and receiving. */
  socketErrors: Record<string, number>;
  /** The protocol versions this agent speaks (its advertisement). */
  protocolVersions: readonly number[];
  /** This agent's configuration digest, as sent in version-2 packets. */
  configDigest: string;
  /** The names of the secrets this agent accepts, the one it signs with first (as its packets advertise them). */
  keys: readonly string[];
  peers: HeartbeatPeerStatus[];
}

export interface HeartbeatOptions {
  cluster: string;
  /** This node's name; its `addresses` in `nodes` are bound, the other nodes are the peers. */
  node: string;
  nodes: readonly NodeSpec[];
  settings: HeartbeatSettings;
  /** The shared key, from {@link loadHeartbeatSecret}: packets are signed with it. */
  secret: Buffer;
  /**
   * Secrets also accepted while the cluster secret is rotated (`heartbeat.acceptSecretFiles`),
   * never signed with; {@link Heartbeat.setSecrets} changes them and `secret` on a reload.
   */
  acceptedSecrets?: readonly Buffer[];
  /** The configuration digest under each of `acceptedSecrets`, in order: a peer signing with one of them computes it. */
  acceptedConfigDigests?: readonly string[];
  logger: Logger;
  /**
   * Called on every peer transition, never for a repeated level. An exception or a rejected
   * promise is logged, never propagated: the heartbeat keeps running.
   */
  onEdge: (edge: HeartbeatEdge) => void | Promise<void>;
  /**
   * Bind one socket to this address (e.g. `0.0.0.0`) instead of one per own address: for
   * hosts where the configured addresses are not local (NAT, containers). All packets then
   * leave from it.
   */
  bindAddress?: string;
  /** The view sent until {@link Heartbeat.setView}; default: no groups. */
  view?: HeartbeatView;
  /**
   * This node's configuration digest (config/digest.ts: 32 hex digits), sent to peers that speak
   * protocol version 2 and compared with theirs.
   */
  configDigest: string;
  /**
   * The agent's state directory: `heartbeat/<node>.json` in it keeps this node's incarnation
   * (larger at every start, whatever the clock says) and the peers that have answered its challenges (state.ts).
   */
  stateDir: string;
}

/** Thrown by {@link Heartbeat.start}: bad options, or an address that cannot be resolved or bound. */
export class HeartbeatStartError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'HeartbeatStartError';
  }
}

interface Target {
  node: string;
  /** The address as configured: what the packet's `to` says. */
  to: string;
  /** Where it is actually sent (resolved once at start: no DNS lookup per packet). */
  host: string;
  socket: number;
}

const HINTS: Record<Exclude<HeartbeatRejectReason, 'replayed' | 'unproven'>, string> = {
  truncated: 'shorter than any heartbeat packet: not HA-OSCAR traffic, or cut in transit',
  oversized: `larger than ${MAX_PACKET_BYTES} bytes: not HA-OSCAR traffic`,
  'bad-version': 'the sender writes a protocol version this release does not read: a release more than one protocol version apart (or a node of another release that has not negotiated); upgrade the older node (docs/upgrading.md)',
  forged: 'bad signature: the sender has another secret (heartbeat.secretFile must hold the same key on every node), or the packet was forged or corrupted',
  malformed: 'signed with our key but not understood: a bug or an incompatible release',
  'wrong-cluster': 'another cluster uses the same port and secret: give each cluster its own secret',
  'unknown-node': 'signed with our key by a node that is not in our configuration: is haoscar.yaml the same on every node?',
  'from-self': 'our own packet came back: another node is configured with one of our addresses, or the network loops',
  misdirected: 'sent to an address that is not one of ours: is haoscar.yaml the same on every node?',
};
const REPLAY_HINTS: Record<ReplayWhy, string> = {
  'old-incarnation': 'from an older run of the sender: a delayed or replayed packet (or a sender whose state directory was lost while its clock was behind)',
  duplicate: 'a copy of a packet already accepted: a network loop or a replay',
  'too-old': 'more than 64 packets older than the newest from that sender: very late, or a replay',
};
const FRESHNESS_HINTS: Record<FreshnessWhy, string> = {
  'no-echo': "it does not answer this agent's challenge yet: normal for an interval after the sender starts; if it lasts, this agent's packets do not reach the sender (a one-way link or firewall)",
  'stale-echo': "it answers an earlier run of this agent: normal for an interval after this agent starts; if it lasts, a recording of the sender is being played back (the sender may be dead), or this agent's packets do not reach it",
  'no-challenge': 'no challenge nonce, from a node that has answered challenges before: a recording of an older release played back, or the node was downgraded (docs/heartbeat.md, "Rolling upgrades")',
};

/** A short key for counting: the errno code (EHOSTUNREACH ...), else the error's class name. */
const errorCode = (err: unknown) => (err as NodeJS.ErrnoException | undefined)?.code ?? (err as Error | undefined)?.name ?? 'unknown';

export class Heartbeat {
  private readonly tracker: PeerTracker;
  private readonly replay = new ReplayGuard();
  /** This run's challenge, in every packet; peers' packets are signs of life only when they echo it. */
  private readonly nonce = newNonce();
  /** Per peer, the nonce of its run as last heard: echoed in our packets to it. */
  private readonly peerNonces = new Map<string, string>();
  /** Peers whose packets carry no challenge (an older release), already logged once this run. */
  private readonly legacyLogged = new Set<string>();
  private readonly answeredBy: Set<string>;
  /** Per peer, the largest incarnation of a packet believed (a recording's does not count). */
  private readonly provenIncarnations = new Map<string, number>();
  private readonly limiter = new LogRateLimiter(LOG_EVERY_MS);
  private readonly configLimiter = new LogRateLimiter(CONFIG_MISMATCH_LOG_EVERY_MS);
  private readonly negotiator = new VersionNegotiator(PROTOCOL_VERSIONS);
  /** Per peer, the configuration digest of its last believed packet (version 2), and whether it was logged as differing. */
  private readonly peerDigests = new Map<string, { digest: string; differs: boolean }>();
  /** Per peer, the version written to it as last logged at info (logVersionChange). */
  private readonly loggedVersions = new Map<string, number>();
  /** `node:incarnation` of peer runs already logged as speaking only version 1. */
  private readonly baseOnlyLogged = new Set<string>();
  private readonly seqs = new Map<string, number>();
  private readonly peerSpecs: Map<string, NodeSpec>;
  private readonly ownAddresses: string[];
  private readonly aliveLinks = new Map<string, Set<string>>();
  private readonly counters = { sent: 0, sendErrors: 0, received: 0, accepted: 0 };
  private readonly rejected = Object.fromEntries(HEARTBEAT_REJECT_REASONS.map((r) => [r, 0])) as Record<HeartbeatRejectReason, number>;
  private readonly socketErrors: Record<string, number> = {};
  private view: HeartbeatView;
  private sendTimer: NodeJS.Timeout | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private pendingTick: NodeJS.Immediate | undefined;
  private lastTickAt: number;
  private tickEveryMs = 1;
  private closed = false;
  readonly incarnation: number;
  /** This node's configuration digest as its packets carry it; a reload may change it (setConfigDigest). */
  private configDigest: string;
  /** The secrets packets are checked with, the signing one first; a reload may change them (setSecrets). */
  private secrets: { keys: Buffer[]; ids: string[]; acceptedDigests: string[] };
  /** Per peer, the name of the secret its last believed packet was signed with, and those it says it accepts. */
  private readonly peerKeys = new Map<string, { signsWith: string; accepts?: readonly string[] }>();

  private constructor(
    private readonly options: HeartbeatOptions,
    private readonly sockets: Socket[],
    private readonly targets: Target[],
    private readonly state: HeartbeatStateStore,
  ) {
    const self = options.nodes.find((n) => n.name === options.node)!;
    this.ownAddresses = self.addresses;
    this.peerSpecs = new Map(options.nodes.filter((n) => n.name !== options.node).map((n) => [n.name, n]));
    this.incarnation = state.incarnation;
    this.configDigest = options.configDigest;
    this.secrets = secretsOf(options.secret, options.acceptedSecrets ?? [], options.acceptedConfigDigests ?? []);
    this.answeredBy = new Set(state.answeredBy());
    this.view = structuredClone(options.view ?? { groups: {} });
    this.lastTickAt = performance.now();
    this.tracker = new PeerTracker({
      deadtimeMs: options.settings.deadtimeMs,
      peers: [...this.peerSpecs.values()].map((p) => ({ node: p.name, links: incomingLinks(this.ownAddresses, p.addresses) })),
      now: this.lastTickAt,
    });
    for (const socket of sockets) {
      socket.on('message', (data, from) => this.receive(data, from));
      socket.on('error', (err) => this.socketError(err, `heartbeat socket error on ${this.describe(socket)}`));
    }
  }

  /**
   * Binds the sockets, starts sending every `intervalMs` (the first round at once) and
   * watching the peers.
   * @throws HeartbeatStartError when `node` is not in `nodes`, the secret is too short, the
   *   timing is not positive, a packet could not be written (a cluster or node name that is
   *   not a name, a view that does not fit), an address cannot be resolved, the state file
   *   cannot be read, is damaged or cannot be written, or a socket cannot be bound (address
   *   not on this host, port in use, port below 1024 without privilege).
   */
  static async start(options: HeartbeatOptions): Promise<Heartbeat> {
    const { settings } = options;
    const self = options.nodes.find((n) => n.name === options.node);
    if (!self) {
      throw new HeartbeatStartError(`heartbeat: node '${options.node}' is not in the configuration (nodes: ${options.nodes.map((n) => n.name).join(', ')})`);
    }
    if (self.addresses.length === 0 && options.bindAddress === undefined) throw new HeartbeatStartError(`heartbeat: node '${options.node}' has no addresses`);
    if (options.secret.length < MIN_SECRET_BYTES) throw new HeartbeatStartError(`heartbeat: the secret has ${options.secret.length} bytes, fewer than ${MIN_SECRET_BYTES}`);
    if (!(settings.intervalMs > 0) || !(settings.deadtimeMs > 0)) {
      throw new HeartbeatStartError(`heartbeat: interval (${settings.intervalMs} ms) and deadtime (${settings.deadtimeMs} ms) must be positive`);
    }
    if (!CONFIG_DIGEST_PATTERN.test(options.configDigest)) {
      throw new HeartbeatStartError(`heartbeat: the configuration digest '${options.configDigest}' is not 32 lowercase hex digits (config/digest.ts)`);
    }
    const resolve = async (address: string, whose: string) => {
      if (isIP(address)) return address;
      try {
        return (await lookup(address)).address;
      } catch (err) {
        throw new HeartbeatStartError(`heartbeat: cannot resolve ${whose} address '${address}': ${errorCode(err)}; give IP addresses in nodes[].addresses (a heartbeat must not depend on DNS)`, err);
      }
    };
    const bindTo = options.bindAddress !== undefined ? [options.bindAddress] : self.addresses;
    const local = await Promise.all(bindTo.map((a) => resolve(a, `node '${self.name}'`)));
    const targets: Target[] = [];
    for (const peer of options.nodes) {
      if (peer.name === self.name) continue;
      for (const [k, to] of peer.addresses.entries()) {
        const host = await resolve(to, `node '${peer.name}'`);
        targets.push({ node: peer.name, to, host, socket: senderIndex(local, k, host) });
      }
    }
    try {
      // Checked with the largest incarnation there can be, before a start is counted on disk.
      largestPacket(options, Number.MAX_SAFE_INTEGER, options.view ?? { groups: {} }, targets);
    } catch (err) {
      throw new HeartbeatStartError(`heartbeat: ${(err as Error).message}`, err);
    }
    // On disk before the first packet leaves: a run that sent anything is never repeated.
    let state: HeartbeatStateStore;
    try {
      state = await HeartbeatStateStore.begin(options.stateDir, self.name, Date.now());
    } catch (err) {
      throw new HeartbeatStartError((err as Error).message, err);
    }
    const sockets: Socket[] = [];
    try {
      for (const address of local) sockets.push(await bind(address, settings.port));
    } catch (err) {
      for (const s of sockets) s.close();
      throw err;
    }
    const heartbeat = new Heartbeat(options, sockets, targets, state);
    heartbeat.begin();
    return heartbeat;
  }

  private begin(): void {
    const { intervalMs, deadtimeMs } = this.options.settings;
    // Checked more often than the deadtime, so a suspect edge comes at most deadtime/4 late.
    this.tickEveryMs = Math.max(1, Math.min(intervalMs, deadtimeMs / 4));
    this.options.logger.info(
      {
        incarnation: this.incarnation, addresses: this.sockets.map((s) => this.describe(s)), peers: [...this.peerSpecs.keys()], intervalMs, deadtimeMs,
        protocolVersions: PROTOCOL_VERSIONS, configDigest: this.configDigest,
      },
      `heartbeat started: every ${intervalMs} ms to ${this.targets.length} peer addresses, deadtime ${deadtimeMs} ms; protocol versions ${PROTOCOL_VERSIONS.join(', ')}, configuration digest ${this.configDigest}`,
    );
    this.sendTimer = setInterval(() => this.sendNow(), intervalMs);
    this.tickTimer = setInterval(() => this.scheduleTick(), this.tickEveryMs);
    this.sendNow();
  }

  /**
   * Sends this view from the next packet on, and one round at once so that a new claim is
   * seen quickly.
   * @throws HeartbeatPacketError when the view does not fit in one packet (the old view is kept).
   */
  setView(view: HeartbeatView): void {
    largestPacket(this.options, this.incarnation, view, this.targets);
    this.view = structuredClone(view);
    this.sendNow();
  }

  /** Sends one packet to every address of every peer now (each with its own seq). */
  sendNow(): void {
    this.sendTo(this.targets);
  }

  private sendTo(targets: readonly Target[]): void {
    if (this.closed) return;
    const { cluster, node, settings } = this.options;
    const { keys: [secret], ids: keys } = this.secrets;
    const sentAt = Date.now();
    for (const target of targets) {
      // One counter per peer (across all its links): each receiver sees consecutive numbers,
      // so the 64-packet replay window covers 64 packets of reordering between its links.
      const seq = (this.seqs.get(target.node) ?? 0) + 1;
      this.seqs.set(target.node, seq);
      let packet: Buffer;
      try {
        const echo = this.peerNonces.get(target.node);
        // The version negotiated with this peer (1 until it has said it speaks more).
        const version = this.negotiator.versionFor(target.node) as ProtocolVersion;
        packet = encodePacket({
          version, cluster, node, incarnation: this.incarnation, seq, sentAt, to: target.to, view: this.view, nonce: this.nonce, ...(echo === undefined ? {} : { echo }),
          versions: [...PROTOCOL_VERSIONS], ...(version >= 2 ? { configDigest: this.configDigest } : {}), keys,
        }, secret!);
      } catch (err) {
        this.socketError(err, `cannot encode the heartbeat for ${target.node} (bug)`);
        continue;
      }
      const socket = this.sockets[target.socket]!;
      const failed = (err: unknown) => {
        this.counters.sendErrors++;
        this.socketError(err, `cannot send heartbeat to ${target.node} at ${target.to} from ${this.describe(socket)}; sending goes on`, target.to);
      };
      try {
        socket.send(packet, settings.port, target.host, (err) => {
          if (err) failed(err);
          else this.counters.sent++;
        });
      } catch (err) {
        failed(err);
      }
    }
  }

  peerView(node: string): HeartbeatView | undefined {
    return this.tracker.peerView(node);
  }

  peerState(node: string): PeerState | undefined {
    return this.tracker.peerState(node);
  }

  /**
   * A reload changed settings the digest covers (docs/reload.md): the next packets carry the new
   * digest, and peers are compared with it. @throws HeartbeatStartError for a malformed digest.
   */
  setConfigDigest(digest: string): void {
    if (!CONFIG_DIGEST_PATTERN.test(digest)) throw new HeartbeatStartError(`heartbeat: the configuration digest '${digest}' is not 32 lowercase hex digits (config/digest.ts)`);
    if (digest === this.configDigest) return;
    this.options.logger.info({ from: this.configDigest, to: digest }, 'heartbeat: the configuration digest changed (reload)');
    this.configDigest = digest;
  }

  /**
   * A reload changed the secrets (a step of a rotation, docs/reload.md#rotating-the-cluster-secret):
   * the next packets are signed with `signing`, and packets under any of the secrets are believed.
   * `acceptedConfigDigests`: this node's configuration digest under each of `accepted`, in order.
   */
  setSecrets(signing: Buffer, accepted: readonly Buffer[], acceptedConfigDigests: readonly string[]): void {
    if (signing.length < MIN_SECRET_BYTES) throw new HeartbeatStartError(`heartbeat: the secret has ${signing.length} bytes, fewer than ${MIN_SECRET_BYTES}`);
    // The agent logs the step (Agent.useSecrets), with the other parts that take it.
    this.secrets = secretsOf(signing, accepted, acceptedConfigDigests);
  }

  /** Every peer, its state, links, last view, the protocol version written to it and its configuration digest. */
  peers(): HeartbeatPeerStatus[] {
    const now = performance.now();
    const ago = (at: number | undefined) => (at === undefined ? {} : { lastHeardAgoMs: Math.round(now - at) });
    return this.tracker.status(now).map((p) => {
      const protocol = this.negotiator.status(p.node);
      const digest = this.peerDigests.get(p.node);
      const keys = this.peerKeys.get(p.node);
      return {
        node: p.node,
        state: p.state,
        since: this.wallClock(p.since),
        ...ago(p.lastHeardAt),
        ...(p.incarnation === undefined ? {} : { incarnation: p.incarnation }),
        ...(p.view === undefined ? {} : { view: p.view }),
        links: p.links.map((l) => ({ link: l.link, alive: l.alive, ...ago(l.lastHeardAt) })),
        protocol: protocol.version,
        ...(protocol.versions === undefined ? {} : { speaks: protocol.versions }),
        ...(protocol.heardVersion === undefined ? {} : { heardProtocol: protocol.heardVersion }),
        ...(protocol.problem === undefined ? {} : { protocolProblem: protocol.problem }),
        ...(digest === undefined ? {} : { configDigest: digest.digest, configMatches: this.isOwnDigest(digest.digest) }),
        ...(keys === undefined ? {} : { signsWith: keys.signsWith, ...(keys.accepts === undefined ? {} : { acceptsKeys: [...keys.accepts] }) }),
      };
    });
  }

  stats(): HeartbeatStats {
    return {
      ...this.counters, rejected: { ...this.rejected }, socketErrors: { ...this.socketErrors },
      protocolVersions: PROTOCOL_VERSIONS, configDigest: this.configDigest, keys: [...this.secrets.ids], peers: this.peers(),
    };
  }

  /** Stops sending, watching and receiving; no edge is reported after it. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sendTimer);
    clearInterval(this.tickTimer);
    if (this.pendingTick) clearImmediate(this.pendingTick);
    await this.state.settled();
    await Promise.all(this.sockets.map((s) => new Promise<void>((resolve) => {
      try {
        s.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    })));
    this.options.logger.info('heartbeat stopped');
  }

  private receive(data: Buffer, from: RemoteInfo): void {
    if (this.closed) return;
    this.counters.received++;
    try {
      const decoded = decodePacket(data, this.secrets.keys, this.options.cluster);
      if (!decoded.ok) return this.reject(decoded.reason, from, decoded.detail);
      const p = decoded.packet;
      if (p.node === this.options.node) return this.reject('from-self', from, `to ${p.to}`);
      const peer = this.peerSpecs.get(p.node);
      if (!peer) return this.reject('unknown-node', from, `node '${p.node}'`);
      const link = incomingLink(this.ownAddresses, peer.addresses, p.to);
      if (link === undefined) return this.reject('misdirected', from, `from ${p.node} to '${p.to}'`);
      const verdict = this.replay.check(p.node, p.incarnation, p.seq);
      if (!verdict.ok) {
        return this.reject('replayed', from, `from ${p.node}, incarnation ${p.incarnation}, seq ${p.seq}: ${REPLAY_HINTS[verdict.why]}`, verdict.why);
      }
      // Signed and not older than anything heard from that peer: a new run of it may run
      // another release, so it is written version 1 until that run proves what it speaks
      // (negotiation.ts); before the answer below, which goes out in that version.
      this.logVersionChange(this.negotiator.sawRun(p.node, p.incarnation));
      // New in the sender's order: its nonce is the one to echo (the same in all packets of
      // one run; the window has refused every older run once a newer one was seen). A changed
      // one (the peer restarted, or we did and have just heard it) is answered at once, so
      // that neither side waits an interval for the other's proof.
      if (p.nonce !== this.peerNonces.get(p.node)) {
        if (p.nonce === undefined) this.peerNonces.delete(p.node);
        else {
          this.peerNonces.set(p.node, p.nonce);
          this.sendTo(this.targets.filter((t) => t.node === p.node));
        }
      }
      const fresh = judgeFreshness({ ownNonce: this.nonce, nonce: p.nonce, echo: p.echo, answeredBefore: this.answeredBy.has(p.node) });
      if (!fresh.fresh) {
        return this.reject('unproven', from, `from ${p.node}, incarnation ${p.incarnation}, seq ${p.seq}: ${FRESHNESS_HINTS[fresh.why]}`, fresh.why);
      }
      this.counters.accepted++;
      if (fresh.legacy) this.logLegacy(p.node);
      else if (!this.answeredBy.has(p.node)) this.recordAnswered(p.node);
      const known = this.provenIncarnations.get(p.node);
      this.provenIncarnations.set(p.node, Math.max(known ?? 0, p.incarnation));
      if (known !== undefined && p.incarnation > known) {
        // Within the deadtime this is not an edge, but it matters: a restarted agent holds nothing.
        this.options.logger.warn({ peer: p.node, incarnation: p.incarnation, previous: known },
          `heartbeat: ${p.node} restarted (incarnation ${known} → ${p.incarnation})`);
      }
      // Believed as its view is: what the peer speaks, its configuration digest and its secrets.
      this.peerKeys.set(p.node, { signsWith: this.secrets.ids[decoded.keyIndex]!, ...(p.keys === undefined ? {} : { accepts: p.keys }) });
      this.heardProtocol(p);
      const edge = this.tracker.heard(p.node, link, performance.now(), p.view, { incarnation: p.incarnation, seq: p.seq });
      if (edge) this.emit(edge);
    } catch (err) {
      this.options.logger.error({ err, from: hostPort(from.address, from.port) }, 'heartbeat: unexpected error while handling a packet (a bug); the packet is dropped');
    }
  }

  /**
   * A believed packet: its advertisement moves the version written to the peer (negotiation.ts),
   * and its configuration digest is compared with ours.
   */
  /** Whether `digest` is this node's, under the secret it signs with or one it accepts (a peer mid-rotation signs with another). */
  private isOwnDigest(digest: string): boolean {
    return digest === this.configDigest || this.secrets.acceptedDigests.includes(digest);
  }

  private heardProtocol(p: HeartbeatPacket): void {
    const version = p.version ?? 1;
    this.logVersionChange(this.negotiator.proven(p.node, p.incarnation, version, p.versions));
    const { logger } = this.options;
    const problem = this.negotiator.status(p.node).problem;
    if (problem !== undefined) {
      const verdict = this.limiter.allow(`protocol:${p.node}`, performance.now());
      if (verdict.log) logger.warn({ peer: p.node, speaks: p.versions, protocolVersions: PROTOCOL_VERSIONS }, `heartbeat: ${problem}`);
    }
    if (p.configDigest === undefined) {
      // A peer speaking version 1 says nothing about its configuration: no digest, no comparison.
      this.peerDigests.delete(p.node);
      const run = `${p.node}:${p.incarnation}`;
      if (p.versions === undefined && !this.baseOnlyLogged.has(run)) {
        this.baseOnlyLogged.add(run);
        logger.info({ peer: p.node, incarnation: p.incarnation },
          `heartbeat: ${p.node} advertises no protocol versions (a release before negotiation, e.g. 0.1.0): it is written version 1, and its configuration digest is unknown until it is upgraded`);
      }
      return;
    }
    const own = this.configDigest;
    const before = this.peerDigests.get(p.node);
    const differs = !this.isOwnDigest(p.configDigest);
    this.peerDigests.set(p.node, { digest: p.configDigest, differs });
    if (differs) {
      const verdict = this.configLimiter.allow(`${p.node}:${p.configDigest}`, performance.now());
      if (verdict.log) {
        const more = verdict.suppressed > 0 ? ` (${verdict.suppressed} packets with it since the last such line)` : '';
        logger.warn({ peer: p.node, configDigest: p.configDigest, ownConfigDigest: own },
          `heartbeat: ${p.node} runs with another cluster configuration (digest ${p.configDigest}, this node ${own}): haoscar.yaml must be the same on every node (nodes, groups, heartbeat, lease, failover, sync settings; docs/heartbeat.md, "Configuration digest")${more}`);
      }
    } else if (before?.differs === true) {
      logger.info({ peer: p.node, configDigest: own }, `heartbeat: ${p.node}'s cluster configuration is the same as this node's again (digest ${own})`);
    }
  }

  /**
   * Logs a change of the version written to a peer: at info when it is another than the last
   * one logged for it, at debug otherwise (`quiet`: the drop to 1 on a peer's silence, and the
   * return to what it was when it is heard again, which every flap of a busy host would repeat).
   */
  private logVersionChange(change: VersionChange | undefined, { quiet = false } = {}): void {
    if (change === undefined) return;
    const { logger } = this.options;
    const level = quiet || this.loggedVersions.get(change.node) === change.to ? 'debug' : 'info';
    if (!quiet) this.loggedVersions.set(change.node, change.to);
    const why = !change.plan.ok ? change.plan.reason
      : change.plan.basis === 'highest-common' ? `the highest version both speak (it speaks ${this.negotiator.status(change.node).versions?.join(', ')})`
        : `until its current run says what it speaks, after its restart or silence (every release reads version 1)`;
    logger[level]({ peer: change.node, protocol: change.to, previous: change.from }, `heartbeat: writing protocol version ${change.to} to ${change.node} (was ${change.from}): ${why}`);
  }

  /** A peer of an older release is believed without proof of freshness: said once per run, it weakens the replay protection. */
  private logLegacy(node: string): void {
    if (this.legacyLogged.has(node)) return;
    this.legacyLogged.add(node);
    this.options.logger.info({ peer: node },
      `heartbeat: ${node} sends no challenge nonce (an older release): its packets are believed without proof that they are fresh until it runs this release (docs/heartbeat.md, "Rolling upgrades")`);
  }

  /** From now on, and in later runs, a packet of `node` without a challenge is refused. */
  private recordAnswered(node: string): void {
    this.answeredBy.add(node);
    this.state.recordAnswered(node).catch((err: unknown) => {
      this.options.logger.error({ err, peer: node },
        `heartbeat: cannot record that ${node} answers challenges (${(err as Error).message}); after a restart of this agent its packets without a challenge would be believed again`);
    });
  }

  private reject(reason: HeartbeatRejectReason, from: RemoteInfo, detail?: string, why?: ReplayWhy | FreshnessWhy): void {
    this.rejected[reason]++;
    // Per why for `unproven`: the expected line after a start must not hide a downgrade's warning.
    const verdict = this.limiter.allow(reason === 'unproven' ? `reject:${reason}:${why}` : `reject:${reason}`, performance.now());
    if (!verdict.log) return;
    const source = hostPort(from.address, from.port);
    const hint = reason === 'replayed' || reason === 'unproven' ? '' : `: ${HINTS[reason]}`;
    const more = verdict.suppressed > 0 ? `; ${verdict.suppressed} more rejected for this reason since the last such line` : '';
    // An unanswered challenge is expected for an interval whenever this agent or a peer
    // starts; lasting, it shows in the counters and as the peer's suspect edge (a warning).
    const level = reason === 'unproven' && why !== 'no-challenge' ? 'info' : 'warn';
    this.options.logger[level](
      { reason, ...(why ? { why } : {}), from: source, detail, droppedSinceLastLine: verdict.suppressed, total: this.rejected[reason] },
      `heartbeat packet from ${source} rejected (${reason}${detail ? `: ${detail}` : ''})${hint}${more}`,
    );
  }

  private socketError(err: unknown, what: string, address = ''): void {
    if (this.closed) return;
    const code = errorCode(err);
    this.socketErrors[code] = (this.socketErrors[code] ?? 0) + 1;
    const verdict = this.limiter.allow(`socket:${code}:${address}`, performance.now());
    if (!verdict.log) return;
    const more = verdict.suppressed > 0 ? ` (${verdict.suppressed} more since the last such line)` : '';
    this.options.logger.warn({ err, code, droppedSinceLastLine: verdict.suppressed }, `${what}: ${code}${more}`);
  }

  private scheduleTick(): void {
    // Judge silence from setImmediate, i.e. after the poll phase, which reads the packets
    // that arrived since the last iteration.
    if (this.closed || this.pendingTick) return;
    this.pendingTick = setImmediate(() => {
      this.pendingTick = undefined;
      this.tick(false);
    });
  }

  /**
   * Race: if this process did not run for a while (event loop blocked, process stopped, host
   * overloaded), peers' packets from that time sit unread in our socket buffers, and judging
   * now would make them suspect for our own stall. A late tick therefore gets one second
   * chance: it is judged one loop iteration later, after a poll phase has read the queue. Only
   * one, so that a host that is late all the time still detects dead peers.
   */
  private tick(secondChance: boolean): void {
    if (this.closed) return;
    const now = performance.now();
    const gap = now - this.lastTickAt;
    this.lastTickAt = now;
    if (gap > this.options.settings.deadtimeMs) {
      this.options.logger.warn({ stalledMs: Math.round(gap) },
        `heartbeat: this agent did not run for ${Math.round(gap)} ms (event loop blocked, process stopped, or host overloaded): peers may have suspected this node`);
    }
    if (!secondChance && gap > 2 * this.tickEveryMs) {
      this.pendingTick = setImmediate(() => {
        this.pendingTick = undefined;
        this.tick(true);
      });
      return;
    }
    for (const edge of this.tracker.tick(now)) this.emit(edge);
    for (const node of this.peerSpecs.keys()) this.logLinkChanges(node, now);
  }

  /** A redundant link that goes silent while the peer is heard on another is not an edge, but the operator must know. */
  private logLinkChanges(node: string, now: number): void {
    const alive = new Set(this.tracker.aliveLinks(node, now));
    const before = this.aliveLinks.get(node) ?? new Set<string>();
    this.aliveLinks.set(node, alive);
    if (alive.size === 0 || before.size === 0) return; // the peer edge (suspect / alive) says it all
    for (const link of before) {
      if (!alive.has(link)) {
        this.options.logger.warn({ peer: node, link, aliveLinks: [...alive] },
          `heartbeat link ${link} to ${node} is silent for ${this.options.settings.deadtimeMs} ms; ${node} is still heard on ${[...alive].join(', ')} (redundancy lost)`);
      }
    }
    for (const link of alive) {
      if (!before.has(link)) this.options.logger.info({ peer: node, link }, `heartbeat link ${link} to ${node} is up`);
    }
  }

  private emit(edge: PeerEdge): void {
    if (this.closed) return;
    // A silent peer may be stopped to be downgraded: version 1 until it is heard again (negotiation.ts).
    if (edge.to === 'suspect') this.logVersionChange(this.negotiator.silent(edge.node), { quiet: true });
    const out: HeartbeatEdge = edge.to === 'suspect'
      ? { ...edge, at: this.wallClock(edge.at), lastHeardAt: edge.lastHeardAt === undefined ? undefined : this.wallClock(edge.lastHeardAt) }
      : { ...edge, at: this.wallClock(edge.at) };
    const { logger } = this.options;
    if (out.to === 'suspect') {
      const last = out.lastHeardAt === undefined ? 'never heard since this agent started' : `last heard ${new Date(out.lastHeardAt).toISOString()}`;
      logger.warn({ peer: out.node, edge: out.to, silentLinks: out.silentLinks }, `heartbeat: ${out.node} is suspect: silent on every link (${out.silentLinks.join(', ')}) for ${this.options.settings.deadtimeMs} ms; ${last}`);
    } else {
      logger.info({ peer: out.node, edge: out.to, link: out.link, incarnation: out.incarnation }, `heartbeat: ${out.node} is alive (heard on ${out.link})`);
    }
    const failed = (err: unknown) => logger.error({ err, edge: out }, 'heartbeat: the edge handler failed (the heartbeat goes on)');
    try {
      const result = this.options.onEdge(out);
      if (result instanceof Promise) result.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  /** Monotonic (performance.now) time → wall clock ms: edges carry times others can read. */
  private wallClock(monotonic: number): number {
    return Math.round(Date.now() - (performance.now() - monotonic));
  }

  private describe(socket: Socket): string {
    try {
      const a = socket.address();
      return hostPort(a.address, a.port);
    } catch {
      return '(closed socket)';
    }
  }
}

/**
 * Encodes the largest packet these settings can give (longest address, largest seq), so that
 * a view or a name that would not fit or not validate is refused up front, not on every send.
 * @throws HeartbeatPacketError
 */
function largestPacket(options: HeartbeatOptions, incarnation: number, view: HeartbeatView, targets: readonly Target[]): void {
  const to = targets.reduce((a, t) => (t.to.length > a.length ? t.to : a), 'x');
  const nonce = newNonce();
  // In the largest version: it carries every field of the smaller ones.
  encodePacket({
    version: PROTOCOL_VERSIONS[PROTOCOL_VERSIONS.length - 1]!, cluster: options.cluster, node: options.node, incarnation, seq: Number.MAX_SAFE_INTEGER, sentAt: Date.now(), to, view,
    nonce, echo: nonce, versions: [...PROTOCOL_VERSIONS], configDigest: options.configDigest, keys: Array.from({ length: MAX_ADVERTISED_KEYS }, () => '0'.repeat(16)),
  }, options.secret);
}

/**
 * The keys packets are checked with (signing first), their names, and the digests under the
 * accepted ones. @throws HeartbeatStartError for too many secrets, one listed twice, or a
 * malformed digest.
 */
function secretsOf(signing: Buffer, accepted: readonly Buffer[], acceptedDigests: readonly string[]) {
  const keys = [signing, ...accepted];
  if (keys.length > MAX_ADVERTISED_KEYS) throw new HeartbeatStartError(`heartbeat: ${accepted.length} accepted secrets, at most ${MAX_ADVERTISED_KEYS - 1}`);
  if (keys.some((k, i) => keys.findIndex((o) => o.equals(k)) !== i)) throw new HeartbeatStartError('heartbeat: a secret is given twice (the signing one among the accepted ones?)');
  for (const d of acceptedDigests) {
    if (!CONFIG_DIGEST_PATTERN.test(d)) throw new HeartbeatStartError(`heartbeat: the configuration digest '${d}' is not 32 lowercase hex digits (config/digest.ts)`);
  }
  return { keys, ids: keys.map(secretKeyId), acceptedDigests: [...acceptedDigests] };
}

/** `10.0.0.1:694`, `[fd00::1]:694`: an IPv6 address in brackets, so the port cannot be read as part of it. */
function hostPort(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Binds one UDP socket to one specific address. */
async function bind(address: string, port: number): Promise<Socket> {
  const socket = createSocket({ type: isIPv6(address) ? 'udp6' : 'udp4' });
  try {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => {
        socket.off('listening', onListening);
        reject(err);
      };
      const onListening = () => {
        socket.off('error', onError);
        resolve();
      };
      socket.once('error', onError);
      socket.once('listening', onListening);
      // exclusive: two agents on one host must not share the port (they would steal each other's packets).
      socket.bind({ address, port, exclusive: true });
    });
  } catch (err) {
    try {
      socket.close();
    } catch {
      // never bound: nothing to close
    }
    const code = errorCode(err);
    const why = code === 'EADDRNOTAVAIL' ? `${address} is not an address of this host (check this node's addresses in the configuration, or set a bind address)`
      : code === 'EADDRINUSE' ? `port ${port} is in use on ${address} (another agent running?)`
        : code === 'EACCES' ? `port ${port} is privileged: run the agent as root or with CAP_NET_BIND_SERVICE, or choose heartbeat.port above 1023`
          : (err as Error).message;
    throw new HeartbeatStartError(`heartbeat: cannot bind UDP ${address}:${port}: ${code}: ${why}`, err);
  }
  return socket;
}
