/**
 * What a node's system is made of, for an unattended-install recipe that reproduces it
 * (`haoscar image recipe`, docs/clone.md#unattended-install-recipes): its distribution, package
 * manager's repositories, the packages installed on purpose and its file systems. Collected on
 * the node (collect.ts), validated with {@link inventorySchema} where it crosses Temporal, and
 * turned into preseed, kickstart or AutoYaST by the pure generators beside this file.
 *
 * Pure: the parsers of the files and command outputs the collection reads are here, so they are
 * table-tested without a machine of each family. No Node.js imports: the workflow (which may
 * generate the recipe) bundles this file.
 */
import { z } from 'zod';

/** A package name as dpkg and rpm allow it (`libc6`, `g++`, `python3.11`, `NetworkManager`). */
const packageName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9+._-]{0,199}$/, { error: 'expected a package name' });
/** Text that ends up in an installer file: one line, no NUL. */
const line = z.string().max(4096).regex(/^[^\n\r\0]*$/, { error: 'expected one line of text' });
const absolute = z.string().max(4096).regex(/^\/[^\n\r\0\s]*$/, { error: 'expected an absolute path without spaces' });

export const RECIPE_FAMILIES = ['debian', 'rhel', 'suse'] as const;

export const repositorySchema = z.strictObject({
  /** The repository's id (rpm families: the `[section]` of its .repo file). */
  name: line.optional(),
  /** `baseurl` (rpm) or the URI of a `deb` line; `mirrorlist`/`metalink` URLs are in `mirrorlist`. */
  uri: line.optional(),
  mirrorlist: line.optional(),
  /** apt: the suites (`bookworm`, `bookworm-updates`) and components (`main`, `contrib`). */
  suites: z.array(line).default([]),
  components: z.array(line).default([]),
  enabled: z.boolean().default(true),
  /** apt's `signed-by`, rpm's `gpgkey`: where the repository's key is on the node. */
  key: line.optional(),
  /** The file it was read from, for the report. */
  file: line,
});
export type Repository = z.infer<typeof repositorySchema>;

/** What a mounted file system (or swap) sits on, from lsblk: a partition, an LVM volume, a RAID, an encrypted container. */
export const deviceSchema = z.strictObject({
  kind: z.enum(['partition', 'disk', 'lvm', 'raid', 'crypt', 'other']),
  /** The kernel name (`sda2`, `dm-0`, `md0`) or dm name (`vg0-root`). */
  name: line,
  /** lvm: the volume group and logical volume (from the dm name, `vg0-root`). */
  vg: line.optional(),
  lv: line.optional(),
  /** raid: `raid1` ... */
  level: line.optional(),
  /** The disk under it (`sda`), when one. */
  disk: line.optional(),
  /** Layers between it and the disk (`crypt`, `raid1`), outermost first. */
  under: z.array(line).default([]),
});

export const filesystemSchema = z.strictObject({
  /** `/`, `/boot`, `/boot/efi`, `/var`; `swap` for swap. */
  mountpoint: z.union([absolute, z.literal('swap')]),
  fstype: line,
  /** The fstab source as written (`UUID=…`, `/dev/mapper/vg0-root`, `LABEL=…`). */
  source: line,
  options: line,
  sizeBytes: z.number().int().nonnegative().optional(),
  device: deviceSchema.optional(),
});
export type Filesystem = z.infer<typeof filesystemSchema>;

export const inventorySchema = z.strictObject({
  node: line,
  /** The root that was read: `/` on a live node, a directory in tests. */
  root: absolute,
  os: z.strictObject({
    id: line,
    idLike: z.array(line),
    name: line,
    versionId: line.optional(),
    /** `VERSION_CODENAME` (`bookworm`), what apt's suites are named after. */
    codename: line.optional(),
  }),
  family: z.enum(RECIPE_FAMILIES),
  /** dpkg's (`amd64`, `arm64`) on Debian, rpm's (`x86_64`, `aarch64`) elsewhere. */
  architecture: z.string().regex(/^[a-z0-9_]{1,32}$/),
  repositories: z.array(repositorySchema),
  packages: z.strictObject({
    /** Installed on purpose (not pulled in as a dependency), sorted. */
    manual: z.array(packageName),
    /** How they were found (`apt's extended_states`, `dnf repoquery --userinstalled` ...). */
    how: line,
  }),
  /** The file systems in fstab that are on a local block device, and swap. */
  filesystems: z.array(filesystemSchema),
  /** Whole disks (lsblk), for sizes and how many there are. */
  disks: z.array(z.strictObject({ name: line, sizeBytes: z.number().int().nonnegative() })),
  /** The node boots with UEFI (it has /sys/firmware/efi, or an EFI system partition at /boot/efi). */
  efi: z.boolean(),
  locale: line.optional(),
  timezone: line.optional(),
  /** Lines of fstab that are not part of the partitioning (network, tmpfs, bind, noauto), for the report. */
  leftOut: z.array(line),
  /** What could not be found out (no lsblk on a directory: no sizes ...). */
  notes: z.array(line),
});
export type Inventory = z.infer<typeof inventorySchema>;

