/**
 * The pure parts of the `postgresql` driver (src/drivers/postgresql.ts): the command lines it
 * runs, the settings file it keeps in the configuration directory, libpq connection strings,
 * `pg_controldata`'s output, and the decisions what a start and a rejoin do in which state.
 * Nothing here runs anything, so every decision has a table test (test/unit/postgresql.test.ts).
 */
import { join } from 'node:path';
import type { PostgresqlResource } from '../config/types.js';

/** The file the driver writes into the configuration directory; postgresql.conf includes it. */
export const MANAGED_FILE = 'haoscar.conf';
/** What the driver appends to postgresql.conf when it does not include {@link MANAGED_FILE} yet. */
export const INCLUDE_LINE = `include_if_exists = '${MANAGED_FILE}'`;

/** Where the server's configuration is (pg_ctl's -D). */
export const configDirOf = (r: PostgresqlResource): string => r.configDir ?? r.dataDir;

/** A libpq connection string from keywords, each value quoted the way libpq reads it. */
export function conninfo(params: Readonly<Record<string, string | number | undefined>>): string {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${quoteConninfoValue(String(v))}`)
    .join(' ');
}

/** libpq: a value with spaces, quotes or backslashes (or empty) goes in single quotes, ' and \ escaped with \. */
export function quoteConninfoValue(value: string): string {
  if (value !== '' && /^[^\s'\\]+$/.test(value)) return value;
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

/** A string value in postgresql.conf: single quotes, a quote inside doubled, a backslash escaped. */
export function confString(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

/** How a standby reaches the primary (through `primaryHost`), as `application_name` its node's name. */
export function primaryConninfo(r: PostgresqlResource, node: string, extra: { dbname?: string; connectTimeoutS?: number } = {}): string {
  return conninfo({
    host: r.primaryHost,
    port: r.port,
    user: r.replicationUser,
    ...(extra.dbname ? { dbname: extra.dbname } : {}),
    ...(r.passFile ? { passfile: r.passFile } : {}),
    application_name: node,
    connect_timeout: extra.connectTimeoutS ?? 5,
  });
}

/**
 * The settings the driver owns (written to {@link MANAGED_FILE}). The same text serves the
 * primary and the standby: a primary ignores primary_conninfo, a standby ignores
 * synchronous_standby_names, so a promotion or a rejoin needs no rewrite.
 * - port and socket: the node's own (a base backup copies postgresql.conf from the primary);
 * - wal_log_hints: pg_rewind needs it (or data checksums);
 * - synchronous_standby_names '*': a commit waits until a standby has flushed it (with
 *   synchronous_commit on), and waits for ever while no standby is connected.
 */
export function managedSettings(r: PostgresqlResource, node: string): string {
  const lines = [
    `# Written by HA-OSCAR (resource ${r.name} on node ${node}); changes are overwritten. See docs/postgresql.md.`,
    `port = ${r.port}`,
    `unix_socket_directories = ${confString(r.socketDir)}`,
    'wal_level = replica',
    'wal_log_hints = on',
    'hot_standby = on',
    `primary_conninfo = ${confString(primaryConninfo(r, node))}`,
    "recovery_target_timeline = 'latest'",
    `synchronous_standby_names = ${confString(r.synchronous ? '*' : '')}`,
    'synchronous_commit = on',
  ];
  return `${lines.join('\n')}\n`;
}

/** Whether postgresql.conf includes the managed file (an include, include_if_exists or include_dir line is not guessed at). */
export function includesManagedFile(postgresqlConf: string): boolean {
  const re = new RegExp(`^\\s*include(_if_exists)?\\s*=?\\s*'${MANAGED_FILE.replace('.', '\\.')}'`, 'm');
  return re.test(postgresqlConf);
}

/** `pg_controldata` (run with LC_ALL=C): the cluster state and the latest checkpoint's timeline. */
export interface ControlData {
  /** e.g. "in production", "shut down", "shut down in recovery", "in archive recovery". */
  state: string;
  timeline: number | undefined;
}

