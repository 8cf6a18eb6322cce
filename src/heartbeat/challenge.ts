/**
 * Freshness of heartbeats: whether a signed, not-yet-seen packet proves that its sender is
 * alive NOW, without comparing the sender's clock with ours.
 *
 * The replay window (replay.ts) lives in memory: an agent that has just restarted knows none
 * of its peers' sequence numbers, so a recording of a peer's packets, played back, would pass
 * it and keep a dead node "alive". So each agent chooses a random nonce at its start and puts
 * it in all its packets; each agent echoes, in its packets to a peer, the nonce it last heard
 * from that peer. A packet counts as a sign of life only when it echoes the receiver's current
 * nonce: it was then written after the sender heard this run of the receiver, and a recording
 * made before this run cannot carry the new nonce (the echo is under the signature). Within
 * one run, copies and old packets are the replay window's business.
 *
 * Rolling upgrades: releases before the challenge send neither nonce nor echo (and ignore
 * both). Their packets are believed as before, except from a peer this node has seen answer
 * a challenge (persisted, state.ts): from it, a packet without a nonce is a recording of its
 * older release, or the peer was downgraded.
 *
 * Pure, but for {@link newNonce}.
 */
import { randomBytes } from 'node:crypto';

/** A fresh challenge: 16 random bytes, base64url (matches NONCE_PATTERN in packet.ts). */
export function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

export type FreshnessWhy =
  /** The sender has not heard this node yet (it just started, or our packets do not reach it). */
  | 'no-echo'
  /** It echoes another nonce: it last heard an earlier run of this node (a recording, or it has not heard this run yet). */
  | 'stale-echo'
  /** No nonce at all (an older release's packet) from a peer that has answered a challenge before. */
  | 'no-challenge';

export type Freshness =
  /** `legacy`: believed without proof, the sender speaks a release before the challenge. */
  | { fresh: true; legacy: boolean }
  | { fresh: false; why: FreshnessWhy };

export interface FreshnessInput {
  /** This node's nonce of this run. */
  ownNonce: string;
  /** The packet's `nonce` and `echo` (undefined when absent). */
  nonce: string | undefined;
  echo: string | undefined;
  /** Whether the sender has answered one of this node's challenges before (in any run). */
  answeredBefore: boolean;
}

/** Decides whether an authenticated packet that passed the replay window is a sign of life. */
export function judgeFreshness(input: FreshnessInput): Freshness {
  if (input.nonce === undefined) {
    return input.answeredBefore ? { fresh: false, why: 'no-challenge' } : { fresh: true, legacy: true };
  }
  if (input.echo === undefined) return { fresh: false, why: 'no-echo' };
  if (input.echo !== input.ownNonce) return { fresh: false, why: 'stale-echo' };
  return { fresh: true, legacy: false };
}
