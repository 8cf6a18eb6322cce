/**
 * The one way HA-OSCAR runs an external command: execa with an argument array (never a
 * shell string), the command logged before it runs, and a failure turned into an
 * {@link ExecError} that says what ran, how it ended and what it printed.
 */
import { execa } from 'execa';
import type { Logger } from './log.js';
import { signalGroup } from './process-group.js';

export interface ExecOptions {
  /** Kill the command (SIGKILL) after this long; it then fails with `timedOut`. */
  timeoutMs?: number;
  /** Written to the command's standard input. */
  input?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Exit codes that are not failures (e.g. `systemctl is-active` exits 3 for inactive). */
  okExitCodes?: number[];
  /**
   * Send SIGINT (to its process group) after this long and take what it printed by then as its
   * result: for a tool that listens until interrupted and then reports, as `arping` does.
   */
  interruptAfterMs?: number;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export type Exec = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>;

export class ExecError extends Error {
  constructor(
    readonly command: readonly string[],
    readonly exitCode: number | undefined,
    readonly stderr: string,
    readonly timedOut: boolean,
    cause?: unknown,
    readonly signal?: string,
  ) {
    const how = timedOut
      ? 'timed out'
      : signal
        ? `was killed by ${signal}`
        : exitCode === undefined
          ? 'could not be run'
          : `exited with ${exitCode}`;
    const tail = stderr.trim().split('\n').slice(-3).join(' | ');
    super(`command ${JSON.stringify(command.join(' '))} ${how}${tail ? `: ${tail}` : ''}`, { cause });
    this.name = 'ExecError';
  }
}

export function createExec(logger: Logger): Exec {
  return async (file, args, options = {}) => {
    const command = [file, ...args];
    logger.debug({ command }, 'exec');
    const subprocess = execa(file, args, {
      reject: false,
      // Its own process group, so that a timeout kills what it started too: a helper left
      // holding its stdout would otherwise keep us waiting long past the timeout.
      detached: true,
      input: options.input,
      stdin: options.input === undefined ? 'ignore' : undefined,
      env: options.env,
      cwd: options.cwd,
      stripFinalNewline: true,
    });
    let timedOut = false;
    const timer = options.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      if (subprocess.pid !== undefined) signalGroup(subprocess.pid, 'SIGKILL');
    }, options.timeoutMs);
    const interrupt = options.interruptAfterMs === undefined ? undefined : setTimeout(() => {
      if (subprocess.pid !== undefined) signalGroup(subprocess.pid, 'SIGINT');
    }, options.interruptAfterMs);
    const result = await subprocess.finally(() => {
      clearTimeout(timer);
      clearTimeout(interrupt);
    });
    if (timedOut) throw new ExecError(command, undefined, String(result.stderr ?? ''), true, undefined, 'SIGKILL');
    const stdout = String(result.stdout ?? '');
    const stderr = String(result.stderr ?? '');
    if (result.timedOut || result.exitCode === undefined) {
      throw new ExecError(command, result.exitCode, stderr || (result.shortMessage ?? ''), result.timedOut, result.cause, result.signal);
    }
    if (result.exitCode !== 0 && !(options.okExitCodes ?? []).includes(result.exitCode)) {
      throw new ExecError(command, result.exitCode, stderr || stdout, false);
    }
    return { exitCode: result.exitCode, stdout, stderr };
  };
}

/** The last non-empty line of a command's output, for a one-line detail. */
export function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.length > 0)
      .pop() ?? ''
  );
}
