/**
 * The clone's opt-in boot loader step (src/clone/boot.ts): the commands it runs in a chroot of
 * the target root, with the running system's /dev, /proc, /sys and /run bound in (as slaves, so
 * their unmount never reaches the running system's mounts) and always unbound, also when a
 * command fails; and what it refuses. The commands go to a recording exec: grub-install and
 * update-initramfs are not run here (no kernel or boot loader in the test tree, no spare disk:
 * docs/clone.md#the-boot-loader).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bootFamilyOf, installBootLoader } from '../../src/clone/boot.js';
import { ExecError, type Exec } from '../../src/exec.js';
import { cloneInputSchema } from '../../workflows/inputs.js';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A root with these tools (empty files: nothing runs them). */
async function rootWith(tools: string[]): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'haoscar-boot-test-'));
  dirs.push(root);
  for (const t of tools) {
    await mkdir(join(root, t, '..'), { recursive: true });
    await writeFile(join(root, t), '');
  }
  return root;
}

const DEBIAN = ['/usr/sbin/update-initramfs', '/usr/sbin/grub-install', '/usr/sbin/update-grub'];
const isBlock = async (p: string) => p === '/dev/sdb';

function recorder(failOn?: string): { exec: Exec; ran: string[] } {
  const ran: string[] = [];
  const exec: Exec = async (file, args) => {
    const line = [file, ...args].join(' ');
    ran.push(line);
    if (failOn && line.includes(failOn)) throw new ExecError([file, ...args], 1, 'grub-install: error: cannot find a device for /boot/grub', false);
    return { exitCode: 0, stdout: '', stderr: '' };
  };
  return { exec, ran };
}

test('Debian: binds (made slaves), initramfs, grub-install on the device, update-grub, unbinds in reverse', async () => {
  const root = await rootWith(DEBIAN);
  const { exec, ran } = recorder();
  const r = await installBootLoader(exec, root, '/dev/sdb', { dryRun: false, isBlockDevice: isBlock });
  assert.equal(r.ok, true);
  assert.equal(r.family, 'Debian');
  const rel = ran.map((l) => l.split(root).join('ROOT'));
  assert.deepEqual(rel, [
    'mount --rbind /dev ROOT/dev', 'mount --make-rslave ROOT/dev',
    'mount --rbind /proc ROOT/proc', 'mount --make-rslave ROOT/proc',
    'mount --rbind /sys ROOT/sys', 'mount --make-rslave ROOT/sys',
    'mount --rbind /run ROOT/run', 'mount --make-rslave ROOT/run',
    'chroot ROOT /usr/sbin/update-initramfs -u -k all',
    'chroot ROOT /usr/sbin/grub-install /dev/sdb',
    'chroot ROOT /usr/sbin/update-grub',
    'umount --recursive --lazy ROOT/run', 'umount --recursive --lazy ROOT/sys', 'umount --recursive --lazy ROOT/proc', 'umount --recursive --lazy ROOT/dev',
  ]);
});

test('a failing grub-install stops the steps, is reported with its words, and the binds still come down', async () => {
  const root = await rootWith(DEBIAN);
  const { exec, ran } = recorder('grub-install');
  const r = await installBootLoader(exec, root, '/dev/sdb', { dryRun: false, isBlockDevice: isBlock });
  assert.equal(r.ok, false);
  const failed = r.steps.find((s) => s.ok === false);
  assert.match(failed?.argv.join(' ') ?? '', /grub-install \/dev\/sdb$/);
  assert.match(failed?.output ?? '', /cannot find a device for \/boot\/grub/);
  assert.ok(!ran.some((l) => l.includes('update-grub')), 'nothing after the failure');
  assert.deepEqual(ran.slice(-4).map((l) => l.split(' ').slice(0, 3).join(' ')), ['umount --recursive --lazy', 'umount --recursive --lazy', 'umount --recursive --lazy', 'umount --recursive --lazy']);
});

test('a bind that fails: only what was mounted is unmounted', async () => {
  const root = await rootWith(DEBIAN);
  const { exec, ran } = recorder(`--rbind /sys`);
  const r = await installBootLoader(exec, root, '/dev/sdb', { dryRun: false, isBlockDevice: isBlock });
  assert.equal(r.ok, false);
  assert.ok(!ran.some((l) => l.startsWith('chroot')), 'no command runs without its binds');
  assert.deepEqual(ran.filter((l) => l.startsWith('umount')).map((l) => l.split('/').pop()), ['proc', 'dev']);
});

test('a dry run lists the commands and runs none; RHEL tools are found too', async () => {
  const root = await rootWith(['/usr/bin/dracut', '/usr/sbin/grub2-install', '/usr/sbin/grub2-mkconfig']);
  const { exec, ran } = recorder();
  const r = await installBootLoader(exec, root, '/dev/sdb', { dryRun: true, isBlockDevice: isBlock });
  assert.deepEqual(ran, []);
  assert.equal(r.family, 'RHEL');
  assert.ok(r.steps.some((s) => s.argv.join(' ') === `chroot ${root} /usr/sbin/grub2-install /dev/sdb`));
  assert.ok(r.steps.every((s) => s.ok === undefined));
});

test('refused, nothing run: not a block device, or a clone without boot tools', async () => {
  const { exec, ran } = recorder();
  const debian = await rootWith(DEBIAN);
  // The real check: /dev/null is a character device.
  assert.match(JSON.stringify(await bootFamilyOf(debian, '/dev/null')), /\/dev\/null is not a block device/);
  const bare = await rootWith(['/usr/sbin/update-initramfs']);
  await assert.rejects(installBootLoader(exec, bare, '/dev/sdb', { dryRun: false, isBlockDevice: isBlock }), /no boot tools .*grub-pc and initramfs-tools/);
  assert.deepEqual(ran, []);
});

test('--boot-device is a path under /dev', () => {
  const base = { cluster: 'prod', from: 'alpha', to: 'beta', targetRoot: '/mnt/target' };
  for (const ok of ['/dev/sda', '/dev/nvme0n1', '/dev/disk/by-id/ata-X_123:0']) assert.ok(cloneInputSchema.safeParse({ ...base, bootDevice: ok }).success, ok);
  for (const bad of ['sda', '/dev/', '/dev/../etc/passwd', '/tmp/x', '/dev/sda; rm -rf /']) assert.ok(!cloneInputSchema.safeParse({ ...base, bootDevice: bad }).success, bad);
});
