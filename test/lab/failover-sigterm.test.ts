/**
 * Failover in the network lab: the owner's agent is stopped (SIGTERM, as `systemctl stop`
 * does). README and docs/failover.md ("When an agent stops"): it stops its groups itself, then
 * reports itself suspect to the controller, which moves the group to the other node. See
 * failover-setup.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setUp, expect, agentLogs, LONG_LEASE } from './failover-setup.js';
import { GROUP } from './cluster.js';
import type { NetLab } from './netlab.js';
import { failoverWorkflowId } from '../../workflows/shared.js';

/** The service's processes (pid-service.mjs) in the host's namespace. */
async function servicePids(lab: NetLab, host: string): Promise<number[]> {
  const pids: number[] = [];
  for (const pid of await lab.pids(host)) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('pid-service.mjs')) pids.push(pid);
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

test('SIGTERM of the owner\'s agent: it stops the group and tells the controller; n2 serves at epoch+1, n1 holds nothing, never two holders', async (t) => {
  // It asserts that the group was stopped once, by the SIGTERM: the long lease of the tests that
  // assert what did not happen (on the 2 s one, n1 lost its lease under CI load before the signal).
  const { lab, cluster, vip, client } = await setUp(t, [], undefined, LONG_LEASE);
  const before = await cluster.group();
  assert.equal((await servicePids(lab, 'n1')).length, 1, 'the service runs on n1');
  const agent = cluster.agents.get('n1')!;
  const termAt = Date.now();
  process.kill(agent.pid!, 'SIGTERM');
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined), 60_000);
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.equal(g.epoch, before!.epoch + 1);
  // The agent stopped by itself, cleanly, and its own report started the failover (not n2
  // noticing its heartbeats had stopped).
  const exited = await Promise.race([agent, new Promise<undefined>((r) => setTimeout(r, 30_000, undefined))]);
  assert.equal(exited?.exitCode, 0, `n1's agent exited cleanly after SIGTERM\n${await agentLogs(cluster)}`);
  const failover = await cluster.client.workflow.getHandle(failoverWorkflowId(cluster.cluster, GROUP)).describe();
  const reason = String((await failover.memo)?.detail ?? '');
  assert.match(reason, /node n1 suspect \(n1: agent stopping; it stopped web\)/, `the failover was started by n1's own report: ${reason}\n${await agentLogs(cluster)}`);
  // It let go of the group itself: not its lease guard at the deadline (which would also empty n1).
  const stopped = (await cluster.agentLog('n1')).split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line) as { msg?: string; group?: string; reason?: string }];
    } catch {
      return [];
    }
  }).filter((e) => e.msg === 'stopping group' && e.group === GROUP);
  assert.deepEqual(stopped.map((e) => e.reason), ['the agent is stopping'], `n1's agent stopped the group itself, once\n${await agentLogs(cluster)}`);
  const guardLog = await readFile(join(lab.dir, 'state', 'log', 'guard-n1.log'), 'utf8').catch(() => '');
  assert.match(guardLog, new RegExp(`group web \\(epoch ${before!.epoch}\\) let go by the agent`), `n1's guard was told the agent let go:\n${guardLog}`);
  assert.doesNotMatch(guardLog, /deadline of group web .* passed|released/, `n1's guard had nothing left to release:\n${guardLog}`);
  // n1 holds nothing: neither the VIP nor the service.
  assert.deepEqual(await lab.vipHolders(), ['n2']);
  assert.deepEqual(await servicePids(lab, 'n1'), [], 'no instance of the service is left on n1');
  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.errors, []);
  assert.deepEqual(samples.dualSamples, [], 'never two holders of the VIP');
  assert.deepEqual(samples.dualPeriods, [], 'not even between two samples');
  const answered = seen.firstOkAfter(termAt);
  t.diagnostic(`client-observed outage ${seen.longestGapMs} ms; first answer from ${answered?.host} ${answered ? answered.t - termAt : '?'} ms after SIGTERM`);
  assert.ok(seen.longestGapMs < 15_000, `outage ${seen.longestGapMs} ms (generous bound)`);
});
