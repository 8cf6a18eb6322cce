/**
 * An IPv6 VIP in the network lab (issue 12 item 4): the lab's namespaces have IPv6 addresses
 * too (fd00:213::/64), the group's VIP is fd00:213::200/64, and each node's IPv6 address is a
 * second heartbeat link. The client reaches the service over [fd00:213::200]:8080 before and
 * after the owner dies; never two live holders of the address (`ip -6 monitor address` in every
 * namespace); and the client learns the new owner's MAC from its unsolicited neighbour
 * advertisement (send_ua) within seconds of the address being added, where without one its old
 * entry would be kept until the kernel's reachability timers ran out (tens of seconds).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { NetLab } from './netlab.js';
import { LabCluster } from './cluster.js';
import { agentLogs, expect, TIMING } from './failover-setup.js';
import { command } from './commands.js';
import { waitFor } from '../support/wait.js';
import { SEND_UA } from '../../src/drivers/vip.js';

/** How long after n2 added the address the client may take to see n2's MAC for it. */
const LEARN_BOUND_MS = 3_000;

test('IPv6 VIP: the client reaches the service over it before and after the owner dies; one holder; neighbours told at once', async (t) => {
  assert.ok(existsSync(SEND_UA), `${SEND_UA} is missing: install the resource-agents package (.ci/run does); the vip driver announces IPv6 addresses with it`);
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true, ipv6: true });
  const cluster = new LabCluster(lab, TIMING, undefined, { ipv6: true });
  t.after(async () => {
    if (process.env.HAOSCAR_LAB_KEEP) process.stderr.write(`lab kept in ${lab.dir}\n`);
    await cluster.close();
    await lab.close();
  });
  await cluster.start();
  assert.equal(cluster.url, 'http://[fd00:213::200]:8080/');
  const vip = await lab.sampleVip(lab.vip6);
  const client = await lab.probe(cluster.url, { everyMs: 20, timeoutMs: 300 });
  await expect(cluster, 'the client is served over the IPv6 VIP by n1', async () => (client.lastOk()?.host === 'n1' ? true : undefined));
  const held = (await lab.run('n1', ['ip', '-o', '-6', 'address', 'show', 'dev', 'eth0'])).stdout;
  assert.match(held, /inet6 fd00:213::200\/64 scope global nodad/, 'added with nodad: no duplicate address detection to wait for');

  // The IPv6 heartbeat link is heard (the IPv4 one too).
  const status = await waitFor('n1 hears n2 on both links', async () => {
    const r = await cluster.cli(['status', '--node', 'n1', '--timeout', '5s'], { timeoutMs: 60_000 });
    return /link fd00:213::12->fd00:213::11 alive/.test(r.stdout) && /link 10\.213\.\d+\.12->10\.213\.\d+\.11 alive/.test(r.stdout) ? r.stdout : undefined;
  }, 60_000, 500);
  assert.match(status, /n2 +alive/);

  const mac = async (host: string) => /link\/ether ([0-9a-f:]{17})/.exec((await command(lab.logger, ['ip', '-n', lab.ns(host), '-o', 'link', 'show', 'eth0'])).stdout)?.[1];
  const [n1Mac, n2Mac] = [await mac('n1'), await mac('n2')];
  assert.ok(n1Mac && n2Mac);
  const clientNeighbour = async () => (await command(lab.logger, ['ip', '-n', lab.ns('client'), 'neigh', 'show', lab.vip6Ip, 'dev', 'eth0'])).stdout;
  assert.match(await clientNeighbour(), new RegExp(n1Mac), 'the client reaches the VIP at n1');

  const before = await cluster.group();
  const killedAt = Date.now();
  await lab.killHost('n1');
  // From now on, when the client's neighbour entry first names n2.
  let learnedAt: number | undefined;
  const watching = waitFor('the client to learn n2\'s MAC for the VIP', async () => ((await clientNeighbour()).includes(n2Mac) ? (learnedAt = Date.now()) : undefined), 60_000, 50);
  await expect(cluster, 'the client is served over the IPv6 VIP by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined));
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.equal(g.epoch, before!.epoch + 1);
  await watching;
  // The harness left n1's address where it was: the product made it harmless, not the lab.
  assert.deepEqual(await lab.vipHolders(lab.vip6), ['n1', 'n2'], 'the dead n1 still has the VIP configured');

  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.errors, [], `changes: ${JSON.stringify(samples.changes)}\n${await agentLogs(cluster)}`);
  assert.deepEqual(samples.dualSamples, [], 'never two live holders of the VIP in a sample');
  assert.deepEqual(samples.dualPeriods, [], 'never two live holders of the VIP, however briefly');
  assert.deepEqual(samples.holdersOverTime.at(-1)?.live, ['n2'], 'n2 is the one live holder at the end');
  const added = samples.changes.find((c) => c.host === 'n2' && c.added);
  assert.ok(added, 'the sampler saw n2 add the address');
  const learnMs = learnedAt! - added.at;
  const answered = seen.results.find((r) => r.ok && r.host === 'n2');
  t.diagnostic(`client-observed outage ${seen.longestGapMs} ms; n2 added the VIP ${Math.round(added.at - killedAt)} ms after the kill; the client had n2's MAC ${Math.round(learnMs)} ms after that; first answer from n2 ${answered ? answered.t - killedAt : '?'} ms after the kill`);
  assert.ok(learnMs < LEARN_BOUND_MS, `the client learned n2's MAC ${Math.round(learnMs)} ms after the add (bound ${LEARN_BOUND_MS} ms): no unsolicited neighbour advertisement?`);
  assert.ok(seen.longestGapMs < 15_000, `outage ${seen.longestGapMs} ms (generous bound)`);
});
