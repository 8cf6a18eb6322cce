/**
 * The per-node fix-ups of a clone, applied to the files under a root directory (the target's
 * offline root, or for `--dry-run` a scratch copy of the source's few files they read): the
 * planner's pure functions (workflows/clone-plan.ts) over what this reads, written back in
 * place with the file's owner and mode kept.
 */
import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, readdir, readFile, realpath, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Exec } from '../exec.js';
import { checkDiskNames, fixFstab, fixHostname, fixHosts, fixNetworkFile, machineIdOf, NETWORK_LOCATIONS, type AddressChange, type FileFix, type TargetMount } from '../../workflows/clone-plan.js';

export interface FixupRequest {
  hostname: string;
  addresses: AddressChange[];
}

export interface FixupChange {
  /** The path inside the root, e.g. /etc/hostname. */
  file: string;
  what: string;
}

export interface FixupReport {
  changes: FixupChange[];
  warnings: string[];
  /** `ssh-keygen -l` of the clone's host public keys: the lines to check known_hosts against. */
  hostKeys: string[];
}

/** Files a dry run needs from the source, as rsync filter rules (each with its parents). */
export const FIXUP_SOURCE_FILTERS = [
  '+ /etc/', '+ /etc/hostname', '+ /etc/hosts', '+ /etc/fstab', '+ /etc/crypttab',
  '+ /etc/network/', '+ /etc/network/interfaces', '+ /etc/network/interfaces.d/', '+ /etc/network/interfaces.d/*',
  '+ /etc/netplan/', '+ /etc/netplan/*',
  '+ /etc/NetworkManager/', '+ /etc/NetworkManager/system-connections/', '+ /etc/NetworkManager/system-connections/*',
  '+ /etc/sysconfig/', '+ /etc/sysconfig/network/', '+ /etc/sysconfig/network/ifcfg-*', '+ /etc/sysconfig/network-scripts/', '+ /etc/sysconfig/network-scripts/ifcfg-*',
  '- *',
] as const;

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'EISDIR') return undefined;
    throw err;
  }
}

/** Replaces a file's content, keeping its owner and mode; a symbolic link is not followed out of the root. */
async function replaceFile(path: string, content: string): Promise<void> {
  const st = await lstat(path).catch(() => undefined);
  if (st?.isSymbolicLink()) throw new Error(`${path} is a symbolic link: not rewritten (it could point out of the clone's root)`);
  const tmp = `${path}.haoscar-clone-${process.pid}`;
  await writeFile(tmp, content, { mode: st ? st.mode & 0o7777 : 0o644 });
  if (st) {
    await chown(tmp, st.uid, st.gid);
    await chmod(tmp, st.mode & 0o7777);
  }
  await rename(tmp, path);
}

const FINDMNT_SCHEMA = z.object({
  filesystems: z.array(z.object({
    target: z.string(),
    source: z.string().nullish(),
    fstype: z.string().nullish(),
    uuid: z.string().nullish(),
    partuuid: z.string().nullish(),
    label: z.string().nullish(),
    partlabel: z.string().nullish(),
  })),
});

/**
 * The file systems mounted at `root` and under it, from `findmnt -J -l -o
 * TARGET,SOURCE,FSTYPE,UUID,PARTUUID,LABEL,PARTLABEL` (all of the machine's mounts), with their
 * mount points as seen inside `root`. `root` must be a real path (no symbolic link in it). Pure.
 * @throws Error when the text is not findmnt's JSON.
 */
export function targetMountsOf(findmntJson: string, root: string): TargetMount[] {
  const parsed = FINDMNT_SCHEMA.safeParse(JSON.parse(findmntJson));
  if (!parsed.success) throw new Error(`findmnt's answer is not what was asked for: ${parsed.error.issues[0]?.message ?? ''}`);
  const base = root.replace(/\/+$/, '');
  const mounts = new Map<string, TargetMount>();
  for (const fs of parsed.data.filesystems) {
    if (fs.target !== base && !fs.target.startsWith(`${base}/`)) continue;
    const mountpoint = fs.target.slice(base.length) || '/';
    // A mount point mounted over twice: the last one listed is the one on top.
    mounts.set(mountpoint, {
      mountpoint,
      ...(fs.source ? { source: fs.source } : {}), ...(fs.fstype ? { fstype: fs.fstype } : {}), ...(fs.uuid ? { uuid: fs.uuid } : {}),
      ...(fs.partuuid ? { partuuid: fs.partuuid } : {}), ...(fs.label ? { label: fs.label } : {}), ...(fs.partlabel ? { partlabel: fs.partlabel } : {}),
    });
  }
  return [...mounts.values()];
}

