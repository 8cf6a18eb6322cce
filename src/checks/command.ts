/**
 * Command check: the command exits 0. Runs through the one `Exec` wrapper (argv, logged,
 * killed with SIGKILL at the check's timeout); the tail of its output goes in the detail.
 */
import { ExecError, type Exec } from '../exec.js';
import type { ProbeOutcome } from './check.js';

/**
 * @param timeoutMs passed to exec so the command is killed, not merely abandoned, at the
 *   deadline. Rejects only when the signal aborts first or exec fails in an unexpected way.
 */
export async function probeCommand(argv: readonly string[], timeoutMs: number, exec: Exec, signal: AbortSignal): Promise<ProbeOutcome> {
  const [file, ...args] = argv;
  if (file === undefined || file === '') return { ok: false, detail: 'empty command' };
  signal.throwIfAborted();
  try {
    const result = await exec(file, args, { timeoutMs });
    const tail = outputTail(result.stdout || result.stderr);
    return { ok: true, detail: `exited with 0${tail ? `: ${tail}` : ''}` };
  } catch (err) {
    if (!(err instanceof ExecError)) throw err;
    if (err.timedOut) return { ok: false, detail: `timed out after ${timeoutMs}ms` };
    // exitCode is undefined both when the command could not be started and when a signal
    // killed it; execa's message (in err.stderr) then says which.
    const how = err.exitCode === undefined ? 'did not exit normally' : `exited with ${err.exitCode}`;
    // ExecError.stderr holds stderr, or stdout when stderr was empty (or execa's reason it
    // could not start the command).
    const tail = outputTail(err.stderr);
    return { ok: false, detail: `${how}${tail ? `: ${tail}` : ''}` };
  }
}

/** The last `maxLines` lines of command output, at most `maxChars` characters, on one line. */
export function outputTail(text: string, maxLines = 3, maxChars = 200): string {
  const tail = text
    .trim()
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .slice(-maxLines)
    .join(' | ');
  return tail.length > maxChars ? `…${tail.slice(-maxChars)}` : tail;
}
