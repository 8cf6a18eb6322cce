/**
 * What a standby records of the series it follows (src/agent/file-sync.ts, issue 9 item 8): the
 * owner's announced generations, the last pull that completed, kept across an agent restart;
 * and what `syncState` answers a failover. The owner's heartbeats are scripted (ownerOf); rsync is
 * a script that succeeds, or fails, as told.
 */
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { FileSync, type OwnerView } from '../../src/agent/file-sync.js';
import { parseConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../support/wait.js';

const root = mkdtempSync(join(tmpdir(), 'haoscar-series-'));
after(() => rmSync(root, { recursive: true, force: true }));
const rsync = join(root, 'rsync');
const outcome = join(root, 'rsync-exit');
writeFileSync(rsync, `#!/bin/sh\nexit $(cat ${outcome})\n`);
chmodSync(rsync, 0o755);

const config = parseConfig(`
cluster: c1
agent: { stateDir: ${join(root, 'state')} }
sync: { rsync: ${rsync} }
nodes:
  - { name: n1, addresses: [127.0.0.1] }
  - { name: n2, addresses: [127.0.0.2] }
groups:
  - name: web
    resources:
      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
    fileSets:
      - { name: www, paths: [${join(root, 'www')}] }
`);

test('a standby counts the owner\'s announced generations and its last complete pull; kept across a restart; 0 behind as the owner', async () => {
  let owner: OwnerView | undefined = { node: 'n1', epoch: 7, sync: { 'web/www': [3, 0] } };
  let holds = false;
  const start = () => FileSync.start({ node: 'n2', config, secret: undefined, logger: silentLogger, holds: () => holds, heldEpoch: () => (holds ? 9 : undefined), ownerOf: () => owner, onViewChange: () => undefined });
  const record = (s: FileSync) => s.syncState('web').sets[0]!.record;

  writeFileSync(outcome, '10'); // pulls fail
  let sync = await start();
  sync.tick();
  assert.deepEqual(record(sync), { owner: 'n1', epoch: 7, announced: 3, pulled: null }, 'announced, nothing pulled completely yet');
  await waitFor('the failed pull to end', () => sync.status()[0]!.errors > 0 && !sync.status()[0]!.running);
  assert.equal(record(sync)?.pulled, null, 'a failed pull counts for nothing');

  writeFileSync(outcome, '0'); // pulls succeed
  owner = { node: 'n1', epoch: 7, sync: { 'web/www': [4, 0] } };
  await waitFor('a complete pull of generation 4', () => { sync.tick(); return record(sync)?.pulled === 4; }, 20_000, 100);
  // The owner announces two more batches; the standby cannot pull them (its pulls fail again).
  writeFileSync(outcome, '10');
  owner = { node: 'n1', epoch: 7, sync: { 'web/www': [6, 0] } };
  sync.tick();
  assert.deepEqual(record(sync), { owner: 'n1', epoch: 7, announced: 6, pulled: 4 });
  // An older series (a stale owner's packets) changes nothing.
  owner = { node: 'n3', epoch: 5, sync: { 'web/www': [50, 0] } };
  sync.tick();
  assert.deepEqual(record(sync), { owner: 'n1', epoch: 7, announced: 6, pulled: 4 });

  // The owner dies; the agent restarts: what it knew is read back.
  owner = undefined;
  await sync.close();
  const saved = JSON.parse(readFileSync(join(root, 'state', 'sync-series.json'), 'utf8')) as { records: Record<string, unknown> };
  assert.deepEqual(saved.records['web/www'], { owner: 'n1', epoch: 7, announced: 6, pulled: 4 });
  sync = await start();
  assert.deepEqual(sync.syncState('web'), { node: 'n2', group: 'web', sets: [{ set: 'www', record: { owner: 'n1', epoch: 7, announced: 6, pulled: 4 } }] });

  // A new owner (a new epoch): a new series, nothing pulled in it yet.
  owner = { node: 'n1', epoch: 8, sync: {} };
  sync.tick();
  assert.deepEqual(record(sync), { owner: 'n1', epoch: 8, announced: 0, pulled: null });

  // It holds the group itself: it is the source, 0 behind.
  owner = undefined;
  holds = true;
  sync.tick();
  assert.deepEqual(record(sync), { owner: 'n2', epoch: 9, announced: 0, pulled: 0 });
  await sync.close();
});
