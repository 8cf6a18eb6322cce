/**
 * Peer liveness from heartbeats: turns "heard node X on link L at time t" (levels) into
 * suspect/alive transitions (edges). Pure: the clock is passed in (monotonic milliseconds),
 * so the rules are pinned by unit tests.
 *
 * - A peer is `unknown` until its first packet; a packet makes it `alive` (edge).
 * - It becomes `suspect` (edge) only when EVERY link to it has been silent for `deadtimeMs`:
 *   one broken cable of two must not look like a dead node. A link never heard counts as
 *   silent since the tracker started.
 * - A peer never heard within `deadtimeMs` of the start is suspect too (edge), so a node that
 *   is already dead when we start is reported, not left `unknown` for ever.
 * - A suspect peer is `alive` again (edge) on its first valid packet, on any link.
 * Repeated levels never produce an edge.
 */
import type { HeartbeatView } from './packet.js';

export type PeerState = 'unknown' | 'alive' | 'suspect';

export type PeerEdge =
  | {
      node: string;
      to: 'suspect';
      at: number;
      /** When anything was last heard from the peer; undefined if never. */
      lastHeardAt: number | undefined;
      /** Every link to the peer (all silent, by definition). */
      silentLinks: string[];
    }
  | {
      node: string;
      to: 'alive';
      at: number;
      /** The link the packet that brought it back came on. */
      link: string;
      /** The incarnation of that packet, when given to {@link PeerTracker.heard}. */
      incarnation?: number;
    };

export interface LinkStatus {
  link: string;
  /** Heard within the deadtime. */
  alive: boolean;
  lastHeardAt?: number;
}

export interface PeerStatus {
  node: string;
  state: PeerState;
  /** When the state last changed (the tracker's start for `unknown`). */
  since: number;
  lastHeardAt?: number;
  incarnation?: number;
  view?: HeartbeatView;
  links: LinkStatus[];
}

/** Where a packet stands in the sender's order: a later incarnation, or a larger seq within one. */
export interface PacketOrigin {
  incarnation: number;
  seq: number;
}

interface Peer {
  state: PeerState;
  since: number;
  /** Per link: last heard (undefined: never). Insertion order = the configured order. */
  links: Map<string, number | undefined>;
  lastHeardAt?: number;
  incarnation?: number;
  view?: HeartbeatView;
  /** The packet `view` came from. */
  viewFrom?: PacketOrigin;
}

export interface PeerTrackerOptions {
  deadtimeMs: number;
  /** Every peer with the links it can be heard on (a packet on another link adds that link). */
  peers: ReadonlyArray<{ node: string; links: readonly string[] }>;
  /** The start: never-heard peers and links count as silent since then. */
  now: number;
}

export class PeerTracker {
  private readonly peersByName = new Map<string, Peer>();
  private readonly deadtimeMs: number;
  private readonly startedAt: number;

  constructor(options: PeerTrackerOptions) {
    this.deadtimeMs = options.deadtimeMs;
    this.startedAt = options.now;
    for (const p of options.peers) {
      this.peersByName.set(p.node, { state: 'unknown', since: options.now, links: new Map(p.links.map((l) => [l, undefined])) });
    }
  }

  /**
   * Records a valid packet from `node` on `link`. Returns the `alive` edge if this brings the
   * peer from unknown or suspect to alive.
   *
   * Race: packets race each other over the links, so right after the sender changed its view
   * an older packet (old view) can arrive after a newer one. Given `origin`, the view is
   * taken only from a packet later in the sender's order than the one it came from, so a
   * claim never flickers back. (The packet still counts as a sign of life.)
   * @throws RangeError for a node the tracker was not given (the caller rejects those first).
   */
  heard(node: string, link: string, now: number, view: HeartbeatView, origin?: PacketOrigin): PeerEdge | undefined {
    const peer = this.peer(node);
    // Late timer or reordering: never move a time backwards.
    peer.links.set(link, Math.max(peer.links.get(link) ?? now, now));
    peer.lastHeardAt = Math.max(peer.lastHeardAt ?? now, now);
    const from = peer.viewFrom;
    if (origin === undefined || from === undefined || origin.incarnation > from.incarnation || (origin.incarnation === from.incarnation && origin.seq > from.seq)) {
      peer.view = view;
      if (origin !== undefined) {
        peer.viewFrom = origin;
        peer.incarnation = origin.incarnation;
      }
    }
    if (peer.state === 'alive') return undefined;
    peer.state = 'alive';
    peer.since = now;
    return origin === undefined ? { node, to: 'alive', at: now, link } : { node, to: 'alive', at: now, link, incarnation: origin.incarnation };
  }

  /** Looks for peers whose every link has now been silent for the deadtime; returns their edges. */
  tick(now: number): PeerEdge[] {
    const edges: PeerEdge[] = [];
    for (const [node, peer] of this.peersByName) {
      if (peer.state === 'suspect') continue;
      const silentFor = now - (peer.lastHeardAt ?? this.startedAt);
      if (silentFor < this.deadtimeMs) continue;
      peer.state = 'suspect';
      peer.since = now;
      edges.push({ node, to: 'suspect', at: now, lastHeardAt: peer.lastHeardAt, silentLinks: [...peer.links.keys()] });
    }
    return edges;
  }

  peerState(node: string): PeerState | undefined {
    return this.peersByName.get(node)?.state;
  }

  /** The latest view the peer sent (undefined until heard). Kept while it is suspect: it is what it last claimed. */
  peerView(node: string): HeartbeatView | undefined {
    return this.peersByName.get(node)?.view;
  }

  /** The links heard within the deadtime. */
  aliveLinks(node: string, now: number): string[] {
    const peer = this.peersByName.get(node);
    if (!peer) return [];
    return [...peer.links].filter(([, at]) => at !== undefined && now - at < this.deadtimeMs).map(([link]) => link);
  }

  status(now: number): PeerStatus[] {
    return [...this.peersByName].map(([node, peer]) => ({
      node,
      state: peer.state,
      since: peer.since,
      ...(peer.lastHeardAt === undefined ? {} : { lastHeardAt: peer.lastHeardAt }),
      ...(peer.incarnation === undefined ? {} : { incarnation: peer.incarnation }),
      ...(peer.view === undefined ? {} : { view: peer.view }),
      links: [...peer.links].map(([link, at]) => ({
        link,
        alive: at !== undefined && now - at < this.deadtimeMs,
        ...(at === undefined ? {} : { lastHeardAt: at }),
      })),
    }));
  }

  private peer(node: string): Peer {
    const peer = this.peersByName.get(node);
    if (!peer) throw new RangeError(`heartbeat tracker: unknown peer '${node}' (known: ${[...this.peersByName.keys()].join(', ')})`);
    return peer;
  }
}
