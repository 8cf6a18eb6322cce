/**
 * Data in the network lab: fail over, write on the new owner, bring the old owner back, resync
 * and switch back (`haoscar switchover`). Each host has its own data directory (a private
 * mount namespace), replicated by the agents with real rsync between the namespaces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { setUp, expect, LONG_LEASE } from './failover-setup.js';

async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue;
    const full = join(e.parentPath, e.name);
    out[full.slice(dir.length + 1)] = await readFile(full, 'utf8');
  }
  return out;
}

test('fail over, write on the new owner, bring the old one back: resync and switch back, nothing lost', async (t) => {
  const { lab, cluster, client } = await setUp(t, [], { fileSet: 'batch: 100ms, verifyEvery: 1h, excludes: ["*.tmp"]' }, LONG_LEASE);
  const n1 = cluster.hostData('n1');
  const n2 = cluster.hostData('n2');

  // Written on the owner (n1): replicated to n2 continuously; excluded files stay behind.
  await mkdir(join(n1, 'docs'), { recursive: true });
  await writeFile(join(n1, 'index.html'), 'before the failover\n');
  await writeFile(join(n1, 'docs', 'a.txt'), 'a, written on n1\n');
  await writeFile(join(n1, 'scratch.tmp'), 'not replicated\n');
  const written = Date.now();
  await expect(cluster, 'n2 has what n1 wrote', async () => ((await tree(n2).catch(() => ({})) as Record<string, string>)['docs/a.txt'] ? true : undefined));
  t.diagnostic(`continuous sync: on n2 ${Date.now() - written} ms after the write`);
  assert.deepEqual(Object.keys(await tree(n2)).sort(), ['docs/a.txt', 'index.html']);
  const state = await cluster.syncState('n2');
  const www = state?.sets.find((s) => s.set === 'www');
  assert.equal(www?.role, 'standby');
  assert.equal(www?.source, 'n1');
  assert.equal(www?.errors, 0);

  // n1 dies; n2 takes over and the data keeps changing there.
  await lab.killHost('n1');
  await cluster.waitForGroup((g) => g.owner === 'n2' && g.state === 'running', 'n2 owns the group');
  await writeFile(join(n2, 'docs', 'b.txt'), 'b, written on n2 while n1 was away\n');
  await writeFile(join(n2, 'index.html'), 'after the failover\n');
  // What n1 wrote just before it died, never replicated: n2 does not have it.
  await writeFile(join(n1, 'docs', 'only-on-n1.txt'), 'written on n1, never replicated\n');

  // n1 comes back as a standby and is brought up to date, then the group is switched back.
  await lab.reviveHost('n1');
  cluster.startAgent('n1');
  await expect(cluster, 'n1 up again', async () => ((await cluster.ownership())?.nodes.n1?.state === 'up' ? true : undefined), 60_000);
  const run = await cluster.cli(['switchover', 'web', '--to', 'n1', '--reason', 'lab: fail back']);
  assert.equal(run.exitCode, 0, run.all);
  assert.match(run.all ?? '', /moved from n2 to n1/);
  const g = await cluster.group();
  assert.equal(g?.owner, 'n1');
  assert.equal(g?.state, 'running');

  const onN1 = await tree(n1);
  assert.equal(onN1['docs/b.txt'], 'b, written on n2 while n1 was away\n', 'written during its absence');
  assert.equal(onN1['index.html'], 'after the failover\n');
  assert.equal(onN1['docs/a.txt'], 'a, written on n1\n', 'nothing written before is lost');
  assert.equal(onN1['scratch.tmp'], 'not replicated\n', 'an excluded file on the receiver is left alone');
  // The copy is the owner's, but what n1 had that n2 lacked was kept aside, not thrown away.
  assert.equal(onN1['docs/only-on-n1.txt'], undefined, 'the copy is the new owner\'s');
  const backups = join(cluster.lab.dir, 'hosts', 'n1', 'state', 'sync-backup', 'web', 'www');
  const kept = Object.entries(await tree(backups).catch(() => ({}) as Record<string, string>)).filter(([f]) => f.endsWith('/0/docs/only-on-n1.txt'));
  assert.equal(kept.length, 1, `n1's unreplicated file is in one backup under ${backups}:\n${JSON.stringify(await tree(backups).catch((e: unknown) => String(e)))}`);
  assert.equal(kept[0]![1], 'written on n1, never replicated\n');
  assert.match(await cluster.agentLog('n1'), /kept \d+ file\(s\) it deleted or replaced in [^"]*sync-backup\/web\/www\//);
  await expect(cluster, 'the client is served by n1 again', async () => (client.lastOk()?.host === 'n1' ? true : undefined));
});
