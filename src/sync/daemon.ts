/**
 * The read-only rsync daemon every agent runs for its file sets: standbys pull from the
 * owner's daemon, so nothing ever writes toward the owner. One module per (group, file set,
 * directory); access needs the cluster's password and one of the cluster's node addresses.
 *
 * The password is derived from the heartbeat secret (HMAC-SHA256 of a fixed label and the
 * cluster name), so every node computes the same one and no extra secret has to be
 * distributed; the secret itself never leaves the node. rsync's challenge-response keeps the
 * password off the wire, but the file data is NOT encrypted: use transport ssh on networks
 * you do not trust.
 */
import { createHmac } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, truncate } from 'node:fs/promises';
import { connect, isIP } from 'node:net';
import { dirname, join, posix } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { Logger } from '../log.js';
import { signalGroup } from '../process-group.js';
import { PARTIAL_DIR, RSYNC_USER } from './rsync.js';
import { secretKeyId } from '../heartbeat/secret.js';

/** Changing it changes every cluster's password: all nodes must then be upgraded together. */
const PASSWORD_LABEL = 'haoscar rsync daemon password v1';

/**
 * The daemon password of `cluster`: hex HMAC-SHA256 under the heartbeat secret of a fixed
 * label and the cluster name (two clusters sharing a secret by mistake still get different
 * passwords). Deterministic, so every node of the cluster derives the same password.
 */
export function derivePassword(secret: Buffer, cluster: string): string {
  return createHmac('sha256', secret).update(`${PASSWORD_LABEL}\0${cluster}`).digest('hex');
}

/**
 * The daemon's users, and the one this node pulls as. rsync checks only the first password of a
 * user, so a secret being rotated in or out cannot be a second password of {@link RSYNC_USER}:
 * each secret gets a user named after it (`haoscar-` and its secretKeyId) besides
 * {@link RSYNC_USER}, which keeps the signing secret's password for nodes outside a rotation and
 * older releases. A node in a rotation (with accepted secrets) pulls as its signing secret's
 * own user, which every peer in any step of the same rotation serves (docs/reload.md).
 */
export function daemonUsers(secret: Buffer, accepted: readonly Buffer[]): { serves: { user: string; secret: Buffer }[]; pulls: string } {
  const own = (s: Buffer) => `${RSYNC_USER}-${secretKeyId(s)}`;
  const serves = [{ user: RSYNC_USER, secret }, { user: own(secret), secret }, ...accepted.map((s) => ({ user: own(s), secret: s }))];
  return { serves, pulls: accepted.length > 0 ? own(secret) : RSYNC_USER };
}

export interface DaemonModule {
  /** moduleName(group, set, index) from rsync.ts. */
  name: string;
  /** The directory served (absolute). */
  path: string;
  /** Shown nowhere (list = no), but makes the config readable: "group web, file set docroot". */
  comment: string;
}

export interface DaemonFilesOptions {
  cluster: string;
  port: number;
  /** Bind only this address; default: every address (hosts allow still limits who gets in). */
  address?: string;
  modules: DaemonModule[];
  /** The cluster's node addresses; everyone else is refused. */
  hostsAllow: string[];
  /** The heartbeat secret (the one this node signs with). */
  secret: Buffer;
  /**
   * Secrets also accepted while the cluster secret is rotated (heartbeat.acceptSecretFiles):
   * each gets a daemon user of its own, since rsync checks only a user's first password.
   */
  acceptedSecrets?: readonly Buffer[];
  /** Concurrent connections served (default 16: a few standbys, each a few directories). */
  maxConnections?: number;
  /** The daemon's own I/O timeout in seconds (default 600): a vanished client is dropped. */
  timeoutSeconds?: number;
}

export interface DaemonFiles {
  /** rsyncd.conf (`rsync --daemon --config=`). */
  config: string;
  /** rsyncd.secrets: `haoscar:PASSWORD`, mode 0600 (rsync's strict modes insist). */
  secrets: string;
  /** The client side's `--password-file`: the password alone, mode 0600. */
  passwordFile: string;
  /** The user this node's pulls log in as, with `passwordFile`'s password (see {@link daemonUsers}). */
  user: string;
  /** Where the daemon writes its pid (RsyncDaemon clears a stale one). */
  pidFile: string;
  /** The daemon's log (`--log-file`); RsyncDaemon forwards it to the agent's logger and keeps it small. */
  logFile: string;
}

