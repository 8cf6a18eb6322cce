/**
 * Which socket sends to which peer address, and how a received packet names its link. Both
 * sides apply the same rule, so the receiver knows which of the sender's addresses a packet
 * left from without trusting the (unauthenticated) UDP source address:
 *
 * a node sends to a peer's k-th address from its own k-th address when it has one (the
 * addresses of a link are listed in the same position on every node: LAN first, crossover
 * cable second ...), and from its first address otherwise.
 */
import { isIPv6 } from 'node:net';

/** The index of the own address (socket) that sends to a peer's `peerIndex`-th address. */
export function senderIndex(own: readonly string[], peerIndex: number, peerAddress: string): number {
  // A socket of the other address family cannot send there at all: prefer one that can.
  const family = (a: string) => (isIPv6(a) ? 6 : 4);
  if (peerIndex < own.length && family(own[peerIndex]!) === family(peerAddress)) return peerIndex;
  const same = own.findIndex((a) => family(a) === family(peerAddress));
  return same >= 0 ? same : 0;
}

/**
 * The link a packet from `peer` travelled on when it was sent to our address `to`: named
 * `<peer address>-><own address>`, e.g. `10.0.0.2->10.0.0.1`. Undefined when `to` is not one
 * of our addresses.
 */
export function incomingLink(own: readonly string[], peer: readonly string[], to: string): string | undefined {
  const j = own.indexOf(to);
  if (j < 0) return undefined;
  const from = peer[senderIndex(peer, j, to)] ?? '?';
  return `${from}->${to}`;
}

/** Every link a peer can be heard on: one per own address. */
export function incomingLinks(own: readonly string[], peer: readonly string[]): string[] {
  return own.map((to) => incomingLink(own, peer, to)!);
}
