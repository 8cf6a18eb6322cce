/**
 * scripts/temporal-postgres.sh refuses what cannot work before it touches anything, saying what
 * to do (no database or server needed for these; the lab tests run it for real:
 * test/lab/temporal-pg-failover.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const SCRIPT = fileURLToPath(new URL('../../scripts/temporal-postgres.sh', import.meta.url));

test('temporal-postgres.sh: bad options and missing pieces are refused with the fix, nothing written', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'haoscar-tpg-args-'));
  const run = (args: string[]) => execa(SCRIPT, args, { reject: false, env: { TEMPORAL_SERVER: '', TEMPORAL_SQL_TOOL: '', TEMPORAL_CLI: '' } });
  try {
    const cases: Array<[string[], RegExp]> = [
      [['frob'], /unknown command 'frob'/],
      [['init', '--dir', join(dir, 'a'), '--bogus'], /unknown argument '--bogus'/],
      [['init', '--dir', join(dir, 'a'), '--port', '32700'], /membership ports up to 32826 .*smallint: at most 32767.*choose a base from 1024 to 32641/],
      [['init', '--dir', join(dir, 'a'), '--ip', '0.0.0.0'], /--ip 0\.0\.0\.0: give --broadcast/],
      [['init', '--dir', join(dir, 'a'), '--processes', '0'], /--processes: expected 1 to 9/],
      [['init', '--dir', join(dir, 'a'), '--db', 'Temporal; DROP'], /--db: expected a database name/],
      [['init', '--dir', join(dir, 'a'), '--sql-tool', join(dir, 'missing')], /temporal-sql-tool: '.*missing' is not an executable file/],
      [['start', '--dir', join(dir, 'b')], /nothing set up in .*b: run '.*init --dir/],
      [['run', '--dir', join(dir, 'b')], /run needs a process number/],
      [['drop', '--dir', join(dir, 'b')], /drop deletes databases temporal and temporal_visibility .*add --yes/],
    ];
    for (const [args, expected] of cases) {
      const r = await run(args);
      assert.notEqual(r.exitCode, 0, `${args.join(' ')} fails`);
      assert.match(r.stderr, expected, `${args.join(' ')}: ${r.stderr}`);
    }
    assert.equal(existsSync(join(dir, 'a', 'config-1')), false, 'no configuration written');
    assert.equal(existsSync(join(dir, 'b')), false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
