/**
 * The one place that knows DRBD 9's command lines and the shape of `drbdsetup status --json`.
 * Everything else (the `drbd` driver, its tests, the docs) builds commands from here, so a
 * change of drbd-utils is a change of this file.
 *
 * Commands, as the DRBD 9 User's Guide and drbdadm(8) write them: `drbdadm up|down|primary|
 * secondary|connect|disconnect <res>`, `drbdadm primary --force <res>`, `drbdadm connect
 * --discard-my-data <res>`. State comes from `drbdsetup status <res> --json` (drbd-utils 9):
 * a JSON array of resources, each with its devices (volumes) and its connections to peers,
 * each connection with one peer device per volume. drbdadm has no JSON status, hence
 * drbdsetup for reading and drbdadm (which reads /etc/drbd.d) for acting.
 *
 * Exit codes worth knowing (drbd-utils `check_error()` and `drbdadm` main): 1 the resource is
 * not in the configuration of this host; 10 a `Failure: (NNN)` from the kernel (e.g. 158
 * unknown resource, i.e. not up; 125 connect while not StandAlone; 123 --discard-my-data on a
 * Primary); 11 a refused state change (`(-1) Multiple primaries not allowed by config`,
 * `(-12) Device is held open by someone`); 17 `(-2) Need access to UpToDate data`.
 */
import { z } from 'zod';

/** Where the two tools are; the resource's `drbdadm`/`drbdsetup` settings. */
export interface DrbdTools {
  drbdadm: string;
  drbdsetup: string;
}

/** A command line: the program, then its arguments (never a shell string). */
export type DrbdArgv = readonly [file: string, ...args: string[]];

/** Argument-vector builders for every DRBD command HA-OSCAR runs. Pure. */
export const drbdCommands = {
  /** Creates the resource in the kernel, attaches the disk and starts connecting (`drbdadm up`). */
  up: (tools: DrbdTools, resource: string): DrbdArgv => [tools.drbdadm, 'up', resource],
  /** Takes the resource out of the kernel (demotes, disconnects, detaches). */
  down: (tools: DrbdTools, resource: string): DrbdArgv => [tools.drbdadm, 'down', resource],
  /**
   * Promotes. `force` makes DRBD accept this node's data as up to date without a peer that
   * agrees: only an administrator who knows this node has the newest data may choose it.
   */
  primary: (tools: DrbdTools, resource: string, options: { force?: boolean } = {}): DrbdArgv =>
    options.force ? [tools.drbdadm, 'primary', '--force', resource] : [tools.drbdadm, 'primary', resource],
  secondary: (tools: DrbdTools, resource: string): DrbdArgv => [tools.drbdadm, 'secondary', resource],
  /**
   * Reconnects StandAlone connections. `discardMyData` makes this node the split brain victim:
   * its changes since the split are thrown away and it resyncs from the peer.
   */
  connect: (tools: DrbdTools, resource: string, options: { discardMyData?: boolean } = {}): DrbdArgv =>
    options.discardMyData ? [tools.drbdadm, 'connect', '--discard-my-data', resource] : [tools.drbdadm, 'connect', resource],
  disconnect: (tools: DrbdTools, resource: string): DrbdArgv => [tools.drbdadm, 'disconnect', resource],
  /** Machine-readable state; JSON has every field, so `--verbose` would change nothing. */
  status: (tools: DrbdTools, resource: string): DrbdArgv => [tools.drbdsetup, 'status', resource, '--json'],
} as const;

/** The DRBD-documented manual split brain recovery, as text an administrator can paste. */
export function splitBrainRecoveryCommands(resource: string): { victim: string[]; survivor: string[] } {
  return {
    // DRBD 9 User's Guide, "Manual split brain recovery".
    victim: [`drbdadm disconnect ${resource}`, `drbdadm secondary ${resource}`, `drbdadm connect --discard-my-data ${resource}`],
    survivor: [`drbdadm disconnect ${resource}`, `drbdadm connect ${resource}`],
  };
}

// ------------------------------------------------------------------------ status JSON

/** Values DRBD 9 prints (drbd_strings.c); other strings are passed through as they come. */
export const DRBD_ROLES = ['Primary', 'Secondary', 'Unknown'] as const;
export const DRBD_DISK_STATES = ['Diskless', 'Attaching', 'Detaching', 'Failed', 'Negotiating', 'Inconsistent', 'Outdated', 'DUnknown', 'Consistent', 'UpToDate'] as const;
export const DRBD_CONNECTION_STATES = ['StandAlone', 'Disconnecting', 'Unconnected', 'Timeout', 'BrokenPipe', 'NetworkFailure', 'ProtocolError', 'TearDown', 'Connecting', 'Connected'] as const;
export const DRBD_REPLICATION_STATES = [
  'Off',
  'Established',
  'StartingSyncS',
  'StartingSyncT',
  'WFBitMapS',
  'WFBitMapT',
  'WFSyncUUID',
  'SyncSource',
  'SyncTarget',
  'VerifyS',
  'VerifyT',
  'PausedSyncS',
  'PausedSyncT',
  'Ahead',
  'Behind',
] as const;

// `(string & {})` keeps editor completion for the known values while accepting new ones.
export type DrbdRole = (typeof DRBD_ROLES)[number] | (string & {});
export type DrbdDiskState = (typeof DRBD_DISK_STATES)[number] | (string & {});
export type DrbdConnectionState = (typeof DRBD_CONNECTION_STATES)[number] | (string & {});
export type DrbdReplicationState = (typeof DRBD_REPLICATION_STATES)[number] | (string & {});

