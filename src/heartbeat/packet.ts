/**
 * The heartbeat packet codec. Pure: no I/O, no clock; {@link decodePacket} never throws, whatever
 * bytes arrive (anyone who can reach the port can send anything).
 *
 * Layout (one UDP datagram, at most {@link MAX_PACKET_BYTES}):
 *
 *     offset 0   3 bytes  magic "HAO"
 *     offset 3   1 byte   protocol version ({@link PROTOCOL_VERSION})
 *     offset 4   n bytes  body: JSON (UTF-8), see {@link HeartbeatPacket}
 *     offset 4+n 32 bytes HMAC-SHA256 tag, keyed with the shared secret, over bytes 0 .. 4+n-1
 *
 * Order of checks, cheapest and least trusting first: size (oversized, truncated), then the
 * version byte, then the tag, and only then is the body parsed. The version is looked at
 * before the tag on purpose: during a rolling upgrade a node speaking another version must be
 * reported as `bad-version`, not as `forged` (which would send the operator chasing the
 * secret). Every other bit, the magic included, is covered by the tag. JSON is never parsed
 * for an unauthenticated packet, so a stranger cannot make us parse anything.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { NAME_PATTERN } from '../config/schema.js';

export const PROTOCOL_VERSION = 1;
/** Fits one Ethernet frame (1500) with IPv4/IPv6 and UDP headers to spare: no IP fragmentation. */
export const MAX_PACKET_BYTES = 1400;
export const HEADER_BYTES = 4;
export const TAG_BYTES = 32;
const MAGIC = Buffer.from('HAO', 'latin1');
/** The shortest body is `{}`; anything shorter cannot be a packet. */
const MIN_PACKET_BYTES = HEADER_BYTES + 2 + TAG_BYTES;
/** A challenge nonce: 16 random bytes, base64url (22 characters). */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{22}$/;

/** 'failed': a stop or the guard's release failed; the node still holds the group (docs/guard.md). */
export type GroupRunState = 'starting' | 'running' | 'stopping' | 'failed';

/** What a node tells its peers about itself: the groups it holds and under which epoch. */
export interface HeartbeatView {
  groups: Record<string, { epoch: number; state: GroupRunState }>;
  /**
   * The owner's file-set generations, `group/set` → [generation, time of its first change]:
   * a standby pulls when it sees a generation it has not pulled yet (docs/sync.md).
   */
  sync?: Record<string, [number, number]>;
}

export interface HeartbeatPacket {
  cluster: string;
  /** The sender's node name. */
  node: string;
  /**
   * The sender's run: persisted by the sender, at least one more at each of its starts (the
   * clock in ms when that is larger, as releases before the challenge took at every start), so
   * a restarted sender has a larger one whatever its clock says (state.ts).
   */
  incarnation: number;
  /** 1, 2, 3 ... within one incarnation; never reused, so a copy can be recognised. */
  seq: number;
  /** The sender's clock when it sent the packet (ms since the epoch); informational only, never compared with ours. */
  sentAt: number;
  /** The address (as written in the configuration) the packet was sent to: identifies the link. */
  to: string;
  view: HeartbeatView;
  /**
   * The sender's challenge: random, chosen at the sender's start, the same in all its packets
   * of one run. Absent in packets of releases before the challenge (docs/heartbeat.md).
   */
  nonce?: string;
  /**
   * The receiver's challenge as the sender last heard it from the receiver: a packet proves
   * that it was sent during the receiver's current run only when this is the receiver's
   * current nonce (see challenge.ts). Absent until the sender has heard the receiver.
   */
  echo?: string;
}

export type DecodeFailureReason = 'truncated' | 'oversized' | 'bad-version' | 'forged' | 'malformed' | 'wrong-cluster';
export const DECODE_FAILURE_REASONS = ['truncated', 'oversized', 'bad-version', 'forged', 'malformed', 'wrong-cluster'] as const satisfies readonly DecodeFailureReason[];

export type DecodeResult =
  | { ok: true; packet: HeartbeatPacket }
  /** `detail` says more for the log (the version seen, the cluster named, what was malformed). */
  | { ok: false; reason: DecodeFailureReason; detail?: string };

/** Thrown by {@link encodePacket} for a packet that peers would reject (too large, bad field). */
export class HeartbeatPacketError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HeartbeatPacketError';
  }
}

