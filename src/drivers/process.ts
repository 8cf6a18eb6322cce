/**
 * The `process` driver: a command the agent supervises itself. The child runs in its own
 * process group (so stop reaches its workers too), writes stdout and stderr to a log file,
 * and its exit is reported to `onExit` listeners at once, which is how the agent sees a
 * crash immediately instead of at the next health-check poll.
 *
 * Given a cgroup (a cgroup v2 directory of its own, see src/cgroup.ts), the command enters it
 * before it can fork, so a daemon that calls setsid() or double-forks, and so leaves the process
 * group, is still reached by stop() and by the lease guard's cgroup.kill after the agent died.
 */
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { CgroupError, EXIT_CANNOT_ENTER_CGROUP, cgroupLivePids, ensureCgroup, inCgroupArgv, killCgroup, readProcessStat, removeCgroup, signalCgroup } from '../cgroup.js';
import type { ServiceResource } from '../config/types.js';
import type { GuardAction } from '../guard/protocol.js';
import type { Logger } from '../log.js';
import { signalGroup } from '../process-group.js';
import type { ProcessExit, ServiceDriver, ServiceStatus } from './service-driver.js';

export type ProcessResource = Extract<ServiceResource, { driver: 'process' }>;

export interface ProcessDriverDeps {
  logger: Logger;
  /** Where `<group>/<resource name>.log` goes when the resource names no `logFile`. */
  logDir: string;
  /** The resource's group: two groups may have resources of the same name, not the same log. */
  group?: string;
  /**
   * The cgroup v2 directory the service runs in (serviceCgroupPath), where the machine allows
   * it. Without one, the service is held by its process group only, which a daemon can leave.
   */
  cgroup?: string;
}

/** What a lease guard kills to release the service bluntly (see ProcessDriver.guardTargets). */
export interface GuardTargets {
  cgroup?: string;
  pgid?: number;
}

/** How long we wait for the main process to disappear after SIGKILL before giving up. */
const KILL_WAIT_MS = 5_000;
/** How often we look whether the process group is empty while stopping. */
const GROUP_POLL_MS = 50;
/** How long the wrapper may take to enter the cgroup and exec the command (a loaded machine). */
const ENTER_CGROUP_TIMEOUT_MS = 10_000;
const ENTER_CGROUP_POLL_MS = 5;

