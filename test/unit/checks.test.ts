import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor as waitUntil } from '../support/wait.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createTcpServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CheckSpec } from '../../src/config/types.js';
import { createCheck, type CheckContext } from '../../src/checks/check.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { freePort } from '../support/lab.js';

const waitFor = (what: string, condition: () => Promise<boolean>) => waitUntil(what, condition, 5000, 20);

const timing = { intervalMs: 1000, timeoutMs: 2000, rise: 1, fall: 1 };
const ctx: CheckContext = { exec: createExec(silentLogger) };

async function listen(server: Server | HttpServer): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

async function closeHttp(server: HttpServer): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** A port nothing listens on: bind one, then release it. */
/** Spawns a child that exits at once and waits until it is reaped: its pid is dead. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await once(child, 'exit');
  assert.ok(child.pid);
  return child.pid;
}


void describe('http check', () => {
  void test('200 then 503, expectStatus, redirects, timeout, refused', async (t) => {
    let statusHits = 0;
    const server = createHttpServer((req, res) => {
      if (req.url === '/status') {
        statusHits++;
        res.statusCode = statusHits === 1 ? 200 : 503;
        res.end('body that must be consumed');
      } else if (req.url === '/redirect') {
        res.writeHead(302, { location: 'http://192.0.2.1/elsewhere' }).end();
      } else if (req.url === '/slow') {
        const timer = setTimeout(() => res.end('late'), 3000);
        res.on('close', () => clearTimeout(timer));
      } else {
        res.statusCode = 404;
        res.end();
      }
    });
    const port = await listen(server);
    t.after(() => closeHttp(server));
    const base = `http://127.0.0.1:${port}`;
    const http = (path: string, extra: Partial<CheckSpec> = {}) =>
      createCheck({ ...timing, type: 'http', url: `${base}${path}`, ...extra } as CheckSpec, ctx);

    const status = http('/status');
    const first = await status();
    assert.equal(first.ok, true);
    assert.equal(first.detail, `http ${base}/status: status 200`);
    assert.ok(first.durationMs >= 0);
    const second = await status();
    assert.equal(second.ok, false);
    assert.equal(second.detail, `http ${base}/status: status 503 (expected 2xx/3xx)`);

    const expect503 = await http('/status', { expectStatus: [503] })();
    assert.equal(expect503.ok, true);
    const expect200 = await http('/status', { expectStatus: [200, 204] })();
    assert.deepEqual([expect200.ok, expect200.detail], [false, `http ${base}/status: status 503 (expected 200, 204)`]);

    // Not followed (192.0.2.1 is TEST-NET, unreachable): a 3xx is a live server's answer.
    const redirect = await http('/redirect')();
    assert.deepEqual([redirect.ok, redirect.detail], [true, `http ${base}/redirect: status 302`]);

    assert.equal((await http('/missing')()).ok, false);

    const slow = await http('/slow', { timeoutMs: 300 })();
    assert.equal(slow.ok, false);
    assert.equal(slow.detail, `http ${base}/slow: timed out after 300ms`);
    assert.ok(slow.durationMs >= 290 && slow.durationMs < 2000, `took ${slow.durationMs}ms`);

    const closed = await freePort();
    const refused = await createCheck({ ...timing, type: 'http', url: `http://127.0.0.1:${closed}/` }, ctx)();
    assert.deepEqual([refused.ok, refused.detail], [false, `http http://127.0.0.1:${closed}/: connection refused`]);
  });
});

void describe('tcp check', () => {
  void test('a listening server passes', async (t) => {
    const server = createTcpServer((socket) => socket.destroy());
    const port = await listen(server);
    t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const result = await createCheck({ ...timing, type: 'tcp', host: '127.0.0.1', port }, ctx)();
    assert.equal(result.ok, true);
    assert.match(result.detail, new RegExp(`^tcp 127\\.0\\.0\\.1:${port}: connected in \\d+ms$`));
  });

  void test('a closed port fails with connection refused', async () => {
    const port = await freePort();
    const result = await createCheck({ ...timing, type: 'tcp', host: '127.0.0.1', port }, ctx)();
    assert.deepEqual([result.ok, result.detail], [false, `tcp 127.0.0.1:${port}: connection refused`]);
  });
});

void describe('process check', () => {
  const processSpec = (extra: { name?: string; pidFile?: string } = {}): CheckSpec => ({ ...timing, type: 'process', ...extra });

  void test('the service pid: alive, dead, unknown', async () => {
    const alive = await createCheck(processSpec(), { ...ctx, servicePid: async () => process.pid })();
    assert.equal(alive.ok, true);
    assert.match(alive.detail, new RegExp(`^process \\(service\\): pid ${process.pid} is running \\(state [A-Z]\\)$`));

    const dead = await deadPid();
    const gone = await createCheck(processSpec(), { ...ctx, servicePid: async () => dead })();
    assert.deepEqual([gone.ok, gone.detail], [false, `process (service): pid ${dead} is not running`]);

    const none = await createCheck(processSpec(), { ...ctx, servicePid: async () => undefined })();
    assert.deepEqual([none.ok, none.detail], [false, 'process (service): the service has no process (not running)']);

    const noSource = await createCheck(processSpec(), ctx)();
    assert.equal(noSource.ok, false);

    const throwing = await createCheck(processSpec(), { ...ctx, servicePid: () => Promise.reject(new Error('driver gone')) })();
    assert.deepEqual([throwing.ok, throwing.detail], [false, 'process (service): driver gone']);
  });

  void test('a zombie is not alive', async (t) => {
    // sh forks a short sleep, then execs into a long one that never reaps it: a zombie.
    const parent: ChildProcess = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    t.after(() => {
      parent.kill('SIGKILL');
    });
    const [line] = (await once(parent.stdout!, 'data')) as [Buffer];
    const zombie = Number(line.toString().trim());
    await waitFor(`pid ${zombie} to be a zombie`, async () => {
      const stat = await readFile(`/proc/${zombie}/stat`, 'utf8').catch(() => '');
      return / Z /.test(stat.slice(stat.lastIndexOf(')')));
    });
    const result = await createCheck(processSpec(), { ...ctx, servicePid: async () => zombie })();
    assert.deepEqual([result.ok, result.detail], [false, `process (service): pid ${zombie} is a zombie (state Z)`]);
  });

  void test('by name: our own comm is found, a made-up one is not', async () => {
    const comm = (await readFile('/proc/self/comm', 'utf8')).trim();
    const found = await createCheck(processSpec({ name: comm }), ctx)();
    assert.equal(found.ok, true, found.detail);
    assert.match(found.detail, /running as pids? \d+/);
    const missing = await createCheck(processSpec({ name: 'no-such-procx' }), ctx)();
    assert.deepEqual([missing.ok, missing.detail], [false, 'process no-such-procx: no process named "no-such-procx"']);
  });

  void test('by pid file: live pid, dead pid, missing file, garbage, stale pid of another program', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'haoscar-checks-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const pidFile = join(dir, 'service.pid');
    const check = createCheck(processSpec({ pidFile }), ctx);

    await writeFile(pidFile, `${process.pid}\n`);
    const live = await check();
    assert.equal(live.ok, true, live.detail);
    assert.match(live.detail, new RegExp(`^process pidfile ${pidFile}: pid ${process.pid} is running`));

    const dead = await deadPid();
    await writeFile(pidFile, `${dead}\n`);
    assert.deepEqual(Object.values(await check()).slice(0, 2), [false, `process pidfile ${pidFile}: pid ${dead} is not running`]);

    await writeFile(pidFile, 'not a pid\n');
    const garbage = await check();
    assert.equal(garbage.ok, false);
    assert.match(garbage.detail, /pid file holds no pid/);

    await rm(pidFile);
    assert.deepEqual(Object.values(await check()).slice(0, 2), [false, `process pidfile ${pidFile}: pid file does not exist`]);

    // Both name and pidFile: the pid must belong to that program (a recycled pid does not count).
    await writeFile(pidFile, `${process.pid}\n`);
    const stale = await createCheck(processSpec({ pidFile, name: 'postgres' }), ctx)();
    assert.equal(stale.ok, false);
    assert.match(stale.detail, /not "postgres" \(stale pid file\?\)$/);
  });
});

void describe('command check', () => {
  void test('exit 0 passes, exit 3 fails with the output tail, a hang times out', async () => {
    const ok = await createCheck({ ...timing, type: 'command', command: [process.execPath, '-e', 'console.log("all good")'] }, ctx)();
    assert.equal(ok.ok, true, ok.detail);
    assert.match(ok.detail, /: exited with 0: all good$/);

    const failing = await createCheck(
      { ...timing, type: 'command', command: [process.execPath, '-e', 'console.error("line1\\nline2"); process.exit(3)'] },
      ctx,
    )();
    assert.equal(failing.ok, false);
    assert.match(failing.detail, /^command .+: exited with 3: line1 \| line2$/);

    const started = Date.now();
    const hang = await createCheck(
      { ...timing, type: 'command', timeoutMs: 300, command: [process.execPath, '-e', 'setTimeout(() => {}, 30000)'] },
      ctx,
    )();
    assert.equal(hang.ok, false);
    assert.match(hang.detail, /: timed out after 300ms$/);
    assert.ok(Date.now() - started < 3000);

    const missing = await createCheck({ ...timing, type: 'command', command: ['/nonexistent/haoscar-check'] }, ctx)();
    assert.equal(missing.ok, false);
    assert.match(missing.detail, /^command \/nonexistent\/haoscar-check: did not exit normally: .*ENOENT/);
  });
});
