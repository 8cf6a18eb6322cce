/**
 * Protocol version negotiation: which version of the packet format to write to each peer.
 * Pure (no I/O, no clock), so that the rules are pinned by table tests.
 *
 * Every packet says which versions its sender speaks (`versions`, inside the signed body).
 * Each agent writes to a peer the highest version both speak; to a peer that has advertised
 * nothing (0.1.0, which speaks only 1 and refuses anything else as `bad-version`, or a peer
 * not heard yet) it writes version 1, which every release so far reads. So a cluster of mixed
 * releases never refuses a packet for its version, and two nodes of this release move to
 * version 2 about one round trip after they hear each other.
 *
 * What an advertisement is taken from, and why a downgrade by an attacker is impossible:
 * - only from packets that are signed (the tag covers the version byte and `versions`), new
 *   (the replay window) and proven fresh (they answer this agent's current challenge,
 *   challenge.ts): the same packets whose view is believed. A stranger cannot write or change
 *   one, and a recording cannot pass for the peer's current run;
 * - per run of the peer: when a packet of a newer run (a larger incarnation) passes the replay
 *   window, or the peer falls silent for the deadtime, what it advertised is forgotten and
 *   version 1 is written until its (new) run proves what it speaks. A restarted peer may run
 *   another release (a downgrade by its operator), which must not be sent a version it no
 *   longer reads. The most a replayed recording can do is what silence does: version 1, and
 *   only until the real peer is heard.
 */
import { BASE_PROTOCOL_VERSION, type ProtocolVersion } from './packet.js';

export type VersionPlan =
  /**
   * `basis`: `no-advertisement` when the peer has said nothing (yet) about the versions it
   * speaks, `highest-common` when the version is the highest in both lists.
   */
  | { ok: true; version: number; basis: 'no-advertisement' | 'highest-common' }
  /**
   * Nothing in common: no packet this node writes can be read by the peer. `fallback` is what
   * is written anyway (this node's lowest version, with its advertisement, so that the peer
   * can name the problem too); `reason` says what to do.
   */
  | { ok: false; fallback: number; reason: string };

/**
 * The version to write to a peer that advertised `advertised` (undefined: nothing), for a node
 * speaking `own` (ascending, non-empty).
 */
export function planVersion(own: readonly number[], advertised: readonly number[] | undefined, peer = 'the peer'): VersionPlan {
  const lowest = Math.min(...own);
  if (advertised === undefined) {
    if (own.includes(BASE_PROTOCOL_VERSION)) return { ok: true, version: BASE_PROTOCOL_VERSION, basis: 'no-advertisement' };
    return {
      ok: false,
      fallback: lowest,
      reason: `${peer} advertises no protocol versions (a release before negotiation, which speaks only version ${BASE_PROTOCOL_VERSION}), and this node speaks ${own.join(', ')}: upgrade ${peer}`,
    };
  }
  const common = own.filter((v) => advertised.includes(v));
  if (common.length === 0) {
    const older = Math.max(...advertised) < lowest ? peer : 'this node';
    return {
      ok: false,
      fallback: lowest,
      reason: `no protocol version in common: this node speaks ${own.join(', ')}, ${peer} speaks ${advertised.join(', ')}: upgrade ${older} (releases more than one protocol version apart cannot be mixed in a rolling upgrade)`,
    };
  }
  return { ok: true, version: Math.max(...common), basis: 'highest-common' };
}

/** The version {@link planVersion} says to write, or its fallback when nothing is in common. */
export function planVersionOrFallback(own: readonly number[], advertised: readonly number[] | undefined): number {
  const plan = planVersion(own, advertised);
  return plan.ok ? plan.version : plan.fallback;
}

/** What the negotiator knows of one peer. */
export interface PeerProtocol {
  /** The version written to it now. */
  version: number;
  /** What its current run advertised (undefined: nothing, or not proven yet). */
  versions?: readonly number[];
  /** The version of the last proven packet from it. */
  heardVersion?: number;
  /** Set when nothing is in common (see {@link VersionPlan}). */
  problem?: string;
}

