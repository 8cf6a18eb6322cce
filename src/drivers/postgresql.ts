/**
 * The `postgresql` driver: a PostgreSQL server replicated by streaming replication, primary on
 * the node that owns the group and a hot standby on the others (the `drbd` driver's shape:
 * start promotes, stop demotes, the server stays up on every node).
 *
 * - start (take primary duty): a hot standby is promoted (`pg_ctl promote`, then until
 *   `pg_is_in_recovery()` is false); a stopped server is started as a primary when it was one
 *   last, else as a standby first (so it replays all the WAL it has) and then promoted.
 * - stop (leave primary duty): the safety part runs at once and must succeed: a running primary
 *   is stopped (`pg_ctl stop -m fast`, else `-m immediate`); otherwise the stop fails. Rejoining
 *   as a standby needs the new primary, which usually does not exist yet when the old owner stops
 *   (a failover starts the group elsewhere only after this stop), so it runs in the background and
 *   is retried every `rejoinInterval` until it is done or a start takes the node back: a server
 *   that was a primary is rewound (`pg_rewind` from `primaryHost`; a fresh `pg_basebackup` when
 *   the rewind fails, the old data directory moved aside, never deleted), then started as a
 *   standby (standby.signal; primary_conninfo from the managed settings file). It keeps looking
 *   every `rejoinInterval` after that, and starts a standby that stopped again.
 * - status: running means the server answers and is not in recovery (the primary).
 *
 * Every command goes through the injected {@link Exec}, as the resource's OS user; the decisions
 * are pure functions in postgresql-commands.ts.
 */
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { ensureCgroup, inCgroupArgv } from '../cgroup.js';
import type { PostgresqlResource } from '../config/types.js';
import { ExecError, lastLine, type Exec, type ExecOptions } from '../exec.js';
import type { Logger } from '../log.js';
import type { GuardAction } from '../guard/protocol.js';
import type { ServiceDriver, ServiceStatus } from './service-driver.js';
import {
  INCLUDE_LINE,
  MANAGED_FILE,
  asUser,
  configDirOf,
  dataKind,
  includesManagedFile,
  managedSettings,
  parseControlData,
  pgCommands,
  rejoinPlan,
  startPlan,
  stopNow,
  type DataKind,
  type ServerState,
} from './postgresql-commands.js';

export interface PostgresqlDriverDeps {
  exec: Exec;
  logger: Logger;
  /**
   * A cgroup v2 directory of the resource's own (serviceCgroupPath) that the server is started
   * in: outside the agent's unit, whose processes systemd kills when the agent stops (KillMode=
   * mixed), so that restarting the agent does not kill the primary it re-attaches to.
   */
  cgroup?: string;
  /** This node's name: the standby's application_name (pg_stat_replication shows it). */
  node?: string;
  /** Who the agent runs as (tests); default: the process's user. */
  runningAs?: { uid: number; user: string };
}

/** Thrown by start while a rewind or base backup rewrites the data directory: this node has no usable copy now. */
export class PostgresqlRejoinBusyError extends Error {
  constructor(readonly resource: string, readonly step: string) {
    super(`cannot take primary duty for PostgreSQL resource ${resource} here: a ${step} is rewriting its data directory (rejoining as a standby), so this node has no complete copy until it ends; start the group on another node`);
    this.name = 'PostgresqlRejoinBusyError';
  }
}

const POLL_MS = 200;
/** `pg_ctl status` exit codes: 3 not running, 4 no accessible data directory. */
const NOT_RUNNING = [3, 4];

export class PostgresqlDriver implements ServiceDriver {
  readonly kind = 'postgresql' as const;
  readonly #r: PostgresqlResource;
  readonly #exec: Exec;
  readonly #logger: Logger;
  readonly #node: string;
  readonly #runningAs: { uid: number; user: string };
  readonly #cgroup: string | undefined;
  /** Starts, stops and rejoin attempts run one at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Set by stop, cleared by start: the background rejoin goes on only while this is true. */
  #wantStandby = false;
  #rejoinTimer: NodeJS.Timeout | undefined;
  /** The step of a rejoin that rewrites the data directory, while it runs. */
  #rewriting: 'rewind' | 'base backup' | undefined;
  #lastRejoinProblem: string | undefined;
  #closed = false;

