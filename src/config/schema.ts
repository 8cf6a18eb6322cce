/**
 * The single source of truth for haoscar.yaml: types, defaults and error messages.
 *
 * Parsing is done in three stages (after changesets): this schema (shape, with `path: message`
 * issues), normalisation (defaults resolved into {@link Config}), then cross-field rules
 * (`rules.ts`). Every object is strict: an unknown key is an error, because a misspelt
 * `fal: 3` silently ignored is exactly the kind of mistake that shows up during an outage.
 */
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { formatSize, parsePercent, parseSize } from './size.js';
import { parseVipAddress, VIP_ADDRESS_EXAMPLE } from './ip-address.js';
import { ALERT_EVENTS } from '../../workflows/alert-event.js';
import { OCF_ROOT } from '../distro/families.js';

export const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const name = (what: string) =>
  z.string({ error: `expected a ${what} name (text)` }).regex(NAME_PATTERN, {
    error: `expected a ${what} name of lowercase letters, digits and '-' (at most 63, like a hostname)`,
  });

/** A duration written as `500ms`, `2s`, `1m`, `1h` or `1m30s`; parsed to milliseconds. */
export const duration = (opts: { min?: number; max?: number } = {}) =>
  z.string({
    error: (iss) =>
      typeof iss.input === 'number'
        ? `expected a duration with a unit, such as ${iss.input}s or ${iss.input}ms (a bare number is ambiguous)`
        : 'expected a duration such as 500ms, 2s or 1m',
  }).transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a duration such as 500ms, 2s or 1m, got '${text}'` });
      return z.NEVER;
    }
    if (opts.min !== undefined && ms < opts.min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${opts.min}ms, got '${text}'` });
      return z.NEVER;
    }
    if (opts.max !== undefined && ms > opts.max) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${opts.max}ms, got '${text}'` });
      return z.NEVER;
    }
    return ms;
  });

/** A size written as `512MB`, `2GB`, `1.5G` or `100KiB` (1024-based, as Monit's); parsed to bytes. */
export const size = (opts: { min?: number } = {}) =>
  z.string({
    error: (iss) =>
      typeof iss.input === 'number'
        ? `expected a size with a unit, such as ${iss.input}MB or ${iss.input}GB (a bare number is ambiguous)`
        : 'expected a size such as 512MB or 2GB',
  }).transform((text, ctx) => {
    const bytes = parseSize(text);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a size such as 512MB or 2GB (units B, KB, MB, GB, TB), got '${text}'` });
      return z.NEVER;
    }
    if (opts.min !== undefined && bytes < opts.min) {
      ctx.addIssue({ code: 'custom', message: `must be at least ${formatSize(opts.min)}, got '${text}'` });
      return z.NEVER;
    }
    return bytes;
  });

/** A percentage written as `90%` or `12.5%`; parsed to the number (90). */
export const percent = (opts: { max?: number } = {}) => {
  const max = opts.max ?? 100;
  return z.string({
    error: (iss) =>
      typeof iss.input === 'number'
        ? `expected a percentage with its % sign, such as ${iss.input}%`
        : 'expected a percentage such as 90%',
  }).transform((text, ctx) => {
    const value = parsePercent(text);
    if (value === undefined) {
      ctx.addIssue({ code: 'custom', message: `expected a percentage such as 90%, got '${text}'` });
      return z.NEVER;
    }
    if (value > max) {
      ctx.addIssue({ code: 'custom', message: `must be at most ${max}%, got '${text}'` });
      return z.NEVER;
    }
    return value;
  });
};

const int = (min: number, max: number) =>
  z.number({ error: `expected an integer ${min}-${max}` }).int({ error: `expected an integer ${min}-${max}` })
    .min(min, { error: `expected an integer ${min}-${max}` }).max(max, { error: `expected an integer ${min}-${max}` });
const port = int(1, 65535);
const path = z.string({ error: 'expected a file path' }).min(1, { error: 'expected a file path' });
const absPath = (what: string) => z.string({ error: `expected ${what} (an absolute path)` }).regex(/^\/[^\0\n]*$/, { error: `expected ${what} (an absolute path)` });
const argv = z.array(z.string({ error: 'expected each argument as text' }), { error: 'expected a command as a list of arguments, e.g. [/usr/bin/foo, --bar]' })
  .min(1, { error: 'expected a command as a list of arguments, e.g. [/usr/bin/foo, --bar]' });
const host = z.string({ error: 'expected a host name or IP address' }).min(1, { error: 'expected a host name or IP address' });
/** A YAML mapping (`key: value` lines); strict, so an unknown key is an error. */
const section = <T extends z.core.$ZodLooseShape>(what: string, shape: T) =>
  z.strictObject(shape, { error: `expected ${what} (a mapping of key: value)` });
const list = <T extends z.core.SomeType>(what: string, item: T) => z.array(item, { error: `expected a list of ${what}` });
const oneOf = <const T extends readonly [string, ...string[]]>(values: T) =>
  z.enum(values, { error: `expected one of ${values.join(', ')}` });

