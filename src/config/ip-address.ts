/**
 * Virtual addresses with their prefix length (`10.213.0.100/24`, `fd00:213::200/64`): parsing,
 * the canonical IPv6 text, and why an address cannot be a VIP. Pure and free of Node modules
 * (the config schema uses it), so it is tested on tables.
 *
 * The canonical IPv6 text is RFC 5952's (lower case, no leading zeros, the longest run of two
 * or more zero groups as `::`, the first of equal runs), which is what glibc's inet_ntop and so
 * `ip address show` print: the driver and the lease guard find an address in `ip`'s output by
 * that text, so a VIP written `FD00:0213:0::0200/64` must be looked for as `fd00:213::200/64`.
 */

export interface VipAddress {
  family: 4 | 6;
  /** Without the prefix length: IPv4 as written, IPv6 in canonical text (RFC 5952). */
  address: string;
  prefixLength: number;
}

function parseIPv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.map(Number);
}

/** The eight 16-bit groups of an IPv6 address in hex notation (no zone, no dotted IPv4 tail), or undefined. */
export function parseIPv6(text: string): number[] | undefined {
  if (!/^[0-9A-Fa-f:]+$/.test(text) || text.includes(':::')) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string) => (half === '' ? [] : half.split(':'));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (![...head, ...tail].every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return undefined;
  const given = head.length + tail.length;
  // `::` stands for at least one zero group; without it there must be exactly eight.
  if (halves.length === 2 ? given > 7 : given !== 8) return undefined;
  const zeros = new Array<string>(8 - given).fill('0');
  return [...head, ...zeros, ...tail].map((g) => parseInt(g, 16));
}

/** RFC 5952 text of eight groups. */
export function formatIPv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLength) [bestStart, bestLength] = [i, j - i];
    i = j;
  }
  const hex = (gs: readonly number[]) => gs.map((g) => g.toString(16)).join(':');
  // A single zero group is not shortened (RFC 5952 4.2.2).
  if (bestLength < 2) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** `fd00:0213::0200` → `fd00:213::200`; undefined when it is not an IPv6 address. */
export function canonicalIPv6(text: string): string | undefined {
  const groups = parseIPv6(text);
  return groups && formatIPv6(groups);
}

const inRange = (groups: readonly number[], prefix: readonly number[], bits: number) => {
  for (let i = 0; i * 16 < bits; i += 1) {
    const take = Math.min(16, bits - i * 16);
    const mask = (0xffff << (16 - take)) & 0xffff;
    if (((groups[i] ?? 0) & mask) !== ((prefix[i] ?? 0) & mask)) return false;
  }
  return true;
};

/** IPv6 ranges that cannot be a VIP, with the reason; checked in order. */
const UNUSABLE_IPV6: ReadonlyArray<{ prefix: number[]; bits: number; why: string }> = [
  { prefix: [0, 0, 0, 0, 0, 0, 0, 0], bits: 128, why: 'the unspecified address :: is nobody\'s address' },
  { prefix: [0, 0, 0, 0, 0, 0, 0, 1], bits: 128, why: 'the loopback address ::1 is reachable from this node only' },
  { prefix: [0, 0, 0, 0, 0, 0xffff], bits: 96, why: 'an IPv4-mapped address (::ffff:0:0/96) is never on an interface: give the IPv4 address itself' },
  {
    prefix: [0xfe80],
    bits: 10,
    why: 'a link-local address (fe80::/10) is valid on one link only, and every client would have to name its own interface to reach it (fe80::1%eth0): use a global or unique local (fd00::/8) address',
  },
  { prefix: [0xff00], bits: 8, why: 'a multicast address (ff00::/8) cannot be an interface address' },
];

export const VIP_ADDRESS_EXAMPLE = 'e.g. 10.213.0.100/24 or fd00:213::200/64';

/**
 * Reads `ADDRESS/LEN`, IPv4 (LEN 1-32) or IPv6 (LEN 1-128).
 * @returns the address, or the reason it cannot be a VIP (a sentence for the configuration error).
 */
export function parseVipAddress(text: string): VipAddress | { problem: string } {
  const slash = text.indexOf('/');
  const ip = slash < 0 ? text : text.slice(0, slash);
  const lengthText = slash < 0 ? '' : text.slice(slash + 1);
  const v4 = parseIPv4(ip);
  const v6 = v4 ? undefined : parseIPv6(ip);
  if (!v4 && !v6) {
    const zone = ip.includes('%') ? ' (an address with a zone such as %eth0 is link-local: not a VIP)' : '';
    return { problem: `expected an IPv4 or IPv6 address with its prefix length, ${VIP_ADDRESS_EXAMPLE}${zone}` };
  }
  const max = v4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(lengthText) || Number(lengthText) < 1 || Number(lengthText) > max) {
    return { problem: `expected ${ip} with its prefix length /1 to /${max}, ${v4 ? 'e.g. 10.213.0.100/24' : 'e.g. fd00:213::200/64'}` };
  }
  const prefixLength = Number(lengthText);
  // IPv4 as written: the schema and the driver have always taken it so.
  if (v4) return { family: 4, address: ip, prefixLength };
  const unusable = UNUSABLE_IPV6.find((r) => inRange(v6!, r.prefix, r.bits));
  if (unusable) return { problem: `${ip} cannot be a VIP: ${unusable.why}` };
  return { family: 6, address: formatIPv6(v6!), prefixLength };
}
