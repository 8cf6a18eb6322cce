/**
 * A power cut, as measured in issue 9 item 6: both agents and the workflow worker SIGKILLed, the
 * VIP removed (as a reboot would), both agents started together and the worker 5 s later. Before
 * the fix the agents, finding no worker to answer their start-up question, stopped the group
 * without a word, and the controller kept it "running" on n1 for ever. See cold-start-setup.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { setUp, groupBack, status, workerReady } from './cold-start-setup.js';

test('power cut: both agents and the worker killed, the VIP gone; agents started together, the worker 5 s later: the group runs again within the bound', async (t) => {
  const { lab, cluster, procs, vip, client } = await setUp(t);
  const before = (await cluster.group())!;
  await Promise.all(lab.hosts.map((h) => procs.killAgent(h)));
  await procs.killWorkers();
  // A reboot loses the address (the guard would release it at its deadline anyway).
  await lab.run('n1', ['ip', 'addr', 'del', lab.vip, 'dev', 'eth0'], { reject: false });
  for (const h of lab.hosts) procs.startAgent(h);
  const agentsAt = Date.now();
  // No workflow worker: status says so within its timeout, instead of hanging or printing the
  // controller's last view ("running on n1") as if it were true.
  const dark = await status(cluster, ['--timeout', '2s']);
  assert.equal(dark.code, 4, dark.out);
  assert.match(dark.out, /the workflow worker does not answer: is `haoscar worker` \(or an agent with workflows\) running\?/);
  assert.doesNotMatch(dark.out, /running +on/);
  await sleep(Math.max(0, 5000 - (Date.now() - agentsAt)));
  const logLength = (await cluster.workerLog()).length;
  procs.startWorker();
  const spawnedAt = Date.now();
  await workerReady(cluster, logLength);
  const readyAt = Date.now();
  const back = await groupBack(cluster, client, readyAt);
  t.diagnostic(`the group ran again on ${back.owner} ${Date.now() - readyAt} ms after the worker was ready (${Date.now() - spawnedAt} ms after it was started; epoch ${before.epoch} -> ${back.epoch})`);
  const s = await status(cluster);
  assert.equal(s.code, 0, s.out);
  assert.match(s.out, new RegExp(`web\\s+running\\s+on ${back.owner}`), s.out);
  const held = await vip.stop();
  assert.deepEqual(held.dualPeriods, [], 'never two live holders of the VIP');
  await client.stop();
});