// ---------------------------------------------------------------------------------- checks
const checkTiming = {
  /** How often the check runs. */
  interval: duration({ min: 50 }).optional(),
  /** How long one run may take before it counts as failed. */
  timeout: duration({ min: 10 }).optional(),
  /** Consecutive passes before a failing resource counts as healthy again. */
  rise: int(1, 100).optional(),
  /** Consecutive failures before a healthy resource counts as failing (this starts a heal). */
  fall: int(1, 100).optional(),
};

export const processCheckSchema = section('a process check', {
  type: z.literal('process'),
  /** Process name (as in /proc/PID/comm) to look for; default: the service's own supervised process. */
  name: z.string({ error: 'expected a process name (text)' })
    .min(1, { error: 'expected a process name (text)' })
    .max(15, { error: 'process names (comm) are at most 15 characters' }).optional(),
  /** A pid file whose process must be alive. */
  pidFile: path.optional(),
  ...checkTiming,
});
export const tcpCheckSchema = section('a tcp check', {
  type: z.literal('tcp'),
  host: host.default('127.0.0.1'),
  port,
  ...checkTiming,
});
export const httpCheckSchema = section('an http check', {
  type: z.literal('http'),
  url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
  /** Status codes that count as healthy; default any 2xx or 3xx. */
  expectStatus: list('HTTP status codes', int(100, 599)).min(1, { error: 'expected at least one HTTP status code' }).optional(),
  ...checkTiming,
});
export const commandCheckSchema = section('a command check', {
  type: z.literal('command'),
  /** Runs without a shell; exit status 0 means healthy. */
  command: argv,
  ...checkTiming,
});
export const statusCheckSchema = section('a status check', {
  /** The resource's own status: the service manager's, the address on the interface, the monitor script. */
  type: z.literal('status'),
  ...checkTiming,
});
/**
 * Monit's resource tests (docs/configuration.md, "Resource checks"). Each fails when any of its
 * thresholds is crossed; `fall` consecutive failures make the resource failing, as for any check
 * (Monit's "for N cycles").
 */
export const diskCheckSchema = section('a disk check', {
  /** Space and inodes of the filesystem holding `path` (statfs, as df). */
  type: z.literal('disk'),
  path: absPath('a path on the filesystem to check'),
  /** Fails above this share of the space used, as df's Use%: used / (used + available to non-root). */
  maxUsed: percent().optional(),
  /** Fails when less than this is available to non-root users (df's Avail). */
  minFree: size().optional(),
  /** Fails above this share of the inodes used (df -i's IUse%). */
  maxInodesUsed: percent().optional(),
  ...checkTiming,
}).refine((c) => c.maxUsed !== undefined || c.minFree !== undefined || c.maxInodesUsed !== undefined, {
  error: "a disk check needs at least one threshold: 'maxUsed' (e.g. 90%), 'minFree' (e.g. 5GB) or 'maxInodesUsed' (e.g. 90%)",
});
export const memoryCheckSchema = section('a memory check', {
  /** The resident memory (VmRSS) of a process. */
  type: z.literal('memory'),
  /** Fails above this, e.g. 2GB. */
  max: size({ min: 1 }),
  /** The process is the one in this pid file; default: the service's own supervised process. */
  pidFile: path.optional(),
  /** Count the process's descendants too (Monit's totalmem rather than mem). */
  children: z.boolean({ error: 'expected true or false' }).default(false),
  ...checkTiming,
});
export const cpuCheckSchema = section('a cpu check', {
  /** CPU use of a process between two runs of the check, in percent of one CPU (as top shows it). */
  type: z.literal('cpu'),
  /** Fails above this, e.g. 80%; a process using two CPUs fully is at 200%. */
  max: percent({ max: 100_000 }),
  pidFile: path.optional(),
  ...checkTiming,
});
const SHA256 = "expected a SHA-256 checksum (64 hexadecimal digits, as sha256sum prints it) or 'unchanged'";
export const fileCheckSchema = section('a file check', {
  /** A file that must exist and, optionally, keep its content, stay within a size, be recent. */
  type: z.literal('file'),
  path: absPath('the file to check'),
  /** The content's SHA-256 must be this, or with 'unchanged' stay what the first run saw. */
  sha256: z.union([z.literal('unchanged'), z.string().regex(/^[0-9a-fA-F]{64}$/, { error: SHA256 })], { error: SHA256 }).optional(),
  /** Fails above this size. */
  maxSize: size().optional(),
  /** Fails below this size (e.g. 1B: not empty). */
  minSize: size().optional(),
  /** Fails when the file was last modified longer ago than this (Monit's timestamp test). */
  maxAge: duration({ min: 1000 }).optional(),
  ...checkTiming,
});
export const icmpCheckSchema = section('an icmp check', {
  /** One ping (iputils' ping) to the host is answered. */
  type: z.literal('icmp'),
  host: z.string({ error: 'expected a host name or IP address' }).regex(/^[A-Za-z0-9_.:%-]+$/, { error: 'expected a host name or IP address' })
    .refine((h) => !h.startsWith('-'), { error: 'expected a host name or IP address' }),
  ...checkTiming,
});
export const checkSchema = z.discriminatedUnion('type', [
  processCheckSchema, tcpCheckSchema, httpCheckSchema, commandCheckSchema, statusCheckSchema,
  diskCheckSchema, memoryCheckSchema, cpuCheckSchema, fileCheckSchema, icmpCheckSchema,
], {
  error: "expected a check with type 'process', 'tcp', 'http', 'command', 'status', 'disk', 'memory', 'cpu', 'file' or 'icmp'",
});