/** What is mounted at the target root and under it on this machine (the target), for fstab. */
export async function targetMounts(root: string, exec: Exec, findmnt = 'findmnt'): Promise<TargetMount[]> {
  const { stdout } = await exec(findmnt, ['-J', '-l', '-o', 'TARGET,SOURCE,FSTYPE,UUID,PARTUUID,LABEL,PARTLABEL'], { timeoutMs: 30_000 });
  return targetMountsOf(stdout, await realpath(root));
}

/**
 * Applies (or with `write: false`, only computes) the fix-ups under `root`. `mounts`: the
 * target's file systems under its target root (targetMounts), whose names go into fstab.
 * @throws the file system's error, or ExecError from ssh-keygen.
 */
export async function applyFixups(root: string, req: FixupRequest, opts: { write: boolean; exec: Exec; sshKeygen?: string; mounts: readonly TargetMount[] }): Promise<FixupReport> {
  const report: FixupReport = { changes: [], warnings: [], hostKeys: [] };
  const apply = async (file: string, fix: FileFix) => {
    report.warnings.push(...fix.warnings.map((w) => `${file}: ${w}`));
    if (fix.content === undefined) return;
    report.changes.push(...fix.changes.map((what) => ({ file, what })));
    if (opts.write) await replaceFile(join(root, file), fix.content);
  };

  // ---- host name, /etc/hosts
  const oldHostname = (await readText(join(root, 'etc/hostname')))?.trim() ?? '';
  await apply('/etc/hostname', fixHostname(oldHostname, req.hostname));
  const hosts = await readText(join(root, 'etc/hosts'));
  if (hosts !== undefined && oldHostname !== '') await apply('/etc/hosts', fixHosts(hosts, oldHostname, req.hostname));

  // ---- machine ID: never copied; the target keeps its own, or gets a new one.
  const machineId = (await readText(join(root, 'etc/machine-id')))?.trim();
  if (machineId === undefined || machineId === '' || machineId === 'uninitialized') {
    const id = machineIdOf(randomBytes(16));
    report.changes.push({ file: '/etc/machine-id', what: `new machine ID${opts.write ? ` ${id}` : ''}` });
    if (opts.write) await writeFile(join(root, 'etc/machine-id'), `${id}\n`, { mode: 0o444 });
  }
  const dbusDir = await lstat(join(root, 'var/lib/dbus')).catch(() => undefined);
  if (dbusDir?.isDirectory() && !(await lstat(join(root, 'var/lib/dbus/machine-id')).catch(() => undefined))) {
    report.changes.push({ file: '/var/lib/dbus/machine-id', what: 'link to /etc/machine-id' });
    if (opts.write) await symlink('/etc/machine-id', join(root, 'var/lib/dbus/machine-id'));
  }

  // ---- ssh host keys: never copied; the target keeps its own, or gets new ones.
  const sshDir = join(root, 'etc/ssh');
  const sshFiles = await readdir(sshDir).catch(() => undefined);
  if (sshFiles !== undefined) {
    const keys = sshFiles.filter((f) => /^ssh_host_.*_key$/.test(f));
    if (keys.length === 0) {
      report.changes.push({ file: '/etc/ssh/ssh_host_*_key', what: 'new host keys (ssh-keygen -A)' });
      // -f ROOT: the keys are written under ROOT/etc/ssh, with ROOT's own paths.
      if (opts.write) await opts.exec(opts.sshKeygen ?? 'ssh-keygen', ['-A', '-f', root], { timeoutMs: 60_000 });
    }
    if (opts.write) {
      for (const pub of (await readdir(sshDir)).filter((f) => /^ssh_host_.*_key\.pub$/.test(f)).sort()) {
        const { stdout } = await opts.exec(opts.sshKeygen ?? 'ssh-keygen', ['-l', '-f', join(sshDir, pub)], { timeoutMs: 10_000 });
        report.hostKeys.push(stdout.trim());
      }
    }
  }

  // ---- the node's addresses in each network configuration format there is
  for (const loc of NETWORK_LOCATIONS) {
    const names = await readdir(join(root, loc.dir)).catch(() => [] as string[]);
    for (const name of names.filter((n) => loc.name.test(n)).sort()) {
      const file = `/${loc.dir}/${name}`;
      const st = await lstat(join(root, file));
      if (!st.isFile()) continue;
      await apply(file, fixNetworkFile(loc.format, await readFile(join(root, file), 'utf8'), req.addresses));
    }
  }

  // ---- disks: fstab's names of the source's file systems become the target's where it has them
  // mounted under the target root; the rest, and crypttab's containers, are reported.
  const fstab = await readText(join(root, 'etc/fstab'));
  if (fstab !== undefined) await apply('/etc/fstab', fixFstab(fstab, opts.mounts));
  const crypttab = await readText(join(root, 'etc/crypttab'));
  if (crypttab !== undefined) report.warnings.push(...checkDiskNames('/etc/crypttab', crypttab));
  return report;
}