/** File-system types an installer makes on a local block device. */
export const LOCAL_FSTYPES = new Set(['ext2', 'ext3', 'ext4', 'xfs', 'btrfs', 'vfat', 'swap']);

export interface FstabEntry {
  source: string;
  mountpoint: string;
  fstype: string;
  options: string;
}

/** fstab(5): whitespace-separated fields, `#` comments, `\040` for a space in a field. */
export function parseFstab(text: string): FstabEntry[] {
  const unescape = (f: string) => f.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  const out: FstabEntry[] = [];
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) continue;
    const [source, mountpoint, fstype, options] = l.split(/\s+/).map(unescape);
    if (!source || !mountpoint || !fstype) continue;
    out.push({ source, mountpoint, fstype, options: options ?? 'defaults' });
  }
  return out;
}

/** apt's one-line format (sources.list(5)): `deb [opts] URI suite [component...]`; deb-src lines are skipped. */
export function parseAptSourcesList(text: string, file: string): Repository[] {
  const out: Repository[] = [];
  for (const raw of text.split('\n')) {
    const l = raw.replace(/#.*$/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)((?:\s+\S+)*)$/.exec(l);
    if (!m) continue;
    const options = new Map((m[1] ?? '').trim().split(/\s+/).filter(Boolean).map((o) => o.split('=', 2) as [string, string]));
    const key = options.get('signed-by');
    out.push({ uri: m[2]!, suites: [m[3]!], components: (m[4] ?? '').trim().split(/\s+/).filter(Boolean), enabled: true, ...(key ? { key } : {}), file });
  }
  return out;
}

/** apt's deb822 format (`.sources`): stanzas of `Types:`, `URIs:`, `Suites:`, `Components:`, `Enabled:`, `Signed-By:`. */
export function parseAptDeb822(text: string, file: string): Repository[] {
  const out: Repository[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last = '';
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && last) {
        fields.set(last, `${fields.get(last)}\n${raw.trim()}`); // a continuation (an inline key)
        continue;
      }
      const m = /^([A-Za-z-]+):\s*(.*)$/.exec(raw);
      if (m) fields.set((last = m[1]!.toLowerCase()), m[2]!.trim());
    }
    if (!(fields.get('types') ?? '').split(/\s+/).includes('deb')) continue;
    const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    const enabled = !/^no$/i.test(fields.get('enabled') ?? 'yes');
    const signedBy = fields.get('signed-by');
    // An inline key (a whole armoured block) is not a path: say only that it is inline.
    const key = signedBy === undefined ? undefined : signedBy.includes('\n') || signedBy.startsWith('-----') ? '(inline key in the .sources file)' : signedBy;
    for (const uri of words('uris')) {
      out.push({ uri, suites: words('suites'), components: words('components'), enabled, ...(key ? { key } : {}), file });
    }
  }
  return out;
}

/** A yum/dnf or zypper `.repo` file (INI): one repository per `[section]`. Variables (`$releasever`) are kept as written. */
export function parseRpmRepoFile(text: string, file: string): Repository[] {
  const out: Repository[] = [];
  let current: { name: string; fields: Map<string, string> } | undefined;
  const flush = () => {
    if (!current) return;
    const f = current.fields;
    const uri = f.get('baseurl')?.split(/\s+/)[0];
    const mirrorlist = f.get('mirrorlist') ?? f.get('metalink');
    const key = f.get('gpgkey')?.split(/\s+/)[0];
    if (uri || mirrorlist) {
      out.push({ name: current.name, ...(uri ? { uri } : {}), ...(mirrorlist ? { mirrorlist } : {}), suites: [], components: [], enabled: !/^(0|no|false)$/i.test(f.get('enabled') ?? '1'), ...(key ? { key } : {}), file });
    }
  };
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (l === '' || l.startsWith('#') || l.startsWith(';')) continue;
    const section = /^\[([^\]]+)\]$/.exec(l);
    if (section) {
      flush();
      current = { name: section[1]!.trim(), fields: new Map() };
      continue;
    }
    const kv = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(l);
    if (kv && current) current.fields.set(kv[1]!.toLowerCase(), kv[2]!.trim());
  }
  flush();
  return out;
}

export interface DpkgPackage {
  name: string;
  architecture: string;
  priority: string;
  essential: boolean;
}

