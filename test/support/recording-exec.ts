/**
 * A recording {@link Exec} double: it writes down every command and answers from a script of
 * canned replies, failing like `createExec` does (an {@link ExecError} for an exit code that
 * is not in `okExitCodes`).
 *
 * Why a double: PID 1 on the machines these tests run on is not systemd, so `systemctl`
 * cannot really run here. The canned replies below copy what real systemctl prints and how
 * it exits (systemd 252-255), so the drivers are tested against the tool's real behaviour,
 * not against what we wish it did. Where a real part can run (an LSB init script, a
 * supervised process), the tests use the real thing instead.
 */
import { ExecError, type Exec, type ExecOptions, type ExecResult } from '../../src/exec.js';

export interface CannedReply {
  exitCode?: number;
  stdout?: string;
  stderr?: string;
  /** The command was killed for running longer than `timeoutMs`. */
  timedOut?: boolean;
  /** The program does not exist (spawn ENOENT): no exit code at all. */
  notInstalled?: boolean;
}

export interface ScriptLine {
  argv: readonly string[];
  reply: CannedReply;
  /** Answer every matching call, not just the first. */
  repeat?: boolean;
}

export interface RecordedCall {
  argv: string[];
  options: ExecOptions;
}

export class RecordingExec {
  readonly calls: RecordedCall[] = [];
  readonly #script: { line: ScriptLine; used: boolean }[];

  constructor(script: ScriptLine[] = []) {
    this.#script = script.map((line) => ({ line, used: false }));
  }

  /** Adds replies after construction (e.g. a status that changes after start). */
  answer(...lines: ScriptLine[]): this {
    this.#script.push(...lines.map((line) => ({ line, used: false })));
    return this;
  }

  /** The recorded command lines, joined with spaces, for short assertions. */
  get commands(): string[] {
    return this.calls.map((call) => call.argv.join(' '));
  }

  /** Script lines that were never asked for (a test can assert there are none). */
  get unused(): string[] {
    return this.#script.filter((entry) => !entry.used && !entry.line.repeat).map((entry) => entry.line.argv.join(' '));
  }

  readonly exec: Exec = async (file, args, options = {}) => {
    const argv = [file, ...args];
    this.calls.push({ argv, options });
    const entry = this.#script.find(
      ({ line, used }) => (!used || line.repeat) && line.argv.length === argv.length && line.argv.every((a, i) => a === argv[i]),
    );
    if (!entry) throw new Error(`RecordingExec: no canned reply for ${JSON.stringify(argv.join(' '))}`);
    entry.used = true;
    const { exitCode = 0, stdout = '', stderr = '', timedOut = false, notInstalled = false } = entry.line.reply;
    await Promise.resolve(); // a real command never answers synchronously
    if (notInstalled) throw new ExecError(argv, undefined, `spawn ${file} ENOENT`, false);
    if (timedOut) throw new ExecError(argv, undefined, stderr, true);
    if (exitCode !== 0 && !(options.okExitCodes ?? []).includes(exitCode)) {
      throw new ExecError(argv, exitCode, stderr || stdout, false);
    }
    const result: ExecResult = { exitCode, stdout: stdout.replace(/\n$/, ''), stderr: stderr.replace(/\n$/, '') };
    return result;
  };
}

/** Canned replies that copy real systemctl (output text and exit codes). */
export const systemctl = {
  /**
   * `systemctl show UNIT --property=ActiveState,SubState,MainPID,LoadState`: exit 0 even for
   * an unknown unit (it then says LoadState=not-found); systemd prints the properties in its
   * own order, not in the order asked.
   */
  show(state: { ActiveState: string; SubState: string; MainPID?: number; LoadState?: string }): CannedReply {
    return {
      stdout: `MainPID=${state.MainPID ?? 0}\nLoadState=${state.LoadState ?? 'loaded'}\nActiveState=${state.ActiveState}\nSubState=${state.SubState}\n`,
    };
  },
  showNotFound(): CannedReply {
    return systemctl.show({ ActiveState: 'inactive', SubState: 'dead', LoadState: 'not-found' });
  },
  /** start, stop, reset-failed of a loaded unit: silent, exit 0. */
  ok(): CannedReply {
    return { exitCode: 0 };
  },
  /** `systemctl is-active UNIT` of a stopped unit: prints the state, exits 3. */
  isActiveInactive(): CannedReply {
    return { exitCode: 3, stdout: 'inactive\n' };
  },
  /** `systemctl start` of a unit that does not exist. */
  startNotFound(unit: string): CannedReply {
    return { exitCode: 5, stderr: `Failed to start ${unit}: Unit ${unit} not found.\n` };
  },
  /** `systemctl stop` of a unit that does not exist. */
  stopNotLoaded(unit: string): CannedReply {
    return { exitCode: 5, stderr: `Failed to stop ${unit}: Unit ${unit} not loaded.\n` };
  },
  /** `systemctl reset-failed` of a unit that does not exist. */
  resetFailedNotLoaded(unit: string): CannedReply {
    return { exitCode: 1, stderr: `Failed to reset failed state of unit ${unit}: Unit ${unit} not loaded.\n` };
  },
  /** `systemctl start` whose ExecStart fails. */
  startJobFailed(unit: string): CannedReply {
    return {
      exitCode: 1,
      stderr: `Job for ${unit} failed because the control process exited with error code.\nSee "systemctl status ${unit}" and "journalctl -xeu ${unit}" for details.\n`,
    };
  },
  /** `systemctl start` refused by StartLimitBurst (what reset-failed prevents). */
  startLimitHit(unit: string): CannedReply {
    return {
      exitCode: 1,
      stderr: `Job for ${unit} failed because start of the service was attempted too often.\nSee "systemctl status ${unit}" and "journalctl -xeu ${unit}" for details.\nTo force a start use "systemctl reset-failed ${unit}" followed by "systemctl start ${unit}" again.\n`,
    };
  },
  /** Not running as root (or without polkit permission). */
  accessDenied(verb: string, unit: string): CannedReply {
    return { exitCode: 4, stderr: `Failed to ${verb} ${unit}: Access denied\n` };
  },
};
