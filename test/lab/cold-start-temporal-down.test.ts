/**
 * The owner's agent started while Temporal is down (the dev server killed), Temporal back 10 s
 * later (issue 9 item 6). Before the fix the agent exited ("cannot reach Temporal"). It must run,
 * send heartbeats (a peer's fail-safe rests on them), run no group without a lease, attach once
 * Temporal is back, and the group must run again within the bound. See cold-start-setup.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentLogs, expect } from './failover-setup.js';
import { setUp, groupBack } from './cold-start-setup.js';

test('the owner\'s agent started while Temporal is down: it runs, sends heartbeats and holds nothing; Temporal back 10 s later, it attaches and the group runs again within the bound', async (t) => {
  const { lab, cluster, procs, vip, client } = await setUp(t);
  await lab.killDevServer();
  await procs.killAgent('n1');
  const n2Before = (await cluster.agentLog('n2')).length;
  const n1Before = (await cluster.agentLog('n1')).length;
  procs.startAgent('n1');
  const startedAt = Date.now();
  // Without Temporal, the agent does not exit; n2 hears it again (its start under tsx on this
  // loaded machine takes up to ~10 s), and Temporal stays down 10 s after its start at least.
  const runs = async () => assert.equal(procs.agentRunning('n1'), true, `n1's agent runs while Temporal is down\n${await agentLogs(cluster, 30)}`);
  await expect(cluster, 'n2 hears the new agent of n1', async () => {
    await runs();
    // "alive" after n2 suspected it; "restarted" (a new incarnation) when it came back within n2's deadtime.
    return /heartbeat: n1 is alive|heartbeat: n1 restarted \(incarnation/.test((await cluster.agentLog('n2')).slice(n2Before)) ? true : undefined;
  }, 90_000);
  const heardAt = Date.now();
  while (Date.now() - startedAt < 10_000 || Date.now() - heardAt < 3000) {
    await runs();
    await sleep(250);
  }
  const n1Log = (await cluster.agentLog('n1')).slice(n1Before);
  assert.match(n1Log, /cannot reach Temporal: the agent runs on/);
  assert.doesNotMatch(n1Log, /agent connected to Temporal/, 'not connected while Temporal is down');
  assert.deepEqual(await lab.vipHolders(), [], 'nobody holds the VIP: no lease without the controller');
  await lab.restartDevServer();
  const backAt = Date.now();
  const back = await groupBack(cluster, client, backAt);
  t.diagnostic(`the group ran on ${back.owner} ${Date.now() - backAt} ms after Temporal was back`);
  assert.match((await cluster.agentLog('n1')).slice(n1Before), /"restarted":true,"msg":"agent connected to Temporal"/, 'n1\'s agent attached, saying it restarted');
  const held = await vip.stop();
  assert.deepEqual(held.dualPeriods, [], 'never two live holders of the VIP');
  await client.stop();
});
