/**
 * `haoscar worker` loads the cluster secret (`heartbeat.secretFile`): it signs the workflows'
 * orders to nodes and checks their answers (docs/security.md). Without a usable one it refuses to
 * start, as the agent does: a config error (exit 3) naming the file and the fix, before it
 * connects to anything (Temporal at port 1 here: nothing listens there).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'haoscar-worker-secret-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const secretFile = join(dir, 'authkey');
const configFile = join(dir, 'haoscar.yaml');
writeFileSync(configFile, `
cluster: lab
temporal: { address: "127.0.0.1:1" }
agent: { stateDir: ${join(dir, 'state')} }
heartbeat: { secretFile: ${secretFile} }
nodes:
  - { name: alpha, addresses: [127.0.0.1] }
  - { name: beta, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: app, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`);

const worker = () => execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'worker', '--config', configFile], { reject: false, cwd: ROOT, timeout: 60_000 });

test('no secret file: refused with a config error naming it (exit 3), nothing connected', async () => {
  const r = await worker();
  assert.equal(r.exitCode, 3, r.stderr);
  assert.match(r.stderr, new RegExp(`heartbeat secret file ${secretFile} does not exist`));
  assert.match(r.stderr, /signs orders to nodes/);
  assert.doesNotMatch(r.stderr, /unexpected error|cannot reach Temporal/);
});

test('a world-readable secret file: refused (exit 3)', async () => {
  writeFileSync(secretFile, 'x'.repeat(32));
  chmodSync(secretFile, 0o644);
  const r = await worker();
  assert.equal(r.exitCode, 3, r.stderr);
  assert.match(r.stderr, /readable by every user/);
});
