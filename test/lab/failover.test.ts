/**
 * Failover in the network lab: two hosts with real agents, the VIP and a real HTTP service,
 * the dev server and the workflow worker on the root side, a client that requests the service
 * through the VIP every 20 ms, and a sampler of who holds the VIP in every namespace. Faults
 * are real (test/lab/README.md). Each test builds its own lab, so one failure does not leak
 * into the next.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';
import { NetLab } from './netlab.js';
import { LabCluster, GROUP } from './cluster.js';
import { encodePacket } from '../../src/heartbeat/packet.js';
import { waitFor } from '../support/wait.js';

const TIMING = {
  heartbeat: { interval: '100ms', deadtime: '500ms' },
  lease: { ttl: '600ms', margin: '150ms' },
  failover: { verifyTimeout: '500ms' },
};

async function setUp(t: TestContext, extra: string[] = []) {
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true, extra });
  const cluster = new LabCluster(lab, TIMING);
  t.after(async () => {
    if (process.env.HAOSCAR_LAB_KEEP) process.stderr.write(`lab kept in ${lab.dir}\n`);
    await cluster.close();
    await lab.close();
  });
  await cluster.start();
  const vip = await lab.sampleVip(lab.vip);
  const client = await lab.probe(cluster.url, { everyMs: 20, timeoutMs: 300 });
  await waitFor('the client is served through the VIP by n1', async () => (client.lastOk()?.host === 'n1' ? true : undefined), 30_000, 50);
  return { lab, cluster, vip, client };
}

/** Fails with the logs when `what` does not happen in time. */
async function expect<T>(cluster: LabCluster, what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  try {
    return await waitFor(what, fn, timeoutMs, 50);
  } catch (err) {
    const logs = await Promise.all(['n1', 'n2'].map(async (h) => `--- ${h}\n${(await cluster.agentLog(h)).split('\n').slice(-25).join('\n')}`));
    throw new Error(`${(err as Error).message}\n${logs.join('\n')}`);
  }
}

test('node death: the VIP answers from the standby', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t);
  const before = await cluster.group();
  const killedAt = Date.now();
  await lab.killHost('n1');
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined));
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.equal(g.epoch, before!.epoch + 1);
  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.dualSamples, [], 'never two holders of the VIP');
  assert.deepEqual(samples.errors, []);
  const answered = seen.firstOkAfter(killedAt);
  t.diagnostic(`client-observed outage ${seen.longestGapMs} ms; first answer from ${answered?.host} ${answered ? answered.t - killedAt : '?'} ms after the kill`);
  assert.ok(seen.longestGapMs < 15_000, `outage ${seen.longestGapMs} ms (generous bound)`);
});

test('partition between the nodes while both reach Temporal: no failover, a false alarm recorded', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t);
  const before = await cluster.group();
  await lab.partition('n1', 'n2');
  const state = await expect(cluster, 'a false alarm recorded', async () => {
    const s = await cluster.ownership();
    return s && s.falseAlarms.some((f) => f.group === GROUP && f.node === 'n1') ? s : undefined;
  });
  assert.match(state.falseAlarms.find((f) => f.node === 'n1')!.detail, /answered through its task queue/);
  // Longer than deadtime + verification + lease: a failover would have happened by now.
  await sleep(3000);
  const g = await cluster.group();
  assert.equal(g!.owner, 'n1');
  assert.equal(g!.epoch, before!.epoch);
  assert.equal(g!.state, 'running');
  await lab.healPartition('n1', 'n2');
  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual([...seen.answeredBy().keys()], ['n1'], 'only n1 ever answered');
  assert.ok(seen.longestGapMs < 1000, `no outage (longest gap ${seen.longestGapMs} ms)`);
  assert.deepEqual(samples.dualSamples, []);
  assert.deepEqual(samples.holdersOverTime.map((p) => p.holders), [['n1']], 'the VIP never moved');
});

test('owner cut off from everything: it drops the VIP by itself, the standby takes over, never two holders', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t);
  const before = await cluster.group();
  const cutAt = Date.now();
  await lab.isolate('n1');
  await expect(cluster, 'n1 drops the VIP by itself', async () => ((await lab.vipHolders()).includes('n1') ? undefined : true));
  const droppedAt = Date.now();
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined));
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.equal(g.epoch, before!.epoch + 1);
  assert.match(await cluster.agentLog('n1'), /lost the lease: stopping the group/);
  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.dualSamples, [], 'never two holders of the VIP');
  assert.deepEqual(samples.dualPeriods, [], 'not even between two samples');
  assert.deepEqual(samples.errors, []);
  t.diagnostic(`n1 dropped the VIP ${droppedAt - cutAt} ms after the cut; outage ${seen.longestGapMs} ms`);
  await lab.rejoin('n1');
});

test('a frozen owner resumed after a failover sees the newer epoch and stays down', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t);
  const before = await cluster.group();
  await lab.freeze('n1');
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined));
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group');
  assert.equal(g.epoch, before!.epoch + 1);
  const thawedAt = Date.now();
  await lab.thaw('n1');
  await expect(cluster, 'n1 drops the VIP once it runs again', async () => ((await lab.vipHolders()).includes('n1') ? undefined : true), 10_000);
  const droppedAfter = Date.now() - thawedAt;
  // Long enough for a heal, a lease round or a heartbeat to bring it back, if anything would.
  await sleep(3000);
  assert.deepEqual(await lab.vipHolders(), ['n2']);
  const after = await cluster.group();
  assert.equal(after!.owner, 'n2');
  assert.equal(after!.epoch, g.epoch, 'no further move');
  const seen = await client.stop();
  const samples = await vip.stop();
  // While n1 was frozen its kernel still had the address (a frozen machine cannot be made to
  // drop it; that is what fencing is for); from its first moment back it must not keep it.
  const lastDual = samples.dualPeriods.at(-1);
  assert.ok(lastDual === undefined || lastDual.to <= thawedAt + droppedAfter + 50, `no second holder after n1 dropped the VIP (${JSON.stringify(samples.dualPeriods)})`);
  assert.ok(samples.samples.filter((s) => s.at > thawedAt + droppedAfter + 50).every((s) => s.holders.join() === 'n2'));
  assert.equal(seen.lastOkBefore(Date.now())?.host, 'n2', 'the client is still served by n2');
  t.diagnostic(`n1 dropped the VIP ${droppedAfter} ms after SIGCONT`);
});

test('forged, replayed, truncated and oversized heartbeats from a third namespace change nothing', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t, ['intruder']);
  const before = await cluster.group();
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
  const log = await cluster.agentLog('n1');
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
