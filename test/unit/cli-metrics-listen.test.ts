/**
 * The metrics endpoint's address as `haoscar agent` and `haoscar worker` take it: a malformed
 * `--metrics-listen` is a usage error (exit 2), an address that cannot be bound a configuration
 * error (exit 3) saying why, both before anything connects (Temporal at port 1: nothing there).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'haoscar-metrics-listen-'));
const secretFile = join(dir, 'authkey');
writeFileSync(secretFile, 'x'.repeat(32));
chmodSync(secretFile, 0o600);
const taken = createServer();
await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', () => resolve()));
const port = (taken.address() as { port: number }).port;
after(() => {
  taken.close();
  rmSync(dir, { recursive: true, force: true });
});
const configFile = join(dir, 'haoscar.yaml');
writeFileSync(configFile, `
cluster: lab
temporal: { address: "127.0.0.1:1" }
agent: { stateDir: ${join(dir, 'state')}, metrics: { listen: "127.0.0.1:${port}" } }
heartbeat: { secretFile: ${secretFile} }
nodes:
  - { name: alpha, addresses: [127.0.0.1] }
  - { name: beta, addresses: [127.0.0.2] }
`);

const haoscar = (args: string[]) => execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), ...args, '--config', configFile], { reject: false, cwd: ROOT, timeout: 60_000 });

test('worker --metrics-listen that is not host:port: a usage error (exit 2) saying what is expected', async () => {
  const r = await haoscar(['worker', '--metrics-listen', '9464']);
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /--metrics-listen '9464': expected host:port to serve metrics on, e\.g\. 127\.0\.0\.1:9464/);
});

test('an address in use: the worker and the agent stop with exit 3 and the reason, before connecting', async () => {
  for (const args of [['worker'], ['agent', '--node', 'alpha']]) {
    const r = await haoscar(args);
    assert.equal(r.exitCode, 3, `${args[0]}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`cannot serve metrics on 127\\.0\\.0\\.1:${port} \\(agent\\.metrics\\.listen\\): the port is in use`));
    assert.doesNotMatch(r.stderr, /unexpected error|cannot reach Temporal/);
  }
});
