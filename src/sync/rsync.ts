/**
 * The rsync client side of file-set replication: the argument vector for one pull (a standby
 * copying one directory from the group's owner), a runner that streams rsync's progress and
 * stats, and {@link RsyncError}, which turns rsync's exit code and stderr into a kind, a
 * retry decision and a message that says what to do.
 *
 * Standbys only ever PULL: the owner serves its directories read-only (an rsync daemon, or
 * sshd with `rrsync -ro`), so no mistake on a standby can write toward the owner's data.
 */
import { execa } from 'execa';
import type { FileSet, SyncSettings } from '../config/types.js';
import type { Logger } from '../log.js';
import { signalGroup } from '../process-group.js';

/**
 * Where an interrupted transfer keeps what it had received (per directory, relative), so the
 * next pull resumes from it instead of starting the file again. The watcher ignores it.
 */
export const PARTIAL_DIR = '.haoscar-partial';

/** The daemon's one user name (rsync `auth users`); its password comes from the heartbeat secret. */
export const RSYNC_USER = 'haoscar';

/** The ssh port standbys connect to with transport ssh. */
export const SSH_PORT = 22;

/** The daemon module serving directory `index` of file set `set` of `group`. */
export function moduleName(group: string, set: string, index: number): string {
  return `${group}.${set}.${index}`;
}

/** The owner a standby pulls from, as rsync names it. */
export type PullSource =
  | {
      transport: 'daemon';
      /** The owner's address. */
      host: string;
      port: number;
      module: string;
      /** Client-side password file (see writeDaemonFiles in daemon.ts). */
      passwordFile: string;
      /** The daemon user to log in as (DaemonFiles.user); default {@link RSYNC_USER}. */
      user?: string;
    }
  | {
      transport: 'ssh';
      host: string;
      user: string;
      /** The directory on the owner (the same path as on the standby). */
      path: string;
      identityFile: string;
      knownHostsFile: string;
      /** Default {@link SSH_PORT}. */
      port?: number;
      /** The ssh client; default `ssh` (from PATH). */
      ssh?: string;
    };

export interface PullArgsOptions {
  set: Pick<FileSet, 'excludes' | 'delete' | 'bwlimit' | 'checksum' | 'ioTimeoutMs'>;
  source: PullSource;
  /** The local directory that receives the copy. */
  destination: string;
  /**
   * Keep every file this pull deletes or replaces under this directory (rsync `--backup
   * --backup-dir`), with its path relative to the destination. Absolute, and outside the
   * destination (under the agent's state directory: see src/sync/backup.ts).
   */
  backupDir?: string;
}

/**
 * The {@link PullSource} for directory `index` (`path`) of a file set, from the cluster's sync
 * settings: a daemon module on the owner's port, or the same path over ssh.
 */
export function pullSourceFor(
  sync: SyncSettings,
  where: { host: string; group: string; set: string; index: number; path: string; passwordFile: string; user?: string },
): PullSource {
  if (sync.transport === 'daemon') {
    return {
      transport: 'daemon', host: where.host, port: sync.port, module: moduleName(where.group, where.set, where.index), passwordFile: where.passwordFile,
      ...(where.user === undefined ? {} : { user: where.user }),
    };
  }
  return { transport: 'ssh', host: where.host, user: sync.ssh.user, path: where.path, identityFile: sync.ssh.identityFile, knownHostsFile: sync.ssh.knownHostsFile };
}

/** Thrown by {@link rsyncPullArgs} for a value that would be unsafe or ambiguous on rsync's command line. */
export class RsyncArgsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RsyncArgsError';
  }
}

/** `DIR/`: with the trailing slash rsync copies the directory's content, not the directory into itself. */
export function withSlash(dir: string): string {
  return `${dir.replace(/\/+$/, '')}/`;
}

/** @param fix what to fix, appended to the message (e.g. "fix the file set's paths"). */
export function checkDirectory(what: string, dir: string, fix?: string): void {
  if (!dir.startsWith('/') || /[\0\n\r]/.test(dir)) {
    throw new RsyncArgsError(`${what} ${JSON.stringify(dir)} must be an absolute path without NUL or line breaks${fix ? `: ${fix}` : ''}`);
  }
}

/** A host given to rsync and to ssh as their own argument: it must not look like an option. */
function checkHost(host: string): void {
  if (!/^[A-Za-z0-9_.:%-]+$/.test(host) || host.startsWith('-')) {
    throw new RsyncArgsError(`host ${JSON.stringify(host)} is not an address or host name: fix the node's addresses`);
  }
}