// ---------------------------------------------------------------------------------- healing
export const backoffSchema = section('a backoff', {
  /** Delay before the second restart of a heal (the first restart is immediate). */
  initial: duration().optional(),
  /** Upper bound of the delay. */
  max: duration().optional(),
  multiplier: z.number({ error: 'expected a number >= 1' }).min(1, { error: 'expected a number >= 1' }).max(10, { error: 'expected a number <= 10' }).optional(),
});
export const healingSchema = section('a healing policy', {
  /** At most this many restarts within `window`; one more failure and the heal gives up (escalates). */
  maxRestarts: int(0, 1000).optional(),
  window: duration({ min: 1000 }).optional(),
  backoff: backoffSchema.optional(),
  /** How long a restarted service has to pass its check `rise` times before the attempt counts as failed. */
  startTimeout: duration({ min: 100 }).optional(),
});

// ---------------------------------------------------------------------------------- resources
const serviceCommon = {
  type: z.literal('service'),
  name: name('resource'),
  check: checkSchema.optional(),
  healing: healingSchema.optional(),
};
export const processServiceSchema = section('a process service', {
  ...serviceCommon,
  driver: z.literal('process'),
  command: argv,
  cwd: path.optional(),
  env: z.record(z.string(), z.string({ error: 'expected text (quote numbers and booleans: "1", "true")' }), {
    error: 'expected a mapping of environment variables (NAME: value)',
  }).optional(),
  stopSignal: oneOf(['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2']).default('SIGTERM'),
  stopTimeout: duration().prefault('10s'),
  /** Where the process's stdout/stderr go; default: the agent's log directory. */
  logFile: path.optional(),
});
export const systemdServiceSchema = section('a systemd service', {
  ...serviceCommon,
  driver: z.literal('systemd'),
  // Not starting with '-' (systemctl would read it as an option; the driver passes `--` anyway).
  unit: z.string({ error: 'expected a systemd unit name such as nginx.service' }).regex(/^[A-Za-z0-9:_.\\@][A-Za-z0-9:_.\\@-]*$/, { error: 'expected a systemd unit name such as nginx.service' }),
});
export const sysvServiceSchema = section('a sysv service', {
  ...serviceCommon,
  driver: z.literal('sysv'),
  /** Name of the script in /etc/init.d. */
  script: z.string({ error: 'expected an init script name such as apache2' }).regex(/^[A-Za-z0-9_.@-]+$/, { error: 'expected an init script name such as apache2' }),
});
export const serviceResourceSchema = z.discriminatedUnion('driver', [processServiceSchema, systemdServiceSchema, sysvServiceSchema], {
  error: "expected driver 'process', 'systemd' or 'sysv'",
});
const CIDR = `expected an IPv4 or IPv6 address with its prefix length, ${VIP_ADDRESS_EXAMPLE}`;
export const vipResourceSchema = section('a vip resource', {
  type: z.literal('vip'),
  name: name('resource'),
  /** IPv4 (`ip -4 address add`) or IPv6 (`ip -6 address add ... nodad`): src/config/ip-address.ts says which are refused and why. */
  address: z.string({ error: CIDR }).superRefine((a, ctx) => {
    const parsed = parseVipAddress(a);
    if ('problem' in parsed) ctx.addIssue({ code: 'custom', message: parsed.problem });
  }),
  /** The interface the address is added to, e.g. eth0. */
  interface: z.string({ error: 'expected an interface name such as eth0' }).regex(/^[A-Za-z0-9_.:@-]{1,15}$/, { error: 'expected an interface name such as eth0 (at most 15 characters)' }),
  /**
   * Announcements sent after the address is added, so switches and clients learn its new place:
   * gratuitous ARPs (arping) for IPv4, unsolicited neighbour advertisements (send_ua) for IPv6.
   */
  arpCount: int(0, 100).default(3),
  check: checkSchema.optional(),
  healing: healingSchema.optional(),
});
export const commandResourceSchema = section('a command resource', {
  type: z.literal('command'),
  name: name('resource'),
  /** Each runs without a shell. start and stop must be idempotent; monitor exits 0 while the resource runs. */
  start: argv,
  stop: argv,
  monitor: argv,
  /** Each of start, stop and monitor must finish within this. */
  timeout: duration({ min: 100 }).prefault('20s'),
  check: checkSchema.optional(),
  healing: healingSchema.optional(),
});
export const drbdResourceSchema = section('a drbd resource', {
  type: z.literal('drbd'),
  name: name('resource'),
  /** The DRBD resource's name in /etc/drbd.d (drbdadm's argument). */
  resource: z.string({ error: 'expected a DRBD resource name such as r0' }).regex(/^[A-Za-z0-9_.+-]{1,63}$/, { error: 'expected a DRBD resource name such as r0 (letters, digits, _ . + -)' }),
  /** The tools; other paths only for a packaged location (or, in tests, the simulator). */
  drbdadm: absPath('the drbdadm binary').default('/usr/sbin/drbdadm'),
  drbdsetup: absPath('the drbdsetup binary').default('/usr/sbin/drbdsetup'),
  /** Each drbdadm/drbdsetup call must finish within this. */
  timeout: duration({ min: 100 }).prefault('30s'),
  check: checkSchema.optional(),
  healing: healingSchema.optional(),
});
export const filesystemResourceSchema = section('a filesystem resource', {
  type: z.literal('filesystem'),
  name: name('resource'),
  /** The block device, e.g. /dev/drbd0 (or a tmpfs/none source with fstype tmpfs). */
  device: z.string({ error: 'expected a device such as /dev/drbd0' }).min(1, { error: 'expected a device such as /dev/drbd0' }),
  mountpoint: absPath('the mount point'),
  fstype: z.string({ error: 'expected a filesystem type such as ext4 or xfs' }).regex(/^[a-z0-9.]{1,32}$/, { error: 'expected a filesystem type such as ext4 or xfs' }),
  /** mount -o options, e.g. [noatime]. */
  options: list('mount options', z.string().regex(/^[^,\s]+$/, { error: 'expected one mount option per item, without commas or spaces' })).default([]),
  /** Run `fsck -a` on the device before mounting (a node taking over after a crash). */
  fsck: z.boolean({ error: 'expected true or false' }).default(false),
  /** mount, umount and fsck must each finish within this. */
  timeout: duration({ min: 100 }).prefault('60s'),
  check: checkSchema.optional(),
  healing: healingSchema.optional(),
});
const OCF_AGENT = "expected an OCF agent as provider:type, e.g. heartbeat:IPaddr2 (or ocf:heartbeat:IPaddr2)";
export const ocfResourceSchema = section('an ocf resource', {
  type: z.literal('ocf'),
  name: name('resource'),
  /** provider:type under <ocfRoot>/resource.d, e.g. heartbeat:IPaddr2; Pacemaker's ocf:heartbeat:IPaddr2 is accepted. */
  agent: z.string({ error: OCF_AGENT }).regex(/^(ocf:)?[A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+$/, { error: OCF_AGENT }),
  /** The agent's parameters, passed as OCF_RESKEY_<name>; checked against its meta-data on the nodes. */
  params: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected a parameter name (letters, digits, _)' }), z.string({ error: 'expected text (quote numbers and booleans: "24", "true")' }), {
    error: 'expected a mapping of the agent\'s parameters (name: value)',
  }).default({}),
  /** Per action; by default the agent's own (its meta-data), else 20s. */
  timeouts: section('the ocf timeouts', {
    start: duration({ min: 100 }).optional(),
    stop: duration({ min: 100 }).optional(),
    monitor: duration({ min: 100 }).optional(),
  }).default({}),
  ocfRoot: absPath('the OCF root directory').default(OCF_ROOT),
  check: checkSchema.optional(),
  healing: healingSchema.optional(),
});
const PG_ROLE = 'expected a PostgreSQL role name such as replicator (letters, digits, _)';
const OS_USER = 'expected a user name such as postgres';
const PG_HOST = 'expected a host name or IP address (the group\'s VIP address, without its prefix length)';
export const postgresqlResourceSchema = section('a postgresql resource', {
  /** A PostgreSQL server replicated by streaming replication: primary on the owner, hot standby elsewhere (docs/postgresql.md). */
  type: z.literal('postgresql'),
  name: name('resource'),
  /** The data directory (pg_rewind's and pg_basebackup's target), e.g. /var/lib/postgresql/15/main. */
  dataDir: absPath('the data directory'),
  /** Where postgresql.conf is (pg_ctl -D): Debian's /etc/postgresql/15/main; default: the data directory. */
  configDir: absPath('the configuration directory').optional(),
  /** initdb, pg_ctl, pg_controldata, pg_rewind, pg_basebackup, psql. */
  bin: absPath('the PostgreSQL programs\' directory').default('/usr/lib/postgresql/15/bin'),
  /** The operating system user the server and its tools run as. */
  user: z.string({ error: OS_USER }).regex(/^[a-z_][a-z0-9_-]{0,31}$/, { error: OS_USER }).default('postgres'),
  port: int(1, 65535).default(5432),
  /** The server's Unix socket directory (the driver's own queries go through it, as the OS user). */
  socketDir: absPath('the socket directory').default('/var/run/postgresql'),
  /** The server's output (pg_ctl -l). */
  logFile: absPath('the server log file').default('/var/log/postgresql/haoscar-postgresql.log'),
  /** The address a standby follows and rewinds from: the group's VIP, which is always on the primary. */
  primaryHost: z.string({ error: PG_HOST }).regex(/^[A-Za-z0-9_.:%-]+$/, { error: PG_HOST }).refine((h) => !h.startsWith('-'), { error: PG_HOST }),
  /** The role standbys replicate as (REPLICATION, plus pg_rewind's function grants: docs/postgresql.md). */
  replicationUser: z.string({ error: PG_ROLE }).regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/, { error: PG_ROLE }).default('replicator'),
  /** A pgpass file (readable by the OS user only) with the replication role's password; absent: no password (trust, cert). */
  passFile: absPath('the pgpass file').optional(),
  /**
   * true: a commit is acknowledged only once the standby has it (synchronous_standby_names '*'),
   * and a primary without a standby blocks commits. false: acknowledged commits the standby had
   * not received yet are lost at a failover. docs/postgresql.md says which to choose.
   */
  synchronous: z.boolean({ error: 'expected true or false' }).default(true),
  /** Each start, stop, promote and query must finish within this. */
  timeout: duration({ min: 1000 }).prefault('60s'),
  /** A rewind or a base backup (rejoining as a standby) must finish within this. */
  rejoinTimeout: duration({ min: 1000 }).prefault('1h'),
  /** How often a node that is to be a standby tries again to rejoin while the primary cannot be reached. */
  rejoinInterval: duration({ min: 100 }).prefault('5s'),
  check: checkSchema.optional(),
  healing: healingSchema.optional(),
});
export const resourceSchema = z.discriminatedUnion('type', [serviceResourceSchema, vipResourceSchema, commandResourceSchema, drbdResourceSchema, filesystemResourceSchema, ocfResourceSchema, postgresqlResourceSchema], {
  error: "expected a resource with type 'service', 'vip', 'command', 'drbd', 'filesystem', 'ocf' or 'postgresql'",
});