const nameSchema = z.string().regex(NAME_PATTERN);
const ms = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
export const heartbeatViewSchema = z.object({
  groups: z.record(nameSchema, z.object({ epoch: ms, state: z.enum(['starting', 'running', 'stopping', 'failed']) })),
  sync: z.record(z.string().regex(/^[a-z0-9-]{1,63}\/[a-z0-9-]{1,63}$/), z.tuple([ms, ms])).optional(),
});
// Not strict: a later release may add optional fields without bumping the version; older
// nodes ignore them. A change that older nodes must not ignore bumps PROTOCOL_VERSION.
const packetSchema = z.object({
  cluster: nameSchema,
  node: nameSchema,
  incarnation: ms,
  seq: ms.positive(),
  sentAt: ms,
  to: z.string().min(1).max(255),
  view: heartbeatViewSchema,
  // Optional, without a version bump: older releases ignore them and go on as they did, and
  // this release knows a sender of an older one by their absence (challenge.ts).
  nonce: z.string().regex(NONCE_PATTERN).optional(),
  echo: z.string().regex(NONCE_PATTERN).optional(),
});

function tagOf(key: Buffer, signed: Uint8Array): Buffer {
  return createHmac('sha256', key).update(signed).digest();
}

/**
 * Serialises and signs a packet.
 * @throws HeartbeatPacketError when a field is invalid (a name that is not a node/group name,
 *   a seq below 1, ...) or the packet would be larger than {@link MAX_PACKET_BYTES} (a view
 *   with too many groups).
 */
export function encodePacket(packet: HeartbeatPacket, key: Buffer): Buffer {
  const checked = packetSchema.safeParse(packet);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new HeartbeatPacketError(`invalid heartbeat packet: ${issue?.path.join('.') || '(packet)'}: ${issue?.message ?? 'invalid'}`);
  }
  // Fields listed one by one: the body holds exactly these, in this order, whatever else the object carries.
  const p = checked.data;
  // (JSON leaves out a nonce or echo that is undefined.)
  const body = Buffer.from(JSON.stringify({ cluster: p.cluster, node: p.node, incarnation: p.incarnation, seq: p.seq, sentAt: p.sentAt, to: p.to, view: p.view, nonce: p.nonce, echo: p.echo }), 'utf8');
  const size = HEADER_BYTES + body.length + TAG_BYTES;
  if (size > MAX_PACKET_BYTES) {
    throw new HeartbeatPacketError(
      `heartbeat packet would be ${size} bytes, more than ${MAX_PACKET_BYTES} (one Ethernet frame): the view lists ${Object.keys(p.view.groups).length} groups; use fewer or shorter group names`);
  }
  const out = Buffer.allocUnsafe(size);
  MAGIC.copy(out, 0);
  out[3] = PROTOCOL_VERSION;
  body.copy(out, HEADER_BYTES);
  tagOf(key, out.subarray(0, size - TAG_BYTES)).copy(out, size - TAG_BYTES);
  return out;
}

/**
 * Checks and parses one received datagram for cluster `cluster`. Never throws.
 */
export function decodePacket(data: Uint8Array, key: Buffer, cluster: string): DecodeResult {
  if (data.length > MAX_PACKET_BYTES) return { ok: false, reason: 'oversized', detail: `${data.length} bytes` };
  if (data.length < MIN_PACKET_BYTES) return { ok: false, reason: 'truncated', detail: `${data.length} bytes` };
  if (data[0] === MAGIC[0] && data[1] === MAGIC[1] && data[2] === MAGIC[2] && data[3] !== PROTOCOL_VERSION) {
    return { ok: false, reason: 'bad-version', detail: `protocol version ${data[3]}, this node speaks ${PROTOCOL_VERSION}` };
  }
  const signedLength = data.length - TAG_BYTES;
  const expected = tagOf(key, data.subarray(0, signedLength));
  if (!timingSafeEqual(expected, data.subarray(signedLength))) return { ok: false, reason: 'forged' };
  // From here on the sender knew the key: anything wrong is a bug or another release, not an attack.
  if (data[0] !== MAGIC[0] || data[1] !== MAGIC[1] || data[2] !== MAGIC[2]) return { ok: false, reason: 'malformed', detail: 'bad magic' };
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(data.buffer, data.byteOffset + HEADER_BYTES, signedLength - HEADER_BYTES).toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed', detail: 'body is not JSON' };
  }
  const parsed = packetSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: 'malformed', detail: `${issue?.path.join('.') || '(body)'}: ${issue?.message ?? 'invalid'}` };
  }
  if (parsed.data.cluster !== cluster) {
    return { ok: false, reason: 'wrong-cluster', detail: `cluster '${parsed.data.cluster}', this node is in '${cluster}'` };
  }
  return { ok: true, packet: parsed.data };
}
