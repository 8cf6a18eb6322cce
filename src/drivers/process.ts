/**
 * The `process` driver: a command the agent supervises itself. The child runs in its own
 * process group (so stop reaches its workers too), writes stdout and stderr to a log file,
 * and its exit is reported to `onExit` listeners at once, which is how the agent sees a
 * crash immediately instead of at the next health-check poll.
 */
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import type { ServiceResource } from '../config/types.js';
import type { Logger } from '../log.js';
import { signalGroup } from '../process-group.js';
import type { ProcessExit, ServiceDriver, ServiceStatus } from './service-driver.js';

export type ProcessResource = Extract<ServiceResource, { driver: 'process' }>;

export interface ProcessDriverDeps {
  logger: Logger;
  /** Where `<resource name>.log` goes when the resource names no `logFile`. */
  logDir: string;
}

/** How long we wait for the main process to disappear after SIGKILL before giving up. */
const KILL_WAIT_MS = 5_000;
/** How often we look whether the process group is empty while stopping. */
const GROUP_POLL_MS = 50;

interface Child {
  pid: number;
  /** Resolves when the main process has exited (the 'exit' event: it has been reaped). */
  exited: Promise<ProcessExit>;
  exit?: ProcessExit;
  /** Set before our own stop() signals it, so its exit is not reported as a crash. */
  stopRequested: boolean;
}

export class ProcessDriver implements ServiceDriver {
  readonly kind = 'process' as const;
  readonly #resource: ProcessResource;
  readonly #logger: Logger;
  readonly #logFile: string;
  readonly #listeners = new Set<(exit: ProcessExit) => void>();
  #child: Child | undefined;
  /**
   * start/stop run one at a time: without this, two concurrent start() calls (e.g. a retried
   * activity overlapping the original) would both see "not running" and spawn twice.
   */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(resource: ProcessResource, deps: ProcessDriverDeps) {
    if (resource.command.length === 0) {
      throw new Error(`service ${resource.name}: command is empty: give the program to run in its command list`);
    }
    this.#resource = resource;
    this.#logger = deps.logger.child({ driver: 'process' });
    this.#logFile = resource.logFile ?? join(deps.logDir, `${resource.name}.log`);
  }

  /** The file the child's stdout and stderr are appended to. */
  get logFile(): string {
    return this.#logFile;
  }

  /**
   * Spawns the command unless it is already running; resolves once it has spawned.
   * @throws Error when the command cannot be spawned (not found, not executable, bad cwd,
   *   log file not writable).
   */
  start(): Promise<void> {
    return this.#serialise(() => this.#start());
  }

  /**
   * Sends `stopSignal` to the process group, waits up to `stopTimeoutMs`, then SIGKILLs the
   * group. Succeeds when nothing is running.
   * @throws Error when the main process survives SIGKILL (e.g. stuck in uninterruptible I/O).
   */
  stop(): Promise<void> {
    return this.#serialise(() => this.#stop());
  }

  status(): Promise<ServiceStatus> {
    const child = this.#child;
    if (child && !child.exit) {
      return Promise.resolve({ running: true, pid: child.pid, detail: `running (pid ${child.pid})` });
    }
    if (!child?.exit) return Promise.resolve({ running: false, detail: 'not started' });
    const { pid, exitCode, signal } = child.exit;
    const how = child.stopRequested ? 'stopped' : signal ? `killed by ${signal}` : `exited with code ${exitCode}`;
    return Promise.resolve({ running: false, detail: `${how} (pid ${pid})` });
  }

