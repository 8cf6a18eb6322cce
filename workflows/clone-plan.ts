/**
 * The pure part of a standby clone (the SystemImager role, docs/clone.md): what is copied from
 * the source's root (include/exclude), and the per-node fix-ups that make the copy a different
 * machine, as text-to-text functions over the files they change. No I/O: the workflow plans
 * with it, the target node's activities apply it to the files they read, and the table tests
 * pin it down.
 */

/**
 * Never copied, whatever the configuration says: kernel and runtime file systems, scratch,
 * the mount points of other file systems, and the files that are the machine's own identity
 * (the target keeps its own ones, or gets new ones: the source's private host keys never
 * cross). Anchored at the root (rsync: a leading `/` is the transfer's root).
 */
export const CLONE_ALWAYS_EXCLUDED = [
  '/proc/*', '/sys/*', '/dev/*', '/run/*', '/tmp/*', '/var/tmp/*',
  '/mnt/*', '/media/*', '/lost+found',
  '/swapfile', '/swap.img',
  '/etc/machine-id', '/var/lib/dbus/machine-id',
  '/etc/ssh/ssh_host_*',
] as const;

/** What the planner needs to know of the cluster (from haoscar.yaml, on the cluster queue). */
export interface CloneFacts {
  nodes: { name: string; addresses: string[] }[];
  /** The agent's state directory (its epochs, backups, partial files): each node's own. */
  stateDir: string;
  /** Mount points of the groups' `filesystem` resources: the groups' data, not the system. */
  groupMountpoints: string[];
  /** `clone:` in haoscar.yaml. */
  clone: { include: string[]; exclude: string[] };
}

export interface CloneRequest {
  from: string;
  to: string;
  /** The host name the clone gets; default: the target node's name. */
  hostname?: string;
}

export interface AddressChange { from: string; to: string }

export interface ClonePlan {
  from: string;
  to: string;
  /** rsync filter rules in order: `+ PATTERN` and `- PATTERN`. */
  filters: string[];
  /** Excluded paths, for the report. */
  excluded: string[];
  hostname: string;
  /** The source's addresses (IP literals in `nodes:`) and what they become, paired by position. */
  addresses: AddressChange[];
  /** What the planner could not decide by itself: the operator reads these. */
  warnings: string[];
}

/** An IPv4 or IPv6 literal (host names in `nodes:` are not rewritten). */
export function isIpLiteral(text: string): boolean {
  return /^\d{1,3}(\.\d{1,3}){3}$/.test(text) || (/^[0-9A-Fa-f:.]+$/.test(text) && text.includes(':'));
}

/**
 * The clone of `from` onto `to`: its filters, host name and address changes.
 * @throws Error naming what is wrong (unknown node, the same node twice, a relative pattern).
 */
export function planClone(facts: CloneFacts, req: CloneRequest): ClonePlan {
  const known = facts.nodes.map((n) => n.name).join(', ');
  const source = facts.nodes.find((n) => n.name === req.from);
  const target = facts.nodes.find((n) => n.name === req.to);
  if (!source) throw new Error(`unknown source node '${req.from}' (known: ${known})`);
  if (!target) throw new Error(`unknown target node '${req.to}' (known: ${known})`);
  if (source.name === target.name) throw new Error(`the source and the target are the same node '${req.from}'`);
  const { filters, excluded } = planFilters(facts);
  const { addresses, warnings } = planAddresses(source, target);
  return { from: source.name, to: target.name, filters, excluded, hostname: req.hostname ?? target.name, addresses, warnings };
}

/**
 * What a copy of a root leaves out and takes in (a clone, an image's capture and its deploy):
 * the rsync filter rules in order, and the excluded paths for the report.
 * @throws Error on a relative pattern in `clone:`.
 */
export function planFilters(facts: Pick<CloneFacts, 'stateDir' | 'groupMountpoints' | 'clone'>): { filters: string[]; excluded: string[] } {
  for (const p of [...facts.clone.include, ...facts.clone.exclude]) {
    if (!p.startsWith('/')) throw new Error(`clone pattern '${p}' is not absolute (patterns start at the root, like /srv/cache)`);
  }
  const own = [
    `${withoutSlash(facts.stateDir)}/*`,
    ...facts.groupMountpoints.map((m) => `${withoutSlash(m)}/*`),
  ];
  const excluded = unique([...CLONE_ALWAYS_EXCLUDED, ...own, ...facts.clone.exclude]);
  // rsync takes the first matching rule. Exclusions first: an include cannot bring /proc back.
  // Then each include and its parent directories (rsync must enter a directory to reach what
  // is inside), then everything else out, unless the whole root is included.
  const filters = excluded.map((p) => `- ${p}`);
  const includes = facts.clone.include.map(withoutSlash);
  if (includes.includes('')) {
    filters.push('+ /**');
  } else {
    const parents = unique(includes.flatMap(parentsOf));
    filters.push(...parents.map((p) => `+ ${p}/`), ...includes.flatMap((p) => [`+ ${p}`, `+ ${p}/**`]), '- *');
  }
  return { filters, excluded };
}

