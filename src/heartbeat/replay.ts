/**
 * Anti-replay for authenticated heartbeats. A recorded packet is still correctly signed, so
 * without this check anyone who captured traffic could keep a dead node "alive" by sending
 * its old packets again. Pure: no clock, no I/O.
 *
 * Per sender we keep its incarnation (start time) and, within it, a sliding window over
 * sequence numbers as IPsec does (RFC 4303 §3.4.3): the highest seq seen and a 64-bit map of
 * which of the 64 seqs below it (itself included) were seen. A seq above the highest is new;
 * one inside the window is new if its bit is clear; one below the window is refused, since we
 * can no longer tell whether it was seen. The window absorbs reordering between links (the
 * same sender's packets race each other over two networks), up to 64 packets' worth.
 *
 * A larger incarnation means the sender restarted: its window starts afresh. A smaller one is
 * an old packet (or a sender whose clock went backwards across a restart; the log says so).
 */

export const REPLAY_WINDOW = 64;
const MASK = (1n << BigInt(REPLAY_WINDOW)) - 1n;

export interface ReplayWindow {
  incarnation: number;
  highest: number;
  /** Bit i set: seq `highest - i` was seen (bit 0 is `highest` itself). */
  seen: bigint;
}

export type ReplayWhy = 'old-incarnation' | 'duplicate' | 'too-old';

export type ReplayVerdict =
  /** `restarted`: a known sender came back with a larger incarnation. */
  | { ok: true; window: ReplayWindow; restarted: boolean }
  | { ok: false; reason: 'replayed'; why: ReplayWhy };

/**
 * Decides about one packet from a sender whose window is `window` (undefined: never heard).
 * Returns the window to keep when the packet is accepted; the caller keeps the old one when it
 * is not.
 */
export function checkReplay(window: ReplayWindow | undefined, incarnation: number, seq: number): ReplayVerdict {
  if (window === undefined || incarnation > window.incarnation) {
    return { ok: true, window: { incarnation, highest: seq, seen: 1n }, restarted: window !== undefined };
  }
  if (incarnation < window.incarnation) return { ok: false, reason: 'replayed', why: 'old-incarnation' };
  if (seq > window.highest) {
    const shift = seq - window.highest;
    const seen = shift >= REPLAY_WINDOW ? 1n : ((window.seen << BigInt(shift)) | 1n) & MASK;
    return { ok: true, window: { incarnation, highest: seq, seen }, restarted: false };
  }
  const age = window.highest - seq;
  if (age >= REPLAY_WINDOW) return { ok: false, reason: 'replayed', why: 'too-old' };
  const bit = 1n << BigInt(age);
  if (window.seen & bit) return { ok: false, reason: 'replayed', why: 'duplicate' };
  return { ok: true, window: { ...window, seen: window.seen | bit }, restarted: false };
}

/** One {@link ReplayWindow} per sender; {@link ReplayGuard.check} records what it accepts. */
export class ReplayGuard {
  private readonly windows = new Map<string, ReplayWindow>();

  /** Checks a packet from `sender` and, if it is accepted, remembers it. */
  check(sender: string, incarnation: number, seq: number): ReplayVerdict {
    const verdict = checkReplay(this.windows.get(sender), incarnation, seq);
    if (verdict.ok) this.windows.set(sender, verdict.window);
    return verdict;
  }

  /** The incarnation last accepted from `sender`, if any. */
  incarnation(sender: string): number | undefined {
    return this.windows.get(sender)?.incarnation;
  }
}
