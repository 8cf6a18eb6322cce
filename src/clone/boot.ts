/**
 * The boot loader and initramfs of a clone whose disks differ from the source's (`haoscar clone
 * --boot-device DEV`, docs/clone.md#the-boot-loader): in a chroot of the target root, with the
 * running system's /dev, /proc, /sys and /run bound into it (grub-install and the initramfs tools
 * read the devices and the firmware from there), the initramfs is rebuilt and the boot loader
 * installed on DEV and configured. Opt-in only: it writes to a disk's boot sector, and which disk
 * is the standby's boot disk is known only to the administrator.
 *
 * Debian/Ubuntu (update-initramfs, grub-install, update-grub) and the RHEL family (dracut,
 * grub2-install, grub2-mkconfig) are known; a root with neither set of tools is refused, nothing
 * mounted. EFI: grub-install finds the ESP at /boot/efi if the administrator mounted it under the
 * target root.
 */
import { lstat, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exec } from '../exec.js';

/** The bind mounts, in mount order: the chroot's view of the running kernel and devices. */
export const BOOT_BINDS = ['dev', 'proc', 'sys', 'run'] as const;

export interface BootFamily {
  name: string;
  /** Paths inside the root that must exist (the tools it runs). */
  needs: string[];
  /** The commands, run in the chroot, in order; DEVICE is replaced by the boot device. */
  commands: string[][];
}

export const BOOT_FAMILIES: readonly BootFamily[] = [
  {
    name: 'Debian',
    needs: ['/usr/sbin/update-initramfs', '/usr/sbin/grub-install', '/usr/sbin/update-grub'],
    commands: [['/usr/sbin/update-initramfs', '-u', '-k', 'all'], ['/usr/sbin/grub-install', 'DEVICE'], ['/usr/sbin/update-grub']],
  },
  {
    name: 'RHEL',
    needs: ['/usr/bin/dracut', '/usr/sbin/grub2-install', '/usr/sbin/grub2-mkconfig'],
    commands: [['/usr/bin/dracut', '--force', '--regenerate-all'], ['/usr/sbin/grub2-install', 'DEVICE'], ['/usr/sbin/grub2-mkconfig', '-o', '/boot/grub2/grub.cfg']],
  },
];

export interface BootStep {
  /** The argv as run on the target (chroot, mount and umount included). */
  argv: string[];
  /** Its exit and the last lines it printed (absent on a dry run). */
  ok?: boolean;
  output?: string;
}

export interface BootLoaderResult {
  device: string;
  family: string;
  dryRun: boolean;
  steps: BootStep[];
  ok: boolean;
}

/**
 * The argvs of the whole step (pure): the bind mounts (each made a slave, so that unmounting the
 * binds never reaches the running system's own mounts under /dev or /sys), the family's commands
 * in a chroot, and the unmounts in reverse order.
 */
export function bootLoaderPlan(root: string, device: string, family: BootFamily): { mounts: string[][]; commands: string[][]; unmounts: string[][] } {
  const mounts = BOOT_BINDS.flatMap((d) => [['mount', '--rbind', `/${d}`, join(root, d)], ['mount', '--make-rslave', join(root, d)]]);
  const commands = family.commands.map((c) => ['chroot', root, ...c.map((a) => (a === 'DEVICE' ? device : a))]);
  const unmounts = [...BOOT_BINDS].reverse().map((d) => ['umount', '--recursive', '--lazy', join(root, d)]);
  return { mounts, commands, unmounts };
}

/** Why the boot step cannot run (the device, the root's tools), or the family it runs as. */
export async function bootFamilyOf(root: string, device: string, isBlockDevice = blockDevice): Promise<{ family: BootFamily } | { refused: string }> {
  if (!(await isBlockDevice(device))) return { refused: `${device} is not a block device on this node: name the standby's boot disk as the target sees it (lsblk), e.g. /dev/sda` };
  const has = async (p: string) => (await lstat(join(root, p)).catch(() => undefined)) !== undefined;
  for (const family of BOOT_FAMILIES) {
    const present = await Promise.all(family.needs.map(has));
    if (present.every(Boolean)) return { family };
  }
  return { refused: `the clone has no boot tools this knows (${BOOT_FAMILIES.map((f) => `${f.name}: ${f.needs.join(', ')}`).join('; ')}): install the boot loader and initramfs packages on the source (e.g. grub-pc and initramfs-tools) and clone again` };
}

async function blockDevice(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined))?.isBlockDevice() ?? false;
}

/**
 * Runs (or with `dryRun` lists) the boot step. The binds are always taken down, also when a
 * command fails. Steps stop at the first failure. @throws nothing for a failing command (it is
 * in the result); the refusal of bootFamilyOf as an Error.
 */
export async function installBootLoader(exec: Exec, root: string, device: string, opts: { dryRun: boolean; isBlockDevice?: (path: string) => Promise<boolean> }): Promise<BootLoaderResult> {
  const found = await bootFamilyOf(root, device, opts.isBlockDevice);
  if ('refused' in found) throw new Error(found.refused);
  const plan = bootLoaderPlan(root, device, found.family);
  if (opts.dryRun) {
    return { device, family: found.family.name, dryRun: true, steps: [...plan.mounts, ...plan.commands, ...plan.unmounts].map((argv) => ({ argv })), ok: true };
  }
  const steps: BootStep[] = [];
  const run = async (argv: string[]): Promise<boolean> => {
    try {
      const r = await exec(argv[0]!, argv.slice(1), { timeoutMs: 600_000, env: { LC_ALL: 'C', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
      steps.push({ argv, ok: true, output: lastLines(`${r.stdout}\n${r.stderr}`) });
      return true;
    } catch (err) {
      steps.push({ argv, ok: false, output: lastLines(err instanceof Error ? err.message : String(err)) });
      return false;
    }
  };
  let ok = true;
  let mounted = 0;
  try {
    for (const argv of plan.mounts) {
      if (!(ok = await run(argv))) break;
      mounted++;
    }
    if (ok) for (const argv of plan.commands) if (!(ok = await run(argv))) break;
  } finally {
    // Only what was mounted (a bind and its make-rslave are one pair), in reverse order.
    const made = new Set(BOOT_BINDS.slice(0, Math.ceil(mounted / 2)).map((d) => join(root, d)));
    for (const argv of plan.unmounts) if (made.has(argv[argv.length - 1]!)) await run(argv);
  }
  return { device, family: found.family.name, dryRun: false, steps, ok: ok && steps.every((s) => s.ok) };
}

function lastLines(text: string): string {
  return text.trim().split('\n').slice(-10).join('\n');
}