/**
 * The source's IP addresses (from `nodes:`) and the target's, paired by position, with what
 * the operator must check: a count that differs, host names (not rewritten).
 */
export function planAddresses(source: { name: string; addresses: string[] }, target: { name: string; addresses: string[] }): { addresses: AddressChange[]; warnings: string[] } {
  const warnings: string[] = [];
  const ips = (n: { addresses: string[] }) => n.addresses.filter(isIpLiteral);
  const fromIps = ips(source);
  const toIps = ips(target);
  const addresses = fromIps.slice(0, toIps.length).map((a, i) => ({ from: a, to: toIps[i]! }));
  if (fromIps.length !== toIps.length) {
    warnings.push(`${source.name} has ${fromIps.length} IP address(es) in nodes: and ${target.name} has ${toIps.length}: only the first ${addresses.length} are rewritten; check the network configuration of the clone`);
  }
  if (source.addresses.length !== fromIps.length) warnings.push(`host names in ${source.name}'s addresses are not rewritten in the network configuration`);
  return { addresses, warnings };
}

function withoutSlash(p: string): string {
  return p.replace(/\/+$/, '');
}

function parentsOf(p: string): string[] {
  const parts = p.split('/').filter(Boolean);
  return parts.slice(0, -1).map((_, i) => `/${parts.slice(0, i + 1).join('/')}`);
}

function unique<T>(xs: T[]): T[] {
  return [...new Set(xs)];
}

// ------------------------------------------------------------------------------------ fix-ups

/** The network configuration formats whose addresses are rewritten. */
export const NETWORK_FORMATS = ['ifupdown', 'netplan', 'networkmanager', 'sysconfig'] as const;
export type NetworkFormat = (typeof NETWORK_FORMATS)[number];

/** Where each format lives, relative to the root (a directory's files are all read). */
export const NETWORK_LOCATIONS: readonly { format: NetworkFormat; dir: string; name: RegExp }[] = [
  { format: 'ifupdown', dir: 'etc/network', name: /^interfaces$/ },
  { format: 'ifupdown', dir: 'etc/network/interfaces.d', name: /^[^.]/ },
  { format: 'netplan', dir: 'etc/netplan', name: /\.ya?ml$/ },
  { format: 'networkmanager', dir: 'etc/NetworkManager/system-connections', name: /\.nmconnection$/ },
  // wicked (openSUSE) and the RHEL family's network-scripts share the ifcfg format.
  { format: 'sysconfig', dir: 'etc/sysconfig/network', name: /^ifcfg-/ },
  { format: 'sysconfig', dir: 'etc/sysconfig/network-scripts', name: /^ifcfg-/ },
];

/** Keys whose value names a network card by its hardware address: right on the source only. */
const MAC_KEYS: Record<NetworkFormat, RegExp> = {
  ifupdown: /^\s*hwaddress\b/,
  netplan: /^\s*macaddress\s*:/,
  networkmanager: /^\s*(mac-address|cloned-mac-address)\s*=/,
  sysconfig: /^\s*(HWADDR|MACADDR|LLADDR)\s*=/,
};

export interface FileFix {
  /** The new content; undefined when nothing changes. */
  content: string | undefined;
  /** One line per change, for the report and --dry-run. */
  changes: string[];
  warnings: string[];
}

/**
 * The node's own addresses in one network configuration file, each replaced by the target's
 * address in the same position, as whole tokens (10.0.0.1 is not part of 10.0.0.12), all at
 * once (a swap of two addresses is not applied twice). Comments are left alone. Lines that
 * pin a hardware address are reported: the target's cards have other ones.
 */
