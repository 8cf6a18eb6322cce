/**
 * An OCF resource agent as Debian's resource-agents ships it, in a failover (issue 12 item 1):
 * the group carries, besides its own VIP, a second address run by `ocf:heartbeat:IPaddr2`
 * (start, stop, monitor through the OCF API, src/drivers/ocf.ts). The owner dies; the address
 * moves with the group, and a client reaches the service through it on the standby. The dead
 * owner keeps the address (nothing tidies a dead machine); only one live host answers ARP for it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { setUp, expect } from './failover-setup.js';

const IPADDR2 = '/usr/lib/ocf/resource.d/heartbeat/IPaddr2';
/** The IPaddr2 address: .201 of the lab's subnet (the group's own VIP is .200). */
const ADDRESS_OCTET = 201;

test('ocf:heartbeat:IPaddr2 in a failover: the address moves with the group, the client reaches the standby through it', { skip: !existsSync(IPADDR2) && `${IPADDR2} is missing: apt-get install resource-agents` }, async (t) => {
  const { lab, cluster, vip, client } = await setUp(t, [], undefined, {
    resources: [(l) => `{ type: ocf, name: ip2, agent: "ocf:heartbeat:IPaddr2", params: { ip: "${addressIn(l.vipIp)}", cidr_netmask: "24", nic: eth0 }, check: { type: status, interval: 2s, timeout: 2s } }`],
  });
  const address = addressIn(lab.vipIp);
  const viaOcf = await lab.probe(cluster.url.replace(lab.vipIp, address), { everyMs: 50, timeoutMs: 300 });
  await expect(cluster, 'the client is served through the IPaddr2 address by n1', async () => (viaOcf.lastOk()?.host === 'n1' ? true : undefined), 30_000);
  const before = await cluster.group();
  const killedAt = Date.now();
  await lab.killHost('n1');
  await expect(cluster, 'the client is served through the IPaddr2 address by n2', async () => (viaOcf.lastOk()?.host === 'n2' ? true : undefined), 60_000);
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.equal(g.epoch, before!.epoch + 1);
  const arp = await lab.arpingAddress(address);
  assert.deepEqual(arp.answers.map((a) => a.host), ['n2'], `only n2 answers ARP for the IPaddr2 address:\n${arp.output}`);
  const seen = await viaOcf.stop();
  await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.dualPeriods, [], 'never two live holders of the group\'s VIP');
  const answered = seen.firstOkAfter(killedAt);
  t.diagnostic(`through the IPaddr2 address: outage ${seen.longestGapMs} ms; first answer from ${answered?.host} ${answered ? answered.t - killedAt : '?'} ms after the kill`);
});

const addressIn = (vipIp: string) => vipIp.replace(/\.\d+$/, `.${ADDRESS_OCTET}`);
