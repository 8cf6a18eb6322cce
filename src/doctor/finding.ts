/**
 * What doctor says: one finding per thing it checked, each with what it found and, when it is
 * not ok, the exact command (or edit) that fixes it; and the exit code of the whole report.
 */

/**
 * `ok`; `warning`: works, but not as it should (or could not be told: "unknown");
 * `error`: the agent refuses to start, or a failover would fail; `skipped`: not checked
 * (why in `found`), e.g. a check that needs root or a running agent.
 */
export type FindingLevel = 'ok' | 'warning' | 'error' | 'skipped';

export interface Finding {
  /** What was checked, a stable short name: `tool ip`, `secret`, `port heartbeat 10.0.0.1:694`, `temporal`, `time`, `config peers` ... */
  check: string;
  level: FindingLevel;
  /** What was found, one sentence. */
  found: string;
  /** The exact command (or edit) that fixes it; absent for ok. */
  fix?: string;
}

/** doctor's exit codes (docs/doctor.md). */
export const DOCTOR_EXIT = { ok: 0, warnings: 1, errors: 2 } as const;

/** 2 with any error, else 1 with any warning, else 0; skipped checks do not count. */
export function doctorExitCode(findings: readonly Finding[]): number {
  if (findings.some((f) => f.level === 'error')) return DOCTOR_EXIT.errors;
  if (findings.some((f) => f.level === 'warning')) return DOCTOR_EXIT.warnings;
  return DOCTOR_EXIT.ok;
}

const MARK: Record<FindingLevel, string> = { ok: 'ok     ', warning: 'WARNING', error: 'ERROR  ', skipped: 'skipped' };

/** The human report: one line per finding, its fix indented under it, and a summary line. */
export function formatFindings(findings: readonly Finding[]): string {
  const lines: string[] = [];
  for (const f of findings) {
    lines.push(`${MARK[f.level]} ${f.check}: ${f.found}`);
    if (f.fix !== undefined && f.level !== 'ok') lines.push(`        fix: ${f.fix}`);
  }
  const count = (level: FindingLevel) => findings.filter((f) => f.level === level).length;
  lines.push(`${count('error')} error(s), ${count('warning')} warning(s), ${count('ok')} ok, ${count('skipped')} skipped`);
  return `${lines.map(printable).join('\n')}\n`;
}

/** Control characters (from a file or a peer) never reach the terminal as they are. */
function printable(line: string): string {
  // eslint-disable-next-line no-control-regex
  return line.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
