/** Heartbeats forged, replayed, truncated and oversized from a third namespace, in the network lab. See failover-setup.ts. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { setUp } from './failover-setup.js';
import { readFile } from 'node:fs/promises';
import { GROUP } from './cluster.js';
import { encodePacket } from '../../src/heartbeat/packet.js';

test('forged, replayed, truncated and oversized heartbeats from a third namespace change nothing', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t, ['intruder']);
  const before = await cluster.group();
  // Only what happens from the attack on counts (a slow start of the lab may have moved things before).
  const logBefore = (await cluster.agentLog('n1')).length;
  const key = Buffer.from((await readFile(cluster.secretFile, 'utf8')).trimEnd());
  const claim = { groups: { [GROUP]: { epoch: before!.epoch + 100, state: 'running' as const } } };
  const packet = (k: Buffer, incarnation: number, seq: number) =>
    encodePacket({ cluster: cluster.cluster, node: 'n2', incarnation, seq, sentAt: Date.now(), to: lab.address('n1'), view: claim }, k).toString('base64');
  const payloads = [
    // Forged: n2's name and a newer claim on the group, signed with another key.
    ...Array.from({ length: 20 }, (_, i) => packet(Buffer.from('not-the-cluster-secret-at-all!!'), Date.now(), 10_000 + i)),
    // Replayed: packets of an earlier run of n2 (signed with the real key, as captured then).
    ...Array.from({ length: 20 }, (_, i) => packet(key, 1_000_000 + i, 1 + i)),
    // Truncated and oversized.
    packet(key, 1, 1).slice(0, 40),
    Buffer.alloc(2000, 7).toString('base64'),
  ];
  const sender = `const d=require('node:dgram').createSocket('udp4');const p=JSON.parse(process.argv[1]);let n=0;for(const b of p)d.send(Buffer.from(b,'base64'),694,process.argv[2],()=>{if(++n===p.length)d.close()});`;
  for (let round = 0; round < 3; round++) {
    await lab.run('intruder', [process.execPath, '-e', sender, JSON.stringify(payloads), lab.address('n1')]);
    await sleep(300);
  }
  await sleep(2000);
  const g = await cluster.group();
  assert.equal(g!.owner, 'n1');
  assert.equal(g!.epoch, before!.epoch);
  const log = (await cluster.agentLog('n1')).slice(logBefore);
  assert.match(log, /forged/);
  assert.match(log, /replayed|older run/);
  assert.match(log, /truncated/);
  assert.match(log, /oversized/);
  assert.doesNotMatch(log, /lost the lease|stopping group/);
  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual([...seen.answeredBy().keys()], ['n1']);
  assert.ok(seen.longestGapMs < 1000, `no outage (longest gap ${seen.longestGapMs} ms)`);
  assert.deepEqual(samples.holdersOverTime.map((p) => p.holders), [['n1']]);
});
