/**
 * Collects a node's {@link Inventory} from its root: files read directly (os-release, fstab,
 * apt's sources and package state, .repo files), so the same code reads an offline tree (a
 * debootstrapped root in the tests); commands only where the files are a database (rpm) or
 * the facts are the running machine's (lsblk, on the live root `/` only).
 */
import { access, readdir, readFile, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Exec } from '../exec.js';
import { classifyDistro, KNOWN_FAMILIES } from '../distro/families.js';
import { parseOsRelease } from '../distro/os-release.js';
import {
  debianManualPackages, describeDevice, dpkgArchitecture, inventorySchema, LOCAL_FSTYPES, parseAptAutoInstalled, parseAptDeb822, parseAptSourcesList,
  parseDpkgStatus, parseFstab, parseLsblk, parseRpmRepoFile, type BlockDevice, type Filesystem, type Inventory, type Repository,
} from '../../workflows/recipe/inventory.js';

export class InventoryError extends Error {}

const read = (root: string, file: string) => readFile(join(root, file), 'utf8').catch(() => undefined);
const list = (root: string, dir: string, suffix: string) => readdir(join(root, dir)).then((names) => names.filter((n) => n.endsWith(suffix)).sort().map((n) => `${dir}/${n}`), () => [] as string[]);

/**
 * @param root `/` on a live node; a directory holding a system otherwise (no lsblk then: sizes unknown).
 * @throws InventoryError for a root with no os-release, or a distribution in no known family
 */