  onExit(listener: (exit: ProcessExit) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  close(): Promise<void> {
    return this.stop();
  }

  #serialise<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(operation, operation);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  async #start(): Promise<void> {
    if (this.#child && !this.#child.exit) return;
    // Workers left behind by a crashed main process would still hold its ports and files.
    if (this.#child) await this.#sweepGroup(this.#child.pid);

    const { command, cwd, env, name } = this.#resource;
    const [file, ...args] = command as [string, ...string[]];
    if (cwd !== undefined && !isDirectory(cwd)) {
      throw new Error(`service ${name}: working directory ${cwd} does not exist: create it or fix its cwd`);
    }

    let logFd: number;
    try {
      mkdirSync(dirname(this.#logFile), { recursive: true });
      logFd = openSync(this.#logFile, 'a');
    } catch (error) {
      throw new Error(
        `service ${name}: cannot open log file ${this.#logFile} (${errorCode(error)}): make its directory writable or set logFile`,
        { cause: error },
      );
    }

    this.#logger.info({ command, cwd, logFile: this.#logFile }, 'starting process');
    let subprocess;
    let exited: Promise<ProcessExit>;
    try {
      subprocess = execa(file, args, {
        detached: true, // own process group: stop() signals the service and all its workers
        cwd,
        env: { ...process.env, ...env },
        extendEnv: false,
        stdin: 'ignore',
        // A file descriptor is handed to the child as is (child_process.spawn dup2s it), so its
        // output does not pass through, or depend on, the agent. execa's typings list only fds
        // 3-9 but its runtime passes any number straight through.
        stdout: logFd as 3,
        stderr: logFd as 3,
        reject: false,
        cleanup: false, // the service outlives an agent restart; close() stops it on purpose
        buffer: false,
      });
      // Listen before anything else can run, so no exit is missed.
      const proc = subprocess;
      exited = new Promise((resolve) => {
        proc.once('exit', (exitCode: number | null, signal: NodeJS.Signals | null) => {
          resolve({ pid: proc.pid ?? -1, exitCode, signal });
        });
      });
      await Promise.race([
        once(subprocess, 'spawn'),
        // Errors thrown before spawning (bad options) end the promise without an 'error' event.
        subprocess.then((result) => {
          throw result.cause ?? new Error(result.shortMessage);
        }),
      ]);
    } catch (error) {
      throw new Error(`service ${name}: ${describeSpawnError(error, file, cwd)}`, { cause: error });
    } finally {
      closeSync(logFd); // the child has its own copy
    }

    const pid = subprocess.pid;
    if (pid === undefined) throw new Error(`service ${name}: ${file} spawned without a pid`);
    const child: Child = {
      pid,
      stopRequested: false,
      exited: exited.then((exit) => {
        child.exit = exit;
        this.#onChildExit(child, exit);
        return exit;
      }),
    };
    // With reject: false the promise resolves on every ending; this only guards a surprise.
    subprocess.catch((error: unknown) => this.#logger.error({ err: error, pid }, 'execa failed after spawn'));
    this.#child = child;
    this.#logger.info({ pid }, 'process started');
  }

  #onChildExit(child: Child, exit: ProcessExit): void {
    if (child.stopRequested) {
      this.#logger.info(exit, 'process stopped');
      return;
    }
    this.#logger.warn(exit, 'process exited on its own');
    for (const listener of [...this.#listeners]) {
      try {
        listener(exit);
      } catch (error) {
        this.#logger.error({ err: error }, 'onExit listener threw');
      }
    }
  }

  async #stop(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    if (child.exit) {
      await this.#sweepGroup(child.pid);
      return;
    }
    const { stopSignal, stopTimeoutMs, name } = this.#resource;
    const pid = child.pid;
    child.stopRequested = true;
    this.#logger.info({ pid, signal: stopSignal, timeoutMs: stopTimeoutMs }, 'stopping process group');
    const deadline = Date.now() + stopTimeoutMs;
    signalGroup(pid, stopSignal);

    // Wait for the main process, then give its workers the rest of the time to finish too.
    const exitedInTime = await settlesWithin(child.exited, stopTimeoutMs);
    while (exitedInTime && Date.now() < deadline && groupHasLiveMembers(pid)) await sleep(GROUP_POLL_MS);

    if (!exitedInTime || groupHasLiveMembers(pid)) {
      this.#logger.warn({ pid, timeoutMs: stopTimeoutMs }, `process group did not stop after ${stopSignal}: sending SIGKILL`);
      signalGroup(pid, 'SIGKILL');
    }
    const gone = await settlesWithin(child.exited, KILL_WAIT_MS);
    if (!gone) {
      throw new Error(
        `service ${name}: process ${pid} did not exit ${KILL_WAIT_MS} ms after SIGKILL; it may be stuck in uninterruptible I/O: check /proc/${pid}/stat and /proc/${pid}/stack`,
      );
    }
    await this.#waitGroupGone(pid);
  }

  /** Terminates what is left of an exited child's process group (its orphaned workers). */
  async #sweepGroup(pgid: number): Promise<void> {
    if (!groupHasLiveMembers(pgid)) return;
    this.#logger.warn({ pgid }, 'workers of the exited process are still running: killing its process group');
    signalGroup(pgid, 'SIGKILL');
    await this.#waitGroupGone(pgid);
  }

  async #waitGroupGone(pgid: number): Promise<void> {
    const deadline = Date.now() + KILL_WAIT_MS;
    while (groupHasLiveMembers(pgid)) {
      if (Date.now() >= deadline) {
        this.#logger.warn({ pgid }, 'members of the process group survived SIGKILL');
        return;
      }
      await sleep(GROUP_POLL_MS);
    }
  }
}

/** Whether `promise` settles within `ms`; the timer is cleared either way. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether any process of the group is still alive. Zombies do not count: where PID 1 does
 * not reap orphans (containers, micro-VMs) they stay in the group forever but hold nothing.
 * Falls back to `kill(-pgid, 0)` (which counts zombies) where /proc cannot be read.
 */
function groupHasLiveMembers(pgid: number): boolean {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    try {
      process.kill(-pgid, 0);
      return true;
    } catch (error) {
      return errorCode(error) === 'EPERM';
    }
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') return true;
  }
  return false;
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}

function describeSpawnError(error: unknown, file: string, cwd: string | undefined): string {
  switch (errorCode(error)) {
    case 'ENOENT':
      return `command not found: ${file}: install it, or give its absolute path in command${cwd ? ` (relative paths are resolved from cwd ${cwd})` : ''}`;
    case 'EACCES':
      return `command not executable: ${file}: check its permissions (chmod +x) and that its file system is not mounted noexec`;
    default:
      return `cannot spawn ${file}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
