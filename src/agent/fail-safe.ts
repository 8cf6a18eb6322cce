/**
 * The lease's fail-safe (docs/failover.md#the-lease): whether an owner whose lease ran out while
 * the controller cannot be reached may serve on. Pure: every time is a duration on this
 * process's monotonic clock, measured by the caller at the moment of judging.
 *
 * It may only if every other node that may run the group is HEARD NOW and none claims it: such
 * a peer hears this node too, so it does not suspect it, and it refuses to start the group while
 * this node claims it (PeerStillClaims); nobody can be promoted without the controller anyway.
 *
 * "Heard now" is decided from recency, never from a stored state: what a valid packet from the
 * peer says must be younger than the heartbeat deadtime. The tracker's `alive` flag is not
 * enough: it changes only when the heartbeat's timer runs, so after a freeze it still says
 * what it said before.
 *
 * How old is what a packet says? Normally as old as the packet (read as it arrives). But after
 * this process stalled (frozen, event loop blocked), packets read in the stall's wake may have
 * waited in the socket buffer through the whole stall, and overdue timers can run before, or
 * between, the reads; when the buffer overflows it is the newest packets that are dropped. So a
 * packet read after the last stall began, and less than a deadtime after it ended, counts as
 * older by the stall's length. Then:
 * - packets read before the stall count by their age: after a freeze longer than the deadtime,
 *   none does (the peers may have suspected this node, and the controller moved the group);
 * - after a stall of L ms, a peer heard every interval stays heard while L + interval is less
 *   than the deadtime, which is when the peers cannot have suspected this node for the stall
 *   (its own packets stopped too). So a hiccup does not end the fail-safe, and a peer cannot
 *   have taken the group over meanwhile: it would have had to suspect this node and then wait
 *   out its lease;
 * - after a longer stall nothing read until a deadtime after its end counts: a lease that ran
 *   out meanwhile is lost at once.
 */

/** What the heartbeats know of one peer. */
export interface HeardPeer {
  node: string;
  /** The heartbeat tracker's state for the peer is 'alive'. */
  alive: boolean;
  /** How long ago (monotonic ms) a valid packet from the peer was last read; undefined: never. */
  lastHeardAgoMs: number | undefined;
  /** Its claims, from its latest view: group → epoch. */
  claims: Record<string, number>;
}

/** The last time this process did not run for more than {@link stallThresholdMs}. */
export interface Stall {
  /** How long it did not run (the gap between two of its runs). */
  lengthMs: number;
  /** How long ago it ran again. */
  endedAgoMs: number;
}

export interface FailSafeFacts {
  group: string;
  /** The other nodes that may run the group. */
  rivals: readonly string[];
  peers: readonly HeardPeer[];
  /** The heartbeat deadtime: a peer silent this long is not heard. */
  deadtimeMs: number;
  lastStall: Stall | undefined;
}

export type FailSafeVerdict = { ok: true } | { ok: false; why: string };

/**
 * The stalls worth remembering: a shorter one adds at most half a deadtime to the age of what
 * a packet says, within the slack the deadtime already has (it is at least two intervals).
 */
export function stallThresholdMs(deadtimeMs: number): number {
  return deadtimeMs / 2;
}

/**
 * How old what the last packet (read `lastHeardAgoMs` ago) says can be, given the last stall:
 * its age, plus the stall's length if it may have waited in the socket buffer through it.
 */
export function contentAgeMs(lastHeardAgoMs: number, lastStall: Stall | undefined, deadtimeMs: number): number {
  if (!lastStall) return lastHeardAgoMs;
  const readBeforeStall = lastHeardAgoMs >= lastStall.endedAgoMs + lastStall.lengthMs;
  const readWellAfter = lastStall.endedAgoMs - lastHeardAgoMs >= deadtimeMs;
  return readBeforeStall || readWellAfter ? lastHeardAgoMs : lastHeardAgoMs + lastStall.lengthMs;
}

/** Whether the owner may serve on without a lease; if not, why (for the log). */
export function failSafeAllowed(facts: FailSafeFacts): FailSafeVerdict {
  const { group, rivals, peers, deadtimeMs, lastStall } = facts;
  // With no other node that may run the group (a one-node group) nobody can take it over, and
  // serving on is always safe.
  const unheard: { node: string; detail: string }[] = [];
  for (const rival of rivals) {
    const peer = peers.find((p) => p.node === rival);
    const ago = peer?.lastHeardAgoMs;
    const last = ago === undefined ? 'never heard' : `last heard ${Math.round(ago)} ms ago`;
    if (!peer || !peer.alive || ago === undefined) {
      unheard.push({ node: rival, detail: `${last}, suspect` });
      continue;
    }
    const age = contentAgeMs(ago, lastStall, deadtimeMs);
    if (age < deadtimeMs) continue;
    const stalled = age > ago && lastStall ? `, maybe read from the socket buffer after this agent did not run for ${Math.round(lastStall.lengthMs)} ms` : '';
    unheard.push({ node: rival, detail: `${last}${stalled}, deadtime ${deadtimeMs} ms` });
  }
  if (unheard.length > 0) {
    return { ok: false, why: `peer(s) ${unheard.map((u) => u.node).join(', ')} are not heard either (${unheard.map((u) => `${u.node}: ${u.detail}`).join('; ')})` };
  }
  const claimant = peers.find((p) => rivals.includes(p.node) && p.claims[group] !== undefined);
  if (claimant) return { ok: false, why: `peer ${claimant.node} claims the group` };
  return { ok: true };
}
