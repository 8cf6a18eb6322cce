/**
 * The clone's fstab fix-up with real file systems: a small ext4 image mounted (through a loop
 * device) at the target root's /boot, read back with the real findmnt, and the target root's fstab
 * rewritten to its UUID and label as blkid reports them. Needs root and a free loop device; skipped
 * with the reason otherwise. The pure rules are table-tested in clone-plan.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyFixups, targetMounts, targetMountsOf } from '../../src/clone/fixups.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';

const exec = createExec(silentLogger);

function loopMountProblem(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (mount)';
  try {
    execFileSync('losetup', ['-f'], { stdio: 'pipe' });
    execFileSync('mkfs.ext4', ['-V'], { stdio: 'pipe' });
    return false;
  } catch (err) {
    return `no free loop device or no mkfs.ext4 here: ${String(err)}`;
  }
}

test('targetMountsOf keeps the mounts at and under the root, as mount points inside it, the top one of a stacked mount', () => {
  const json = JSON.stringify({
    filesystems: [
      { target: '/', source: '/dev/sda1', fstype: 'ext4', uuid: 'host-root', partuuid: null, label: null, partlabel: null },
      { target: '/mnt/target', source: '/dev/vda2', fstype: 'ext4', uuid: 'tgt-root', partuuid: 'p2', label: null, partlabel: null },
      { target: '/mnt/target/boot', source: '/dev/vda1', fstype: 'ext4', uuid: 'old', partuuid: null, label: null, partlabel: null },
      { target: '/mnt/target/boot', source: '/dev/vda3', fstype: 'ext4', uuid: 'top', partuuid: null, label: 'boot', partlabel: null },
      { target: '/mnt/targets', source: '/dev/vdc1', fstype: 'xfs', uuid: 'not-under', partuuid: null, label: null, partlabel: null },
    ],
  });
  assert.deepEqual(targetMountsOf(json, '/mnt/target/'), [
    { mountpoint: '/', source: '/dev/vda2', fstype: 'ext4', uuid: 'tgt-root', partuuid: 'p2' },
    { mountpoint: '/boot', source: '/dev/vda3', fstype: 'ext4', uuid: 'top', label: 'boot' },
  ]);
  assert.throws(() => targetMountsOf('{"filesystems": [{"source": "/dev/x"}]}', '/mnt/target'), /findmnt's answer is not what was asked for/);
});

test('a file system mounted at the target root\'s /boot: fstab names it by its own UUID and label; the unmounted root is reported', { skip: loopMountProblem() }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-fstab-'));
  const root = join(dir, 'root');
  const image = join(dir, 'boot.img');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(join(root, 'boot'));
  writeFileSync(image, Buffer.alloc(0));
  execFileSync('truncate', ['-s', '8M', image]);
  execFileSync('mkfs.ext4', ['-q', '-L', 'tgtboot', image]);
  execFileSync('mount', ['-o', 'loop', image, join(root, 'boot')]);
  t.after(() => {
    try {
      execFileSync('umount', [join(root, 'boot')]);
    } catch {
      // not mounted
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const uuid = execFileSync('blkid', ['-s', 'UUID', '-o', 'value', image], { encoding: 'utf8' }).trim();
  writeFileSync(join(root, 'etc/fstab'), 'UUID=0b6e2e63-source-root / ext4 errors=remount-ro 0 1\nUUID=5ca1ab1e-source-boot /boot ext4 defaults 0 2\nLABEL=srcboot /boot ext4 defaults 0 2\n');

  const mounts = await targetMounts(root, exec);
  assert.deepEqual(mounts.map((m) => [m.mountpoint, m.uuid, m.label, m.fstype]), [['/boot', uuid, 'tgtboot', 'ext4']]);
  const report = await applyFixups(root, { hostname: 'beta', addresses: [] }, { write: true, exec, mounts });
  assert.equal(readFileSync(join(root, 'etc/fstab'), 'utf8'), `UUID=0b6e2e63-source-root / ext4 errors=remount-ro 0 1\nUUID=${uuid} /boot ext4 defaults 0 2\nLABEL=tgtboot /boot ext4 defaults 0 2\n`);
  assert.deepEqual(report.changes.filter((c) => c.file === '/etc/fstab').map((c) => c.what), [
    `line 2: /boot: UUID=5ca1ab1e-source-boot -> UUID=${uuid} (the target's ${mounts[0]!.source})`,
    `line 3: /boot: LABEL=srcboot -> LABEL=tgtboot (the target's ${mounts[0]!.source})`,
  ]);
  assert.ok(report.warnings.some((w) => /\/etc\/fstab line 1 names a disk of the source: .*nothing is mounted at \/ under the target root/.test(w)), report.warnings.join('\n'));

  // Again (a retried step, or a second clone before the copy brings the source's fstab back): nothing to change.
  const again = await applyFixups(root, { hostname: 'beta', addresses: [] }, { write: true, exec, mounts });
  assert.deepEqual(again.changes.filter((c) => c.file === '/etc/fstab'), []);
});