// ---------------------------------------------------------------------------------- data
export const fileSetSchema = section('a file set', {
  name: name('file set'),
  /** Directories replicated from the owner to every standby, each to the same path. */
  paths: list('directories', absPath('a directory')).min(1, { error: 'a file set needs at least one directory' }),
  /** rsync exclude patterns (relative to each directory), e.g. ['*.tmp', cache/]. */
  excludes: list('exclude patterns', z.string({ error: 'expected a pattern (text)' }).min(1, { error: 'expected a pattern (text)' })).default([]),
  /** Delete on the standby what was deleted on the owner. */
  delete: z.boolean({ error: 'expected true or false' }).default(true),
  /** Bandwidth limit in KiB per second, as rsync's --bwlimit; 0: none. */
  bwlimit: int(0, 100_000_000).default(0),
  /** React to file changes on the owner (batched); false: only the periodic verify. */
  continuous: z.boolean({ error: 'expected true or false' }).default(true),
  /** Changes are collected for this long before standbys are told to pull. */
  batch: duration({ min: 10, max: 60_000 }).prefault('200ms'),
  /** A full pass this often catches anything the change watcher missed. */
  verifyEvery: duration({ min: 1000 }).prefault('5m'),
  /** The periodic full pass compares checksums, not only size and time (slower, thorough). */
  checksum: z.boolean({ error: 'expected true or false' }).default(false),
  /** rsync gives up when no data moves for this long (its --timeout). */
  ioTimeout: duration({ min: 1000 }).prefault('30s'),
});
export const failbackSchema = section('a fail-back policy', {
  /** manual: the group stays where a failover put it. auto: it moves back to its preferred node. */
  policy: oneOf(['manual', 'auto']).default('manual'),
  /** auto: the preferred node must have been up (not suspected) for this long. */
  stableFor: duration({ min: 1000 }).prefault('1m'),
  /** auto: after any move the group stays at least this long (a flapping node cannot pull it back and forth). */
  stickiness: duration({ min: 0 }).prefault('10m'),
});