/** A change of the version written to a peer, for the log. */
export interface VersionChange {
  node: string;
  from: number;
  to: number;
  plan: VersionPlan;
}

interface Known {
  /** The peer's newest run that passed the replay window. */
  run: number;
  /** What that run advertised in its proven packets (`versions` undefined: nothing, 0.1.0). */
  advertised?: { versions: readonly number[] | undefined; heardVersion: number };
}

/**
 * Per peer: the newest run seen and what it advertised; from them, the version to write.
 * The caller feeds it in the receive path's order: {@link sawRun} after the replay window,
 * {@link proven} for a packet that is a sign of life. Both return the change of the version
 * written to that peer, if any (for the log); {@link status} says when nothing is in common.
 */
export class VersionNegotiator {
  private readonly peers = new Map<string, Known>();
  private readonly current = new Map<string, number>();

  /** @param own the versions this node speaks, ascending, non-empty. */
  constructor(private readonly own: readonly ProtocolVersion[]) {
    if (own.length === 0) throw new RangeError('a node must speak at least one protocol version');
  }

  /** The versions this node speaks (its advertisement). */
  speaks(): readonly number[] {
    return this.own;
  }

  /**
   * A signed packet of `node`'s run `incarnation` passed the replay window (it is not older
   * than anything heard from that peer). A newer run forgets what the older one advertised.
   */
  sawRun(node: string, incarnation: number): VersionChange | undefined {
    const known = this.peers.get(node);
    if (known !== undefined && incarnation <= known.run) return undefined;
    this.peers.set(node, { run: incarnation });
    return this.replan(node);
  }

  /** A proven packet (signed, new, fresh) of `node`'s run `incarnation`, written in `version`, advertising `versions`. */
  proven(node: string, incarnation: number, version: number, versions: readonly number[] | undefined): VersionChange | undefined {
    const known = this.peers.get(node) ?? { run: incarnation };
    if (incarnation < known.run) return undefined; // an older run: the window refuses those first
    this.peers.set(node, { run: incarnation, advertised: { versions, heardVersion: version } });
    return this.replan(node);
  }

  /**
   * `node` has fallen silent (suspect): it is written version 1 until heard again. A node
   * stopped to be downgraded is usually silent for longer than the deadtime, and then its
   * older release does not refuse the first packets of its peers as `bad-version`.
   */
  silent(node: string): VersionChange | undefined {
    const known = this.peers.get(node);
    if (known?.advertised === undefined) return undefined;
    this.peers.set(node, { run: known.run });
    return this.replan(node);
  }

  /** The version to write to `node` now. */
  versionFor(node: string): number {
    return this.planFor(node).version;
  }

  status(node: string): PeerProtocol {
    const plan = this.planFor(node);
    const adv = this.advertisedNow(node);
    return {
      version: plan.version,
      ...(adv?.versions !== undefined ? { versions: adv.versions } : {}),
      ...(adv !== undefined ? { heardVersion: adv.heardVersion } : {}),
      ...(plan.problem !== undefined ? { problem: plan.problem } : {}),
    };
  }

  private advertisedNow(node: string): Known['advertised'] {
    return this.peers.get(node)?.advertised;
  }

  private planFor(node: string): { version: number; plan: VersionPlan; problem?: string } {
    const plan = planVersion(this.own, this.advertisedNow(node)?.versions, node);
    return plan.ok ? { version: plan.version, plan } : { version: plan.fallback, plan, problem: plan.reason };
  }

  /** Recomputes the version for `node`; returns the change when it is another than before. */
  private replan(node: string): VersionChange | undefined {
    const { version, plan } = this.planFor(node);
    const from = this.current.get(node) ?? planVersionOrFallback(this.own, undefined);
    this.current.set(node, version);
    return from === version ? undefined : { node, from, to: version, plan };
  }
}
