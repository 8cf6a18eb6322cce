/**
 * The agent's side of the lease guard (bin/haoscar-guard, docs/guard.md): finds the guard of
 * this node (started by its own systemd unit) or starts it, detached in a session of its own so
 * that the agent's death, freeze or restart does not take it along; hands it every group's
 * deadline; reads back what it released. The guard keeps its deadlines when the agent goes away,
 * so a restarted agent re-attaches to the same guard and nothing moves.
 */
import { spawn } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../log.js';
import { PACKAGE_ROOT } from '../package-info.js';
import { dropLine, holdLine, parseGuardState, parseUptimeCs, type GuardAction, type GuardState } from './protocol.js';

/** The guard program shipped with the package (bin/ beside src/ in a checkout, beside dist/ when installed). */
export const GUARD_PROGRAM = join(PACKAGE_ROOT, 'bin', 'haoscar-guard');

/** The guard rewrites its state at least every 100 ms, except while it releases (bounded, a few s). */
const STALE_AFTER_CS = 500;
const START_TIMEOUT_MS = 5000;
/** For a synchronous pause of a few ms between two reads of the state file. */
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** The machine's boot clock in centiseconds (/proc/uptime): the clock the guard's deadlines are on. */
export function bootClockCs(): number {
  return parseUptimeCs(readFileSync('/proc/uptime', 'utf8'));
}

/** The guard is not there to hand a deadline to: nothing may be started on this node. */
export class GuardUnavailableError extends Error {
  constructor(why: string) {
    super(`the lease guard of this node is not available (${why}): without it a dead or hung agent could keep a group, so this node does not serve groups until it runs again (docs/guard.md)`);
    this.name = 'GuardUnavailableError';
  }
}

export interface GuardLinkOptions {
  /** The guard's directory (control FIFO, state, lock), one per node. */
  dir: string;
  /** Where a guard started by the agent logs. */
  logFile: string;
  /** Arm this watchdog device (only when the agent starts the guard). */
  watchdogDevice?: string;
  logger: Logger;
  program?: string;
}

export type GuardHealth = { ok: true; state: GuardState } | { ok: false; why: string };

export class GuardLink {
  private fd: number | undefined;
  private bootId: string;
  /** The last complete state read (see health()). */
  private lastGood: GuardState | undefined;
  private readonly log: Logger;

  private constructor(private readonly opts: GuardLinkOptions) {
    this.log = opts.logger.child({ guard: true });
    this.bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  }

  /**
   * Attaches to the running guard of `dir`, or starts one and waits until it runs.
   * @throws GuardUnavailableError when no guard runs within 5 s (the guard's log says why).
   */
  static async attach(opts: GuardLinkOptions): Promise<GuardLink> {
    const link = new GuardLink(opts);
    await link.connect();
    return link;
  }

  /** Starts the guard if it is not running and (re)opens its FIFO. Public for the agent's repair loop. */
  async connect(): Promise<void> {
    this.closeFifo();
    if (!this.health().ok) {
      mkdirSync(this.opts.dir, { recursive: true, mode: 0o700 });
      const out = openSync(this.opts.logFile, 'a');
      const args = [this.opts.dir, ...(this.opts.watchdogDevice ? ['--watchdog', this.opts.watchdogDevice] : [])];
      const program = this.opts.program ?? GUARD_PROGRAM;
      this.log.info({ program, args }, 'starting the lease guard');
      // A session of its own: the agent's death, a kill of its process group or its unit's
      // restart does not reach the guard.
      const child = spawn(program, args, { detached: true, stdio: ['ignore', out, out] });
      child.on('error', (err) => this.log.error({ err: String(err) }, 'the lease guard could not be started'));
      child.unref();
      closeSync(out);
      const until = Date.now() + START_TIMEOUT_MS;
      while (!this.health().ok) {
        if (Date.now() > until) throw new GuardUnavailableError(`it did not start within ${START_TIMEOUT_MS} ms; see ${this.opts.logFile}`);
        await sleep(20);
      }
    }
    try {
      // Non-blocking: a guard that stopped reading must not stop the agent.
      this.fd = openSync(join(this.opts.dir, 'control'), constants.O_WRONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw new GuardUnavailableError(`cannot open ${join(this.opts.dir, 'control')}: ${(err as Error).message}`);
    }
    const state = this.state();
    this.log.info({ pid: state?.pid, held: [...(state?.groups.values() ?? [])] }, 'attached to the lease guard');
  }

  /**
   * The group is held until `deadlineCs` on the boot clock; `actions` release it.
   * @throws GuardUnavailableError when the guard cannot be told (not running, not reading).
   */
  hold(group: string, epoch: number, deadlineCs: number, actions: GuardAction[]): void {
    this.send(holdLine(group, epoch, deadlineCs, actions));
  }

  /** The agent let go of the group itself; best effort (a guard that missed it releases a released group: harmless). */
  drop(group: string, epoch: number): void {
    try {
      this.send(dropLine(group, epoch));
    } catch (err) {
      this.log.warn({ group, epoch, err: String(err) }, 'could not tell the lease guard that a group was let go');
    }
  }

  /**
   * The guard's state file, or undefined when there is none. The guard rewrites it in one
   * write, so a read that finds it empty or cut short is retried a few ms later.
   */
  state(): GuardState | undefined {
    for (let attempt = 0; attempt < 5; attempt++) {
      let text: string;
      try {
        text = readFileSync(join(this.opts.dir, 'state'), 'utf8');
      } catch {
        return undefined;
      }
      const state = parseGuardState(text);
      if (state) return state;
      Atomics.wait(PAUSE, 0, 0, 2);
    }
    return undefined;
  }

  /**
   * Whether a guard runs for this directory, in this boot, and has written its state lately.
   * A read that catches the file while the guard rewrites it (truncated, on a loaded machine
   * for longer than the retries) is not a dead guard: the last complete state stands for it
   * while its process lives and it is not older than STALE_AFTER_CS.
   */
  health(): GuardHealth {
    const read = this.state();
    if (read) this.lastGood = read;
    const state = read ?? this.lastGood;
    if (!state) return { ok: false, why: `no state in ${this.opts.dir}` };
    if (state.bootId !== this.bootId) return { ok: false, why: 'its state is from an earlier boot' };
    if (!isGuardProcess(state.pid)) return { ok: false, why: `its process ${state.pid} is not running` };
    const lagCs = bootClockCs() - state.nowCs;
    if (lagCs > STALE_AFTER_CS) return { ok: false, why: `it has not written its state for ${lagCs * 10} ms (stopped?)` };
    return { ok: true, state };
  }

  /** Closes the FIFO; the guard runs on with its deadlines. */
  close(): void {
    this.closeFifo();
  }

  private send(line: string): void {
    if (this.fd === undefined) throw new GuardUnavailableError('not connected');
    try {
      writeSync(this.fd, line);
    } catch (err) {
      // EAGAIN: the FIFO is full, nobody reads it; EPIPE cannot happen (the guard holds it open for reading).
      throw new GuardUnavailableError(`writing to its FIFO failed: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }

  private closeFifo(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

function isGuardProcess(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('haoscar-guard');
  } catch {
    return false;
  }
}