/** @throws Error when the output has no "Database cluster state" line. */
export function parseControlData(stdout: string): ControlData {
  const field = (name: string) => stdout.split('\n').find((l) => l.startsWith(`${name}:`))?.slice(name.length + 1).trim();
  const state = field('Database cluster state');
  if (state === undefined) throw new Error(`pg_controldata printed no "Database cluster state" line: ${stdout.trim().split('\n').slice(0, 3).join(' | ') || '(nothing)'}`);
  const tli = Number(field("Latest checkpoint's TimeLineID"));
  return { state, timeline: Number.isInteger(tli) && tli > 0 ? tli : undefined };
}

/** Control-file states of a server that ran as a primary last (or was crashing as one). */
const PRIMARY_STATES = new Set(['in production', 'shut down', 'shutting down', 'in crash recovery']);
/** States of a server that ran as a standby last. */
const STANDBY_STATES = new Set(['shut down in recovery', 'in archive recovery']);

/**
 * What the data directory holds, for a stopped server:
 * - `none`: no cluster (no PG_VERSION): only a base backup makes one;
 * - `backup`: a base backup not started yet (backup_label): starts as a standby;
 * - `standby`: it ran as a standby last: starts as one, following the primary on its own;
 * - `primary`: it ran as a primary last (stopped, or crashed): it may have WAL the new primary
 *   never got, so it rejoins only through pg_rewind (or a fresh base backup).
 */
export type DataKind = 'none' | 'backup' | 'standby' | 'primary';

export function dataKind(local: { pgVersion: boolean; backupLabel: boolean; standbySignal: boolean; control?: ControlData }): DataKind {
  if (!local.pgVersion) return 'none';
  if (local.backupLabel) return 'backup';
  const state = local.control?.state;
  if (state !== undefined && STANDBY_STATES.has(state)) return 'standby';
  if (state !== undefined && PRIMARY_STATES.has(state)) return 'primary';
  // "starting up" (or a state a later release adds): the signal file says what it was started as.
  return local.standbySignal ? 'standby' : 'primary';
}

/** The server as the driver sees it: not running, running as a primary or as a standby, or running but not answering yet. */
export type ServerState = 'down' | 'primary' | 'standby' | 'starting';

/** What a start (take primary duty) does. */
export type StartStep = 'none' | 'wait' | 'promote' | 'start-primary' | 'start-standby-then-promote' | 'refuse-no-data';

export function startPlan(server: ServerState, data: DataKind): StartStep {
  if (server === 'primary') return 'none';
  if (server === 'standby') return 'promote';
  if (server === 'starting') return 'wait';
  switch (data) {
    case 'none':
      return 'refuse-no-data';
    case 'primary':
      return 'start-primary';
    case 'backup':
    case 'standby':
      // Started as a standby first, so that it replays all the WAL it has before it ends recovery.
      return 'start-standby-then-promote';
  }
}

/**
 * What a stop does at once (leave primary duty): a running primary is stopped, and so is a
 * server that runs but does not answer yet (it may be a primary in crash recovery, about to
 * accept writes; a standby stopped so is started again by the rejoin). A standby stays up:
 * that is where a node not owning the group should be.
 */
export function stopNow(server: ServerState): 'stop-server' | 'none' {
  return server === 'primary' || server === 'starting' ? 'stop-server' : 'none';
}

/**
 * What rejoining as a standby does next, after the stop, once the server is not a primary.
 * `needsPrimary`: the step reads from the primary, so it waits until `primaryHost` answers as one.
 */
export type RejoinStep = { step: 'done' | 'wait' | 'start-standby' | 'rewind' | 'base-backup'; needsPrimary: boolean };

export function rejoinPlan(server: ServerState, data: DataKind): RejoinStep {
  if (server === 'standby') return { step: 'done', needsPrimary: false };
  // A primary is never turned into a standby here: stopping it is the stop's own step.
  if (server === 'primary' || server === 'starting') return { step: 'wait', needsPrimary: false };
  switch (data) {
    case 'none':
      return { step: 'base-backup', needsPrimary: true };
    case 'primary':
      return { step: 'rewind', needsPrimary: true };
    case 'backup':
    case 'standby':
      // A standby retries its connection to the primary itself: no need to wait for it here.
      return { step: 'start-standby', needsPrimary: false };
  }
}

