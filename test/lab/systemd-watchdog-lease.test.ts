/**
 * The agent under systemd's watchdog, in the network lab (systemd-watchdog-setup.ts): the owner's
 * agent hung (SIGSTOP); the test (as systemd) kills and restarts it, but the new agent comes back
 * after the lease: the guard has let go at the deadline and the group runs again under a new epoch
 * (on the standby, or on n1 when it was back first), never on two nodes; the new agent re-attaches
 * to the guard and keeps nothing of the old epoch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentLogs, expect } from './failover-setup.js';
import { waitFor } from '../support/wait.js';
import { agentPid, hang, setUpUnderSystemd, watchdogRestart } from './systemd-watchdog-setup.js';

test('a hung agent restarted past its lease: the guard has let go at the deadline and the group runs again under a new epoch, on one node; the restarted agent re-attaches and keeps nothing of the old epoch', async (t) => {
  // The failover lab's timing with its long lease (LONG_LEASE, 4 s: a 2 s one has run out on the
  // new owner under load, and the group moved again), shorter than WatchdogSec (3 s) + RestartSec
  // + the agent's start.
  const { receiver, lab, cluster, vip, instances, client } = await setUpUnderSystemd(t, { heartbeat: { interval: '100ms', deadtime: '500ms' }, lease: { ttl: '4s', margin: '150ms' }, failover: { verifyTimeout: '500ms' } });
  await receiver.waitFor('STATUS', /^serving: .*holds web \(epoch \d+, running\)$/);
  await waitFor('two watchdog pings', () => receiver.with('WATCHDOG').length >= 2, 20_000, 50);
  const pid = agentPid(cluster);
  const before = await cluster.group();
  const oldService = instances.now().byHost.n1;

  const hungAt = hang(t, pid);
  const r = await watchdogRestart(receiver, cluster, pid, hungAt);
  t.diagnostic(`watchdog fired ${Math.round(r.firedAfterHangMs)} ms after the hang`);
  // Usually the standby has it by the time the restarted agent is back; on a loaded machine the
  // restarted n1 (the preferred node) can be back before the failover is done, and the controller
  // may place the group there again. Either way: a new epoch, one node.
  const g = await cluster.waitForGroup((x) => x.epoch > before!.epoch && x.state === 'running', 'the group runs again under a new epoch', 90_000);
  t.diagnostic(`the group runs on ${g.owner} under epoch ${g.epoch} (was ${before!.owner}, epoch ${before!.epoch})`);
  await expect(cluster, `the client is served by ${g.owner}`, async () => (client.lastOk()?.host === g.owner ? true : undefined), 60_000);
  // The guard, not the hung agent, let go on n1, at its deadline.
  assert.match(await cluster.guardLog('n1'), new RegExp(`group web \\(epoch ${before!.epoch}\\) released in \\d+ms`));

  const again = await receiver.waitFor('READY', /^1$/, { from: r.restartedFrom, timeoutMs: 90_000 });
  t.diagnostic(`the restarted agent said READY=1 ${Math.round(again.at - r.restartedAt)} ms after its start: ${again.fields.STATUS}`);
  const log = await cluster.agentLog('n1');
  assert.equal(log.split('starting the lease guard').length - 1, 1, 'the restarted agent found the guard running');
  // Long enough for a heal, a lease round or a heartbeat to bring anything back on n1.
  await sleep(4000);
  const after = await cluster.group();
  assert.equal(after!.owner, g.owner);
  assert.equal(after!.epoch, g.epoch, 'no further move');
  assert.deepEqual(await lab.vipHolders(), [g.owner], await agentLogs(cluster, 30));
  const n1Now = instances.now().byHost.n1 ?? [];
  if (g.owner === 'n2') assert.deepEqual(n1Now, [], 'the restarted agent did not start the service the guard killed');
  else assert.ok(n1Now.every((p) => !oldService?.includes(p)), 'on n1 again, the service was started anew under the new epoch');
  const held = await vip.stop();
  const ran = instances.stop();
  assert.deepEqual(held.dualPeriods, [], await agentLogs(cluster, 30));
  assert.deepEqual(ran.dualSamples.map((s) => s.byHost), [], 'never two running instances of the service');
  const probed = await client.stop();
  t.diagnostic(`client: longest gap ${Math.round(probed.longestGapMs)} ms`);
});
