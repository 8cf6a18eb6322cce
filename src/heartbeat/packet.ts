/**
 * The heartbeat packet codec. Pure: no I/O, no clock; {@link decodePacket} never throws, whatever
 * bytes arrive (anyone who can reach the port can send anything).
 *
 * Layout (one UDP datagram, at most {@link MAX_PACKET_BYTES}), the same in every version:
 *
 *     offset 0   3 bytes  magic "HAO"
 *     offset 3   1 byte   protocol version (one of {@link PROTOCOL_VERSIONS})
 *     offset 4   n bytes  body: JSON (UTF-8), see {@link HeartbeatPacket}
 *     offset 4+n 32 bytes HMAC-SHA256 tag, keyed with the shared secret, over bytes 0 .. 4+n-1
 *
 * The tag covers the version byte and the whole body: a packet cannot be moved to another
 * version, nor its advertised `versions` changed, without the secret (negotiation.ts).
 *
 * Versions:
 * - 1: what every release reads (0.1.0 reads nothing else). This release writes it to a peer
 *   until that peer has advertised a higher version, and adds `versions` (ignored by 0.1.0,
 *   whose body schema drops unknown fields).
 * - 2: version 1 plus, required, `versions`, `nonce` and `configDigest` (the sender's cluster
 *   configuration digest, config/digest.ts). A receiver of a version-2 packet knows the
 *   digest is there: a peer without one speaks version 1.
 *
 * Order of checks, cheapest and least trusting first: size (oversized, truncated), then the
 * version byte, then the tag, and only then is the body parsed. The version is looked at
 * before the tag on purpose: a node speaking a version this one does not know must be
 * reported as `bad-version`, not as `forged` (which would send the operator chasing the
 * secret). Every other bit, the magic included, is covered by the tag. JSON is never parsed
 * for an unauthenticated packet, so a stranger cannot make us parse anything.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { NAME_PATTERN } from '../config/schema.js';

/** Every protocol version this release reads and writes, lowest first (negotiation.ts picks one per peer). */
export const PROTOCOL_VERSIONS: readonly ProtocolVersion[] = [1, 2];
export type ProtocolVersion = 1 | 2;
/** The version every release reads: sent to a peer until it has advertised a higher one. */
export const BASE_PROTOCOL_VERSION = 1;
/** The newest version this release speaks. */
export const LATEST_PROTOCOL_VERSION = 2;
/** An advertisement: at most this many versions (each 1-255, the version byte), ascending. */
export const MAX_ADVERTISED_VERSIONS = 16;
/** A configuration digest (config/digest.ts): 128 bits in lowercase hex. */
export const CONFIG_DIGEST_PATTERN = /^[0-9a-f]{32}$/;
/** Fits one Ethernet frame (1500) with IPv4/IPv6 and UDP headers to spare: no IP fragmentation. */
export const MAX_PACKET_BYTES = 1400;
export const HEADER_BYTES = 4;
export const TAG_BYTES = 32;
const MAGIC = Buffer.from('HAO', 'latin1');
/** The shortest body is `{}`; anything shorter cannot be a packet. */
const MIN_PACKET_BYTES = HEADER_BYTES + 2 + TAG_BYTES;
/** A challenge nonce: 16 random bytes, base64url (22 characters). */
export const NONCE_PATTERN = /^[A-Za-z0-9_-]{22}$/;
/** A secret's name (secretKeyId, secret.ts): 16 lowercase hex digits. */
export const KEY_ID_PATTERN = /^[0-9a-f]{16}$/;
/** The most secret names a packet carries: the signing one and up to 4 accepted (heartbeat.acceptSecretFiles). */
export const MAX_ADVERTISED_KEYS = 5;

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
  /**
   * The protocol versions the sender speaks, ascending (it includes the packet's own version).
   * Optional in version 1 (absent in packets of 0.1.0, which speaks only 1), required in 2.
   */
  versions?: number[];
  /** The sender's configuration digest (config/digest.ts). Version 2 only, and required there. */
  configDigest?: string;
  /**
   * The names (secretKeyId, secret.ts) of the secrets the sender accepts, the one it signs with
   * first: what a rotation step checks against its peers (docs/reload.md#rotating-the-cluster-secret).
   * Optional in every version, without a bump: older releases neither send nor read it.
   */
  keys?: string[];
  /**
   * The version the packet is (or is to be) written in, the header's byte. {@link decodePacket}
   * always sets it; {@link encodePacket} writes {@link BASE_PROTOCOL_VERSION} when it is absent.
   */
  version?: ProtocolVersion;
}

export type DecodeFailureReason = 'truncated' | 'oversized' | 'bad-version' | 'forged' | 'malformed' | 'wrong-cluster';
export const DECODE_FAILURE_REASONS = ['truncated', 'oversized', 'bad-version', 'forged', 'malformed', 'wrong-cluster'] as const satisfies readonly DecodeFailureReason[];

export type DecodeResult =
  /** `keyIndex`: which of the keys given to {@link decodePacket} the tag verified under. */
  | { ok: true; packet: HeartbeatPacket; keyIndex: number }
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
const versionsSchema = z.array(z.number().int().min(1).max(255)).min(1).max(MAX_ADVERTISED_VERSIONS)
  .refine((v) => v.every((x, i) => i === 0 || x > v[i - 1]!), { message: 'expected distinct versions in ascending order' });