/** Thrown by {@link writeDaemonFiles} for a value that cannot go into rsyncd.conf safely. */
export class DaemonConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DaemonConfigError';
  }
}

/**
 * A value for rsyncd.conf: one line, and `%` doubled, because rsync expands `%VAR%` from its
 * environment in parameter values (`%%` is its literal percent sign).
 */
function confValue(what: string, value: string): string {
  if (/[\0\n\r]/.test(value)) throw new DaemonConfigError(`${what} ${JSON.stringify(value)} contains a line break or NUL and cannot go into rsyncd.conf`);
  return value.replace(/%/g, '%%');
}

/** Writes `content` to `file` by rename, so the daemon (which re-reads its config on every connection) never sees half a file. */
async function writeAtomic(file: string, content: string, mode: number): Promise<void> {
  const temporary = `${file}.tmp-${process.pid}`;
  await rm(temporary, { force: true });
  // Created with its final mode ('wx': fails rather than reuse a file someone else made), so
  // the secret is never readable by others, not even for a moment.
  const handle = await open(temporary, 'wx', mode);
  try {
    await handle.writeFile(content);
    await handle.chmod(mode);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temporary, file);
}

/**
 * Writes the daemon's configuration, secrets file and the client's password file into `dir`
 * (created 0700). Safe to call again with new modules while the daemon runs: rsync re-reads
 * rsyncd.conf on every connection (only `port` and `address` need a restart).
 *
 * Choices in the configuration:
 * - `use chroot = yes`: each connection is locked into the module's directory, so no path
 *   trick or symlink can reach outside it; the price is no user-name lookup in the chroot,
 *   hence `numeric ids = yes` (ids are copied as numbers, as the client's --numeric-ids asks).
 * - `uid = root`, `gid = root`: the daemon must read every file of the tree.
 * - `read only = yes`, `write only = no`: nothing can be uploaded, and rsync also refuses a
 *   pull's --remove-source-files on a read-only module. No `refuse options`: read only
 *   already blocks every write, and refusing `delete` would couple the daemon to which
 *   options a future client happens to forward on a pull (today's forwards none).
 * - `list = no`: module names are not announced. `reverse lookup = no`: a client's name is
 *   never asked of DNS; `forward lookup` only when hosts allow holds names (addresses are
 *   better: DNS then plays no part in who gets in).
 * - `strict modes = yes`: the daemon refuses a secrets file other users could read.
 * - `exclude = .haoscar-partial/`: a node that was a standby before may still hold partial
 *   files; they are never served as data.
 *
 * @throws DaemonConfigError for a module name, path, address or comment that cannot be
 *   written safely, or an empty hosts allow list.
 */