const GUARD_STOP_SCRIPT = '"$1" status -D "$2" >/dev/null 2>&1; s=$?; if [ "$s" -eq 3 ] || [ "$s" -eq 4 ]; then exit 0; fi; exec "$1" stop -D "$2" -m immediate -w -t "$3"';

/** The argument vectors the driver runs (as the resource's OS user: see {@link asUser}). */
export const pgCommands = {
  status: (r: PostgresqlResource) => [join(r.bin, 'pg_ctl'), 'status', '-D', configDirOf(r)],
  start: (r: PostgresqlResource) => [join(r.bin, 'pg_ctl'), 'start', '-D', configDirOf(r), '-l', r.logFile, '-w', '-t', String(Math.ceil(r.timeoutMs / 1000))],
  stop: (r: PostgresqlResource, mode: 'fast' | 'immediate') => [join(r.bin, 'pg_ctl'), 'stop', '-D', configDirOf(r), '-m', mode, '-w', '-t', String(Math.ceil(r.timeoutMs / 1000))],
  promote: (r: PostgresqlResource) => [join(r.bin, 'pg_ctl'), 'promote', '-D', configDirOf(r), '-w', '-t', String(Math.ceil(r.timeoutMs / 1000))],
  /**
   * The lease guard's release: `pg_ctl stop -m immediate`, and success when no server runs (pg_ctl
   * status 3 or 4), where pg_ctl stop would fail: after a crash, the guard of the restarted node
   * releases the group it held, and a failed release keeps the group held. A constant script;
   * pg_ctl, the directory and the timeout are its arguments, never part of its text.
   */
  guardStop: (r: PostgresqlResource) => [
    'sh', '-c', GUARD_STOP_SCRIPT, 'haoscar-pg-stop', join(r.bin, 'pg_ctl'), configDirOf(r), String(Math.ceil(r.timeoutMs / 1000)),
  ],
  controlData: (r: PostgresqlResource) => [join(r.bin, 'pg_controldata'), '-D', r.dataDir],
  /** One value from the local server through its socket, as the OS user (peer or trust authentication). */
  localQuery: (r: PostgresqlResource, sql: string) => [join(r.bin, 'psql'), '-X', '-A', '-t', '-q', '-h', r.socketDir, '-p', String(r.port), '-U', r.user, '-d', 'postgres', '-c', sql],
  /** One value from the server at primaryHost, as the replication role. */
  primaryQuery: (r: PostgresqlResource, node: string, sql: string) => [join(r.bin, 'psql'), '-X', '-A', '-t', '-q', '-d', primaryConninfo(r, node, { dbname: 'postgres', connectTimeoutS: 3 }), '-c', sql],
  /** With the configuration elsewhere (Debian's /etc), pg_rewind's crash recovery of the target needs to be told where it is. */
  rewind: (r: PostgresqlResource, node: string) => [
    join(r.bin, 'pg_rewind'), '--target-pgdata', r.dataDir, '--source-server', primaryConninfo(r, node, { dbname: 'postgres' }), '--progress',
    ...(configDirOf(r) === r.dataDir ? [] : ['--config-file', join(configDirOf(r), 'postgresql.conf')]),
  ],
  baseBackup: (r: PostgresqlResource, node: string) => [join(r.bin, 'pg_basebackup'), '-D', r.dataDir, '-d', primaryConninfo(r, node), '-X', 'stream', '-c', 'fast', '--no-password'],
};

/**
 * Runs `argv` as `user`: through runuser when the agent is root, as it is; directly when the
 * agent already runs as that user.
 * @throws Error when the agent runs as another user (it cannot become `user`).
 */
export function asUser(user: string, argv: readonly string[], runningAs: { uid: number; user: string }): string[] {
  if (runningAs.uid === 0) return ['runuser', '-u', user, '--', ...argv];
  if (runningAs.user === user) return [...argv];
  throw new Error(`the agent runs as ${runningAs.user}, which can run PostgreSQL's programs neither as ${user} nor through runuser: run it as root (or as ${user})`);
}