export function fixNetworkFile(format: NetworkFormat, content: string, addresses: readonly AddressChange[]): FileFix {
  const changes: string[] = [];
  const warnings: string[] = [];
  const map = new Map(addresses.filter((a) => a.from !== a.to).map((a) => [a.from.toLowerCase(), a.to]));
  const lines = content.split('\n').map((line, i) => {
    if (/^\s*[#;]/.test(line)) return line;
    if (MAC_KEYS[format].test(line)) warnings.push(`line ${i + 1} pins a hardware (MAC) address, which is the source's: ${line.trim()}`);
    if (map.size === 0) return line;
    // Whole tokens only: nothing address-like may touch either end.
    const replaced = line.replace(/(?<![0-9A-Za-z.:])[0-9A-Fa-f.:]+(?![0-9A-Za-z.:])/g, (token) => map.get(token.toLowerCase()) ?? token);
    if (replaced !== line) changes.push(`line ${i + 1}: ${line.trim()} -> ${replaced.trim()}`);
    return replaced;
  });
  return { content: changes.length > 0 ? lines.join('\n') : undefined, changes, warnings };
}

/** `/etc/hostname`: the new name, alone on its line. */
export function fixHostname(content: string, hostname: string): FileFix {
  const old = content.trim();
  if (old === hostname) return { content: undefined, changes: [], warnings: [] };
  return { content: `${hostname}\n`, changes: [`${old || '(empty)'} -> ${hostname}`], warnings: [] };
}

/**
 * `/etc/hosts`: the old host name (short, or with a domain) becomes the new one on the
 * loopback lines (Debian's `127.0.1.1 alpha`). Lines with other addresses are the cluster's
 * own list of its nodes and stay as they are: both machines need it unchanged.
 */
export function fixHosts(content: string, oldHostname: string, hostname: string): FileFix {
  const oldShort = oldHostname.split('.')[0];
  const newShort = hostname.split('.')[0];
  if (!oldShort || oldShort === newShort) return { content: undefined, changes: [], warnings: [] };
  const changes: string[] = [];
  const lines = content.split('\n').map((line, i) => {
    const [body = '', ...comment] = line.split('#');
    const [address = '', ...hostNames] = body.trim().split(/\s+/);
    if (hostNames.length === 0 || !(address.startsWith('127.') || address === '::1')) return line;
    let touched = false;
    const names = hostNames.map((n) => {
      if (n === oldShort) { touched = true; return newShort; }
      if (n.startsWith(`${oldShort}.`)) { touched = true; return `${newShort}${n.slice(oldShort.length)}`; }
      return n;
    });
    if (!touched) return line;
    const fixed = `${address}\t${names.join(' ')}${comment.length > 0 ? ` #${comment.join('#')}` : ''}`;
    changes.push(`line ${i + 1}: ${line.trim()} -> ${fixed.trim()}`);
    return fixed;
  });
  return { content: changes.length > 0 ? lines.join('\n') : undefined, changes, warnings: [] };
}

/** A file system mounted under the target root on the target, as findmnt shows it. */
export interface TargetMount {
  /** Its mount point inside the target root: `/` for the root itself, `/boot`, ... */
  mountpoint: string;
  source?: string;
  fstype?: string;
  uuid?: string;
  partuuid?: string;
  label?: string;
  partlabel?: string;
}

const DISK_NAME = /^(UUID|PARTUUID|LABEL|PARTLABEL)=(.+)$/;
const MOUNT_KEY = { UUID: 'uuid', PARTUUID: 'partuuid', LABEL: 'label', PARTLABEL: 'partlabel' } as const;

/**
 * `/etc/fstab`: a file system named by UUID, PARTUUID, LABEL or PARTLABEL is one of the source's
 * disks. Where the target has a file system mounted at that mount point under its target root
 * (the administrator mounted the target's `/`, `/boot`, ... there before the clone), the name
 * becomes the target's: the same kind of name when the target's file system has one (a LABEL
 * stays a LABEL), else its UUID. Anything else (swap, a mount point not mounted under the target
 * root, a file system without a UUID) is reported, to check against blkid on the target; so is a
 * file-system type that differs. Devices named by path (/dev/sda2) are left alone. Pure.
 */
export function fixFstab(content: string, mounts: readonly TargetMount[]): FileFix {
  const changes: string[] = [];
  const warnings: string[] = [];
  const at = new Map(mounts.map((m) => [m.mountpoint, m]));
  const lines = content.split('\n').map((line, i) => {
    if (/^\s*(#|$)/.test(line)) return line;
    const [spec = '', mountpoint = '', fstype = ''] = line.trim().split(/\s+/);
    const named = DISK_NAME.exec(spec);
    if (!named) return line;
    const kind = named[1] as keyof typeof MOUNT_KEY;
    const mount = at.get(mountpoint.length > 1 ? mountpoint.replace(/\/+$/, '') : mountpoint);
    const sameKind = mount?.[MOUNT_KEY[kind]];
    const name = sameKind ? `${kind}=${sameKind}` : mount?.uuid ? `UUID=${mount.uuid}` : undefined;
    if (!mount || !name) {
      warnings.push(`/etc/fstab line ${i + 1} names a disk of the source: ${line.trim()} (${mount ? `the target's file system at ${mountpoint} has no UUID` : `nothing is mounted at ${mountpoint} under the target root`}: check it against blkid on the target)`);
      return line;
    }
    if (mount.fstype && fstype !== 'auto' && fstype !== mount.fstype) warnings.push(`/etc/fstab line ${i + 1} says ${fstype} for ${mountpoint}, the target's file system there is ${mount.fstype}`);
    if (name === spec) return line;
    const fixed = line.replace(/^(\s*)\S+/, `$1${name}`);
    changes.push(`line ${i + 1}: ${mountpoint}: ${spec} -> ${name} (the target's ${mount.source ?? 'file system'})`);
    return fixed;
  });
  return { content: changes.length > 0 ? lines.join('\n') : undefined, changes, warnings };
}

/**
 * `/etc/crypttab`: a LUKS container named by UUID is the source's; the target's containers are
 * not mounted file systems, so they cannot be paired here: reported.
 */
export function checkDiskNames(file: string, content: string): string[] {
  return content.split('\n').flatMap((line, i) => (/^\s*#/.test(line) || !/\b(UUID|PARTUUID|LABEL|PARTLABEL)=/.test(line) ? [] : [`${file} line ${i + 1} names a disk of the source: ${line.trim()} (check it against blkid on the target)`]));
}

/** A new machine ID: 32 lowercase hex digits from 16 random bytes (systemd's format). */
export function machineIdOf(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new Error('a machine ID needs 16 random bytes');
  return [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}