export interface DrbdDeviceStatus {
  volume: number;
  minor: number;
  diskState: DrbdDiskState;
  /** Intentionally diskless (a DRBD client). */
  client?: boolean;
  quorum?: boolean;
  sizeKiB?: number;
}

export interface DrbdPeerDeviceStatus {
  volume: number;
  replicationState: DrbdReplicationState;
  peerDiskState: DrbdDiskState;
  /** What this node knows differs from the peer, in KiB (drbdsetup prints sectors / 2). */
  outOfSyncKiB: number;
  /** 100 × (1 − out-of-sync / size). */
  percentInSync?: number;
  /** A running resync's progress (only while it runs). */
  percentResyncDone?: number;
  /** DRBD's own estimate from its recent rate (only while a resync runs). */
  estimatedSecondsToFinish?: number;
  resyncSuspended?: string;
}

export interface DrbdConnectionStatus {
  peerNodeId: number;
  /** The peer's name in the DRBD configuration (its host name). */
  name: string;
  connectionState: DrbdConnectionState;
  /** `Unknown` unless Connected. */
  peerRole: DrbdRole;
  congested?: boolean;
  peerDevices: DrbdPeerDeviceStatus[];
}

export interface DrbdResourceStatus {
  name: string;
  nodeId?: number;
  role: DrbdRole;
  suspended: boolean;
  devices: DrbdDeviceStatus[];
  connections: DrbdConnectionStatus[];
}

/** Thrown when drbdsetup's output is not the JSON HA-OSCAR knows: a changed drbd-utils? */
export class DrbdStatusParseError extends Error {
  constructor(
    message: string,
    /** The start of what drbdsetup printed. */
    readonly excerpt: string,
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = 'DrbdStatusParseError';
  }
}

// Lenient: unknown fields are kept out of the way, statistics may be missing (drbdsetup prints
// them only when the kernel sent them), and new enum values pass as strings.
const num = z.number();
const peerDeviceSchema = z.looseObject({
  volume: num,
  'replication-state': z.string(),
  'peer-disk-state': z.string(),
  'out-of-sync': num.optional(),
  'percent-in-sync': num.optional(),
  'percent-resync-done': num.optional(),
  'estimated-seconds-to-finish': num.optional(),
  'resync-suspended': z.string().optional(),
});
const connectionSchema = z.looseObject({
  'peer-node-id': num,
  name: z.string(),
  'connection-state': z.string(),
  'peer-role': z.string(),
  congested: z.boolean().optional(),
  peer_devices: z.array(peerDeviceSchema).default([]),
});
const deviceSchema = z.looseObject({
  volume: num,
  minor: num,
  'disk-state': z.string(),
  client: z.boolean().optional(),
  quorum: z.boolean().optional(),
  size: num.optional(),
});
const resourceSchema = z.looseObject({
  name: z.string(),
  'node-id': num.optional(),
  role: z.string(),
  suspended: z.boolean().default(false),
  devices: z.array(deviceSchema).default([]),
  connections: z.array(connectionSchema).default([]),
});
const statusSchema = z.array(resourceSchema);

/**
 * Parses `drbdsetup status [RES] --json`. Pure.
 * @throws DrbdStatusParseError when the text is not JSON or not a list of resources; the
 *   message names the first field that is wrong (`[0].devices[0].disk-state: ...`).
 */
export function parseDrbdStatusJson(text: string): DrbdResourceStatus[] {
  const excerpt = text.trim().slice(0, 300);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new DrbdStatusParseError(
      `drbdsetup status --json printed something that is not JSON (${why}); is drbdsetup from drbd-utils 9? It printed: ${JSON.stringify(excerpt)}`,
      excerpt,
      error,
    );
  }
  const parsed = statusSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
    throw new DrbdStatusParseError(`drbdsetup status --json printed JSON of an unexpected shape (${issues.join('; ')}); is drbdsetup from drbd-utils 9?`, excerpt);
  }
  return parsed.data.map((r) => ({
    name: r.name,
    ...(r['node-id'] === undefined ? {} : { nodeId: r['node-id'] }),
    role: r.role,
    suspended: r.suspended,
    devices: r.devices.map((d) => ({
      volume: d.volume,
      minor: d.minor,
      diskState: d['disk-state'],
      ...(d.client === undefined ? {} : { client: d.client }),
      ...(d.quorum === undefined ? {} : { quorum: d.quorum }),
      ...(d.size === undefined ? {} : { sizeKiB: d.size }),
    })),
    connections: r.connections.map((c) => ({
      peerNodeId: c['peer-node-id'],
      name: c.name,
      connectionState: c['connection-state'],
      peerRole: c['peer-role'],
      ...(c.congested === undefined ? {} : { congested: c.congested }),
      peerDevices: c.peer_devices.map((p) => ({
        volume: p.volume,
        replicationState: p['replication-state'],
        peerDiskState: p['peer-disk-state'],
        outOfSyncKiB: p['out-of-sync'] ?? 0,
        ...(p['percent-in-sync'] === undefined ? {} : { percentInSync: p['percent-in-sync'] }),
        ...(p['percent-resync-done'] === undefined ? {} : { percentResyncDone: p['percent-resync-done'] }),
        ...(p['estimated-seconds-to-finish'] === undefined ? {} : { estimatedSecondsToFinish: p['estimated-seconds-to-finish'] }),
        ...(p['resync-suspended'] === undefined ? {} : { resyncSuspended: p['resync-suspended'] }),
      })),
    })),
  }));
}

function formatPath(path: readonly PropertyKey[]): string {
  return path.map((part) => (typeof part === 'number' ? `[${part}]` : `.${String(part)}`)).join('').replace(/^\./, '') || '(top level)';
}