/** The installed packages of dpkg's status file (`Status: install ok installed`). */
export function parseDpkgStatus(text: string): DpkgPackage[] {
  const out: DpkgPackage[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(stanza)?.[1]?.trim();
    const name = field('Package');
    if (!name || !/\binstalled$/.test(field('Status') ?? '') || !/^install /.test(field('Status') ?? '')) continue;
    out.push({ name, architecture: field('Architecture') ?? 'all', priority: field('Priority') ?? 'optional', essential: field('Essential') === 'yes' });
  }
  return out;
}

/** The packages apt installed as dependencies (`Auto-Installed: 1` in /var/lib/apt/extended_states). */
export function parseAptAutoInstalled(text: string): Set<string> {
  const auto = new Set<string>();
  for (const stanza of text.split(/\n\s*\n/)) {
    const name = /^Package:\s*(\S+)/m.exec(stanza)?.[1];
    if (name && /^Auto-Installed:\s*1\s*$/m.test(stanza)) auto.add(name);
  }
  return auto;
}

/**
 * What `apt-mark showmanual` says, from the files it reads: installed, and not marked as
 * installed automatically. Packages of priority `required` are left out: every installer puts
 * them in the base system (debootstrap marks none of them automatic, so they would all count).
 */
export function debianManualPackages(status: DpkgPackage[], auto: Set<string>): string[] {
  return [...new Set(status.filter((p) => !auto.has(p.name) && p.priority !== 'required' && !p.essential).map((p) => p.name))].sort();
}

/** The architecture dpkg was installed for (its own package's), as `dpkg --print-architecture` prints it. */
export function dpkgArchitecture(status: DpkgPackage[]): string | undefined {
  return status.find((p) => p.name === 'dpkg')?.architecture;
}

/** One block device of `lsblk --json --bytes --output NAME,KNAME,TYPE,SIZE,FSTYPE,MOUNTPOINT` with its parents. */
export interface BlockDevice {
  name: string;
  type: string;
  sizeBytes: number;
  mountpoint?: string;
  /** The devices it sits on, nearest first (a partition's disk; an LV's PV, its RAID, its disk). */
  parents: { name: string; type: string }[];
}

/**
 * lsblk's JSON: a tree from the disks down (`children`). A device reached under two parents
 * (an LV on a RAID of two disks) appears once per parent; the first is kept.
 */
export function parseLsblk(json: string): BlockDevice[] {
  type Node = { name?: string; kname?: string; type?: string; size?: number | string; mountpoint?: string | null; mountpoints?: (string | null)[]; children?: Node[] };
  const parsed = JSON.parse(json) as { blockdevices?: Node[] };
  const out: BlockDevice[] = [];
  const seen = new Set<string>();
  const walk = (n: Node, parents: BlockDevice['parents']) => {
    const name = n.name ?? n.kname ?? '?';
    const type = n.type ?? 'unknown';
    if (!seen.has(name)) {
      seen.add(name);
      const mountpoint = n.mountpoint ?? n.mountpoints?.find((m): m is string => typeof m === 'string');
      out.push({ name, type, sizeBytes: Number(n.size ?? 0), ...(mountpoint ? { mountpoint } : {}), parents });
    }
    for (const c of n.children ?? []) walk(c, [{ name, type }, ...parents]);
  };
  for (const d of parsed.blockdevices ?? []) walk(d, []);
  return out;
}

/** A dm name `vg0-root` as LVM writes it: dashes inside a name are doubled (`my--vg-lv`). */
export function splitLvmName(dmName: string): { vg: string; lv: string } | undefined {
  const m = /^((?:[^-]|--)+)-((?:[^-]|--)+)$/.exec(dmName);
  return m ? { vg: m[1]!.replace(/--/g, '-'), lv: m[2]!.replace(/--/g, '-') } : undefined;
}

/** What a block device is, for the recipe. */
export function describeDevice(d: BlockDevice): z.infer<typeof deviceSchema> {
  const disk = [...d.parents].reverse().find((p) => p.type === 'disk')?.name ?? (d.type === 'disk' ? d.name : undefined);
  const under = d.parents.filter((p) => p.type === 'crypt' || p.type.startsWith('raid') || p.type === 'lvm').map((p) => p.type);
  const base = { name: d.name, ...(disk ? { disk } : {}), under };
  if (d.type === 'part') return { kind: 'partition', ...base };
  if (d.type === 'disk') return { kind: 'disk', ...base };
  if (d.type === 'lvm') return { kind: 'lvm', ...base, ...splitLvmName(d.name) };
  if (d.type.startsWith('raid')) return { kind: 'raid', ...base, level: d.type };
  if (d.type === 'crypt') return { kind: 'crypt', ...base };
  return { kind: 'other', ...base };
}