/** `[v6]` for an IPv6 address, which rsync (URL and host:path forms alike) needs in brackets. */
function hostPart(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

/** The ssh end of an rsync over ssh: who to log in as where, with which key and known hosts. */
export interface SshEnd {
  host: string;
  user: string;
  identityFile: string;
  knownHostsFile: string;
  /** Default {@link SSH_PORT}. */
  port?: number;
  /** The ssh client; default `ssh` (from PATH). */
  ssh?: string;
}

/**
 * rsync's remote shell for `end`: ONE argument (`-e "ssh -i KEY -o ..."`) that rsync splits on
 * spaces itself, honouring quotes; that is rsync's interface. Nothing is quoted: the key and
 * known-hosts paths come from validated config, and a path with a space, quote or `%` (which ssh
 * would expand as a token) is refused instead of being quoted half-right. Strict host keys, the
 * given key only, no prompts; `options` are more `-o` settings (`ConnectTimeout=30`).
 */
export function sshRemoteShell(end: Omit<SshEnd, 'host' | 'user'>, options: readonly string[] = []): string {
  for (const [what, file] of [['sync.ssh.identityFile', end.identityFile], ['sync.ssh.knownHostsFile', end.knownHostsFile], ['the ssh client', end.ssh ?? 'ssh']] as const) {
    if (/[\s'"\\%]/.test(file) || file.startsWith('-')) {
      throw new RsyncArgsError(`${what} ${JSON.stringify(file)} cannot be passed in rsync's remote-shell string (it has a space, quote, backslash or %): use a path without them`);
    }
  }
  return [
    end.ssh ?? 'ssh',
    '-i', end.identityFile,
    '-o', 'BatchMode=yes',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', `UserKnownHostsFile=${end.knownHostsFile}`,
    // Offer only the sync key: keys from an agent or ~/.ssh could log in with more rights.
    '-o', 'IdentitiesOnly=yes',
    ...options.flatMap((o) => ['-o', o]),
    '-p', String(end.port ?? SSH_PORT),
  ].join(' ');
}

/** `user@host:DIR/`, with the user and host checked so that neither can be read as an option. */
export function sshRemotePath(end: Pick<SshEnd, 'host' | 'user'>, dir: string): string {
  checkHost(end.host);
  if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(end.user)) throw new RsyncArgsError(`ssh user ${JSON.stringify(end.user)} is not a user name: fix sync.ssh.user`);
  return `${end.user}@${hostPart(end.host)}:${withSlash(dir)}`;
}

/**
 * The argument vector (no shell) for pulling one directory from the owner into `destination`.
 *
 * - `-a` (recursive, links, permissions, times, owner, group, devices) and `--numeric-ids`:
 *   uids and gids are copied as numbers, because the daemon runs chrooted (no passwd file to
 *   map names) and cluster nodes are expected to share their ids anyway.
 * - `--hard-links`: a standby must hold the same tree as the owner. Without it every hard link
 *   arrives as a separate copy, and a tree that fits the owner's disk can overflow the
 *   standby's; rsync only tracks files whose link count is above one, so the cost is small.
 * - `--delete` when the set asks for it, but never `--delete-excluded`: an exclude means "not
 *   replicated", and what a standby keeps under an excluded name (a local cache, a node's own
 *   lock or state file) is its own business, not something to wipe on every pull.
 * - `--delay-updates` with `--delete-delay`: a pull cut short (a signal, a dropped link, the
 *   node made owner) leaves the destination as it was. Received files wait in the partial dir
 *   and are renamed into place, one after the other, only once the whole transfer is done; the
 *   deletions are found during the transfer but made at its end too (rsync's default
 *   `--delete-during` would already have deleted files of a tree whose new files never
 *   arrived). What remains is the short run of renames at the end; a new directory can also
 *   appear early (empty). `--delay-updates` needs the whole file list in memory (it implies
 *   `--no-inc-recursive`) and room for a second copy of the changed files.
 * - `--backup --backup-dir` when `backupDir` is given: what the pull deletes or replaces is
 *   moved there instead of being lost (a returning old owner's own writes).
 * - `--partial-dir`: an interrupted transfer keeps its partial file there and the next pull
 *   resumes from it. For a relative partial dir rsync itself adds a perishable exclude rule
 *   (`-p .haoscar-partial/`), so the dir is neither sent nor deleted by `--delete`, yet does
 *   not keep a deleted directory alive; adding our own plain exclude would lose that last
 *   property, so we do not.
 * - `--timeout` (no data for this long: give up) from ioTimeoutMs, `--contimeout` for the
 *   daemon's connect, `ConnectTimeout` for ssh's.
 * - `--info=progress2 --stats`: one overall progress line (parsed by {@link parseProgress2})
 *   and a summary (parsed by {@link parseStats}), instead of a line per file.
 *
 * With transport ssh, the remote shell is {@link sshRemoteShell}'s and the source
 * {@link sshRemotePath}'s (the user and host checked so that neither can be read as an option).
 *
 * @throws RsyncArgsError for a relative directory, a host or user that could be taken for an
 *   option, or an ssh key/known-hosts path that cannot be passed in rsync's `-e` string.
 */
export function rsyncPullArgs(opts: PullArgsOptions): string[] {
  const { set, source, destination } = opts;
  checkDirectory('the destination', destination, "fix the file set's paths");
  checkHost(source.host);
  const timeoutSeconds = Math.ceil(set.ioTimeoutMs / 1000);
  const args = ['-a', '--hard-links', '--numeric-ids', `--partial-dir=${PARTIAL_DIR}`, '--delay-updates'];
  if (timeoutSeconds > 0) args.push(`--timeout=${timeoutSeconds}`);
  if (set.delete) args.push('--delete', '--delete-delay');
  if (opts.backupDir !== undefined) {
    checkDirectory('the backup directory', opts.backupDir, "fix the file set's paths");
    const dest = withSlash(destination);
    if (withSlash(opts.backupDir).startsWith(dest)) throw new RsyncArgsError(`the backup directory ${JSON.stringify(opts.backupDir)} is inside the destination ${JSON.stringify(destination)}: it would be replicated and deleted with it`);
    args.push('--backup', `--backup-dir=${opts.backupDir}`);
  }
  for (const pattern of set.excludes) args.push(`--exclude=${pattern}`);
  if (set.bwlimit > 0) args.push(`--bwlimit=${set.bwlimit}`);
  if (set.checksum) args.push('--checksum');
  args.push('--info=progress2', '--stats');

  if (source.transport === 'daemon') {
    if (!/^[A-Za-z0-9_.-]+$/.test(source.module)) throw new RsyncArgsError(`rsync module name ${JSON.stringify(source.module)} may only hold letters, digits, '.', '_' and '-'`);
    if (timeoutSeconds > 0) args.push(`--contimeout=${timeoutSeconds}`);
    args.push(`--password-file=${source.passwordFile}`);
    const user = source.user ?? RSYNC_USER;
    if (!/^[a-z0-9-]+$/.test(user)) throw new RsyncArgsError(`rsync daemon user ${JSON.stringify(user)} may only hold lowercase letters, digits and '-'`);
    args.push(`rsync://${user}@${hostPart(source.host)}:${source.port}/${source.module}/`, withSlash(destination));
    return args;
  }

  checkDirectory('the source directory', source.path, "fix the file set's paths");
  const remote = sshRemotePath(source, source.path);
  args.push('-e', sshRemoteShell(source, timeoutSeconds > 0 ? [`ConnectTimeout=${timeoutSeconds}`] : []));
  args.push(remote, withSlash(destination));
  return args;
}

// ---------------------------------------------------------------------------------- parsing

/** One `--info=progress2` line: the whole run so far, not one file. */
export interface RsyncProgress {
  /** Bytes transferred so far in this run. */
  bytes: number;
  /** rsync's percentage (0-100, floored) of the bytes it has seen listed so far. */
  percent: number;
  /** Current rate in bytes per second (rsync prints kB/MB/GB of 1024). */
  bytesPerSecond: number | undefined;
  /** rsync's time column: remaining time while running, elapsed time on the final line; undefined for `??:??:??`. */
  seconds: number | undefined;
  /** Files transferred so far (`xfr#N`), when rsync printed it. */
  transferred: number | undefined;
  /**
   * Files still to check out of those listed (`to-chk=R/T`). With incremental recursion
   * (`ir-chk`) the file list is still growing, so the total and the percentage can grow too.
   */
  toCheck: { remaining: number; total: number; incremental: boolean } | undefined;
}

const PROGRESS2 = /^\s*([\d,.']+)\s+(\d{1,3})%\s+([\d.,]+)([kMGTP]?)B\/s\s+(\S+)(?:\s+\(xfr#(\d+),\s*(ir|to)-chk=(\d+)\/(\d+)\))?\s*$/;

const UNIT: Record<string, number> = { '': 1, k: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4, P: 1024 ** 5 };

/** Digits only: rsync groups thousands with ',' (or '.' / ''' in other locales). */
function integer(text: string): number {
  return Number(text.replace(/[^\d]/g, ''));
}

function clockSeconds(text: string): number | undefined {
  const parts = text.split(':');
  if (parts.length < 2 || parts.some((p) => !/^\d+$/.test(p))) return undefined;
  return parts.reduce((total, part) => total * 60 + Number(part), 0);
}

/**
 * Parses one `--info=progress2` line, e.g.
 * `     12,345,678  45%   11.23MB/s    0:00:05 (xfr#3, to-chk=10/20)` (also `ir-chk`, and
 * without the parenthesis before the first file completes). rsync separates these lines with
 * `\r`, so split its output on `\r` and `\n` first.
 * @returns undefined for any other line.
 */
export function parseProgress2(line: string): RsyncProgress | undefined {
  const m = PROGRESS2.exec(line);
  if (!m) return undefined;
  const [, bytes, percent, rate, unit, clock, xfr, chk, remaining, total] = m;
  const rateNumber = Number((rate ?? '').replace(',', '.'));
  return {
    bytes: integer(bytes ?? ''),
    percent: Number(percent),
    bytesPerSecond: Number.isFinite(rateNumber) ? Math.round(rateNumber * (UNIT[unit ?? ''] ?? 1)) : undefined,
    seconds: clockSeconds(clock ?? ''),
    transferred: xfr === undefined ? undefined : Number(xfr),
    toCheck: remaining === undefined ? undefined : { remaining: Number(remaining), total: Number(total), incremental: chk === 'ir' },
  };
}

/** rsync's `--stats` summary; counts are numbers of entries, sizes are bytes. */
export interface RsyncStats {
  /** Number of files (every entry: regular files, directories, links, devices...). */
  files: number;
  /** The breakdown rsync prints after "Number of files", e.g. { reg: 2, dir: 1 }. */
  fileKinds: Partial<Record<'reg' | 'dir' | 'link' | 'dev' | 'special', number>>;
  createdFiles: number;
  deletedFiles: number;
  regularFilesTransferred: number;
  /** Size of every file listed (the whole tree). */
  totalFileSize: number;
  /** Size of the files that were transferred (whole size, before the delta algorithm). */
  transferredFileSize: number;
  /** Bytes actually sent as new data; the rest was matched from the copy already there. */
  literalData: number;
  matchedData: number;
  fileListSize: number;
  /** Bytes this rsync sent / received on the wire (a pull mostly receives). */
  bytesSent: number;
  bytesReceived: number;
}

const STAT_LABELS: Array<[keyof Omit<RsyncStats, 'fileKinds'>, RegExp]> = [
  ['files', /^Number of files:\s*([\d,.']+)/m],
  ['createdFiles', /^Number of created files:\s*([\d,.']+)/m],
  ['deletedFiles', /^Number of deleted files:\s*([\d,.']+)/m],
  ['regularFilesTransferred', /^Number of regular files transferred:\s*([\d,.']+)/m],
  ['totalFileSize', /^Total file size:\s*([\d,.']+)/m],
  ['transferredFileSize', /^Total transferred file size:\s*([\d,.']+)/m],
  ['literalData', /^Literal data:\s*([\d,.']+)/m],
  ['matchedData', /^Matched data:\s*([\d,.']+)/m],
  ['fileListSize', /^File list size:\s*([\d,.']+)/m],
  ['bytesSent', /^Total bytes sent:\s*([\d,.']+)/m],
  ['bytesReceived', /^Total bytes received:\s*([\d,.']+)/m],
];

/**
 * Parses rsync's `--stats` block (with or without thousands separators). Lines rsync leaves
 * out (e.g. "Number of deleted files" from an old rsync) count as 0.
 * @returns undefined when the text holds no "Number of files:" line (no --stats, or rsync failed first).
 */
export function parseStats(stdout: string): RsyncStats | undefined {
  if (!/^Number of files:/m.test(stdout)) return undefined;
  const stats: RsyncStats = {
    files: 0, fileKinds: {}, createdFiles: 0, deletedFiles: 0, regularFilesTransferred: 0, totalFileSize: 0,
    transferredFileSize: 0, literalData: 0, matchedData: 0, fileListSize: 0, bytesSent: 0, bytesReceived: 0,
  };
  for (const [key, pattern] of STAT_LABELS) {
    const m = pattern.exec(stdout);
    if (m?.[1] !== undefined) stats[key] = integer(m[1]);
  }
  // "(reg: 3,000, dir: 301)": the separator of thousands is also the list's, so match, not split.
  const kinds = /^Number of files:[^(\n]*\(([^)]*)\)/m.exec(stdout)?.[1] ?? '';
  for (const m of kinds.matchAll(/(reg|dir|link|dev|special):\s*(\d[\d,.']*)/g)) {
    if (m[1] !== undefined && m[2] !== undefined) stats.fileKinds[m[1] as keyof RsyncStats['fileKinds']] = integer(m[2]);
  }
  return stats;
}

// ---------------------------------------------------------------------------------- errors

export const RSYNC_ERROR_KINDS = ['no-space', 'read-only', 'permission', 'auth', 'connection', 'timeout', 'vanished', 'partial', 'protocol', 'usage', 'other'] as const;
export type RsyncErrorKind = (typeof RSYNC_ERROR_KINDS)[number];

/** rsync(1) EXIT VALUES. */
export const RSYNC_EXIT_CODES: Readonly<Record<number, string>> = {
  0: 'success',
  1: 'syntax or usage error',
  2: 'protocol incompatibility',
  3: 'errors selecting input/output files, dirs',
  4: 'requested action not supported',
  5: 'error starting client-server protocol',
  6: 'daemon unable to append to log-file',
  10: 'error in socket I/O',
  11: 'error in file I/O',
  12: 'error in rsync protocol data stream',
  13: 'errors with program diagnostics',
  14: 'error in IPC code',
  20: 'received SIGUSR1 or SIGINT',
  21: 'some error returned by waitpid()',
  22: 'error allocating core memory buffers',
  23: 'partial transfer due to error',
  24: 'partial transfer due to vanished source files',
  25: 'the --max-delete limit stopped deletions',
  30: 'timeout in data send/receive',
  35: 'timeout waiting for daemon connection',
  255: 'unexplained error (over ssh: ssh itself failed)',
};

/**
 * What went wrong, from rsync's stderr first (the same ENOSPC can end with exit 11, 12 or 23,
 * depending on which of rsync's processes hit it) and its exit code second.
 *
 * Not retryable: what needs a person (disk full, read-only filesystem, permissions, a refused
 * password or host, a usage or protocol error, which is a bug or an rsync version mismatch).
 * Retryable: what can pass by itself (connection, timeout, partial transfer, a module the
 * owner does not export yet while a new configuration rolls out).
 */
export function classifyRsyncFailure(exitCode: number | undefined, stderr: string): { kind: RsyncErrorKind; retryable: boolean } {
  const text = stderr;
  if (/No space left on device \(28\)|Disk quota exceeded \(122\)/.test(text)) return { kind: 'no-space', retryable: false };
  if (/Read-only file system \(30\)|module is read only/.test(text)) return { kind: 'read-only', retryable: false };
  if (/@ERROR: auth failed|@ERROR: access denied|Permission denied \(publickey|Host key verification failed|No .* host key is known|REMOTE HOST IDENTIFICATION HAS CHANGED|password file must not be other-accessible|rrsync error/.test(text)) {
    return { kind: 'auth', retryable: false };
  }
  if (/Permission denied \(13\)|Operation not permitted \(1\)/.test(text)) return { kind: 'permission', retryable: false };
  if (/@ERROR: Unknown module/.test(text)) return { kind: 'other', retryable: true };
  if (MISSING_SOURCE.test(text)) return { kind: 'other', retryable: true };
  if (/rather than greeting/.test(text)) return { kind: 'protocol', retryable: false };
  if (/@ERROR: max connections/.test(text)) return { kind: 'connection', retryable: true };
  if (/io timeout after|timed out|Connection timed out \(110\)/.test(text) || exitCode === 30 || exitCode === 35) return { kind: 'timeout', retryable: true };
  if (/Connection refused|No route to host|Network is unreachable|Name or service not known|Temporary failure in name resolution|Connection reset by peer|Broken pipe|connection unexpectedly closed|Could not resolve hostname/.test(text)) {
    return { kind: 'connection', retryable: true };
  }
  switch (exitCode) {
    case 1:
    case 4:
      return { kind: 'usage', retryable: false };
    case 2:
      return { kind: 'protocol', retryable: false };
    case 5:
    case 10:
    case 12:
    case 255:
      return { kind: 'connection', retryable: true };
    case 23:
    case 25:
      return { kind: 'partial', retryable: true };
    case 24:
      return { kind: 'vanished', retryable: true };
    default:
      return { kind: 'other', retryable: true };
  }
}

/** The owner has no such directory (not mounted yet?): the daemon cannot chroot into it, the ssh sender cannot enter it. */
const MISSING_SOURCE = /@ERROR: (chroot|chdir) failed|change_dir "[^"]*" failed: No such file or directory|link_stat "[^"]*" failed: No such file or directory/;

/** What {@link describePull} found in an rsync argv: the owner, the module or path, the destination. */
interface PullDescription {
  what: string;
  host?: string;
  port?: string;
  module?: string;
  destination?: string;
  transport?: 'daemon' | 'ssh';
}

/** Reads source and destination back out of an argv built by {@link rsyncPullArgs}, for messages. */
function describePull(argv: readonly string[]): PullDescription {
  const source = argv.at(-2);
  const last = argv.at(-1);
  // Without the trailing slash rsync needs, for messages (and `df -h DIR` hints).
  const destination = last === undefined || last === '/' ? last : last.replace(/\/+$/, '');
  if (source === undefined || destination === undefined) return { what: `rsync ${argv.join(' ')}` };
  const url = /^rsync:\/\/(?:[^@/]+@)?(\[[^\]]+\]|[^:/]+)(?::(\d+))?\/([^/]+)/.exec(source);
  if (url) {
    return { what: `pull of module ${url[3]} from ${url[1]}:${url[2] ?? 873} into ${destination}`, host: url[1], port: url[2] ?? '873', module: url[3], destination, transport: 'daemon' };
  }
  const ssh = /^(?:([^@]+)@)?(\[[^\]]+\]|[^:]+):(.*)$/.exec(source);
  if (ssh && !source.startsWith('/')) {
    return { what: `pull of ${ssh[3]} from ${ssh[1] ? `${ssh[1]}@` : ''}${ssh[2]} (ssh) into ${destination}`, host: ssh[2], destination, transport: 'ssh' };
  }
  return { what: `rsync from ${source} into ${destination}`, destination };
}

function hint(kind: RsyncErrorKind, d: PullDescription, stderr: string): string {
  const dest = d.destination ?? 'the destination';
  const host = d.host ?? 'the owner';
  switch (kind) {
    case 'no-space':
      return `no space left on the standby's filesystem holding ${dest}: free space there (df -h ${dest}) or grow it; it needs room for the whole file set plus the largest file once more (rsync writes a temporary copy before replacing a file)`;
    case 'read-only':
      return /module is read only/.test(stderr)
        ? `${host}'s rsync module is read-only, so nothing can be written to it: standbys only pull; this is a bug in whatever tried to push`
        : `${dest} is on a read-only filesystem: remount it read-write (mount -o remount,rw) and look in dmesg for the error that made the kernel switch it to read-only`;
    case 'auth':
      return d.transport === 'ssh'
        ? `ssh to ${host} was refused or its host key is not trusted: check that this node's public key is in ${host}'s authorized_keys (with rrsync -ro), that ${host}'s host key is in the known hosts file, and that the identity file is readable by root (docs/sync.md)`
        : `${host}'s rsync daemon refused this node: every node must have the same heartbeat secret (compare sha256sum of the secret file on both) and this node's address must be one of the cluster's node addresses (the daemon's hosts allow)`;
    case 'permission':
      return `permission denied reading on ${host} or writing ${dest}: the agent and the daemon run as root, so look for immutable files (lsattr), SELinux/AppArmor denials, or a root-squashed network filesystem`;
    case 'connection':
      return d.transport === 'ssh'
        ? `cannot talk to sshd on ${host}: is the node up and TCP port 22 open between the nodes?`
        : `cannot talk to the rsync daemon on ${host}${d.port ? `:${d.port}` : ''}: is the agent running there, and is TCP port ${d.port ?? 'sync.port'} open between the nodes? (retried)`;
    case 'timeout':
      return `no data moved for the file set's ioTimeout, or the connection took that long: the network or ${host}'s disk is stalled (retried)`;
    case 'partial':
      return 'some files were not transferred (see rsync\'s lines below); the next pull tries again';
    case 'vanished':
      return 'files vanished on the owner while they were copied; the next pull picks up the new state';
    case 'protocol':
      return /rather than greeting/.test(stderr)
        ? `something other than an rsync daemon answers on ${host}${d.port ? `:${d.port}` : ''}: find it (ss -ltnp on ${host}) and move it, or choose another sync.port`
        : 'the two rsyncs do not speak the same protocol: compare rsync --version on both nodes';
    case 'usage':
      return 'rsync rejected its arguments or an option: compare rsync --version on both nodes and report this as a bug';
    case 'other':
      if (MISSING_SOURCE.test(stderr)) {
        return `the directory to copy is missing on ${host} (is the group's filesystem mounted there, and does the path exist?) (retried)`;
      }
      return /@ERROR: Unknown module/.test(stderr)
        ? `${host}'s rsync daemon does not export module ${d.module ?? '?'} to this node: either it does not have it (every node needs the same configuration, and ${host}'s agent must be running it), or it does not allow this node's address (our daemons do not list their modules, and rsync then reports a refused host as an unknown module; ${host}'s agent log says "rsync denied on module" in that case, and this node's address must be one of the cluster's node addresses) (retried)`
        : 'see rsync\'s lines below (retried)';
  }
}

/**
 * stderr lines kept for the error: the first ones (rsync often names the cause first, then
 * reports its consequences file by file) and the last ones; the message quotes the last few.
 */
const STDERR_HEAD_LINES = 10;
const STDERR_TAIL_LINES = 20;
const MESSAGE_LINES = 5;

/** Thrown by {@link runRsync}: a failed rsync, with what kind of failure it was and whether retrying can help. */
export class RsyncError extends Error {
  constructor(
    readonly kind: RsyncErrorKind,
    readonly retryable: boolean,
    /** rsync's exit code; undefined when it was killed (timeout, signal) or could not be started. */
    readonly exitCode: number | undefined,
    /** What rsync wrote to stderr: its first lines and its last ones (a marker line counts those left out between). */
    readonly stderrLines: readonly string[],
    message: string,
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = 'RsyncError';
  }

  /**
   * An error for an rsync that ran `argv` and ended with `exitCode` and `stderrLines`; `how`
   * replaces "failed (exit N: ...)" for an rsync that never exited by itself.
   */
  static from(argv: readonly string[], exitCode: number | undefined, stderrLines: readonly string[], what?: string, how?: string): RsyncError {
    const stderr = stderrLines.join('\n');
    const { kind, retryable } = classifyRsyncFailure(exitCode, stderr);
    const described = describePull(argv);
    const ended = how ?? (exitCode === undefined ? 'failed' : `failed (exit ${exitCode}: ${RSYNC_EXIT_CODES[exitCode] ?? 'unknown exit code'})`);
    const said = stderrLines.length > 0 ? `; rsync said: ${stderrLines.slice(-MESSAGE_LINES).join(' | ')}` : '';
    return new RsyncError(kind, retryable, exitCode, stderrLines, `rsync ${what ?? described.what} ${ended}: ${hint(kind, described, stderr)}${said}`);
  }
}

// ---------------------------------------------------------------------------------- running

export interface RunRsyncOptions {
  /** The rsync binary (sync.rsync). */
  rsync: string;
  /** Added to the environment (LC_ALL=C is always set, so numbers parse the same everywhere). */
  env?: Record<string, string>;
  /** Abort: rsync's process group gets SIGTERM (so it keeps a partial file), SIGKILL after a grace period. */
  signal?: AbortSignal;
  onProgress?: (progress: RsyncProgress) => void;
  /** Kill rsync after this long in total (ioTimeout only covers silence); it then fails with kind 'timeout'. */
  timeoutMs?: number;
  /** The command is logged (debug) before it runs. */
  logger?: Logger;
  /** Names the run in error messages; default: read from argv ("pull of module M from HOST:PORT into DIR"). */
  what?: string;
}

export interface RsyncResult {
  /** 0, or 24 when files vanished on the owner during the copy (see `vanished`). */
  exitCode: number;
  /** undefined when argv had no --stats. */
  stats: RsyncStats | undefined;
  durationMs: number;
  /**
   * Some source files disappeared between listing and copying (exit 24). Normal for a live
   * tree, so not an error: the next pull sees the new state.
   */
  vanished: boolean;
}

/** After SIGTERM rsync saves its partial file and exits; a stuck one is SIGKILLed after this. */
const KILL_GRACE_MS = 5_000;
/** stdout lines kept for the stats (progress lines are parsed, not kept). */
const STDOUT_LINES = 200;

/** Splits a stream into lines on both `\r` (progress2) and `\n`. */
function lineSplitter(onLine: (line: string) => void): { push(chunk: string): void; end(): void } {
  let rest = '';
  return {
    push(chunk) {
      const parts = (rest + chunk).split(/\r\n|\r|\n/);
      rest = parts.pop() ?? '';
      for (const part of parts) onLine(part);
    },
    end() {
      if (rest !== '') onLine(rest);
      rest = '';
    },
  };
}

/**
 * Runs rsync with `argv` (no shell), in its own process group, streaming its output: progress
 * lines go to `onProgress`, the stats are parsed at the end. On success the last progress
 * callback has percent 100: rsync's own final line can say 99% when part of the tree was
 * already up to date.
 *
 * @throws RsyncError when rsync exits with anything but 0 or 24, could not be started, or
 *   ran longer than `timeoutMs` (kind 'timeout').
 * @throws `signal.reason` when aborted (rsync is killed first).
 */
export async function runRsync(argv: readonly string[], options: RunRsyncOptions): Promise<RsyncResult> {
  const { signal } = options;
  signal?.throwIfAborted();
  options.logger?.debug({ command: [options.rsync, ...argv] }, 'exec');
  const started = performance.now();
  const subprocess = execa(options.rsync, argv, {
    reject: false,
    buffer: false,
    // Its own process group: rsync forks (generator and receiver, an ssh), and an abort must
    // reach every one of them, not leave a receiver writing after we returned.
    detached: true,
    stdin: 'ignore',
    env: { ...options.env, LC_ALL: 'C', LANG: 'C' },
  });

  const stdoutLines: string[] = [];
  const stderrHead: string[] = [];
  const stderrTail: string[] = [];
  let stderrDropped = 0;
  const stderrLinesOf = () => [...stderrHead, ...(stderrDropped > 0 ? [`[${stderrDropped} more lines]`] : []), ...stderrTail];
  let last: RsyncProgress | undefined;
  const stdout = lineSplitter((line) => {
    const progress = parseProgress2(line);
    if (progress) {
      last = progress;
      try {
        options.onProgress?.(progress);
      } catch (err) {
        // A throw here would surface as an uncaught stream error and take the process down.
        options.logger?.warn({ err }, 'rsync progress callback threw; ignored');
      }
      return;
    }
    stdoutLines.push(line);
    if (stdoutLines.length > STDOUT_LINES) stdoutLines.shift();
  });
  const stderr = lineSplitter((line) => {
    if (line.trim() === '') return;
    if (stderrHead.length < STDERR_HEAD_LINES) {
      stderrHead.push(line.trim());
      return;
    }
    stderrTail.push(line.trim());
    if (stderrTail.length > STDERR_TAIL_LINES) {
      stderrTail.shift();
      stderrDropped += 1;
    }
  });
  subprocess.stdout?.setEncoding('utf8');
  subprocess.stderr?.setEncoding('utf8');
  subprocess.stdout?.on('data', (chunk: string) => stdout.push(chunk));
  subprocess.stderr?.on('data', (chunk: string) => stderr.push(chunk));

  let killTimer: NodeJS.Timeout | undefined;
  const killGroup = (sig: NodeJS.Signals) => {
    if (subprocess.pid !== undefined) signalGroup(subprocess.pid, sig);
  };
  const terminate = () => {
    if (killTimer !== undefined) return;
    killGroup('SIGTERM');
    killTimer = setTimeout(() => killGroup('SIGKILL'), KILL_GRACE_MS);
  };
  let timedOut = false;
  const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    terminate();
  }, options.timeoutMs);
  signal?.addEventListener('abort', terminate, { once: true });

  const result = await subprocess.finally(() => {
    clearTimeout(timer);
    clearTimeout(killTimer);
    signal?.removeEventListener('abort', terminate);
  });
  stdout.end();
  stderr.end();
  const durationMs = Math.round(performance.now() - started);
  const stderrLines = stderrLinesOf();

  signal?.throwIfAborted();
  if (timedOut) {
    const message = `rsync ${options.what ?? describePull(argv).what} did not finish within ${options.timeoutMs} ms and was killed: the network or the owner's disk is too slow for this file set, or the timeout is too short (retried)`;
    throw new RsyncError('timeout', true, undefined, stderrLines, stderrLines.length > 0 ? `${message}; rsync said: ${stderrLines.slice(-MESSAGE_LINES).join(' | ')}` : message);
  }
  if (result.exitCode === undefined) {
    const cause = result.cause as NodeJS.ErrnoException | undefined;
    if (cause?.code === 'ENOENT' || cause?.code === 'EACCES') {
      throw new RsyncError('usage', false, undefined, stderrLines, `cannot run rsync binary ${options.rsync} (${cause.code}): install rsync (apt install rsync) or set sync.rsync to its path`, cause);
    }
    // Killed by someone else (the OOM killer, an admin): worth another try.
    const error = RsyncError.from(argv, undefined, stderrLines, options.what, result.signal ? `was killed by ${result.signal}` : 'could not be run');
    throw new RsyncError(error.kind, true, undefined, stderrLines, error.message, result.cause);
  }
  if (result.exitCode !== 0 && result.exitCode !== 24) throw RsyncError.from(argv, result.exitCode, stderrLines, options.what);

  if (last !== undefined && last.percent < 100) options.onProgress?.({ ...last, percent: 100 });
  return { exitCode: result.exitCode, stats: parseStats(stdoutLines.join('\n')), durationMs, vanished: result.exitCode === 24 };
}
