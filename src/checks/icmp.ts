/**
 * ICMP check: one echo request to the host is answered — Monit's `check host ... if failed
 * ping`. Runs iputils' ping through the one exec layer (it has the raw-socket capability or
 * uses the kernel's ping sockets; we would need either, and root, to send ICMP ourselves).
 */
import { ExecError, type Exec } from '../exec.js';
import type { ProbeOutcome } from './check.js';
import { outputTail } from './command.js';

/** Time left to ping to start and exit once its reply wait is over, so that it, not the check's deadline, says "no reply". */
const EXIT_MARGIN_MS = 200;

/** The arguments of one ping that waits at most `waitMs` for its reply. */
export function pingArgs(host: string, waitMs: number): string[] {
  // -W takes seconds, with a fraction since the 2019 iputils releases (Debian 11, RHEL 9); an older ping reads
  // 0.8 as 0, waits for ever, and is killed at the check's timeout instead. -n: no reverse lookup.
  const seconds = Math.max(0.1, Math.floor(waitMs / 100) / 10);
  return ['-n', '-c', '1', '-W', String(seconds), '--', host];
}

export async function probeIcmp(host: string, timeoutMs: number, exec: Exec, signal: AbortSignal): Promise<ProbeOutcome> {
  signal.throwIfAborted();
  const waitMs = Math.max(100, timeoutMs - EXIT_MARGIN_MS);
  try {
    // The C locale: ping reads -W's decimal point from LC_NUMERIC in some builds, and says what went
    // wrong in English, which the detail keeps.
    const { stdout } = await exec('ping', pingArgs(host, waitMs), { timeoutMs, env: { LC_ALL: 'C' } });
    const rtt = /time[=<]([\d.]+) ?ms/.exec(stdout);
    return { ok: true, detail: rtt ? `reply in ${rtt[1]}ms` : 'reply' };
  } catch (err) {
    if (!(err instanceof ExecError)) throw err;
    if (err.timedOut) return { ok: false, detail: `no reply within ${timeoutMs}ms (ping killed)` };
    // ping exits 1 when no reply came, 2 on any other error (unknown host, no route, ...).
    if (err.exitCode === 1) return { ok: false, detail: `no reply within ${waitMs}ms` };
    const tail = outputTail(err.stderr);
    return { ok: false, detail: `ping ${err.exitCode === undefined ? 'could not be run' : `exited with ${err.exitCode}`}${tail ? `: ${tail}` : ''}` };
  }
}
