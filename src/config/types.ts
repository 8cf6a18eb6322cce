/**
 * The normalised configuration: every default resolved, every duration in milliseconds.
 * These are plain data types with no runtime imports, so workflow code may import them as types.
 */
import type { AlertEventName } from '../../workflows/alert-event.js';

export interface CheckTiming {
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

export type CheckSpec = CheckTiming &
  (
    | { type: 'process'; name?: string; pidFile?: string }
    | { type: 'tcp'; host: string; port: number }
    | { type: 'http'; url: string; expectStatus?: number[] }
    | { type: 'command'; command: string[] }
    /** The resource's own status (its driver says whether it is running): the default of vip and command resources. */
    | { type: 'status' }
    /** Space and inodes of the filesystem holding `path` (statfs); at least one threshold. */
    | { type: 'disk'; path: string; maxUsedPercent?: number; minFreeBytes?: number; maxInodesUsedPercent?: number }
    /** Resident memory (VmRSS) of the process in `pidFile`, else of the service's own; with `children`, of its descendants too. */
    | { type: 'memory'; maxBytes: number; pidFile?: string; children: boolean }
    /** CPU use of a process between two runs, in percent of one CPU. */
    | { type: 'cpu'; maxPercent: number; pidFile?: string }
    /** A file exists and, optionally, has this content ('unchanged': the first run's), size and age. */
    | { type: 'file'; path: string; sha256?: string; maxSizeBytes?: number; minSizeBytes?: number; maxAgeMs?: number }
    /** One ping to the host is answered. */
    | { type: 'icmp'; host: string }
  );

export interface HealingPolicy {
  maxRestarts: number;
  windowMs: number;
  backoff: { initialMs: number; maxMs: number; multiplier: number };
  startTimeoutMs: number;
}

interface ResourceBase {
  name: string;
  check: CheckSpec;
  healing: HealingPolicy;
}
type ServiceBase = ResourceBase & { type: 'service' };
export type ServiceResource = ServiceBase &
  (
    | {
        driver: 'process';
        command: string[];
        cwd?: string;
        env?: Record<string, string>;
        stopSignal: 'SIGTERM' | 'SIGINT' | 'SIGQUIT' | 'SIGHUP' | 'SIGUSR1' | 'SIGUSR2';
        stopTimeoutMs: number;
        logFile?: string;
      }
    | { driver: 'systemd'; unit: string }
    | { driver: 'sysv'; script: string }
  );

/** A virtual IP address: `ip address add` on an interface, announced with gratuitous ARP (IPv6: unsolicited neighbour advertisements). */
export interface VipResource extends ResourceBase {
  type: 'vip';
  /** Address with prefix length, e.g. 10.213.0.100/24 or fd00:213::200/64. */
  address: string;
  interface: string;
  /** Announcement packets sent after adding the address (0: none). */
  arpCount: number;
}

/** Start/stop/monitor scripts given as argv (no shell); monitor exit 0 = running. */
export interface CommandResource extends ResourceBase {
  type: 'command';
  start: string[];
  stop: string[];
  monitor: string[];
  /** Each of start, stop and monitor must finish within this. */
  timeoutMs: number;
}

/** A DRBD resource: promoted (Primary) on the owner, Secondary elsewhere; commands in drivers/drbd-commands.ts. */
export interface DrbdResource extends ResourceBase {
  type: 'drbd';
  /** The DRBD resource's name (drbdadm's argument). */
  resource: string;
  drbdadm: string;
  drbdsetup: string;
  timeoutMs: number;
}

/** A filesystem mounted on the owner (often on a DRBD device), optionally checked with fsck first. */
export interface FilesystemResource extends ResourceBase {
  type: 'filesystem';
  device: string;
  mountpoint: string;
  fstype: string;
  options: string[];
  fsck: boolean;
  timeoutMs: number;
}

/** A resource managed by an OCF resource agent (resource-agents), run unchanged: src/drivers/ocf.ts. */
export interface OcfResource extends ResourceBase {
  type: 'ocf';
  /** provider:type, e.g. heartbeat:IPaddr2 (an `ocf:` prefix allowed). */
  agent: string;
  /** Passed as OCF_RESKEY_<name>. */
  params: Record<string, string>;
  /** Per action; absent: the agent's meta-data default, else 20 s. */
  timeouts: { start?: number; stop?: number; monitor?: number };
  ocfRoot: string;
}

/**
 * A PostgreSQL server replicated by streaming replication (src/drivers/postgresql.ts): primary
 * on the group's owner, a hot standby following `primaryHost` elsewhere.
 */
export interface PostgresqlResource extends ResourceBase {
  type: 'postgresql';
  dataDir: string;
  /** pg_ctl -D: where postgresql.conf is (the data directory unless said). */
  configDir?: string;
  bin: string;
  user: string;
  port: number;
  socketDir: string;
  logFile: string;
  primaryHost: string;
  replicationUser: string;
  passFile?: string;
  synchronous: boolean;
  timeoutMs: number;
  rejoinTimeoutMs: number;
  rejoinIntervalMs: number;
}

export type Resource = ServiceResource | VipResource | CommandResource | DrbdResource | FilesystemResource | OcfResource | PostgresqlResource;

/** Directories replicated from a group's owner to its standbys with rsync. */
export interface FileSet {
  name: string;
  paths: string[];
  excludes: string[];
  delete: boolean;
  /** KiB/s (rsync --bwlimit); 0: none. */
  bwlimit: number;
  continuous: boolean;
  batchMs: number;
  verifyEveryMs: number;
  checksum: boolean;
  ioTimeoutMs: number;
}

export interface FailbackPolicy {
  policy: 'manual' | 'auto';
  /** The preferred node must have been up this long. */
  stableForMs: number;
  /** After any move, the group stays at least this long. */
  stickinessMs: number;
}

export interface SyncSettings {
  transport: 'daemon' | 'ssh';
  port: number;
  rsync: string;
  /** Per file set: how many pulls' backups (files a pull deleted or replaced) are kept. */
  keepBackups: number;
  ssh: { user: string; identityFile: string; knownHostsFile: string };
}

/** `clone:` (docs/clone.md). */
export interface CloneSettings {
  include: string[];
  exclude: string[];
  checksumSample: number;
  sshPort: number;
}

/** A fence agent (fence-agents convention: key=value lines on stdin, exit 0 = fenced). */
export interface FenceSpec {
  command: string[];
  /** key=value lines given to the agent, e.g. ip, username, password; `action` and `nodename` are added. */
  params: Record<string, string>;
  action: 'off' | 'reboot';
  timeoutMs: number;
}

export interface NodeSpec {
  name: string;
  /** Heartbeat links: one address per link (several for redundant links). */
  addresses: string[];
  priority: number;
  /** How to power this node off when it must be made sure it is gone. */
  fence?: FenceSpec;
}

export interface HeartbeatSettings {
  /** UDP port, the same on every node. */
  port: number;
  intervalMs: number;
  /** A peer is suspect when every link to it has been silent this long. */
  deadtimeMs: number;
  /** Shared secret (HMAC-SHA256 key); must not be world-readable. */
  secretFile: string;
  /** Secrets also accepted (never signed with) while the secret is rotated; empty otherwise. */
  acceptSecretFiles: string[];
}

export interface LeaseSettings {
  /** An owner that cannot confirm its lease for this long stops the group itself. */
  ttlMs: number;
  /** Added to ttl before another node may start the group (covers the owner's stop and clock drift). */
  marginMs: number;
}

export interface GuardSettings {
  /** Whether the lease guard runs beside the agent (docs/guard.md). */
  enabled: boolean;
  /** The Linux watchdog the guard feeds, when armed. */
  watchdog?: { device: string; timeoutMs: number };
}

export interface FailoverSettings {
  /** How long the old owner has to answer "are you there?" before it counts as gone. */
  verifyTimeoutMs: number;
}

export interface GroupSpec {
  name: string;
  /** Nodes that may run the group, most preferred first. */
  nodes: string[];
  resources: Resource[];
  fileSets: FileSet[];
  failback: FailbackPolicy;
  /** The data policy of unplanned failovers (only for a group with file sets). */
  failover: { maxSyncLag: number };
}

/** failover.maxSyncLag of a group that leaves it out: the last batch may be missing, no more. */
export { DEFAULT_MAX_SYNC_LAG } from '../../workflows/shared.js';

export interface TemporalSettings {
  /** The first frontend (for messages); `frontends` lists them all, in the order to try. */
  address: string;
  /** host:port of each frontend of the Temporal cluster (`temporal.address`, one or a list). */
  frontends: string[];
  namespace: string;
  tls: boolean | { serverName?: string; caFile?: string; certFile?: string; keyFile?: string };
  apiKeyFile?: string;
  server: { dataDir: string; ip: string; port: number; uiPort: number };
}

/** An alert (docs/alerts.md): a Pacemaker-style agent or a webhook told of cluster events. */
export interface AlertSpec {
  name: string;
  target: { type: 'command'; path: string } | { type: 'webhook'; url: string };
  recipients: string[];
  timeoutMs: number;
  attempts: number;
  /** undefined: every event. */
  events?: AlertEventName[];
  timestampFormat: string;
  env: Record<string, string>;
}

export interface Config {
  cluster: string;
  temporal: TemporalSettings;
  agent: {
    stateDir: string;
    logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error';
    maxCachedWorkflows: number;
    /** How long a failure report may wait for Temporal before the agent heals locally. */
    localHealAfterMs: number;
    /** Whether the agent runs the cluster's workflows too (see `haoscar worker`). */
    workflows: boolean;
    /** The Prometheus endpoint: `listen` host:port (absent: off); the SDK's metrics appended (docs/metrics.md). */
    metrics: { listen?: string; temporalSdk: boolean };
  };
  heartbeat: HeartbeatSettings;
  lease: LeaseSettings;
  guard: GuardSettings;
  failover: FailoverSettings;
  sync: SyncSettings;
  clone: CloneSettings;
  nodes: NodeSpec[];
  groups: GroupSpec[];
  alerts: AlertSpec[];
}
