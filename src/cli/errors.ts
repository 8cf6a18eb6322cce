/**
 * Typed exit errors: commands throw these, and the one handler in `main.ts` prints the
 * message (no stack trace for an operator's mistake) and exits with the code.
 */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  config: 3,
  unavailable: 4,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * Ends a command with `exitCode` after it printed everything it had to say itself (a status
 * `--check` verdict, a report whose missing half it explained): main() prints nothing more.
 */
export class ExitWith extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
    this.name = 'ExitWith';
  }
}
