/**
 * The agent under systemd's watchdog, in the network lab (systemd-watchdog-setup.ts): the owner's
 * agent hung (SIGSTOP); the test (as systemd) kills and restarts it, but the new agent comes back
 * after the lease: the guard has let go at the deadline and the standby serves; the new agent
 * re-attaches to the guard and restarts nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { agentLogs, expect } from './failover-setup.js';
import { waitFor } from '../support/wait.js';
import { agentPid, hang, setUpUnderSystemd, watchdogRestart } from './systemd-watchdog-setup.js';

test('a hung agent restarted past its lease: the guard has let go at the deadline, the standby serves; the restarted agent re-attaches and restarts nothing', async (t) => {
  // The failover lab's timing with its long lease (LONG_LEASE, 4 s: a 2 s one has run out on the
  // new owner under load, and the group moved again), shorter than WatchdogSec (3 s) + RestartSec
  // + the agent's start.
  const { receiver, lab, cluster, vip, instances, client } = await setUpUnderSystemd(t, { heartbeat: { interval: '100ms', deadtime: '500ms' }, lease: { ttl: '4s', margin: '150ms' }, failover: { verifyTimeout: '500ms' } });
  await receiver.waitFor('STATUS', /^serving: .*holds web \(epoch \d+, running\)$/);
  await waitFor('two watchdog pings', () => receiver.with('WATCHDOG').length >= 2, 20_000, 50);
  const pid = agentPid(cluster);
  const before = await cluster.group();

  const hungAt = hang(t, pid);
  const r = await watchdogRestart(receiver, cluster, pid, hungAt);
  t.diagnostic(`watchdog fired ${Math.round(r.firedAfterHangMs)} ms after the hang`);
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined), 60_000);
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group', 60_000);
  assert.equal(g.epoch, before!.epoch + 1);
  // The guard, not the hung agent, let go on n1, at its deadline.
  assert.match(await cluster.guardLog('n1'), /group web \(epoch \d+\) released in \d+ms/);

  const again = await receiver.waitFor('READY', /^1$/, { from: r.restartedFrom, timeoutMs: 90_000 });
  t.diagnostic(`the restarted agent said READY=1 ${Math.round(again.at - r.restartedAt)} ms after its start: ${again.fields.STATUS}`);
  await receiver.waitFor('STATUS', /^serving: .*holds no group$/, { from: r.restartedFrom, timeoutMs: 30_000 });
  const log = await cluster.agentLog('n1');
  assert.equal(log.split('starting the lease guard').length - 1, 1, 'the restarted agent found the guard running');
  // Long enough for a heal, a lease round or a heartbeat to bring anything back on n1.
  await sleep(4000);
  assert.deepEqual(await lab.vipHolders(), ['n2'], await agentLogs(cluster, 30));
  assert.deepEqual(instances.now().byHost.n1 ?? [], [], 'the restarted agent did not start the service the guard killed');
  const after = await cluster.group();
  assert.equal(after!.owner, 'n2');
  assert.equal(after!.epoch, g.epoch, 'no further move');
  const held = await vip.stop();
  const ran = instances.stop();
  assert.deepEqual(held.dualPeriods, [], await agentLogs(cluster, 30));
  assert.deepEqual(ran.dualSamples.map((s) => s.byHost), [], 'never two running instances of the service');
  const probed = await client.stop();
  t.diagnostic(`client: longest gap ${Math.round(probed.longestGapMs)} ms`);
});