// ---------------------------------------------------------------------------------- cluster
export const nodeSchema = section('a node', {
  name: name('node'),
  /** Addresses the node's peers reach it on; several for redundant heartbeat links. */
  addresses: list('addresses', host).min(1, { error: 'a node needs at least one address' }),
  /** Higher wins when a group lists no order of its own. */
  priority: int(0, 1_000_000).default(0),
  /** A fence agent that powers this node off (run by the node taking over its groups). */
  fence: section('a fence agent', {
    /** The agent's command, e.g. [/usr/sbin/fence_ipmilan]; it reads key=value lines on stdin. */
    command: argv,
    /** key=value lines for the agent (ip, username, password, ...); action and nodename are added. */
    params: z.record(z.string().regex(/^[a-z_][a-z0-9_]*$/, { error: 'expected a fence parameter name (lowercase, _)' }), z.string({ error: 'expected text (quote numbers and booleans)' }).regex(/^[^\n]*$/, { error: 'a fence parameter may not contain a line break' }), {
      error: 'expected a mapping of fence parameters (name: value)',
    }).default({}),
    action: oneOf(['off', 'reboot']).default('off'),
    timeout: duration({ min: 1000 }).prefault('60s'),
  }).optional(),
});

export const groupSchema = section('a group', {
  name: name('group'),
  /** The nodes that may run this group, most preferred first; default: all nodes by priority. */
  nodes: list('node names', name('node')).min(1, { error: 'expected at least one node name (or leave out nodes: for all nodes)' }).optional(),
  resources: list('resources', resourceSchema).min(1, { error: 'a group needs at least one resource' }),
  healing: healingSchema.optional(),
  /** Data replicated from the owner to the standbys with rsync. */
  fileSets: list('file sets', fileSetSchema).default([]),
  failback: failbackSchema.prefault({}),
  /** The group's data policy for unplanned failovers (docs/failover.md). */
  failover: section("a group's failover policy", {
    /**
     * An unplanned failover does not start the group on a node whose copy of its file sets is
     * more than this many of the owner's announced change generations behind (or behind by an
     * unknown amount), unless the operator accepts the loss (haoscar failover --accept-data-loss).
     */
    maxSyncLag: int(0, 1_000_000).optional(),
  }).prefault({}),
});