// Not strict: a later release may add optional fields without bumping the version; older
// nodes ignore them. A change that older nodes must not ignore bumps the version (negotiated).
const v1Schema = z.object({
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
  // The sender's advertisement (negotiation.ts); 0.1.0 neither sends nor reads it.
  versions: versionsSchema.optional(),
  keys: z.array(z.string().regex(KEY_ID_PATTERN)).min(1).max(MAX_ADVERTISED_KEYS).optional(),
});
const v2Schema = v1Schema.extend({
  // A sender of version 2 always has the challenge and says what it speaks.
  nonce: z.string().regex(NONCE_PATTERN),
  versions: versionsSchema,
  configDigest: z.string().regex(CONFIG_DIGEST_PATTERN),
});
const SCHEMAS = { 1: v1Schema, 2: v2Schema } as const satisfies Record<ProtocolVersion, z.ZodType>;

const isSupported = (v: number | undefined): v is ProtocolVersion => PROTOCOL_VERSIONS.includes(v as ProtocolVersion);

/** The first problem of a body for `version`, beyond its schema: undefined when there is none. */
function bodyProblem(version: ProtocolVersion, p: { versions?: number[] | undefined }): string | undefined {
  if (p.versions !== undefined && !p.versions.includes(version)) {
    return `versions: [${p.versions.join(', ')}] does not include the packet's own version ${version}`;
  }
  return undefined;
}

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
  const version = packet.version ?? BASE_PROTOCOL_VERSION;
  if (!isSupported(version)) throw new HeartbeatPacketError(`invalid heartbeat packet: version ${String(version)} is not one of ${PROTOCOL_VERSIONS.join(', ')}`);
  const checked = SCHEMAS[version].safeParse(packet);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    throw new HeartbeatPacketError(`invalid heartbeat packet: ${issue?.path.join('.') || '(packet)'}: ${issue?.message ?? 'invalid'} (protocol version ${version})`);
  }
  const p = checked.data;
  const problem = bodyProblem(version, p);
  if (problem !== undefined) throw new HeartbeatPacketError(`invalid heartbeat packet: ${problem} (protocol version ${version})`);
  // Fields listed one by one: the body holds exactly these, in this order (those 0.1.0 knows
  // first), whatever else the object carries. JSON leaves out those that are undefined; a
  // version-1 packet never carries the digest.
  const body = Buffer.from(JSON.stringify({
    cluster: p.cluster, node: p.node, incarnation: p.incarnation, seq: p.seq, sentAt: p.sentAt, to: p.to, view: p.view, nonce: p.nonce, echo: p.echo,
    versions: p.versions, configDigest: version >= 2 ? (p as { configDigest?: string }).configDigest : undefined, keys: p.keys,
  }), 'utf8');
  const size = HEADER_BYTES + body.length + TAG_BYTES;
  if (size > MAX_PACKET_BYTES) {
    throw new HeartbeatPacketError(
      `heartbeat packet would be ${size} bytes, more than ${MAX_PACKET_BYTES} (one Ethernet frame): the view lists ${Object.keys(p.view.groups).length} groups; use fewer or shorter group names`);
  }
  const out = Buffer.allocUnsafe(size);
  MAGIC.copy(out, 0);
  out[3] = version;
  body.copy(out, HEADER_BYTES);
  tagOf(key, out.subarray(0, size - TAG_BYTES)).copy(out, size - TAG_BYTES);
  return out;
}

/**
 * Checks and parses one received datagram for cluster `cluster`. `key`: the secret, or several
 * (the one it signs with and those of a secret being rotated in or out, docs/reload.md#rotating-the-cluster-secret):
 * a tag under any of them is believed. Never throws.
 */
export function decodePacket(data: Uint8Array, key: Buffer | readonly Buffer[], cluster: string): DecodeResult {
  if (data.length > MAX_PACKET_BYTES) return { ok: false, reason: 'oversized', detail: `${data.length} bytes` };
  if (data.length < MIN_PACKET_BYTES) return { ok: false, reason: 'truncated', detail: `${data.length} bytes` };
  const version = data[3];
  if (data[0] === MAGIC[0] && data[1] === MAGIC[1] && data[2] === MAGIC[2] && !isSupported(version)) {
    return { ok: false, reason: 'bad-version', detail: `protocol version ${version}, this node speaks ${PROTOCOL_VERSIONS.join(', ')}` };
  }
  const signedLength = data.length - TAG_BYTES;
  const given = data.subarray(signedLength);
  const keys = Buffer.isBuffer(key) ? [key] : key;
  const keyIndex = keys.findIndex((k) => timingSafeEqual(tagOf(k, data.subarray(0, signedLength)), given));
  if (keyIndex < 0) return { ok: false, reason: 'forged' };
  // From here on the sender knew the key: anything wrong is a bug or another release, not an attack.
  if (data[0] !== MAGIC[0] || data[1] !== MAGIC[1] || data[2] !== MAGIC[2]) return { ok: false, reason: 'malformed', detail: 'bad magic' };
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(data.buffer, data.byteOffset + HEADER_BYTES, signedLength - HEADER_BYTES).toString('utf8'));
  } catch {
    return { ok: false, reason: 'malformed', detail: 'body is not JSON' };
  }
  // The magic is right and the tag too: the version byte is one of ours (checked above).
  const v = version as ProtocolVersion;
  const parsed = SCHEMAS[v].safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, reason: 'malformed', detail: `version ${v}: ${issue?.path.join('.') || '(body)'}: ${issue?.message ?? 'invalid'}` };
  }
  const problem = bodyProblem(v, parsed.data);
  if (problem !== undefined) return { ok: false, reason: 'malformed', detail: `version ${v}: ${problem}` };
  if (parsed.data.cluster !== cluster) {
    return { ok: false, reason: 'wrong-cluster', detail: `cluster '${parsed.data.cluster}', this node is in '${cluster}'` };
  }
  return { ok: true, packet: { ...parsed.data, version: v }, keyIndex };
}
