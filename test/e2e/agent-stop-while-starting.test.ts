/**
 * SIGTERM while the agent is still starting (systemd stops a unit that is starting; an operator
 * presses Ctrl-C at once): the agent says so and stops cleanly, exit 0. Before, its handlers were
 * set only once the start was over, so a signal in between killed it by the default action: no
 * `shutting down` line, no STOPPING=1, killed by SIGTERM (found by a CI run under load, where the
 * journal-priority test's SIGTERM came while its agent was still retrying Temporal).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Lab, ROOT, freePort, httpServiceYaml } from '../support/lab.js';
import { join } from 'node:path';

test('SIGTERM during the start (Temporal unreachable): the agent logs `shutting down` and exits 0', async (t) => {
  const lab = await Lab.create();
  t.after(() => lab.close());
  const address = `127.0.0.1:${await freePort()}`;
  const config = await lab.writeOneNodeConfig('early.yaml', { cluster: 'early', node: 'n1', address, groups: { web: [httpServiceYaml('httpd', await freePort())] } });
  const agent = spawn(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'agent', '--config', config, '--node', 'n1'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
  t.after(() => agent.kill('SIGKILL'));
  let stderr = '';
  // At its very first line: the start has begun and is not over (it is connecting to Temporal).
  agent.stderr.on('data', (chunk: Buffer) => {
    if (stderr === '') agent.kill('SIGTERM');
    stderr += chunk.toString();
  });
  const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => agent.once('exit', (code, signal) => resolve({ code, signal })));
  assert.deepEqual(exit, { code: 0, signal: null }, `the agent stopped cleanly:\n${stderr}`);
  assert.match(stderr, /"signal":"SIGTERM".*"msg":"shutting down"/);
  assert.match(stderr, /"msg":"agent stopped"/);
});