const ADDRESS = 'expected host:port, e.g. 127.0.0.1:7233';
const ADDRESSES = 'expected host:port, or a list of them, e.g. [10.0.0.5:7233, 10.0.0.6:7233]';
const frontend = z.string({ error: ADDRESS })
  .regex(/^[^\s:,[\]]+:\d{1,5}$/, { error: ADDRESS, abort: true })
  .refine((a) => { const p = Number(a.slice(a.lastIndexOf(':') + 1)); return p >= 1 && p <= 65535; }, { error: `${ADDRESS} (port 1-65535)` });
export const temporalSchema = section('the temporal settings', {
  /**
   * host:port of the Temporal frontend, or a list of frontends of the same Temporal cluster:
   * clients use one and go to the next when it is gone (a name with several addresses is
   * tried address by address too). Normalised to `frontends` (and `address`, the first).
   */
  address: z.union([z.string(), z.array(z.unknown())], { error: ADDRESSES })
    .default('127.0.0.1:7233')
    .transform((value, ctx) => {
      const list = typeof value === 'string' ? [value] : value;
      if (list.length === 0) ctx.addIssue({ code: 'custom', message: 'expected at least one frontend (host:port)' });
      const seen = new Set<string>();
      list.forEach((item, i) => {
        const path = typeof value === 'string' ? [] : [i];
        const r = frontend.safeParse(item);
        if (!r.success) ctx.addIssue({ code: 'custom', message: r.error.issues[0]?.message ?? ADDRESS, path });
        else if (seen.has(r.data)) ctx.addIssue({ code: 'custom', message: `frontend '${r.data}' is listed twice`, path });
        else seen.add(r.data);
      });
      return list as string[];
    }),
  namespace: z.string({ error: 'expected a namespace name (text)' }).min(1, { error: 'expected a namespace name (text)' }).default('default'),
  /**
   * TLS: `true` for system CAs, or files for a private CA and mTLS client certificates.
   * Left out: off, unless `apiKeyFile` is set (an API key is only ever sent over TLS).
   */
  tls: z.union([
    z.boolean(),
    section('TLS settings', {
      serverName: z.string({ error: 'expected a server name (text)' }).min(1, { error: 'expected a server name (text)' }).optional(),
      caFile: path.optional(),
      certFile: path.optional(),
      keyFile: path.optional(),
    }),
  ], { error: 'expected true, false, or a mapping with serverName, caFile, certFile, keyFile' }).optional(),
  /** File holding an API key (Temporal Cloud); read at start, never logged. Implies TLS. */
  apiKeyFile: path.optional(),
  /** The embedded dev server started by `haoscar server`. */
  server: section('the embedded server settings', {
    dataDir: path.default('/var/lib/haoscar/temporal'),
    ip: host.default('127.0.0.1'),
    port: port.default(7233),
    uiPort: port.default(8233),
  }).prefault({}),
}).prefault({});

// ---------------------------------------------------------------------------------- metrics
const LISTEN = 'expected host:port to serve metrics on, e.g. 127.0.0.1:9464 (0.0.0.0:9464: every address; [::1]:9464 for IPv6)';
/** `host:port` of a metrics endpoint (also `haoscar worker --metrics-listen`). */
export const metricsListen = z.string({ error: LISTEN })
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, { error: LISTEN, abort: true })
  .refine((a) => { const p = Number(a.slice(a.lastIndexOf(':') + 1)); return p >= 1 && p <= 65535; }, { error: `${LISTEN} (port 1-65535)` });