/** What a POSIX shell's exec exits with when the command is not executable / not found. */
const EXIT_NOT_EXECUTABLE = 126;
const EXIT_NOT_FOUND = 127;

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
  readonly #cgroup: string | undefined;
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
    this.#logFile = resource.logFile ?? join(deps.logDir, ...(deps.group ? [deps.group] : []), `${resource.name}.log`);
    this.#cgroup = deps.cgroup;
  }

  /** The file the child's stdout and stderr are appended to. */
  get logFile(): string {
    return this.#logFile;
  }

  /** The cgroup the service runs in, when it has one. */
  get cgroup(): string | undefined {
    return this.#cgroup;
  }

  /**
   * Spawns the command unless it is already running; resolves once it has spawned (with a
   * cgroup: once it runs inside it). An instance an earlier agent started in the cgroup runs on
   * (adopted: an agent restart does not restart its services). What a crashed process left
   * (its workers, with a cgroup also the daemons it double-forked) is stopped first: there are
   * never two instances.
   * @throws Error when the command cannot be spawned (not found, not executable, bad cwd,
   *   log file not writable); CgroupError when the cgroup cannot be created or entered, or
   *   what an earlier run left in it survives SIGKILL. Nothing is spawned then.
   */
  start(): Promise<void> {
    return this.#serialise(() => this.#start());
  }

  /**
   * Sends `stopSignal` to the process group (and to each member of the cgroup that left the
   * group), waits up to `stopTimeoutMs`, then SIGKILLs the group and the cgroup. Succeeds when
   * nothing is running: with a cgroup, when it has no live member left (then it is removed).
   * @throws Error when the main process survives SIGKILL (e.g. stuck in uninterruptible I/O);
   *   CgroupError when members of the cgroup do. The service is not stopped then.
   */
  stop(): Promise<void> {
    return this.#serialise(() => this.#stop());
  }

  /**
   * Whether the service runs: the process this driver started, or (before this driver started
   * one) what an earlier agent started in the cgroup, adopted. An adopted instance's exit is
   * seen by its check, not at once (it is not our child). stop() stops it; guardTargets() lets
   * the guard kill it.
   */
  status(): Promise<ServiceStatus> {
    const child = this.#child;
    if (child && !child.exit) {
      return Promise.resolve({ running: true, pid: child.pid, detail: `running (pid ${child.pid})` });
    }
    const adopted = child ? [] : this.#adoptable();
    if (adopted.length > 0) {
      return Promise.resolve({ running: true, pid: adopted[0]!, detail: `running (pids ${adopted.join(', ')}, started by an earlier agent, adopted)` });
    }
    const left = this.#leftInCgroup();
    if (!child?.exit) return Promise.resolve({ running: false, detail: `not started${left}` });
    const { pid, exitCode, signal } = child.exit;
    const how = child.stopRequested ? 'stopped' : signal ? `killed by ${signal}` : `exited with code ${exitCode}`;
    return Promise.resolve({ running: false, detail: `${how} (pid ${pid})${left}` });
  }

  /**
   * What an external lease guard must kill to release this service bluntly. With a cgroup:
   * `{ cgroup }` always, even while it is empty: killing an empty or missing cgroup does
   * nothing, and so a start between two updates of the guard is covered, as is an instance an
   * earlier agent left there. Without: `{ pgid }` while the child or a worker of its process
   * group lives (the kernel reuses no pid while its group has members), else `{}`.
   */
  guardTargets(): GuardTargets {
    if (this.#cgroup) return { cgroup: this.#cgroup };
    const child = this.#child;
    if (child && (!child.exit || groupHasLiveMembers(child.pid))) return { pgid: child.pid };
    return {};
  }

  /** guardTargets() as the lease guard's actions: SIGKILL the cgroup, or the process group. */
  guardActions(): GuardAction[] {
    const { cgroup, pgid } = this.guardTargets();
    if (cgroup) return [{ kind: 'cgroup', path: cgroup }];
    if (pgid) return [{ kind: 'pgid', pgid }];
    return [];
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
    const { command, cwd, env, name } = this.#resource;
    const [file, ...args] = command as [string, ...string[]];
    if (cwd !== undefined && !isDirectory(cwd)) {
      throw new Error(`service ${name}: working directory ${cwd} does not exist: create it or fix its cwd`);
    }
    const cgroup = this.#cgroup;
    if (cgroup) this.#withName(() => ensureCgroup(cgroup));

    // Workers left behind by a crashed main process would still hold its ports and files; so
    // would a daemon it double-forked, or an instance an earlier agent started in the cgroup.
    if (this.#child) await this.#sweep(this.#child.pid);
    else if (this.#adoptable().length > 0) {
      this.#logger.info({ cgroup, pids: this.#adoptable() }, 'the service started by an earlier agent runs on in its cgroup: adopted, not started again');
      return;
    }

    let logFd: number;
    try {
      mkdirSync(dirname(this.#logFile), { recursive: true });
      // 0640: a service's output (errors, connection strings) is not for every local user.
      logFd = openSync(this.#logFile, 'a', 0o640);
    } catch (error) {
      throw new Error(
        `service ${name}: cannot open log file ${this.#logFile} (${errorCode(error)}): make its directory writable or set logFile`,
        { cause: error },
      );
    }

    // With a cgroup, a shell enters it and then becomes the command (exec: same pid).
    const [spawnFile, spawnArgs] = cgroup ? inCgroupArgv(cgroup, [file, ...args]) : [file, args];
    this.#logger.info({ command, cwd, logFile: this.#logFile, ...(cgroup ? { cgroup } : {}) }, 'starting process');
    let subprocess;
    let exited: Promise<ProcessExit>;
    try {
      subprocess = execa(spawnFile, spawnArgs, {
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
      throw new Error(`service ${name}: ${describeSpawnError(errorCode(error), error, file, cwd)}`, { cause: error });
    } finally {
      closeSync(logFd); // the child has its own copy
    }

    const pid = subprocess.pid;
    if (pid === undefined) throw new Error(`service ${name}: ${file} spawned without a pid`);
    // With reject: false the promise resolves on every ending; this only guards a surprise.
    subprocess.catch((error: unknown) => this.#logger.error({ err: error, pid }, 'execa failed after spawn'));
    if (cgroup) await this.#awaitInCgroup(pid, exited, cgroup, [spawnFile, ...spawnArgs]);

    const child: Child = {
      pid,
      stopRequested: false,
      exited: exited.then((exit) => {
        child.exit = exit;
        this.#onChildExit(child, exit);
        return exit;
      }),
    };
    this.#child = child;
    this.#logger.info({ pid }, 'process started');
  }

  /**
   * Waits until the wrapper has exec'd the command, which it does only after entering the
   * cgroup. A wrapper that exits first failed: to enter the cgroup (125), or to exec (126/127:
   * the same words as a failed spawn without a cgroup). A command that ran and exited at once
   * is no failure of start: its exit is reported like any other.
   * @throws CgroupError or Error as start() does; the wrapper is gone then.
   */
  async #awaitInCgroup(pid: number, exited: Promise<ProcessExit>, cgroup: string, wrapperArgv: string[]): Promise<void> {
    const { name, command, cwd } = this.#resource;
    const wrapperCmdline = Buffer.from(wrapperArgv.map((arg) => `${arg}\0`).join(''));
    let exit: ProcessExit | undefined;
    void exited.then((value) => {
      exit = value;
    });
    const deadline = Date.now() + ENTER_CGROUP_TIMEOUT_MS;
    while (!exit) {
      const cmdline = readCmdline(pid);
      if (cmdline && cmdline.length > 0 && !cmdline.equals(wrapperCmdline)) return;
      if (Date.now() >= deadline) {
        signalGroup(pid, 'SIGKILL');
        this.#withName(() => killCgroup(cgroup));
        await settlesWithin(exited, KILL_WAIT_MS);
        throw new CgroupError(
          `service ${name}: the wrapper did not enter cgroup ${cgroup} and exec the command within ${ENTER_CGROUP_TIMEOUT_MS} ms (killed it): is the machine overloaded? see ${this.#logFile}`,
          cgroup,
        );
      }
      await settlesWithin(exited, ENTER_CGROUP_POLL_MS);
    }
    switch (exit.exitCode) {
      case EXIT_CANNOT_ENTER_CGROUP:
        throw new CgroupError(
          `service ${name}: could not move the service into cgroup ${cgroup} (the shell's reason is at the end of ${this.#logFile}): check its cgroup.type is 'domain' and that no controller is enabled in its cgroup.subtree_control`,
          cgroup,
        );
      case EXIT_NOT_FOUND:
        throw new Error(`service ${name}: ${describeSpawnError('ENOENT', undefined, command[0]!, cwd)}`);
      case EXIT_NOT_EXECUTABLE:
        throw new Error(`service ${name}: ${describeSpawnError('EACCES', undefined, command[0]!, cwd)}`);
      default:
        return;
    }
  }

  /** Runs a cgroup operation; its CgroupError names this service. */
  #withName<T>(operation: () => T): T {
    try {
      return operation();
    } catch (error) {
      if (error instanceof CgroupError) throw new CgroupError(`service ${this.#resource.name}: ${error.message}`, error.path, error.code, { cause: error });
      throw error;
    }
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
    const cgroup = this.#cgroup;
    if (!child || child.exit) {
      if (child) await this.#sweep(child.pid);
      else if (cgroup && this.#withName(() => cgroupLivePids(cgroup)).length > 0) await this.#stopLeftovers(cgroup);
      this.#removeCgroup();
      return;
    }
    const { stopSignal, stopTimeoutMs, name } = this.#resource;
    const pid = child.pid;
    child.stopRequested = true;
    this.#logger.info({ pid, signal: stopSignal, timeoutMs: stopTimeoutMs, ...(cgroup ? { cgroup } : {}) }, 'stopping process group');
    const deadline = Date.now() + stopTimeoutMs;
    signalGroup(pid, stopSignal);
    // Members that left the process group (setsid, a double fork) get the signal one by one.
    if (cgroup) this.#withName(() => signalCgroup(cgroup, stopSignal, (member) => readProcessStat(member)?.pgrp === pid));

    // Wait for the main process, then give its workers the rest of the time to finish too.
    const exitedInTime = await settlesWithin(child.exited, stopTimeoutMs);
    while (exitedInTime && Date.now() < deadline && this.#anythingLeft(pid)) await sleep(GROUP_POLL_MS);

    if (!exitedInTime || this.#anythingLeft(pid)) {
      this.#logger.warn({ pid, timeoutMs: stopTimeoutMs }, `process group did not stop after ${stopSignal}: sending SIGKILL`);
      signalGroup(pid, 'SIGKILL');
      if (cgroup) this.#withName(() => killCgroup(cgroup));
    }
    const gone = await settlesWithin(child.exited, KILL_WAIT_MS);
    if (!gone) {
      throw new Error(
        `service ${name}: process ${pid} did not exit ${KILL_WAIT_MS} ms after SIGKILL; it may be stuck in uninterruptible I/O: check /proc/${pid}/stat and /proc/${pid}/stack`,
      );
    }
    await this.#waitGroupGone(pid);
    if (cgroup) {
      await this.#waitCgroupEmpty(cgroup);
      this.#removeCgroup();
    }
  }

  /**
   * What an earlier agent left running in the cgroup, the leader of its process group first
   * (the main process, for status and process checks).
   */
  #adoptable(): number[] {
    const cgroup = this.#cgroup;
    if (!cgroup) return [];
    const pids = this.#withName(() => cgroupLivePids(cgroup));
    return pids.sort((a, b) => Number(readProcessStat(b)?.pgrp === b) - Number(readProcessStat(a)?.pgrp === a) || a - b);
  }

  /** Whether a live process of the group, or of the cgroup, is left. */
  #anythingLeft(pgid: number): boolean {
    if (groupHasLiveMembers(pgid)) return true;
    const cgroup = this.#cgroup;
    return cgroup !== undefined && this.#withName(() => cgroupLivePids(cgroup)).length > 0;
  }

  /**
   * Kills what is left of an exited child: its process group (orphaned workers) and, with a
   * cgroup, every member (a daemon it double-forked).
   * @throws CgroupError when members of the cgroup survive SIGKILL.
   */
  async #sweep(pgid: number): Promise<void> {
    const cgroup = this.#cgroup;
    const groupLeft = groupHasLiveMembers(pgid);
    const cgroupLeft = cgroup ? this.#withName(() => cgroupLivePids(cgroup)) : [];
    if (!groupLeft && cgroupLeft.length === 0) return;
    this.#logger.warn({ pgid, ...(cgroup ? { cgroup, pids: cgroupLeft } : {}) }, 'processes of the exited process are still running: killing them');
    if (groupLeft) signalGroup(pgid, 'SIGKILL');
    if (cgroup && cgroupLeft.length > 0) this.#withName(() => killCgroup(cgroup));
    await this.#waitGroupGone(pgid);
    if (cgroup) await this.#waitCgroupEmpty(cgroup);
  }

  /**
   * Stops what the cgroup holds that this driver did not start: an instance an earlier agent
   * left. It is the service, so it is stopped as such: `stopSignal`, then SIGKILL.
   * @throws CgroupError when members survive SIGKILL.
   */
  async #stopLeftovers(cgroup: string): Promise<void> {
    const { stopSignal, stopTimeoutMs } = this.#resource;
    const pids = this.#withName(() => signalCgroup(cgroup, stopSignal));
    this.#logger.warn({ cgroup, pids, signal: stopSignal }, 'the cgroup holds processes this agent did not start (an earlier run): stopping them');
    const deadline = Date.now() + stopTimeoutMs;
    while (Date.now() < deadline && this.#withName(() => cgroupLivePids(cgroup)).length > 0) await sleep(GROUP_POLL_MS);
    if (this.#withName(() => cgroupLivePids(cgroup)).length > 0) {
      this.#logger.warn({ cgroup, timeoutMs: stopTimeoutMs }, `processes of the cgroup did not stop after ${stopSignal}: killing the cgroup`);
      this.#withName(() => killCgroup(cgroup));
    }
    await this.#waitCgroupEmpty(cgroup);
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

  /**
   * Waits until the cgroup has no live member, killing it again meanwhile (cheap, and it reaches
   * a process that was between two states).
   * @throws CgroupError when members are left after KILL_WAIT_MS: a failed stop is not a stop.
   */
  async #waitCgroupEmpty(cgroup: string): Promise<void> {
    const deadline = Date.now() + KILL_WAIT_MS;
    for (;;) {
      const left = this.#withName(() => cgroupLivePids(cgroup));
      if (left.length === 0) return;
      if (Date.now() >= deadline) {
        const states = left.map((pid) => `${pid} (state ${readProcessStat(pid)?.state ?? '?'})`).join(', ');
        throw new CgroupError(
          `service ${this.#resource.name}: processes ${states} of cgroup ${cgroup} survived SIGKILL for ${KILL_WAIT_MS} ms, so the service is not stopped; state D is uninterruptible I/O: check /proc/PID/stack`,
          cgroup,
        );
      }
      this.#withName(() => killCgroup(cgroup));
      await sleep(GROUP_POLL_MS);
    }
  }

  /** Removes the empty cgroup after a stop; start() creates it again. Leaving it is harmless. */
  #removeCgroup(): void {
    if (!this.#cgroup) return;
    try {
      removeCgroup(this.#cgroup);
    } catch (error) {
      this.#logger.warn({ err: error, cgroup: this.#cgroup }, 'cannot remove the empty cgroup');
    }
  }

  /** "; 2 processes still in cgroup X (pid 1, 2)" when there are; '' otherwise. */
  #leftInCgroup(): string {
    if (!this.#cgroup) return '';
    let pids: number[];
    try {
      pids = cgroupLivePids(this.#cgroup);
    } catch {
      return '';
    }
    if (pids.length === 0) return '';
    return `; ${pids.length} process${pids.length === 1 ? '' : 'es'} still in cgroup ${this.#cgroup} (pid ${pids.join(', ')})`;
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
    const stat = readProcessStat(Number(entry)); // undefined: exited while we looked
    if (stat?.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') return true;
  }
  return false;
}

/** /proc/PID/cmdline (NUL-terminated arguments); undefined when the process is gone. */
function readCmdline(pid: number): Buffer | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`);
  } catch {
    return undefined;
  }
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

function describeSpawnError(code: string | undefined, error: unknown, file: string, cwd: string | undefined): string {
  switch (code) {
    case 'ENOENT':
      return `command not found: ${file}: install it, or give its absolute path in command${cwd ? ` (relative paths are resolved from cwd ${cwd})` : ''}`;
    case 'EACCES':
      return `command not executable: ${file}: check its permissions (chmod +x) and that its file system is not mounted noexec`;
    default:
      return `cannot spawn ${file}: ${error instanceof Error ? error.message : String(error)}`;
  }
}
