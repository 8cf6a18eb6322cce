/**
 * keepalived in the network lab (test/lab/keepalived.ts), the baseline of bench/failover.ts: it
 * must hold up as the bench uses it, or the bench's ratio compares HA-OSCAR with a broken setup.
 * VRRPv3 at 0.1 s (the tuned comparison), so the test takes seconds: the master serves the client
 * through the VIP; killed, the other host takes the VIP and serves; brought back as the bench
 * does (keepalived first, its link still down, then the link, then the service), the dead host
 * drops its stale VIP and stays BACKUP (nopreempt), and there are never two live holders.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NetLab } from './netlab.js';
import { LabKeepalived, keepalivedConfig, keepalivedSkipReason } from './keepalived.js';
import { waitFor } from '../support/wait.js';

test('keepalivedConfig refuses a timing VRRP cannot express', () => {
  assert.throws(() => keepalivedConfig('n1', '10.213.0.200/24', { version: 2, advertSeconds: 0.1 }), /VRRPv2 advertises in whole seconds/);
  assert.throws(() => keepalivedConfig('n1', '10.213.0.200/24', { version: 3, advertSeconds: 50 }), /out of VRRPv3's range/);
  assert.match(keepalivedConfig('n1', '10.213.0.200/24', { version: 3, advertSeconds: 0.1 }), /version 3\n {2}advert_int 0\.1\n/);
});

test('keepalived in the lab: the VIP moves on node death, a host brought back drops its stale VIP', { skip: keepalivedSkipReason() ?? false }, async (t) => {
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true });
  t.after(() => lab.close());
  const keepalived = new LabKeepalived(lab, { version: 3, advertSeconds: 0.1 });
  await keepalived.start();
  const vip = await lab.sampleVip(lab.vip);
  const client = await lab.probe(keepalived.url, { everyMs: 20, timeoutMs: 300 });
  const owner = await waitFor('the client is served through the VIP by keepalived\'s master', async () => {
    const host = client.lastOk()?.host;
    return host !== undefined && (await keepalived.state(host)) === 'MASTER' ? host : undefined;
  }, 30_000, 50);
  const other = owner === 'n1' ? 'n2' : 'n1';
  assert.equal(await keepalived.state(other), 'BACKUP');

  const killedAt = Date.now();
  await lab.killHost(owner);
  await waitFor(`the client is served by ${other}`, () => client.lastOk()?.host === other, 30_000, 20);
  await keepalived.waitForState(other, 'MASTER', 5_000);

  await keepalived.startKeepalived(owner);
  await keepalived.waitForStartup(owner, 30_000);
  // The killed keepalived saw its link go down before the SIGKILL reached it and may have
  // dropped the VIP then (FAULT); if not, the new one, in FAULT with the link down, does.
  assert.deepEqual(await lab.vipHolders(), [other], `${owner} holds no stale VIP once its keepalived has started`);
  await lab.reviveHost(owner);
  keepalived.startService(owner);
  await keepalived.waitForState(owner, 'BACKUP', 30_000);
  // Some adverts of the master later (0.1 s each), the host brought back has not taken the VIP.
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(await keepalived.state(owner), 'BACKUP', 'nopreempt: the host brought back stays BACKUP');

  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.errors, []);
  assert.deepEqual(samples.dualPeriods, [], 'never two live holders of the VIP');
  assert.deepEqual(samples.holdersOverTime.at(-1)?.live, [other]);
  const arp = await lab.arpingAddress();
  assert.deepEqual(arp.answers.map((a) => a.host), [other], `only ${other} answers ARP for the VIP:\n${arp.output}`);
  assert.equal(seen.lastOkBefore(Infinity)?.host, other, `the client is still served by ${other}`);
  const answered = seen.results.find((r) => r.ok && r.t >= killedAt && r.host === other);
  t.diagnostic(`keepalived VRRPv3 0.1 s: outage ${seen.longestGapMs} ms, first answer from ${other} ${answered ? answered.t - killedAt : '?'} ms after the kill`);
  // VRRPv3 at 0.1 s: master down after 3 adverts + skew (0.36 s); generous for a loaded machine.
  assert.ok(seen.longestGapMs < 5_000, `outage ${seen.longestGapMs} ms`);
});