  constructor(resource: PostgresqlResource, deps: PostgresqlDriverDeps) {
    this.#r = resource;
    this.#exec = deps.exec;
    this.#node = deps.node ?? 'standby';
    this.#runningAs = deps.runningAs ?? (() => {
      const u = userInfo();
      return { uid: u.uid, user: u.username };
    })();
    this.#cgroup = deps.cgroup;
    this.#logger = deps.logger.child({ driver: 'postgresql', dataDir: resource.dataDir });
  }

  /**
   * Takes primary duty (idempotent: a primary stays one).
   * @throws PostgresqlRejoinBusyError while a rewind or base backup runs; Error when there is no
   *   data directory, or a command fails or the server does not become a primary in time.
   */
  async start(): Promise<void> {
    this.#wantStandby = false;
    clearTimeout(this.#rejoinTimer);
    if (this.#rewriting) throw new PostgresqlRejoinBusyError(this.#r.name, this.#rewriting);
    await this.#serial(() => this.#takePrimaryDuty());
  }

  /**
   * Leaves primary duty: a running primary (or a server that does not answer yet) is stopped
   * now; rejoining as a standby goes on in the background (see the file's comment).
   * @throws Error when the server cannot be stopped (a failed stop is not a stop).
   */
  async stop(): Promise<void> {
    this.#wantStandby = true;
    // A rewind or base backup under way: the server is down and the node rejoining already. Not
    // queued behind it: a failed start's undo (or a failover) must not wait for a base backup.
    if (this.#rewriting) return;
    await this.#serial(() => this.#leavePrimaryDuty());
    this.#scheduleRejoin(0);
  }

  async status(): Promise<ServiceStatus> {
    const state = await this.#server();
    if (state.server === 'primary') return { running: true, detail: `primary${state.standbys ? `; standbys: ${state.standbys}` : '; no standby connected'}` };
    if (state.server === 'standby') return { running: false, detail: 'hot standby (in recovery)' };
    if (state.server === 'starting') return { running: false, detail: `running but not answering queries (${state.why})` };
    return { running: false, detail: `not running${this.#rewriting ? ` (a ${this.#rewriting} is under way)` : ''}` };
  }

  /**
   * Stopping the server at once, bounded (the guard releases a group it holds only when the node
   * owns it: its server is the primary); a server that is not running is released already.
   */
  guardActions(): GuardAction[] {
    return [{ kind: 'run', timeoutMs: this.#r.timeoutMs + 5000, argv: this.#as(pgCommands.guardStop(this.#r)) }];
  }

  /** No more rejoin attempts (the agent is shutting down); the server is left as it is. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#rejoinTimer);
  }

  async #takePrimaryDuty(): Promise<void> {
    const deadline = Date.now() + this.#r.timeoutMs;
    for (;;) {
      const { server, why } = await this.#server();
      const data = server === 'down' ? await this.#data() : 'primary';
      const step = startPlan(server, data);
      this.#logger.info({ server, data, step }, 'taking primary duty');
      switch (step) {
        case 'none':
          return;
        case 'refuse-no-data':
          throw new Error(`cannot start PostgreSQL resource ${this.#r.name} here: ${this.#r.dataDir} holds no database cluster (no PG_VERSION). This node has not been a standby yet: let it rejoin first (it makes a base backup from ${this.#r.primaryHost}), or initdb the first node (docs/postgresql.md)`);
        case 'wait':
          if (Date.now() >= deadline) throw new Error(`PostgreSQL resource ${this.#r.name}: the server runs but has not answered for ${this.#r.timeoutMs} ms (${why}); see ${this.#r.logFile}`);
          await delay(POLL_MS);
          continue;
        case 'promote':
          await this.#run(pgCommands.promote(this.#r), 'promote the standby');
          await this.#waitForPrimary(deadline);
          return;
        case 'start-primary':
          await this.#writeSettings();
          await this.#run(['rm', '-f', join(this.#r.dataDir, 'standby.signal'), join(this.#r.dataDir, 'recovery.signal')], 'remove the standby signal');
          await this.#startServer('start the server as the primary');
          await this.#waitForPrimary(deadline);
          return;
        case 'start-standby-then-promote':
          await this.#startStandby();
          continue;
      }
    }
  }

  async #leavePrimaryDuty(): Promise<void> {
    const { server } = await this.#server();
    if (stopNow(server) === 'none') {
      this.#logger.info({ server }, 'not a primary: nothing to stop');
      return;
    }
    this.#logger.info({ server }, 'stopping the server (leaving primary duty)');
    try {
      await this.#run(pgCommands.stop(this.#r, 'fast'), 'stop the server (fast)');
    } catch (fast) {
      // Stopped meanwhile (the lease guard stops it too when the lease runs out): what we wanted.
      if ((await this.#server()).server === 'down') return;
      this.#logger.warn({ err: fast instanceof Error ? fast.message : String(fast) }, 'fast shutdown failed: stopping immediately');
      try {
        await this.#run(pgCommands.stop(this.#r, 'immediate'), 'stop the server (immediate)');
      } catch (immediate) {
        if ((await this.#server()).server === 'down') return;
        throw immediate;
      }
    }
  }

  #scheduleRejoin(afterMs: number): void {
    clearTimeout(this.#rejoinTimer);
    if (!this.#wantStandby || this.#closed) return;
    this.#rejoinTimer = setTimeout(() => {
      this.#serial(() => this.#rejoinOnce()).then(
        // Done or not, it looks again: a standby that stopped (crashed, or stopped by hand) is
        // started again, for as long as this node is to be a standby.
        () => this.#scheduleRejoin(this.#r.rejoinIntervalMs),
        (err: unknown) => {
          this.#problem(err instanceof Error ? err.message : String(err));
          this.#scheduleRejoin(this.#r.rejoinIntervalMs);
        },
      );
    }, afterMs);
    this.#rejoinTimer.unref();
  }

  /** One attempt to make this node a hot standby (nothing when it is one, or is no longer to be one). */
  async #rejoinOnce(): Promise<void> {
    if (!this.#wantStandby || this.#closed) return;
    const { server } = await this.#server();
    const data = server === 'down' ? await this.#data() : 'primary';
    const plan = rejoinPlan(server, data);
    if (plan.step === 'done') {
      if (this.#lastRejoinProblem !== 'done') this.#logger.info('hot standby');
      this.#lastRejoinProblem = 'done';
      return;
    }
    if (plan.step === 'wait') return;
    if (plan.needsPrimary) {
      const primary = await this.#primaryAnswers();
      if (primary !== true) {
        this.#problem(`waiting for a primary at ${this.#r.primaryHost}:${this.#r.port} to ${plan.step === 'rewind' ? 'rewind from' : 'copy'}: ${primary}`);
        return;
      }
      // A start that came while we looked takes the node back.
      if (!this.#wantStandby) return;
    }
    this.#logger.info({ data, step: plan.step }, 'rejoining as a standby');
    this.#lastRejoinProblem = undefined;
    if (plan.step === 'rewind') await this.#rewriteData('rewind');
    else if (plan.step === 'base-backup') await this.#rewriteData('base backup');
    await this.#startStandby();
    // The next look sees it running as a standby (or still starting).
  }

  async #rewriteData(first: 'rewind' | 'base backup'): Promise<void> {
    try {
      if (first === 'rewind') {
        this.#rewriting = 'rewind';
        try {
          await this.#run(pgCommands.rewind(this.#r, this.#node), 'rewind from the primary', this.#r.rejoinTimeoutMs);
          return;
        } catch (err) {
          this.#logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'pg_rewind failed: making a fresh base backup (the old data directory is kept aside)');
        }
      }
      this.#rewriting = 'base backup';
      if (existsSync(this.#r.dataDir) && (await readdir(this.#r.dataDir)).length > 0) {
        const aside = `${this.#r.dataDir}.haoscar-${new Date().toISOString().replace(/[:.]/g, '-')}`;
        this.#logger.warn({ aside }, 'moving the old data directory aside before the base backup');
        await this.#run(['mv', this.#r.dataDir, aside], 'move the old data directory aside');
      }
      await this.#run(pgCommands.baseBackup(this.#r, this.#node), 'copy the primary (pg_basebackup)', this.#r.rejoinTimeoutMs);
    } finally {
      this.#rewriting = undefined;
    }
  }

  /** Starts the server as a standby (settings, standby.signal, pg_ctl start). */
  async #startStandby(): Promise<void> {
    await this.#writeSettings();
    await this.#run(['touch', join(this.#r.dataDir, 'standby.signal')], 'write the standby signal');
    await this.#startServer('start the server as a standby');
  }

  /** pg_ctl start, in the resource's cgroup when it has one (the server it forks stays there; runuser and pg_ctl exec'd in it). */
  async #startServer(what: string): Promise<void> {
    if (!this.#cgroup) {
      await this.#run(pgCommands.start(this.#r), what);
      return;
    }
    ensureCgroup(this.#cgroup);
    await this.#run(pgCommands.start(this.#r), what, undefined, {}, (argv) => inCgroupArgv(this.#cgroup!, argv).flat());
  }

  /** Writes the managed settings file and makes postgresql.conf include it. */
  async #writeSettings(): Promise<void> {
    const dir = configDirOf(this.#r);
    const file = join(dir, MANAGED_FILE);
    const tmp = `${file}.tmp`;
    await this.#run(['tee', tmp], `write ${tmp}`, undefined, { input: managedSettings(this.#r, this.#node) });
    await this.#run(['mv', '-f', tmp, file], `write ${file}`);
    const conf = join(dir, 'postgresql.conf');
    const text = await readFile(conf, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new Error(`cannot read ${conf} (${err.code ?? err.message}): set the resource's configDir to where postgresql.conf is`, { cause: err });
    });
    if (!includesManagedFile(text)) {
      this.#logger.info({ file: conf }, `appending ${INCLUDE_LINE}`);
      await this.#run(['tee', '-a', conf], `include ${MANAGED_FILE} in ${conf}`, undefined, { input: `${text.endsWith('\n') || text === '' ? '' : '\n'}# HA-OSCAR's replication settings (docs/postgresql.md)\n${INCLUDE_LINE}\n` });
    }
  }

  async #waitForPrimary(deadline: number): Promise<void> {
    for (;;) {
      const { server, why } = await this.#server();
      if (server === 'primary') return;
      if (Date.now() >= deadline) throw new Error(`PostgreSQL resource ${this.#r.name} is not a primary ${this.#r.timeoutMs} ms after its start (${server}${why ? `: ${why}` : ''}); see ${this.#r.logFile}`);
      await delay(POLL_MS);
    }
  }

  /** The local server's role; with the primary's connected standbys. */
  async #server(): Promise<{ server: ServerState; why?: string; standbys?: string }> {
    const status = await this.#run(pgCommands.status(this.#r), 'ask pg_ctl for the server\'s status', undefined, { okExitCodes: NOT_RUNNING });
    if (NOT_RUNNING.includes(status.exitCode)) return { server: 'down' };
    try {
      const sql = "SELECT pg_is_in_recovery(), (SELECT string_agg(application_name || ' ' || state || ' ' || sync_state, ', ') FROM pg_stat_replication)";
      const { stdout } = await this.#run(pgCommands.localQuery(this.#r, sql), 'ask the server whether it is in recovery');
      const [recovery, standbys] = stdout.trim().split('|');
      if (recovery === 'f') return { server: 'primary', ...(standbys ? { standbys } : {}) };
      if (recovery === 't') return { server: 'standby' };
      return { server: 'starting', why: `unexpected answer ${JSON.stringify(stdout.trim())}` };
    } catch (err) {
      return { server: 'starting', why: err instanceof Error ? err.message : String(err) };
    }
  }

  async #data(): Promise<DataKind> {
    const d = this.#r.dataDir;
    const pgVersion = existsSync(join(d, 'PG_VERSION'));
    const local = { pgVersion, backupLabel: existsSync(join(d, 'backup_label')), standbySignal: existsSync(join(d, 'standby.signal')) };
    if (!pgVersion) return dataKind(local);
    const { stdout } = await this.#run(pgCommands.controlData(this.#r), 'read the control file (pg_controldata)');
    return dataKind({ ...local, control: parseControlData(stdout) });
  }

  /** true when primaryHost answers as a primary; else why not. */
  async #primaryAnswers(): Promise<true | string> {
    try {
      const { stdout } = await this.#run(pgCommands.primaryQuery(this.#r, this.#node, 'SELECT pg_is_in_recovery()'), 'ask the primary', 10_000);
      return stdout.trim() === 'f' ? true : 'it is in recovery (a standby, not promoted yet)';
    } catch (err) {
      return err instanceof ExecError ? lastLine(err.stderr) || err.message : String(err);
    }
  }

  #problem(what: string): void {
    if (what === this.#lastRejoinProblem) return;
    this.#lastRejoinProblem = what;
    this.#logger.warn({ retryEveryMs: this.#r.rejoinIntervalMs }, `not a standby yet: ${what}`);
  }

  #as(argv: readonly string[]): string[] {
    return asUser(this.#r.user, argv, this.#runningAs);
  }

  async #run(argv: readonly string[], what: string, timeoutMs = this.#r.timeoutMs + 5000, opts: Omit<ExecOptions, 'timeoutMs'> = {}, wrap = (a: string[]) => a) {
    const [file, ...args] = wrap(this.#as(argv));
    try {
      // C locale: pg_controldata's field names and the tools' messages in English.
      return await this.#exec(file!, args, { ...opts, timeoutMs, env: { LC_ALL: 'C', ...opts.env } });
    } catch (err) {
      if (err instanceof ExecError) {
        const said = err.stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
        const how = err.timedOut ? `timed out after ${timeoutMs} ms` : err.exitCode === undefined ? 'could not be run (is PostgreSQL installed? see the resource\'s bin)' : `failed (exit ${err.exitCode})`;
        throw new Error(`PostgreSQL resource ${this.#r.name}: ${what}: ${argv.join(' ')} ${how}${said ? `: ${said}` : ''}`, { cause: err });
      }
      throw err;
    }
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.#queue.catch(() => undefined).then(fn);
    this.#queue = next;
    return next;
  }
}
