/**
 * `npm test`'s runner: starts one real Temporal dev server (in memory, no UI) for the whole
 * run, runs every test file with node's test runner against it, and stops the server.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';
import { startDevServer } from '../src/temporal/dev-server.js';
import { createLogger } from '../src/log.js';

function testFiles(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return testFiles(path);
      return name.endsWith('.test.ts') ? [path] : [];
    })
    .sort();
}

const logger = createLogger({ level: 'warn', name: 'test-run' });
const only = process.argv.slice(2);
const files = only.length > 0 ? only : testFiles('test');
const cli = await ensureTemporalCli({ logger, onProgress: (m) => process.stderr.write(`${m}\n`) });
const started = Date.now();
const server = await startDevServer({ cli, uiPort: false, logger });
process.stderr.write(`test run: Temporal dev server ${server.address} ready in ${Date.now() - started} ms; ${files.length} test files\n`);

let exitCode = 1;
try {
  const result = await execa(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-timeout=180000', ...files], {
    stdio: 'inherit',
    reject: false,
    env: { HAOSCAR_TEST_TEMPORAL: server.address },
  });
  exitCode = result.exitCode ?? 1;
} finally {
  await server.stop();
}
process.exit(exitCode);
