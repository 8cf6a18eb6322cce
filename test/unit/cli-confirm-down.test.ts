/**
 * `haoscar confirm-down` through its entry point, without a Temporal server: what it refuses
 * before anything is sent. With a controller, blocked or not: test/workflow/failed-stop.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'haoscar-confirm-down-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const configFile = join(dir, 'haoscar.yaml');
// Port 1: nothing listens there, so a command that tries to reach Temporal fails fast.
writeFileSync(configFile, `
cluster: lab
temporal: { address: "127.0.0.1:1" }
nodes:
  - { name: alpha, addresses: [127.0.0.1] }
  - { name: beta, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: app, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`);

const haoscar = (...args: string[]) =>
  execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'confirm-down', ...args, '--config', configFile], { reject: false, cwd: ROOT, timeout: 60_000 });

test('an unknown node is refused before anything is said or sent (exit 2)', async () => {
  const r = await haoscar('gamma', '--yes');
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /unknown node 'gamma' \(known: alpha, beta\); nothing was sent/);
  assert.doesNotMatch(r.stderr, /cannot reach Temporal/);
});

test('without --yes, and no terminal to ask on, it says what it means and refuses (exit 2)', async () => {
  const r = await haoscar('alpha');
  assert.equal(r.exitCode, 2, r.stderr);
  assert.match(r.stderr, /You confirm that node alpha is powered off, or cannot run any group/);
  assert.match(r.stderr, /If alpha is NOT down, those groups will run twice/);
  assert.match(r.stderr, /not confirmed: nothing was sent\. Once you are sure alpha is down, run it again with --yes/);
  // Refused before connecting: the unreachable server was not even tried.
  assert.doesNotMatch(r.stderr, /cannot reach Temporal/);
  assert.equal(r.stdout, '');
});

test('with --yes and Temporal unreachable: a clear error, exit 4', async () => {
  const r = await haoscar('alpha', '--yes', '--json');
  assert.equal(r.exitCode, 4, r.stderr);
  assert.match(r.stderr, /cannot reach Temporal at 127\.0\.0\.1:1/);
  assert.equal(r.stdout, '');
});
