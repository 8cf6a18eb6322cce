/**
 * exec's `interruptAfterMs` (src/exec.ts): a command that listens until interrupted (as arping does
 * for the drill) gets SIGINT after that long, and what it printed is its result.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createExec } from '../../src/exec.js';
import { createLogger } from '../../src/log.js';

test('interruptAfterMs: SIGINT to the command after that long; its output and exit code are the result', async () => {
  const exec = createExec(createLogger({ level: 'silent' }));
  const started = performance.now();
  // The shell waits for a foreground sleep; SIGINT reaches both (its own process group), and the trap reports.
  const r = await exec('sh', ['-c', 'trap "echo interrupted; exit 3" INT; echo listening; sleep 30; echo never'], { interruptAfterMs: 300, timeoutMs: 20_000, okExitCodes: [3] });
  const took = performance.now() - started;
  assert.deepEqual({ code: r.exitCode, out: r.stdout }, { code: 3, out: 'listening\ninterrupted' });
  assert.ok(took >= 250 && took < 10_000, `took ${Math.round(took)} ms`);
  // A command done before the interrupt is not signalled.
  const quick = await exec('sh', ['-c', 'trap "echo interrupted" INT; echo done'], { interruptAfterMs: 2000 });
  assert.equal(quick.stdout, 'done');
});
