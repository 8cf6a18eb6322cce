/**
 * A production-shaped Temporal for the lab: two Temporal server processes (v1.29.1) of one
 * cluster on PostgreSQL, started with the administrators' own script
 * (scripts/temporal-postgres.sh), listening on the lab's bridge address so the hosts reach them.
 * Each lab gets its own role and databases (dropped at close), so runs and tests never share
 * state. Needs a local PostgreSQL (.ci/run installs and starts Debian's), the server binary and
 * temporal-sql-tool (.ci/run builds both into ~/.cache/haoscar/bin).
 *
 * It proves surviving the loss of a Temporal *process*, not of the database.
 */
import { existsSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, execaSync } from 'execa';
import { ROOT } from './cluster.js';
import { waitFor } from '../support/wait.js';

export const SCRIPT = join(ROOT, 'scripts/temporal-postgres.sh');
const CACHE = join(homedir(), '.cache/haoscar/bin');
export const TEMPORAL_SERVER = process.env.TEMPORAL_SERVER ?? join(CACHE, 'server');
export const TEMPORAL_SQL_TOOL = process.env.TEMPORAL_SQL_TOOL ?? join(CACHE, 'temporal-sql-tool');
/** Ports of one process span base..base+40; the second process is base+100 (the script's layout). */
const SPAN = [0, 1, 2, 6, 10, 20, 21, 22, 26, 40];

/**
 * Why these tests cannot run here (undefined: they can). Under CI nothing is skipped: .ci/run
 * provides everything, and a missing piece must fail the run.
 */
export function temporalPgSkipReason(): string | undefined {
  if (process.env.CI) return undefined;
  if (!existsSync(TEMPORAL_SERVER)) return `no Temporal server at ${TEMPORAL_SERVER} (see .ci/run)`;
  if (!existsSync(TEMPORAL_SQL_TOOL)) return `no temporal-sql-tool at ${TEMPORAL_SQL_TOOL} (see .ci/run)`;
  try {
    execaSync('runuser', ['-u', 'postgres', '--', 'psql', '-qAtc', 'SELECT 1'], { timeout: 10_000 });
  } catch {
    return 'no local PostgreSQL answering (pg_ctlcluster 15 main start)';
  }
  return undefined;
}

async function portsFree(ip: string, ports: number[]): Promise<boolean> {
  for (const port of ports) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, ip, () => s.close(() => resolve(true)));
    });
    if (!ok) return false;
  }
  return true;
}

/**
 * The script starts the server processes with setsid (an administrator's `start` leaves them
 * running, out of reach of the terminal's Ctrl-C), so nothing stops them when the test process
 * ends unless it does so itself: every TemporalPg not closed yet is closed synchronously when
 * the process exits or is ended by SIGINT/SIGTERM/SIGHUP (as NetLab does for its labs); after a
 * SIGKILL, the next start() (or cleanupStale()) of any process removes what it left, found by
 * the owner file in its directory.
 */
const open = new Set<TemporalPg>();
const EXIT_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let exitHooks = false;
const DIR_PREFIX = 'haoscar-temporal-pg-';
/** In each directory while its owner runs: `{ pid, db }`; removed by close(). */
const OWNER = 'owner.json';

function closeAllSync(): void {
  for (const pg of open) pg.closeSync();
}

