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
