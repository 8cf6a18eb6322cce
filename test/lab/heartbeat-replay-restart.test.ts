/**
 * Heartbeat replay after a restart, in the network lab (issue 9 item 10; docs/heartbeat.md,
 * "Restarts"). See failover-setup.ts.
 *
 * The standby's agent restarts. While it is down, someone on the link records what the owner
 * keeps sending to it (real packets, signed with the cluster's key); then the owner dies and
 * the recording is played to the standby's new agent. A replay window kept in memory knows
 * nothing after a restart: the recording would make the dead owner look alive. The new agent
 * must see the owner suspect, count the recording as `unproven`, and take the group over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { agentLogs, expect, setUp } from './failover-setup.js';

/** The recording: this many of the owner's packets (100 ms apart: 3 s, six deadtimes of the lab). */
const PACKETS = 30;
const INTERVAL_MS = 100;

/** Binds the standby's heartbeat address and prints what arrives (base64, JSON), N packets. */
const RECORD = `const d=require('node:dgram').createSocket('udp4');const n=+process.argv[2];const out=[];
d.on('message',(m)=>{out.push(m.toString('base64'));if(out.length===n){d.close();process.stdout.write(JSON.stringify(out),()=>process.exit(0));}});
d.bind(694,process.argv[1]);setTimeout(()=>{process.stderr.write('recorded only '+out.length);process.exit(1);},20000);`;
/** Sends the recorded packets to the standby, one every INTERVAL_MS. */
const PLAY = `const d=require('node:dgram').createSocket('udp4');const p=JSON.parse(process.argv[1]);let i=0;
const t=setInterval(()=>{if(i===p.length){clearInterval(t);d.close();return;}d.send(Buffer.from(p[i++],'base64'),694,process.argv[2]);},+process.argv[3]);`;

test('after its agent restarts, the standby is not fooled by a recording of the dead owner, and takes the group over', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t, ['intruder']);
  const before = await cluster.group();
  assert.equal(before?.owner, 'n1');

  // n2's agent stops (the first half of a restart); n1 goes on sending to it, and is recorded.
  const agent = cluster.agents.get('n2')!;
  process.kill(agent.pid!, 'SIGTERM');
  const exited = await Promise.race([agent, new Promise<undefined>((r) => setTimeout(r, 30_000, undefined))]);
  assert.ok(exited, `n2's agent stopped\n${await agentLogs(cluster)}`);
  const recorded = await lab.run('n2', [process.execPath, '-e', RECORD, lab.address('n2'), String(PACKETS)]);
  const recording = JSON.parse(recorded.stdout) as string[];
  assert.equal(recording.length, PACKETS);

  // n1 dies; n2's agent starts again (same state directory) and the recording is played to it.
  await lab.killHost('n1');
  const logFrom = (await cluster.agentLog('n2')).length;
  const newLog = async () => (await cluster.agentLog('n2')).slice(logFrom);
  cluster.startAgent('n2');
  await expect(cluster, "n2's new agent sends heartbeats", async () => ((await newLog()).includes('heartbeat started') ? true : undefined), 90_000);
  await lab.run('intruder', [process.execPath, '-e', PLAY, JSON.stringify(recording), lab.address('n2'), String(INTERVAL_MS)]);

  // Judged (either way): the line of the first rejection, or n1 "alive" from the recording.
  const judged = await expect(cluster, 'n2 judged the recording', async () => {
    const log = await newLog();
    return /rejected \(unproven|n1 is alive/.test(log) ? log : undefined;
  });
  assert.doesNotMatch(judged, /n1 is alive/, `a recording of the dead n1 must not make it alive to n2's restarted agent\n${await agentLogs(cluster)}`);
  assert.match(judged, /rejected \(unproven: from n1.*answers an earlier run of this agent/);
  await expect(cluster, 'n2 reports n1 suspect', async () => (/n1 is suspect/.test(await newLog()) ? true : undefined));

  // Failover still works: the group runs on n2, under a new epoch.
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group', 90_000);
  assert.ok(g.epoch > before!.epoch, `a new epoch (${before!.epoch} → ${g.epoch})`);
  assert.doesNotMatch(await newLog(), /n1 is alive/);
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined), 60_000);
  await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.dualPeriods, [], 'never two live holders of the VIP');
});
