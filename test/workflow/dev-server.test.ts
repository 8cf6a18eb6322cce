import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { findTemporalCli } from '../../src/temporal/cli-binary.js';
import { DevServerError, HISTORY_RETENTION_DAYS, startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import { SEARCH_ATTRIBUTES } from '../../src/temporal/search-attributes.js';
import { silentLogger } from '../../src/log.js';

// A missing CLI skips these tests on a developer machine; on CI it must be there (.ci/run
// exports TEMPORAL_CLI), so there it fails instead of silently testing nothing.
const cli = findTemporalCli();
if (!cli && process.env.CI) throw new Error('CI: no Temporal CLI found (set TEMPORAL_CLI)');
const skip = cli ? false : 'no Temporal CLI (set TEMPORAL_CLI, or run `haoscar server` once to build it)';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** Poll for a condition with a deadline instead of sleeping a fixed time. */
async function eventually(what: string, condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

void describe('startDevServer', { skip }, () => {
  const started: DevServer[] = [];
  let dir: string | undefined;
  after(async () => {
    await Promise.all(started.map((s) => s.stop()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  void test('in memory on a free port: search attributes registered, stop ends the process', async (t) => {
    const t0 = Date.now();
    const server = await startDevServer({ cli: cli!, uiPort: false, logger: silentLogger });
    started.push(server);
    const readyMs = Date.now() - t0;
    t.diagnostic(`ready after ${readyMs} ms`);
    assert.match(server.address, /^127\.0\.0\.1:\d+$/);
    assert.equal(server.uiUrl, undefined);
    assert.ok(isRunning(server.pid));

    const connection = await Connection.connect({ address: server.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'default' });
      for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
        assert.ok(customAttributes && name in customAttributes, `search attribute ${name} is registered`);
        // The API spells types as enum numbers; 2 = KEYWORD.
        if (type === 'Keyword') assert.equal(customAttributes[name], 2, `${name} is a Keyword`);
      }
    } finally {
      await connection.close();
    }

    await server.stop();
    await eventually(`pid ${server.pid} is gone`, () => !isRunning(server.pid));
    const exit = await server.exited;
    assert.equal(exit.exitCode, 0, 'SIGTERM stops the dev server cleanly');
    await server.stop(); // a second stop is harmless
  });

  void test('with a SQLite file, a UI and an extra namespace: creates the directory', async () => {
    dir = await mkdtemp(join(tmpdir(), 'haoscar-dev-server-'));
    const dbFile = join(dir, 'nested', 'temporal.db');
    const server = await startDevServer({ cli: cli!, dbFile, uiPort: 0, namespace: 'haoscar-test', logger: silentLogger });
    started.push(server);
    assert.ok((await stat(dbFile)).isFile());
    assert.match(server.uiUrl ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    const ui = await fetch(server.uiUrl!);
    assert.equal(ui.status, 200);
    const connection = await Connection.connect({ address: server.address });
    try {
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace: 'haoscar-test' });
      assert.ok(customAttributes && 'HaGroup' in customAttributes);
      // Histories are the postmortems: kept for HISTORY_RETENTION_DAYS after a workflow closed
      // (the dev server's own default is one day).
      const ns = await connection.workflowService.describeNamespace({ namespace: 'haoscar-test' });
      const days = Number(ns.config?.workflowExecutionRetentionTtl?.seconds ?? 0) / 86_400;
      assert.equal(days, HISTORY_RETENTION_DAYS, `namespace retention ${days} days`);
    } finally {
      await connection.close();
    }
    await server.stop();
    await eventually(`pid ${server.pid} is gone`, () => !isRunning(server.pid));
  });

  void test('a taken port fails early with the server output, not after the timeout', async () => {
    // Hang up on whoever connects: an accepted socket nobody reads would keep this process alive.
    const blocker = createServer((socket) => socket.destroy());
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', () => res()));
    const port = (blocker.address() as AddressInfo).port;
    try {
      const t0 = Date.now();
      await assert.rejects(
        startDevServer({ cli: cli!, port, uiPort: false, logger: silentLogger, readyTimeoutMs: 60_000 }),
        (err: unknown) => err instanceof DevServerError && /exited before it was ready/.test(err.message) && err.message.includes(String(port)),
      );
      assert.ok(Date.now() - t0 < 30_000, 'failed early');
    } finally {
      await new Promise<void>((res) => blocker.close(() => res()));
    }
  });
});
