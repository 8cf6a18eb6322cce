/**
 * The bookkeeping of the backups a pull keeps (src/sync/backup.ts): labels, counting, no empty
 * directories, retention of the newest `keep` per file set. Real directories.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { backupLabel, backupSetDir, countFiles, finishBackup } from '../../src/sync/backup.js';

void describe('sync backups', () => {
  const root = mkdtempSync(join(tmpdir(), 'haoscar-backup-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  void test('labels sort by time and say where the pull came from; the set dir is under the state dir', () => {
    assert.equal(backupLabel(new Date('2026-12-06T17:20:00.123Z'), 'n2', 7), '20261206T172000.123Z-from-n2-e7');
    assert.equal(backupLabel(new Date('2026-12-06T17:20:00.123Z'), 'n2', undefined), '20261206T172000.123Z-from-n2');
    assert.ok(backupLabel(new Date('2026-12-06T09:00:00Z'), 'n2', 1) < backupLabel(new Date('2026-12-06T10:00:00Z'), 'n1', 1));
    assert.equal(backupSetDir('/var/lib/haoscar', 'web', 'www'), '/var/lib/haoscar/sync-backup/web/www');
  });

  void test('a pull that kept files: counted (recursively); one that kept nothing leaves no directory', async () => {
    const setDir = join(root, 'count');
    mkdirSync(join(setDir, 'b', '0', 'docs'), { recursive: true });
    writeFileSync(join(setDir, 'b', '0', 'docs', 'x'), 'x');
    writeFileSync(join(setDir, 'b', '0', 'y'), 'y');
    assert.equal(await countFiles(join(setDir, 'nope')), 0);
    assert.deepEqual(await finishBackup(setDir, 'b', 5), { files: 2, dir: join(setDir, 'b'), pruned: [] });
    mkdirSync(join(setDir, 'c', '0'), { recursive: true }); // rsync made its dir, nothing moved into it
    assert.deepEqual(await finishBackup(setDir, 'c', 5), { files: 0, dir: undefined, pruned: [] });
    assert.ok(!existsSync(join(setDir, 'c')));
    assert.deepEqual(await finishBackup(setDir, 'never-made', 5), { files: 0, dir: undefined, pruned: [] });
  });

  void test('retention: the newest `keep` pulls of the set stay, older ones are removed', async () => {
    const setDir = join(root, 'keep');
    const labels = [1, 2, 3, 4].map((h) => backupLabel(new Date(Date.UTC(2026, 11, 6, h)), 'n2', h));
    for (const l of labels) {
      mkdirSync(join(setDir, l, '0'), { recursive: true });
      writeFileSync(join(setDir, l, '0', 'f'), l);
    }
    const done = await finishBackup(setDir, labels[3]!, 2);
    assert.equal(done.files, 1);
    assert.deepEqual(done.pruned, [join(setDir, labels[0]!), join(setDir, labels[1]!)]);
    assert.deepEqual(readdirSync(setDir).sort(), [labels[2], labels[3]]);
  });
});
