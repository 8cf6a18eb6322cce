/**
 * A temporary directory holding one executable shell script named `demo` that keeps its
 * daemon's pid in `demo.pid` (the init script and command-resource tests). Whatever the test
 * did, its teardown kills that daemon and removes the directory.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

export function demoScriptDir(t: TestContext, prefix: string, script: string): { dir: string; script: string; pidFile: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const path = join(dir, 'demo');
  const pidFile = join(dir, 'demo.pid');
  writeFileSync(path, script);
  chmodSync(path, 0o755);
  t.after(() => {
    // Leave no sleep behind.
    if (existsSync(pidFile)) {
      try {
        process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, script: path, pidFile };
}