export const metricsSchema = section('the metrics settings', {
  /**
   * Serve Prometheus metrics on this address (GET /metrics): the agent's, and the worker's
   * (`haoscar worker`; --metrics-listen gives it another). Left out: no endpoint (docs/metrics.md).
   */
  listen: metricsListen.optional(),
  /** Append the Temporal SDK's own metrics (workers, polls, task latencies) to the same endpoint. */
  temporalSdk: z.boolean({ error: 'expected true or false' }).default(true),
}).prefault({});

export const agentSchema = section('the agent settings', {
  /** Where supervised processes log and the agent keeps its state. */
  stateDir: path.default('/var/lib/haoscar'),
  logLevel: oneOf(['trace', 'debug', 'info', 'warn', 'error']).default('info'),
  /**
   * Workflows kept in the worker's sticky cache. A cluster runs few workflows at once (one
   * controller, a handful of heals), so a small cache bounds memory without causing replays.
   */
  maxCachedWorkflows: int(1, 10_000).default(100),
  /**
   * How long a failure report may wait for Temporal before the agent heals the service itself
   * (same policy, logged, not in a workflow history). A control-plane outage must not become
   * a service outage.
   */
  localHealAfter: duration({ min: 100 }).prefault('5s'),
  /**
   * Whether the agent also runs the cluster's workflows (controller, failovers, heals). Set
   * false when `haoscar worker` runs them beside Temporal, away from the nodes they watch.
   */
  workflows: z.boolean({ error: 'expected true or false' }).default(true),
  /** The Prometheus endpoint (docs/metrics.md); off unless `listen` is set. */
  metrics: metricsSchema,
}).prefault({});

export const heartbeatSchema = section('the heartbeat settings', {
  /** UDP port, the same on every node (694 is Heartbeat's). */
  port: port.default(694),
  /** How often each node sends on every link. */
  interval: duration({ min: 20, max: 60_000 }).prefault('150ms'),
  /** A peer is suspect once every link to it has been silent this long. */
  deadtime: duration({ min: 60, max: 600_000 }).prefault('600ms'),
  /** The shared secret (HMAC-SHA256 key), the same file on every node; it must not be world-readable. */
  secretFile: path.default('/etc/haoscar/authkey'),
  /**
   * Secrets accepted besides `secretFile` while the cluster secret is rotated (never signed
   * with): the new one before every node signs with it, the old one until every node does
   * (docs/reload.md#rotating-the-cluster-secret). Empty outside a rotation.
   */
  acceptSecretFiles: z.array(path, { error: 'expected a list of secret file paths' }).max(4, { error: 'at most 4 secret files are accepted at once (a rotation needs 1)' })
    .refine((l) => new Set(l).size === l.length, { error: 'a secret file is listed twice' }).default([]),
}).prefault({});

export const leaseSchema = section('the lease settings', {
  /**
   * An owner that has not confirmed its ownership for this long stops the group itself; it
   * confirms every ttl/3. Another node starts the group only after ttl + margin.
   */
  ttl: duration({ min: 150, max: 600_000 }).prefault('600ms'),
  /** Covers the owner's time to stop its group (in reverse) and clock rate drift. */
  margin: duration({ min: 0, max: 60_000 }).prefault('100ms'),
}).prefault({});

export const guardSchema = section('the lease guard settings', {
  /**
   * Run the lease guard: a small process of its own on every node that holds each group's
   * lease deadline and, when it passes, lets go of the group bluntly (VIPs deleted, the group's
   * processes killed), so that an agent that dies or hangs cannot keep a group (docs/guard.md).
   * Only a one-node cluster, where nobody else could take a group, runs without it.
   */
  enabled: z.boolean({ error: 'expected true or false' }).default(true),
  /**
   * Arm the Linux watchdog (as sbd and Patroni do): the guard feeds it while it runs and no
   * release has failed; otherwise the node resets `timeout` later. A failed release on a node
   * with an armed watchdog lets the group move after the lease plus this timeout.
   */
  watchdog: section('the watchdog settings', {
    device: absPath('the watchdog device').default('/dev/watchdog'),
    timeout: duration({ min: 1000, max: 600_000 }).prefault('10s'),
  }).optional(),
}).prefault({});

export const failoverSchema = section('the failover settings', {
  /** How long a suspect owner has to answer through its task queue before it counts as gone. */
  verifyTimeout: duration({ min: 50, max: 60_000 }).prefault('300ms'),
}).prefault({});