function onExitSignal(signal: NodeJS.Signals): void {
  closeAllSync();
  for (const s of EXIT_SIGNALS) process.removeListener(s, onExitSignal);
  // Die of the signal as we would have without this handler, unless someone else handles it.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installExitHooks(): void {
  if (exitHooks) return;
  exitHooks = true;
  process.on('exit', closeAllSync);
  for (const s of EXIT_SIGNALS) process.on(s, onExitSignal);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The server processes the script started from `dir` and that still run (pid files, checked against /proc: a pid may be reused). */
function serverPids(dir: string): number[] {
  const pids: number[] = [];
  for (const n of [1, 2]) {
    try {
      const pid = Number(readFileSync(join(dir, `server-${n}.pid`), 'utf8').trim());
      if (pid > 0 && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) pids.push(pid);
    } catch {
      // not started, or gone
    }
  }
  return pids;
}

/** SIGKILLs the server processes of `dir`, drops the role and databases `db`; synchronous, never throws. */
function removeSync(dir: string, db: string): void {
  for (const pid of serverPids(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  try {
    execaSync(SCRIPT, ['drop', '--yes', '--drop-role', '--dir', dir, '--db', db, '--pg-user', db], { reject: false, timeout: 60_000, stdin: 'ignore' });
  } catch {
    // cleanupStale() of a later run tries again
  }
}

export class TemporalPg {
  private closed = false;

  private constructor(
    /** The script's directory (its own, not the lab's: the lab removes its directory first). */
    readonly dir: string,
    readonly db: string,
    readonly frontends: string[],
  ) {}

  /**
   * Role, databases, schemas, configuration, two processes on `ip`; waits until both serve
   * with the namespace and search attributes. @throws with the script's words when it fails.
   */
  static async start(ip: string): Promise<TemporalPg> {
    await TemporalPg.cleanupStale();
    const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
    const db = `haoscar_lab_${Math.random().toString(36).slice(2, 10)}`;
    writeFileSync(join(dir, OWNER), JSON.stringify({ pid: process.pid, db }));
    let base = 0;
    for (let i = 0; i < 50 && base === 0; i++) {
      // At most 32767 for the membership ports (Temporal keeps them in a PostgreSQL smallint).
      const candidate = 20_000 + 100 * Math.floor(Math.random() * 120);
      if (await portsFree(ip, [...SPAN.map((o) => candidate + o), ...SPAN.map((o) => candidate + 100 + o)])) base = candidate;
    }
    if (base === 0) throw new Error(`no free range of ports for two Temporal processes on ${ip}`);
    const common = ['--dir', dir, '--pg-user', db, '--db', db];
    const run = async (args: string[]) => {
      const r = await execa(SCRIPT, args, { reject: false, all: true, timeout: 180_000, env: { TEMPORAL_SERVER, TEMPORAL_SQL_TOOL } });
      if (r.exitCode !== 0) throw new Error(`${SCRIPT} ${args.join(' ')} failed (${r.exitCode ?? r.signal}):\n${r.all}`);
      return r.stdout;
    };
    const pg = new TemporalPg(dir, db, [`${ip}:${base}`, `${ip}:${base + 100}`]);
    // From here on, an exit or a signal stops what the script started (even in the middle of it).
    open.add(pg);
    installExitHooks();
    try {
      await run(['create-role', ...common]);
      await run(['init', ...common, '--ip', ip, '--port', String(base)]);
      const out = await run(['start', '--dir', dir]);
      const said = out.trim().split('\n').at(-1);
      if (said !== pg.frontends.join(',')) throw new Error(`the script says the frontends are '${said}', expected ${pg.frontends.join(',')}`);
    } catch (err) {
      await pg.close();
      throw err;
    }
    return pg;
  }

  /**
   * Removes what TemporalPgs of processes that are gone left behind (a SIGKILLed test: no handler
   * ran): their server processes, role, databases and directory. Leaves those of live processes
   * alone. Never throws. @returns the databases removed.
   */
  static async cleanupStale(): Promise<string[]> {
    const removed: string[] = [];
    let names: string[] = [];
    try {
      names = readdirSync(tmpdir()).filter((n) => n.startsWith(DIR_PREFIX));
    } catch {
      return removed;
    }
    for (const name of names) {
      const dir = join(tmpdir(), name);
      let owner: { pid: number; db: string };
      try {
        owner = JSON.parse(readFileSync(join(dir, OWNER), 'utf8')) as { pid: number; db: string };
      } catch {
        continue; // closed (a kept directory), or not ours
      }
      if (alive(owner.pid) || !/^haoscar_lab_[a-z0-9]+$/.test(owner.db)) continue;
      removeSync(dir, owner.db);
      rmSync(dir, { recursive: true, force: true });
      removed.push(owner.db);
    }
    return removed;
  }

  /** The pid of process `n` (1 or 2), from the script's pid file. */
  async pid(n: number): Promise<number> {
    return Number((await readFile(join(this.dir, `server-${n}.pid`), 'utf8')).trim());
  }

  /** SIGKILL to process `n`: its frontend, history shards and matching queues are gone at once. */
  async kill(n: number): Promise<void> {
    const pid = await this.pid(n);
    process.kill(pid, 'SIGKILL');
    await waitFor(`Temporal process ${n} (pid ${pid}) exits`, async () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    }, 10_000, 50);
  }

  log(n: number): Promise<string> {
    return readFile(join(this.dir, `server-${n}.log`), 'utf8').catch(() => '');
  }

  /** Stops both processes, drops the databases and the role, removes the directory. Never throws. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await execa(SCRIPT, ['drop', '--yes', '--drop-role', '--dir', this.dir, '--db', this.db, '--pg-user', this.db], { reject: false, timeout: 60_000, stdin: 'ignore' });
    for (const pid of serverPids(this.dir)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // stopped meanwhile
      }
    }
    this.release();
  }

  /** close() for exit and signal handlers: synchronous, best effort. */
  closeSync(): void {
    if (this.closed) return;
    this.closed = true;
    removeSync(this.dir, this.db);
    this.release();
  }

  private release(): void {
    open.delete(this);
    try {
      unlinkSync(join(this.dir, OWNER));
    } catch {
      // removed with the directory
    }
    if (!process.env.HAOSCAR_LAB_KEEP) rmSync(this.dir, { recursive: true, force: true });
  }
}
