/**
 * Rotating the cluster secret without an outage (issue 11 item 8, docs/reload.md#rotating-the-cluster-secret),
 * on two real agents and the workflow worker, through `haoscar reload` and SIGHUP as an
 * administrator runs them, while a client keeps using the service through the VIP:
 *
 * 1. every node and the worker accept the new secret beside the old one;
 * 2. every node signs with the new one (still accepting the old);
 * 3. every node drops the old one.
 *
 * A step taken too early is refused by the agent, named, and changes nothing: signing with the
 * new secret before the peer accepts it, dropping the old one while the peer still signs with it,
 * and dropping it while the workflow worker's lease answers are still signed with it. Throughout: the group stays where it is under the same epoch, the client is served,
 * no heartbeat is refused as forged. At the end a switchover (orders signed by the worker, the
 * nodes' answers, the CLI's signed request) works under the new secret alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { setUp, expect, LONG_LEASE } from './failover-setup.js';
import { haoscarCli } from '../support/lab.js';
import { readLocalStatus } from '../../src/agent/local-status.js';
import { loadHeartbeatSecret, secretKeyId } from '../../src/heartbeat/secret.js';

/** Rewrites a configuration file's heartbeat secret files (a node's own, or the shared one: the worker's). */
async function useSecrets(file: string, secretFile: string, accept: string[]): Promise<void> {
  const text = await readFile(file, 'utf8');
  const pattern = /secretFile: [^,}\s]+(, acceptSecretFiles: \[[^\]]*\])?/;
  assert.match(text, pattern, `${file} names its secret file`);
  await writeFile(file, text.replace(pattern, `secretFile: ${secretFile}${accept.length > 0 ? `, acceptSecretFiles: [${accept.join(', ')}]` : ''}`));
}

