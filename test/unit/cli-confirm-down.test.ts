/**
 * `haoscar confirm-down` through its entry point, without a Temporal server: what it refuses
 * before anything is sent. With a controller, blocked or not: test/workflow/failed-stop.test.ts.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'haoscar-confirm-down-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const configFile = join(dir, 'haoscar.yaml');
const secretFile = join(dir, 'authkey');
writeFileSync(secretFile, 'a cluster secret of the test, long enough\n', { mode: 0o600 });
// Port 1: nothing listens there, so a command that tries to reach Temporal fails fast.
writeFileSync(configFile, `
cluster: lab
temporal: { address: "127.0.0.1:1" }
heartbeat: { secretFile: ${secretFile} }
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

test('without a readable cluster secret: a clear error (exit 3) naming the file, and nothing is sent (no unsigned confirmation)', async () => {
  const noSecret = join(dir, 'no-secret.yaml');
  writeFileSync(noSecret, readFileSync(configFile, 'utf8').replace(secretFile, join(dir, 'missing-authkey')));
  const r = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'confirm-down', 'alpha', '--yes', '--config', noSecret], { reject: false, cwd: ROOT, timeout: 60_000 });
  assert.equal(r.exitCode, 3, r.stderr);
  assert.match(r.stderr, /missing-authkey does not exist/);
  assert.match(r.stderr, /confirm-down signs the confirmation with the cluster secret \(heartbeat\.secretFile\).*nothing was sent/);
  // Refused before connecting and before the warning: the unreachable server was not even tried.
  assert.doesNotMatch(r.stderr, /cannot reach Temporal|You confirm that node/);
  assert.equal(r.stdout, '');
});

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