export async function writeDaemonFiles(dir: string, options: DaemonFilesOptions): Promise<DaemonFiles> {
  if (options.hostsAllow.length === 0) throw new DaemonConfigError(`the rsync daemon of cluster ${options.cluster} would allow no host: list the nodes' addresses`);
  for (const host of options.hostsAllow) {
    if (!/^[A-Za-z0-9.:/_-]+$/.test(host)) throw new DaemonConfigError(`hosts allow entry ${JSON.stringify(host)} is not an address: fix the node's addresses`);
  }
  if (options.address !== undefined && !/^[A-Za-z0-9.:_-]+$/.test(options.address)) throw new DaemonConfigError(`daemon address ${JSON.stringify(options.address)} is not an address`);
  const names = new Set<string>();
  for (const module of options.modules) {
    if (!/^[A-Za-z0-9_.-]+$/.test(module.name)) throw new DaemonConfigError(`rsync module name ${JSON.stringify(module.name)} may only hold letters, digits, '.', '_' and '-'`);
    if (names.has(module.name)) throw new DaemonConfigError(`rsync module ${module.name} is listed twice`);
    names.add(module.name);
    if (!module.path.startsWith('/')) throw new DaemonConfigError(`module ${module.name}: path ${JSON.stringify(module.path)} is not absolute`);
  }

  const users = daemonUsers(options.secret, options.acceptedSecrets ?? []);
  const allAddresses = options.hostsAllow.every((host) => isIP(host.replace(/\/\d+$/, '')) !== 0);
  const files: DaemonFiles = {
    config: join(dir, 'rsyncd.conf'),
    secrets: join(dir, 'rsyncd.secrets'),
    passwordFile: join(dir, 'password'),
    user: users.pulls,
    pidFile: join(dir, 'rsyncd.pid'),
    logFile: join(dir, 'rsyncd.log'),
  };
  const lines = [
    `# rsync daemon of HA-OSCAR cluster ${confValue('cluster', options.cluster)}: written by the agent, edits are overwritten.`,
    '# Read-only, pull-only: standbys copy from the owner; nothing can be written here.',
    `port = ${options.port}`,
    ...(options.address ? [`address = ${options.address}`] : []),
    `pid file = ${confValue('pid file', files.pidFile)}`,
    `lock file = ${confValue('lock file', join(dir, 'rsyncd.lock'))}`,
    'use chroot = yes',
    'numeric ids = yes',
    'uid = root',
    'gid = root',
    'read only = yes',
    'write only = no',
    'list = no',
    'reverse lookup = no',
    // Names in hosts allow match only through a forward lookup; with addresses alone, no DNS at all.
    `forward lookup = ${allAddresses ? 'no' : 'yes'}`,
    'strict modes = yes',
    `auth users = ${users.serves.map((u) => u.user).join(', ')}`,
    `secrets file = ${confValue('secrets file', files.secrets)}`,
    `hosts allow = ${options.hostsAllow.join(' ')}`,
    'hosts deny = *',
    `max connections = ${options.maxConnections ?? 16}`,
    `timeout = ${options.timeoutSeconds ?? 600}`,
    'transfer logging = no',
    `exclude = ${PARTIAL_DIR}/`,
  ];
  for (const module of options.modules) {
    // normalize: a "/./" in a module path means "chroot here" to rsync; ours never should.
    let path = posix.normalize(module.path);
    // rsync trims trailing whitespace from values; a final slash keeps it.
    if (/\s$/.test(path)) path = `${path}/`;
    lines.push('', `[${module.name}]`, `\tpath = ${confValue(`module ${module.name}: path`, path)}`, `\tcomment = ${confValue(`module ${module.name}: comment`, module.comment)}`);
  }
  // Everything is checked and composed above; only now is anything written.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeAtomic(files.secrets, users.serves.map((u) => `${u.user}:${derivePassword(u.secret, options.cluster)}\n`).join(''), 0o600);
  await writeAtomic(files.passwordFile, `${derivePassword(options.secret, options.cluster)}\n`, 0o600);
  await writeAtomic(files.config, `${lines.join('\n')}\n`, 0o644);
  return files;
}

// ---------------------------------------------------------------------------------- daemon

export interface RsyncDaemonOptions {
  /** The rsync binary (sync.rsync). */
  rsync: string;
  /** DaemonFiles.config. */
  config: string;
  /** DaemonFiles.pidFile: a stale one (an agent killed with its daemon still running) is cleared at start. */
  pidFile?: string;
  /** DaemonFiles.logFile; default rsyncd.log next to the config. */
  logFile?: string;
  port: number;
  address?: string;
  logger: Logger;
  /** How long start() waits for the port to accept connections (default 5 s). */
  startTimeoutMs?: number;
  /** Restart delays after an unexpected exit: doubling from initialMs up to maxMs (default 1 s, 30 s). */
  restartBackoff?: { initialMs: number; maxMs: number };
}

export interface RsyncDaemonExit {
  exitCode: number | undefined;
  signal: string | undefined;
  /** true after stop(); false when it died by itself (a restart follows). */
  expected: boolean;
  /** The daemon's last log lines. */
  lastLines: string[];
}