test('secret rotation: three reload steps on every node and the worker, no outage; three steps taken too early are refused', async (t) => {
  const { lab, cluster, vip, client } = await setUp(t, [], undefined, LONG_LEASE, undefined, { ownConfigFiles: true });
  const before = await cluster.group();
  const oldFile = cluster.secretFile;
  const newFile = join(lab.dir, 'authkey.new');
  await writeFile(newFile, `${randomBytes(32).toString('base64')}\n`);
  await chmod(newFile, 0o600);
  const [OLD, NEW] = [secretKeyId(await loadHeartbeatSecret(oldFile)), secretKeyId(await loadHeartbeatSecret(newFile))];
  const stateDir = join(lab.dir, 'state');
  const status = (h: string) => readLocalStatus(stateDir, h, 5000);
  const reload = async (h: string) => {
    const r = await haoscarCli('reload', '--config', cluster.configFileOf(h), '--node', h, '--json');
    return { exitCode: r.exitCode, outcome: JSON.parse(r.stdout || '{}') as { result?: string; refused?: { path: string; why: string }[] }, text: `${r.stdout}${r.stderr}` };
  };
  const step = async (h: string, secretFile: string, accept: string[]) => {
    await useSecrets(cluster.configFileOf(h), secretFile, accept);
    return reload(h);
  };
  const applied = async (h: string, secretFile: string, accept: string[], keys: string[]) => {
    const r = await step(h, secretFile, accept);
    assert.equal(r.outcome.result, 'applied', `${h}: ${r.text}`);
    assert.deepEqual((await status(h)).heartbeat?.keys, keys, `${h} signs with ${keys[0]} and accepts ${keys.slice(1).join(', ') || 'no other'}`);
  };
  const workerStep = async (secretFile: string, accept: string[], line: RegExp) => {
    const logged = (await cluster.workerLog()).length;
    await useSecrets(cluster.configFile, secretFile, accept);
    cluster.signalWorker('SIGHUP');
    await expect(cluster, `the worker reloads its secrets (${line})`, async () => (line.test((await cluster.workerLog()).slice(logged)) ? true : undefined), 30_000);
  };
  const rotationStart = Date.now();

  // Too early: n1 signs with the new secret while n2 does not accept it yet. Refused, nothing changes.
  const early = await step('n1', newFile, [oldFile]);
  assert.equal(early.outcome.result, 'refused', early.text);
  assert.match(early.outcome.refused?.map((r) => r.why).join('\n') ?? '', new RegExp(`n2 does not accept secret ${NEW} yet`));
  assert.deepEqual((await status('n1')).heartbeat?.keys, [OLD], 'n1 still signs with the old secret alone');

  // 1. Accept the new secret: the worker, n1, n2.
  await workerStep(oldFile, [newFile], new RegExp(`signs with ${OLD}, also accepts ${NEW} \\(SIGHUP\\)`));
  await applied('n1', oldFile, [newFile], [OLD, NEW]);
  await applied('n2', oldFile, [newFile], [OLD, NEW]);
  // 2. Sign with the new one: n1 first. n2 hears it under the new secret.
  await applied('n1', newFile, [oldFile], [NEW, OLD]);
  await expect(cluster, 'n2 hears n1 signing with the new secret', async () => ((await status('n2')).heartbeat?.peers.find((p) => p.node === 'n1')?.signsWith === NEW ? true : undefined), 10_000);
  // Too early: n1 drops the old secret while n2 still signs with it. Refused, nothing changes.
  const late = await step('n1', newFile, []);
  assert.equal(late.outcome.result, 'refused', late.text);
  assert.match(late.outcome.refused?.map((r) => r.why).join('\n') ?? '', new RegExp(`n2 still signs with secret ${OLD}`));
  assert.deepEqual((await status('n1')).heartbeat?.keys, [NEW, OLD]);
  await applied('n2', newFile, [oldFile], [NEW, OLD]);
  await expect(cluster, 'n1 hears n2 signing with the new secret', async () => ((await status('n1')).heartbeat?.peers.find((p) => p.node === 'n2')?.signsWith === NEW ? true : undefined), 10_000);
  // Too early: n1 drops the old secret while the worker's lease answers are still signed with it.
  const beforeWorker = await step('n1', newFile, []);
  assert.equal(beforeWorker.outcome.result, 'refused', beforeWorker.text);
  assert.match(beforeWorker.outcome.refused?.map((r) => r.why).join('\n') ?? '', new RegExp(`the workflow worker still signs with secret ${OLD}`));
  await workerStep(newFile, [oldFile], new RegExp(`signs with ${NEW}, also accepts ${OLD} \\(SIGHUP\\)`));
  // 3. Drop the old one, once the nodes have had a lease answer signed with the new secret (every ttl/3: 1.3 s).
  await new Promise((r) => setTimeout(r, 3000));
  await applied('n1', newFile, [], [NEW]);
  await applied('n2', newFile, [], [NEW]);
  await workerStep(newFile, [], new RegExp(`signs with ${NEW}, accepts no other \\(SIGHUP\\)`));
  const rotationEnd = Date.now();

  // No outage: the same owner under the same epoch, the client served, no packet refused as forged.
  // Several lease periods under the new secret alone: the worker's answers verify at the nodes.
  await new Promise((r) => setTimeout(r, 10_000));
  const after = await cluster.group();
  assert.equal(after?.owner, before?.owner);
  assert.equal(after?.epoch, before?.epoch, 'nothing changed hands during the rotation');
  for (const h of lab.hosts) {
    const s = await status(h);
    assert.equal(s.heartbeat?.rejected.forged ?? 0, 0, `${h} refused no heartbeat as forged`);
    assert.ok(s.heartbeat?.peers.every((p) => p.state === 'alive' && p.configMatches === true), `${h}: its peer is alive with the same configuration`);
  }
  // Under the new secret alone: orders, answers and the CLI's signed request.
  const move = await cluster.cli(['switchover', 'web', '--to', 'n2', '--reason', 'lab: after the secret rotation'], { timeoutMs: 120_000 });
  assert.equal(move.exitCode, 0, move.all);
  await expect(cluster, 'the client is served by n2', async () => (client.lastOk()?.host === 'n2' ? true : undefined), 60_000);
  const seen = await client.stop();
  const samples = await vip.stop();
  assert.deepEqual(samples.dualPeriods, [], 'never two live holders of the VIP');
  const failedDuringRotation = seen.results.filter((r) => !r.ok && r.t >= rotationStart && r.t <= rotationEnd + 10_000);
  assert.deepEqual(failedDuringRotation, [], 'the client is served throughout the rotation');
  t.diagnostic(`rotation of ${rotationEnd - rotationStart} ms (3 steps on 2 nodes and the worker, 3 refused); ${seen.results.filter((r) => r.t >= rotationStart && r.t <= rotationEnd).length} client requests during it, none failed`);
});
