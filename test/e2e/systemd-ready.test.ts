/**
 * Readiness as systemd sees it (docs/packaging.md#readiness), with the real `haoscar agent`
 * (bin/haoscar.js) and a notification socket of the test's (PID 1 is not systemd here): an agent
 * (of a one-node cluster: no heartbeats, no guard) that cannot reach Temporal still says READY=1 — its node-local part runs — with a status that
 * says what it waits for, and STOPPING=1 when it is stopped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lab, freePort, httpServiceYaml } from '../support/lab.js';
import { NotifyReceiver } from '../support/notify-receiver.js';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

test('Temporal down at start: READY=1 with a status that says the agent waits for Temporal; STOPPING=1 on SIGTERM', async (t) => {
  const receiver = await NotifyReceiver.start();
  const lab = await Lab.create();
  t.after(async () => {
    await lab.close();
    await receiver.close();
  });
  // Nothing listens there: every connection attempt is refused.
  const address = `127.0.0.1:${await freePort()}`;
  const config = await lab.writeOneNodeConfig('haoscar.yaml', { cluster: 'ready', address, groups: { web: [httpServiceYaml('httpd', await freePort())] } });
  const agent = lab.startAgent(config, 'n1', { env: { ...(process.env as Record<string, string>), NOTIFY_SOCKET: receiver.socket } });
  const startedAt = performance.now();
  const ready = await receiver.waitFor('READY', /^1$/, { timeoutMs: 90_000 });
  t.diagnostic(`READY=1 ${Math.round(ready.at - startedAt)} ms after the start: ${ready.fields.STATUS}`);
  const escaped = address.replace(/\./g, '\\.');
  assert.match(ready.fields.STATUS ?? '', new RegExp(`^without Temporal: cannot reach Temporal at ${escaped}.*; no group starts here until the controller confirms a lease; holds no group$`));
  const before = receiver.messages.slice(0, receiver.messages.indexOf(ready)).map((m) => m.fields.STATUS).filter((s) => s !== undefined);
  assert.ok(before.includes(`starting: connecting to Temporal at ${address}`), `it said what it was doing before: ${JSON.stringify(before)}`);
  // Retries show in the status (attempt N), without a second READY=1.
  await receiver.waitFor('STATUS', /\(attempt [2-9]\d*\); retrying/, { timeoutMs: 30_000 });
  agent.kill('SIGTERM');
  await receiver.waitFor('STOPPING', /^1$/, { timeoutMs: 30_000 });
  assert.equal(receiver.with('READY').length, 1, 'READY=1 once');
  const exit = await agent;
  assert.equal(exit.exitCode, 0, 'a clean stop');
});

test('STOPPING=1 is sent before the agent exits, even while an earlier notification is still being sent', async (t) => {
  const receiver = await NotifyReceiver.start();
  const lab = await Lab.create();
  t.after(async () => {
    await lab.close();
    await receiver.close();
  });
  // A systemd-notify that delivers at once but returns only 1 s later (as one slow to exit on a
  // loaded machine): each notification keeps the agent's queue busy after systemd has read it.
  const bin = join(lab.dir, 'slow-bin');
  mkdirSync(bin);
  const real = execFileSync('sh', ['-c', 'command -v systemd-notify'], { encoding: 'utf8' }).trim();
  writeFileSync(join(bin, 'systemd-notify'), `#!/bin/sh\n${real} "$@"\nstatus=$?\nsleep 1\nexit $status\n`, { mode: 0o755 });
  const address = `127.0.0.1:${await freePort()}`;
  const config = await lab.writeOneNodeConfig('haoscar.yaml', { cluster: 'ready', address, groups: { web: [httpServiceYaml('httpd', await freePort())] } });
  const env = { ...(process.env as Record<string, string>), NOTIFY_SOCKET: receiver.socket, PATH: `${bin}:${process.env.PATH ?? ''}` };
  const agent = lab.startAgent(config, 'n1', { env });
  await receiver.waitFor('READY', /^1$/, { timeoutMs: 90_000 });
  // READY=1's systemd-notify is still running: the STOPPING=1 asked now waits behind it.
  agent.kill('SIGTERM');
  const exit = await agent;
  assert.equal(exit.exitCode, 0, 'a clean stop');
  // Read from the receiver's output, which may come a moment after the exit; never, if it was not sent.
  await receiver.waitFor('STOPPING', /^1$/, { timeoutMs: 10_000 });
});
