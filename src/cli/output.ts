/**
 * What `--json` prints, for every command that has it: one JSON document on stdout and nothing
 * else there, so that a script can parse stdout whole. Progress bars and errors stay on stderr;
 * the exit code means what it means without `--json`.
 */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}