export async function collectInventory(root: string, opts: { node: string; exec: Exec }): Promise<Inventory> {
  const live = root === '/';
  const notes: string[] = [];
  const osText = (await read(root, 'etc/os-release')) ?? (await read(root, 'usr/lib/os-release'));
  if (osText === undefined) throw new InventoryError(`${root} has no etc/os-release or usr/lib/os-release: is it a system's root?`);
  const os = parseOsRelease(osText);
  const distro = classifyDistro(os);
  if (!distro) throw new InventoryError(`${os.name} (ID=${os.id}) is in no family a recipe can be written for (${KNOWN_FAMILIES})`);
  const codename = /^VERSION_CODENAME=["']?([A-Za-z0-9._-]+)/m.exec(osText)?.[1];

  let architecture: string | undefined;
  let manual: string[] = [];
  let how = '';
  const repositories: Repository[] = [];
  const rpmRoot = live ? [] : ['--root', root];
  if (distro.family === 'debian') {
    const status = parseDpkgStatus((await read(root, 'var/lib/dpkg/status')) ?? '');
    if (status.length === 0) throw new InventoryError(`${join(root, 'var/lib/dpkg/status')} lists no installed package`);
    architecture = dpkgArchitecture(status);
    manual = debianManualPackages(status, parseAptAutoInstalled((await read(root, 'var/lib/apt/extended_states')) ?? ''));
    how = "dpkg's status less apt's automatically installed (apt-mark showmanual) and priority required";
    for (const file of ['etc/apt/sources.list', ...(await list(root, 'etc/apt/sources.list.d', '.list'))]) {
      repositories.push(...parseAptSourcesList((await read(root, file)) ?? '', `/${file}`));
    }
    for (const file of await list(root, 'etc/apt/sources.list.d', '.sources')) repositories.push(...parseAptDeb822((await read(root, file)) ?? '', `/${file}`));
  } else {
    const repoDir = distro.family === 'rhel' ? 'etc/yum.repos.d' : 'etc/zypp/repos.d';
    for (const file of await list(root, repoDir, '.repo')) repositories.push(...parseRpmRepoFile((await read(root, file)) ?? '', `/${file}`));
    const names = (out: string) => [...new Set(out.split('\n').map((l) => l.trim()).filter((l) => /^[A-Za-z0-9][A-Za-z0-9+._-]*$/.test(l) && l !== 'gpg-pubkey'))].sort();
    const all = names((await opts.exec('rpm', [...rpmRoot, '-qa', '--qf', '%{NAME}\n'])).stdout);
    architecture = (await opts.exec('rpm', [...rpmRoot, '-q', '--qf', '%{ARCH}', 'rpm']).then((r) => r.stdout.trim(), () => undefined)) || undefined;
    if (distro.family === 'rhel') {
      // dnf knows what was asked for (its history); rpm alone does not.
      const asked = await opts.exec('dnf', [...(live ? [] : [`--installroot=${root}`]), '-q', '-C', 'repoquery', '--userinstalled', '--qf', '%{name}\n']).then((r) => names(r.stdout), () => undefined);
      if (asked && asked.length > 0) {
        manual = asked;
        how = 'dnf repoquery --userinstalled';
      } else {
        manual = all;
        how = 'rpm -qa (dnf could not tell which were installed on purpose)';
        notes.push('dnf repoquery --userinstalled gave nothing: every installed package is listed');
      }
    } else {
      const auto = new Set(((await read(root, 'var/lib/zypp/AutoInstalled')) ?? '').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#')));
      manual = all.filter((p) => !auto.has(p));
      how = "rpm -qa less zypper's /var/lib/zypp/AutoInstalled";
    }
  }
  if (!architecture) throw new InventoryError(`the architecture of ${root}'s packages could not be found`);

  const fstab = parseFstab((await read(root, 'etc/fstab')) ?? '');
  const devices: BlockDevice[] = live
    ? await opts.exec('lsblk', ['--json', '--bytes', '--output', 'NAME,TYPE,SIZE,MOUNTPOINT']).then((r) => parseLsblk(r.stdout), (err: unknown) => {
      notes.push(`lsblk failed (${err instanceof Error ? err.message.split('\n')[0] : String(err)}): sizes, LVM and RAID are unknown`);
      return [];
    })
    : [];
  if (!live) notes.push(`${root} is a directory, not the running system: its disks, sizes, LVM and RAID are not known (no lsblk)`);
  const filesystems: Filesystem[] = [];
  const leftOut: string[] = [];
  for (const e of fstab) {
    const swap = e.fstype === 'swap';
    // A mount point with a space cannot be written into the installers' formats: reported instead.
    const local = LOCAL_FSTYPES.has(e.fstype) && !/(^|,)(noauto|bind)(,|$)/.test(e.options) && !/\s/.test(e.mountpoint) && (e.fstype === 'swap' || e.mountpoint.startsWith('/'));
    if (!local) {
      leftOut.push(`${e.source} ${e.mountpoint} ${e.fstype} ${e.options}`);
      continue;
    }
    const dev = devices.find((d) => (swap ? d.mountpoint === '[SWAP]' && !filesystems.some((f) => f.device?.name === d.name) : d.mountpoint === e.mountpoint));
    filesystems.push({ mountpoint: swap ? 'swap' : e.mountpoint, fstype: e.fstype, source: e.source, options: e.options, ...(dev ? { sizeBytes: dev.sizeBytes, device: describeDevice(dev) } : {}) });
  }
  const disks = devices.filter((d) => d.type === 'disk' && d.sizeBytes > 0).map((d) => ({ name: d.name, sizeBytes: d.sizeBytes }));
  const efi = (live && (await access('/sys/firmware/efi').then(() => true, () => false))) || filesystems.some((f) => f.mountpoint === '/boot/efi');

  const locale = /^LANG=["']?([^"'\s]+)/m.exec(((await read(root, 'etc/default/locale')) ?? '') + ((await read(root, 'etc/locale.conf')) ?? ''))?.[1];
  const timezone = (await read(root, 'etc/timezone'))?.trim()
    || (await readlink(join(root, 'etc/localtime')).then((l) => /zoneinfo\/(.+)$/.exec(l)?.[1], () => undefined));

  // Validated here too, so a node never hands the workflow what its schema refuses.
  return inventorySchema.parse({
    node: opts.node, root,
    os: { id: os.id, idLike: os.idLike, name: os.name, ...(os.versionId ? { versionId: os.versionId } : {}), ...(codename ? { codename } : {}) },
    family: distro.family, architecture, repositories, packages: { manual, how }, filesystems, disks, efi,
    ...(locale ? { locale } : {}), ...(timezone ? { timezone } : {}), leftOut, notes,
  });
}
