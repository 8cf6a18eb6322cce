/**
 * Maintenance in the network lab (issue 11 item 1), with real agents started through
 * bin/haoscar.js and the CLI as operators run it: with the group `web` in maintenance, its service
 * killed on the owner is NOT restarted (no heal, no local heal) and the owner's death does NOT
 * fail the group over; the maintenance survives the owner's agent restart (the controller keeps
 * it, the agent learns it again); `maintenance off` resumes management: the still-failing service
 * is healed, the lost owner's group fails over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError } from '@temporalio/client';
import { setUp, expect, agentLogs } from './failover-setup.js';
import { InstanceSampler } from './instance-sampler.js';
import { healWorkflowId } from '../../workflows/shared.js';
import type { LabCluster } from './cluster.js';

const isService = (cmdline: string) => cmdline.includes('pid-service.mjs');

async function cli(cluster: LabCluster, args: string[]): Promise<string> {
  const r = await cluster.cli(args);
  assert.equal(r.exitCode, 0, `haoscar ${args.join(' ')} exited ${r.exitCode}:\n${r.all}`);
  return r.all ?? '';
}

async function healExists(cluster: LabCluster): Promise<boolean> {
  return cluster.client.workflow.getHandle(healWorkflowId(cluster.cluster, 'web', 'httpd')).describe().then(() => true, (err: unknown) => {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  });
}

const count = (text: string, what: string) => text.split(what).length - 1;

test('a group in maintenance: a killed service is not restarted, a dead owner is not failed over, it survives an agent restart, and off resumes management', { timeout: 600_000 }, async (t) => {
  // An agent restart must not look like a node death (deadtime), nor outlast the lease (docs/guard.md).
  const { lab, cluster, client } = await setUp(t, [], undefined, { heartbeat: { interval: '200ms', deadtime: '10s' }, lease: { ttl: '15s', margin: '300ms' } });
  const instances = new InstanceSampler(Object.fromEntries(lab.hosts.map((h) => [h, lab.ns(h)])), isService);
  t.after(() => void instances.stop());
  const before = (await cluster.group())!;

  // Bad input changes nothing.
  const bad = await cluster.cli(['maintenance', 'on', '--group', 'nope']);
  assert.equal(bad.exitCode, 2, bad.all);
  assert.match(bad.all ?? '', /unknown group 'nope' \(known: web\); nothing was sent/);
  assert.equal((await cluster.ownership())?.maintenance, undefined);

  assert.match(await cli(cluster, ['maintenance', 'on', '--group', 'web', '--reason', 'lab: replacing a disk']), /group web is in maintenance: unmanaged/);
  assert.match(await cli(cluster, ['status']), /MAINTENANCE \(by .* lab: replacing a disk\): unmanaged/);
  const json = JSON.parse(await cli(cluster, ['status', '--json']));
  assert.equal(json.maintenance.groups.web.reason, 'lab: replacing a disk');

  // The owner's agent restarts (SIGKILL, within its lease): it learns the maintenance again from the controller.
  const old = cluster.agents.get('n1')!;
  process.kill(old.pid!, 'SIGKILL');
  await old.catch(() => undefined);
  cluster.startAgent('n1');
  await expect(cluster, 'the new agent of n1 learnt the maintenance', async () => (count(await cluster.agentLog('n1'), 'group web is in maintenance: its monitors') >= 2 ? true : undefined), 90_000);
  assert.equal((await cluster.ownership())?.maintenance?.groups.web?.reason, 'lab: replacing a disk', 'the controller still has it');

  // The service killed on n1: reported, not restarted, no heal started.
  const pids = instances.now().byHost.n1 ?? [];
  assert.equal(pids.length, 1, `one instance of the service on n1 (${JSON.stringify(instances.now().byHost)})`);
  process.kill(pids[0]!, 'SIGKILL');
  await expect(cluster, 'n1 reported the failure and did nothing', async () => (/web\/httpd is failing .*group web is in maintenance/.test(await cluster.agentLog('n1')) ? true : undefined), 30_000);
  await sleep(6000);
  assert.deepEqual(instances.now().byHost.n1 ?? [], [], `${await agentLogs(cluster)}\nthe service was not restarted on n1`);
  assert.equal(await healExists(cluster), false, 'no heal workflow was started');
  assert.equal((await cluster.group())!.epoch, before.epoch, 'nothing moved');

  // Off: the service, still failing, is healed.
  assert.match(await cli(cluster, ['maintenance', 'off', '--group', 'web']), /group web is managed again/);
  await expect(cluster, 'the service runs again on n1', async () => ((instances.now().byHost.n1 ?? []).length === 1 ? true : undefined), 60_000);
  assert.equal(await healExists(cluster), true, 'through a heal workflow');
  await expect(cluster, 'the client is served again through the VIP by n1', async () => (client.lastOk()?.host === 'n1' ? true : undefined), 30_000);

  // On again, and n1 dies: no failover.
  await cli(cluster, ['maintenance', 'on', '--group', 'web']);
  await expect(cluster, 'n1 knows', async () => (count(await cluster.agentLog('n1'), 'group web is in maintenance: its monitors') >= 3 ? true : undefined), 30_000);
  await lab.killHost('n1');
  await expect(cluster, 'n1 suspect at the controller', async () => ((await cluster.ownership())?.nodes.n1?.state === 'suspect' ? true : undefined), 60_000);
  for (const until = Date.now() + 8000; Date.now() < until; await sleep(200)) {
    const g = (await cluster.group())!;
    assert.deepEqual({ owner: g.owner, operation: g.operation?.workflowId }, { owner: 'n1', operation: undefined }, `${await agentLogs(cluster)}\nweb is not failed over`);
  }
  assert.deepEqual(instances.now().byHost.n2 ?? [], [], 'n2 did not start the service');
  assert.match(await cli(cluster, ['status']), /asked for meanwhile: node-lost/);

  // Off: the failover that still stands runs; n2 serves.
  await cli(cluster, ['maintenance', 'off', '--group', 'web']);
  await cluster.waitForGroup((g) => g.owner === 'n2' && g.state === 'running', 'web failed over to n2', 120_000);
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined), 60_000);
  await client.stop();
});