/** Thrown by {@link RsyncDaemon.start} when the daemon exits or stays deaf before it accepts connections. */
export class RsyncDaemonError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'RsyncDaemonError';
  }
}

/** A daemon that stayed up this long has its restart delay reset to the initial one. */
const STABLE_AFTER_MS = 60_000;
/** After SIGTERM the daemon has this long before SIGKILL. */
const STOP_GRACE_MS = 5_000;
const LOG_LINES = 20;
/** The log file is truncated past this size (its lines were forwarded already). */
const LOG_TRUNCATE_BYTES = 1024 * 1024;
/** How often the log file is read while the daemon runs. */
const LOG_POLL_MS = 250;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The daemon's group, or the daemon alone (a stale one from a pid file may lead none). */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  if (signalGroup(pid, signal)) return;
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
  return true;
}

/**
 * One connection attempt; true when an rsync daemon answered with its greeting. Merely
 * accepting is not enough: another program holding the port accepts too, and our daemon is
 * then about to exit with "address in use".
 */
function greets(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let received = '';
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.startsWith('@RSYNCD:')) done(true);
      else if (received.length >= 8) done(false);
    });
    socket.once('error', () => done(false));
    socket.once('close', () => done(false));
  });
}

/**
 * Supervises `rsync --daemon --no-detach`: start() returns once the daemon answers on its
 * port; an unexpected exit is logged, reported to onExit listeners and followed by a
 * restart with a growing delay; stop() ends it (and every transfer it is serving).
 *
 * Its log file is read as it grows and forwarded to the agent's logger (refused logins at warn,
 * the rest at debug), and truncated once it passes 1 MiB: rsync appends (O_APPEND), so it
 * simply continues at the new end. It cannot log to our stderr instead: Node's child stdio
 * pipes are sockets, and rsync's open() of /dev/stderr fails on a socket.
 */
export class RsyncDaemon {
  #child: ResultPromise | undefined;
  /** The child that got as far as listening: only its death triggers a restart (a failed start is the caller's to handle). */
  #listening: ResultPromise | undefined;
  #startedAt = 0;
  #stopping = false;
  #failures = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #lastLines: string[] = [];
  readonly #logFile: string;
  #logOffset = 0;
  #logRest = '';
  #logTimer: NodeJS.Timeout | undefined;
  #reading: Promise<void> | undefined;
  #exited: Promise<void> = Promise.resolve();
  readonly #listeners = new Set<(exit: RsyncDaemonExit) => void>();

  constructor(private readonly options: RsyncDaemonOptions) {
    this.#logFile = options.logFile ?? join(dirname(options.config), 'rsyncd.log');
  }

