/**
 * The `sysv` driver: an LSB init script (`<initDir>/<script> start|stop|status`), run through
 * the injected {@link Exec}. Exit codes follow the LSB Core specification, "Init Script
 * Actions": start and stop exit 0 when the service is already in that state.
 */
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { ExecError, type Exec } from '../exec.js';
import type { Logger } from '../log.js';
import type { ServiceDriver, ServiceStatus } from './service-driver.js';
import type { GuardAction } from '../guard/protocol.js';

/**
 * Where relative script names live. The same on every family (src/distro/families.ts): RHEL's and
 * Fedora's real directory is /etc/rc.d/init.d, and /etc/init.d links to it (chkconfig).
 */
export const DEFAULT_INIT_DIR = '/etc/init.d';

/** The longest the lease guard waits for an init script's stop. */
const GUARD_STOP_TIMEOUT_MS = 10_000;

export interface SysvDriverDeps {
  exec: Exec;
  logger: Logger;
  /** Where relative script names live; `/etc/init.d` unless a test or distribution says so. */
  initDir?: string;
  /** Per script call; a hanging script fails instead of blocking the agent. */
  timeoutMs?: number;
}

/** LSB `status` exit codes. */
export const LSB_STATUS = {
  running: 0,
  deadPidFileExists: 1,
  deadLockFileExists: 2,
  notRunning: 3,
  unknown: 4,
} as const;

/** LSB exit codes of the other actions that matter here. */
const LSB_NOT_INSTALLED = 5;
/** "program is not running": the spec wants 0 for stop, but many scripts say 7. */
const LSB_NOT_RUNNING = 7;

const STATUS_DETAIL: Record<number, string> = {
  0: 'running',
  1: 'dead, pid file exists',
  2: 'dead, lock file exists',
  3: 'not running',
  4: 'status unknown',
};

/** What `status` printed and how it exited, as {@link ServiceStatus}. Pure. */
export function lsbStatus(exitCode: number, stdout: string): ServiceStatus {
  const said = stdout.trim().split('\n').pop()?.trim() ?? '';
  const meaning = STATUS_DETAIL[exitCode] ?? `exit ${exitCode}`;
  const pidMatch = exitCode === LSB_STATUS.running ? /\bpid\D{0,3}(\d+)/i.exec(said) : null;
  return {
    running: exitCode === LSB_STATUS.running,
    ...(pidMatch?.[1] ? { pid: Number(pidMatch[1]) } : {}),
    detail: `${meaning} (LSB exit ${exitCode})${said ? `: ${said}` : ''}`,
  };
}

export class SysvDriver implements ServiceDriver {
  readonly kind = 'sysv' as const;
  readonly #path: string;
  readonly #exec: Exec;
  readonly #logger: Logger;
  readonly #timeoutMs: number;

  constructor(script: string, deps: SysvDriverDeps) {
    this.#path = isAbsolute(script) ? script : join(deps.initDir ?? DEFAULT_INIT_DIR, script);
    this.#exec = deps.exec;
    this.#logger = deps.logger.child({ script: this.#path, driver: 'sysv' });
    this.#timeoutMs = deps.timeoutMs ?? 120_000;
  }

  /** The init script this driver runs. */
  get path(): string {
    return this.#path;
  }

  /**
   * `<script> start`; exit 0 also when already running (LSB).
   * @throws Error when the script is missing or exits non-zero.
   */
  async start(): Promise<void> {
    this.#requireScript();
    this.#logger.info('starting service');
    await this.#run('start');
  }

  /**
   * `<script> stop`; exit 0 also when already stopped (LSB). Exit 7 ("not running") is taken
   * as stopped too, because many scripts return it.
   * @throws Error when the script exits with anything else.
   */
  async stop(): Promise<void> {
    if (!existsSync(this.#path)) {
      // Nothing can have been started through a script that is not there.
      this.#logger.warn('init script not found: treating the service as stopped');
      return;
    }
    this.#logger.info('stopping service');
    const { exitCode } = await this.#run('stop', [LSB_NOT_RUNNING]);
    if (exitCode === LSB_NOT_RUNNING) this.#logger.info('script says the service was not running');
  }

  /**
   * `<script> status`, read with the LSB status codes (0 running, 1-3 dead or stopped,
   * 4 unknown, which counts as not running).
   * @throws Error when the script is missing or exits outside 0-4.
   */
  /**
   * The script's stop, bounded by 10 s: an init script's daemons are in no cgroup of ours, so
   * the guard cannot kill them bluntly (prefer the process or systemd driver; docs/guard.md).
   */
  guardActions(): GuardAction[] {
    return [{ kind: 'run', timeoutMs: Math.min(this.#timeoutMs, GUARD_STOP_TIMEOUT_MS), argv: [this.#path, 'stop'] }];
  }

  async status(): Promise<ServiceStatus> {
    this.#requireScript();
    const { exitCode, stdout } = await this.#run('status', Object.values(LSB_STATUS));
    return lsbStatus(exitCode, stdout);
  }

  #requireScript(): void {
    if (!existsSync(this.#path)) {
      throw new Error(`init script ${this.#path} not found on this node: install it or fix groups[..] script`);
    }
  }

  async #run(action: 'start' | 'stop' | 'status', okExitCodes: number[] = []) {
    try {
      return await this.#exec(this.#path, [action], { timeoutMs: this.#timeoutMs, okExitCodes });
    } catch (error) {
      if (!(error instanceof ExecError)) throw error;
      const how = error.timedOut
        ? `timed out after ${this.#timeoutMs} ms`
        : error.signal
          ? `was killed by ${error.signal}`
          : error.exitCode === undefined
            ? 'could not be run (is it executable?)'
            : error.exitCode === LSB_NOT_INSTALLED
              ? 'exited 5 (program is not installed)'
              : `exited ${error.exitCode}`;
      const output = error.stderr.trim();
      throw new Error(`init script ${this.#path} ${action} ${how}${output ? `: ${output}` : ''}`, { cause: error });
    }
  }
}