export const syncSchema = section('the sync settings', {
  /**
   * daemon: every agent runs a read-only rsync daemon for its file sets (authenticated with a
   * password derived from the heartbeat secret, open to the cluster's addresses only);
   * standbys pull from the owner. ssh: standbys pull over ssh (encrypted; needs sshd and keys).
   */
  transport: oneOf(['daemon', 'ssh']).default('daemon'),
  /** TCP port of the agents' rsync daemons (not 873, so that a system rsyncd can stay). */
  port: port.default(8873),
  rsync: absPath('the rsync binary').default('/usr/bin/rsync'),
  /**
   * Per file set, how many pulls' backups to keep under `<stateDir>/sync-backup/`: what a
   * standby's first pull from a new owner (and every resync) deleted or replaced (docs/sync.md).
   */
  keepBackups: int(1, 1000).default(5),
  ssh: section('the ssh settings', {
    user: z.string().regex(/^[a-z_][a-z0-9_-]*$/, { error: 'expected a user name' }).default('root'),
    /** Private key of the standby (its public key in the owner's authorized_keys). */
    identityFile: absPath('the private key file').default('/etc/haoscar/sync_ed25519'),
    /** Known hosts file listing every node's host key (StrictHostKeyChecking=yes). */
    knownHostsFile: absPath('the known hosts file').default('/etc/haoscar/known_hosts'),
  }).prefault({}),
}).prefault({});

// ---------------------------------------------------------------------------------- clone
/**
 * `clone:` (docs/clone.md): what `haoscar clone` copies of the source's root onto a standby's
 * offline root. Runtime trees, the machine's identity files, the agent's state and the groups'
 * mounted data are always left out (workflows/clone-plan.ts).
 */
const clonePattern = z.string({ error: 'expected an absolute path or rsync pattern, e.g. /var/cache/*' })
  .regex(/^\/[^\0\n]*$/, { error: 'expected an absolute path or rsync pattern, e.g. /var/cache/* (patterns start at the root)' });
export const cloneSchema = section('the clone settings', {
  /** What is copied: the whole root (default) or these trees. */
  include: list('paths', clonePattern).min(1, { error: 'leave `include` out to copy the whole root' }).default(['/']),
  /** Left out as well as the built-in exclusions (rsync patterns anchored at the root). */
  exclude: list('paths or patterns', clonePattern).default([]),
  /** How many files the verification compares by checksum with the source (0: none; --checksum compares all). */
  checksumSample: int(0, 100_000).default(200),
  /** The source's sshd port (the user, key and known hosts are sync.ssh's). */
  sshPort: port.default(22),
}).prefault({});

// ---------------------------------------------------------------------------------- alerts
/**
 * `alerts:` (docs/alerts.md): commands or webhooks told of cluster events, with Pacemaker's
 * `CRM_alert_*` variables, so that existing Pacemaker alert agents run unchanged.
 */
export const alertSchema = section('an alert', {
  name: name('alert'),
  /** An executable run once per recipient (a Pacemaker alert agent); no shell, no arguments. */
  path: absPath('the alert agent').optional(),
  /** Or a URL that receives a POST with a JSON body. */
  webhook: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  /** Each recipient is one run (CRM_alert_recipient); none: one run with an empty recipient. */
  recipients: list('recipients (text)', z.string({ error: 'expected a recipient (text)' }).min(1, { error: 'expected a recipient (text)' })).default([]),
  /** The agent is killed (the webhook abandoned) after this long: a failed attempt. */
  timeout: duration({ min: 100, max: 600_000 }).prefault('30s'),
  /** Attempts per recipient (Temporal retries the activity, backing off from 1 s). */
  attempts: int(1, 20).default(3),
  /** Only these events (default: all). */
  events: list('event names', oneOf(ALERT_EVENTS)).min(1, { error: 'leave `events` out to be told of every event' }).optional(),
  /** CRM_alert_timestamp's format: strftime with Pacemaker's %N (fractional seconds). */
  timestampFormat: z.string({ error: 'expected a strftime format (text)' }).min(1).max(200).default('%H:%M:%S.%06N'),
  /** Extra environment of the agent (Pacemaker's instance attributes). */
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'expected an environment variable name' }), z.string({ error: 'expected the value as text' }), { error: 'expected a mapping of NAME: value (an environment variable NAME: letters, digits and _, not starting with a digit)' }).default({}),
}).refine((a) => (a.path === undefined) !== (a.webhook === undefined), { error: 'give an alert either `path` (an executable) or `webhook` (a URL), not both and not neither' });

export const defaultsSchema = section('the defaults', {
  check: section('check timing defaults', checkTiming).prefault({}),
  healing: healingSchema.prefault({}),
}).prefault({});

export const configSchema = section('a configuration file', {
  cluster: name('cluster'),
  temporal: temporalSchema,
  agent: agentSchema,
  defaults: defaultsSchema,
  heartbeat: heartbeatSchema,
  lease: leaseSchema,
  guard: guardSchema,
  failover: failoverSchema,
  sync: syncSchema,
  clone: cloneSchema,
  nodes: list('nodes', nodeSchema).min(1, { error: 'a cluster needs at least one node' }),
  groups: list('groups', groupSchema).default([]),
  alerts: list('alerts', alertSchema).default([]),
});

export type RawConfig = z.output<typeof configSchema>;