  /** The daemon's pid while it runs. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Called after every exit of the daemon process (expected or not); returns an unsubscribe function. */
  onExit(listener: (exit: RsyncDaemonExit) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Starts the daemon and waits until its port accepts connections. A no-op when it runs.
   * @throws RsyncDaemonError when rsync cannot be run, exits first (e.g. the port is in use,
   *   a bad config) or does not listen within startTimeoutMs; the message has its last lines.
   */
  async start(): Promise<void> {
    this.#stopping = false;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    if (this.#child) return;
    await this.#spawn();
  }

  /** Stops the daemon (SIGTERM to its process group, SIGKILL after a grace period) and any pending restart. */
  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#restartTimer);
    this.#restartTimer = undefined;
    const child = this.#child;
    if (child?.pid !== undefined) {
      const pid = child.pid;
      killGroup(pid, 'SIGTERM');
      const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), STOP_GRACE_MS);
      await this.#exited;
      clearTimeout(timer);
      // Connection children may outlive the master for a moment; they belong to its group.
      killGroup(pid, 'SIGKILL');
    }
    if (this.options.pidFile) await rm(this.options.pidFile, { force: true });
  }

  /** An rsync daemon left by an agent that was killed holds our port and pid file: end it. */
  async #clearLeftover(): Promise<void> {
    const { pidFile } = this.options;
    if (!pidFile) return;
    let pid: number;
    try {
      pid = Number((await readFile(pidFile, 'utf8')).trim());
    } catch {
      return;
    }
    if (Number.isInteger(pid) && pid > 1 && alive(pid)) {
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      if (cmdline.split('\0').includes(`--config=${this.options.config}`)) {
        this.options.logger.warn({ pid, pidFile }, 'rsync daemon: ending a daemon left running by a previous agent');
        killGroup(pid, 'SIGTERM');
        if (!(await waitGone(pid, STOP_GRACE_MS))) killGroup(pid, 'SIGKILL');
        await waitGone(pid, 1_000);
      }
    }
    // rsync 3.5 overwrites a stale pid file, but it costs nothing to spare older versions the
    // question (some have refused to start over an existing one).
    await rm(pidFile, { force: true });
  }

  #log(line: string): void {
    this.#lastLines.push(line);
    if (this.#lastLines.length > LOG_LINES) this.#lastLines.shift();
    const refused = /auth failed|denied|unknown module|error|refused|failed/i.test(line);
    if (refused) this.options.logger.warn({ rsyncd: line }, 'rsync daemon refused a client or failed');
    else this.options.logger.debug({ rsyncd: line }, 'rsync daemon');
  }

  /** Forwards what the daemon appended to its log since the last read (one read at a time). */
  #readLog(): Promise<void> {
    this.#reading ??= this.#readLogOnce().finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  /** Reads until the end twice over, so that lines written during a read in progress are included. */
  async #drainLog(): Promise<void> {
    await this.#readLog();
    await this.#readLog();
  }

  async #readLogOnce(): Promise<void> {
    let handle;
    try {
      handle = await open(this.#logFile, 'r');
    } catch {
      return; // not created yet
    }
    try {
      const { size } = await handle.stat();
      if (size < this.#logOffset) this.#logOffset = 0;
      while (this.#logOffset < size) {
        const buffer = Buffer.alloc(Math.min(size - this.#logOffset, 64 * 1024));
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.#logOffset);
        if (bytesRead === 0) break;
        this.#logOffset += bytesRead;
        const lines = (this.#logRest + buffer.subarray(0, bytesRead).toString('utf8')).split('\n');
        this.#logRest = lines.pop() ?? '';
        for (const line of lines) if (line.trim() !== '') this.#log(line.trim());
      }
    } finally {
      await handle.close();
    }
    if (this.#logOffset >= LOG_TRUNCATE_BYTES) {
      // A line the daemon appends between our read and the truncate is lost: acceptable
      // for a log whose lines are one per connection.
      await truncate(this.#logFile, 0).catch(() => undefined);
      this.#logOffset = 0;
      this.#logRest = '';
    }
  }

  async #spawn(): Promise<void> {
    await this.#clearLeftover();
    const { rsync, config, port, address, logger } = this.options;
    const args = ['--daemon', '--no-detach', `--config=${config}`, `--port=${port}`, ...(address ? [`--address=${address}`] : []), `--log-file=${this.#logFile}`];
    logger.debug({ command: [rsync, ...args] }, 'exec');
    this.#lastLines = [];
    // Its lines were forwarded while the previous daemon ran; start the new one on an empty log.
    await truncate(this.#logFile, 0).catch(() => undefined);
    this.#logOffset = 0;
    this.#logRest = '';
    const child = execa(rsync, args, {
      reject: false,
      buffer: false,
      // Its own group, so stop() also ends the per-connection children serving transfers.
      detached: true,
      stdin: 'ignore',
      stdout: 'ignore',
      env: { LC_ALL: 'C', LANG: 'C' },
    });
    this.#child = child;
    this.#startedAt = Date.now();
    let rest = '';
    clearInterval(this.#logTimer);
    this.#logTimer = setInterval(() => void this.#readLog(), LOG_POLL_MS);
    this.#logTimer.unref();
    // rsync reports what happens before its log file is open (a bad config) on stderr.
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') this.#log(line.trim());
    });

    // 'exit' fires when the master process ends; the promise would also wait for the
    // connection children holding our stderr pipe, which may serve a transfer for minutes.
    let exitInfo: { exitCode: number | undefined; signal: string | undefined } | undefined;
    this.#exited = new Promise<void>((resolve) => {
      const finish = (exitCode: number | undefined, signal: string | undefined) => {
        if (exitInfo) return;
        const info = { exitCode, signal };
        exitInfo = info;
        clearInterval(this.#logTimer);
        // Its last words (why it died) are in the log: read them before telling anyone.
        void this.#drainLog()
          .catch(() => undefined)
          .then(() => {
            this.#onExit(child, info);
            resolve();
          });
      };
      child.once('exit', (code, signal) => finish(code ?? undefined, signal ?? undefined));
      void child.then((result) => finish(result.exitCode, result.signal));
    });

    const host = !address || address === '0.0.0.0' ? '127.0.0.1' : address === '::' ? '::1' : address;
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 5_000);
    for (;;) {
      if (exitInfo) {
        const result = await child;
        await this.#drainLog();
        const cause = result.cause as NodeJS.ErrnoException | undefined;
        const detail = cause?.code === 'ENOENT' ? `rsync binary ${rsync} not found: install rsync (apt install rsync) or set sync.rsync` : `it exited with ${exitInfo.exitCode ?? exitInfo.signal}`;
        throw new RsyncDaemonError(`rsync daemon on port ${port} did not start: ${detail}${this.#lastLines.length ? `; it said: ${this.#lastLines.slice(-5).join(' | ')}` : ''}${/in use/i.test(this.#lastLines.join(' ')) ? ` (another program listens on port ${port}: ss -ltnp sport = :${port})` : ''}`, cause);
      }
      if (await greets(host, port)) break;
      if (Date.now() > deadline) {
        const pid = child.pid;
        if (pid !== undefined) killGroup(pid, 'SIGKILL');
        await this.#exited;
        await this.#drainLog();
        throw new RsyncDaemonError(`rsync daemon on port ${port} did not accept connections on ${host} within ${this.options.startTimeoutMs ?? 5_000} ms${this.#lastLines.length ? `; it said: ${this.#lastLines.slice(-5).join(' | ')}` : ''}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    this.#listening = child;
    logger.info({ port, address: address ?? '*', pid: child.pid }, 'rsync daemon listening');
  }

  #onExit(child: ResultPromise, info: { exitCode: number | undefined; signal: string | undefined }): void {
    if (this.#child !== child) return;
    this.#child = undefined;
    const expected = this.#stopping;
    const exit: RsyncDaemonExit = { ...info, expected, lastLines: [...this.#lastLines] };
    for (const listener of this.#listeners) {
      try {
        listener(exit);
      } catch (err) {
        this.options.logger.error({ err }, 'rsync daemon: an onExit listener threw');
      }
    }
    if (this.#listening !== child) return;
    this.#listening = undefined;
    if (expected) {
      this.options.logger.info({ exitCode: info.exitCode, signal: info.signal }, 'rsync daemon stopped');
      return;
    }
    if (Date.now() - this.#startedAt >= STABLE_AFTER_MS) this.#failures = 0;
    this.#scheduleRestart(info);
  }

  #scheduleRestart(info: { exitCode: number | undefined; signal: string | undefined }): void {
    const { initialMs, maxMs } = this.options.restartBackoff ?? { initialMs: 1_000, maxMs: 30_000 };
    const delayMs = Math.min(maxMs, initialMs * 2 ** this.#failures);
    this.#failures += 1;
    this.options.logger.warn(
      { exitCode: info.exitCode, signal: info.signal, lastLines: this.#lastLines.slice(-5), restartInMs: delayMs },
      'rsync daemon exited unexpectedly; standbys cannot pull from this node until it is back',
    );
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopping || this.#child) return;
      this.#spawn().catch((err: unknown) => {
        this.options.logger.error({ err }, 'rsync daemon restart failed');
        if (!this.#stopping && !this.#child) this.#scheduleRestart({ exitCode: undefined, signal: undefined });
      });
    }, delayMs);
  }
}
