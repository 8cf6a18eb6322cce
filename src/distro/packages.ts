/**
 * The package that ships each program HA-OSCAR runs, per distribution family (families.ts), and
 * the exact command that installs a set of them, with the extra repository where one is needed.
 * Names from each distribution's own package lists (Debian 12 / Ubuntu 22.04+, RHEL 9 / Fedora
 * 39+, openSUSE Leap 15.5+ / Tumbleweed / SLES 15); the Debian names are checked against
 * `apt-cache` and `dpkg -S` by test/unit/doctor.test.ts where apt is present. The others are not
 * checked on a machine of theirs here.
 */
import { drbdRepository, haRepository, type Distro, type Family, type FlavourProfile, type PackageManager } from './families.js';

/** Programs doctor knows the packages of. */
export const KNOWN_TOOLS = ['ip', 'arping', 'send_ua', 'rsync', 'ssh', 'fuser', 'mount', 'umount', 'fsck', 'drbdadm', 'drbdsetup', 'systemctl', 'chronyc', 'fence-agent', 'ocf-agent', 'runuser'] as const;
export type KnownTool = (typeof KNOWN_TOOLS)[number];

export const TOOL_PACKAGES: Record<KnownTool, Record<Family, string>> = {
  // RHEL/Fedora name the package "iproute", Debian and openSUSE "iproute2".
  ip: { debian: 'iproute2', rhel: 'iproute', suse: 'iproute2' },
  // iputils' arping (-U/-A for gratuitous ARP), not Habets' `arping` package, which Debian
  // also has and which takes other options. Debian splits it out of iputils.
  arping: { debian: 'iputils-arping', rhel: 'iputils', suse: 'iputils' },
  // IPv6 VIPs' unsolicited neighbour advertisements: resource-agents' helper (SEND_UA in src/drivers/vip.ts).
  send_ua: { debian: 'resource-agents', rhel: 'resource-agents', suse: 'resource-agents' },
  rsync: { debian: 'rsync', rhel: 'rsync', suse: 'rsync' },
  ssh: { debian: 'openssh-client', rhel: 'openssh-clients', suse: 'openssh-clients' },
  fuser: { debian: 'psmisc', rhel: 'psmisc', suse: 'psmisc' },
  mount: { debian: 'mount', rhel: 'util-linux', suse: 'util-linux' },
  umount: { debian: 'mount', rhel: 'util-linux', suse: 'util-linux' },
  // fsck itself; the fsck.<type> it runs comes with the filesystem's tools (e2fsprogs, xfsprogs).
  fsck: { debian: 'util-linux', rhel: 'util-linux', suse: 'util-linux' },
  // Fedora and openSUSE ship drbd-utils (SLES in its HA extension); RHEL and its rebuilds do
  // not: FLAVOUR_PACKAGES.rhel.
  drbdadm: { debian: 'drbd-utils', rhel: 'drbd-utils', suse: 'drbd-utils' },
  drbdsetup: { debian: 'drbd-utils', rhel: 'drbd-utils', suse: 'drbd-utils' },
  systemctl: { debian: 'systemd', rhel: 'systemd', suse: 'systemd' },
  chronyc: { debian: 'chrony', rhel: 'chrony', suse: 'chrony' },
  // Every ClusterLabs fence agent (fence_ipmilan, fence_virsh, ...). RHEL and Fedora split them
  // into fence-agents-<name> packages, which fence-agents-all pulls in whole (the IPMI ones:
  // IPMI_FENCE_AGENTS); Debian's and openSUSE's `fence-agents` has them all.
  'fence-agent': { debian: 'fence-agents', rhel: 'fence-agents-all', suse: 'fence-agents' },
  // The OCF resource agents of type: ocf resources (<OCF_ROOT>/resource.d/heartbeat/IPaddr2, ...).
  // (Ubuntu splits it into resource-agents-base and -extra; resource-agents installs both.)
  'ocf-agent': { debian: 'resource-agents', rhel: 'resource-agents', suse: 'resource-agents' },
  // type: postgresql runs PostgreSQL's programs as its OS user through it.
  runuser: { debian: 'util-linux', rhel: 'util-linux', suse: 'util-linux' },
};

/** Where a flavour differs from its family: RHEL's drbd-utils is ELRepo's drbd9x-utils (families.ts, drbdRepository). */
const FLAVOUR_PACKAGES: Partial<Record<FlavourProfile['flavour'], Partial<Record<KnownTool, string>>>> = {
  rhel: { drbdadm: 'drbd9x-utils', drbdsetup: 'drbd9x-utils' },
};

/** fence_ipmilan and the agents that are links to it, in RHEL's and Fedora's fence-agents-ipmilan. */
const IPMI_FENCE_AGENTS = new Set(['fence_ipmilan', 'fence_ipmilanplus', 'fence_idrac', 'fence_ilo3', 'fence_ilo4', 'fence_ilo5', 'fence_imm']);

type PackageTarget = Pick<FlavourProfile, 'family' | 'flavour'>;

function packageOf(tool: KnownTool, distro: PackageTarget): string {
  return FLAVOUR_PACKAGES[distro.flavour]?.[tool] ?? TOOL_PACKAGES[tool][distro.family];
}

/** The package of `tool` (a program name, or a path to one) on `distro`, when known. */
export function packageFor(tool: string, distro: PackageTarget): string | undefined {
  const base = tool.slice(tool.lastIndexOf('/') + 1);
  if (/^fence_[a-z0-9_]+$/.test(base)) return distro.family === 'rhel' && IPMI_FENCE_AGENTS.has(base) ? 'fence-agents-ipmilan' : packageOf('fence-agent', distro);
  if (/\/resource\.d\/heartbeat\/[^/]+$/.test(tool)) return packageOf('ocf-agent', distro);
  // Debian's PostgreSQL keeps each major version's programs in /usr/lib/postgresql/<major>/bin
  // (type: postgresql's default `bin`); other families install them elsewhere, under other names.
  const pg = /^\/usr\/lib\/postgresql\/(\d+)\/bin\/[^/]+$/.exec(tool);
  if (pg) return distro.family === 'debian' ? `postgresql-${pg[1]}` : undefined;
  return (KNOWN_TOOLS as readonly string[]).includes(base) ? packageOf(base as KnownTool, distro) : undefined;
}

/** The command, as root, that installs `packages` (deduplicated, in order) non-interactively. */
export function installCommand(manager: PackageManager, packages: readonly string[], opts: { enableRepo?: string } = {}): string {
  const list = [...new Set(packages)].join(' ');
  switch (manager) {
    case 'apt':
      return `apt-get install -y ${list}`;
    case 'dnf':
      return `dnf install -y ${opts.enableRepo ? `--enablerepo=${opts.enableRepo} ` : ''}${list}`;
    case 'zypper':
      return `zypper --non-interactive install ${list}`;
  }
}

const isHaPackage = (pkg: string) => pkg === 'resource-agents' || pkg.startsWith('fence-agents') || pkg === 'drbd-utils';

/**
 * The exact command that installs `packages` on `distro`, the repository they need made usable
 * first (`… && dnf install …`); where the repository cannot be told as a command, it is named in
 * words after the command.
 */
export function installFix(distro: Distro, packages: readonly string[]): string {
  const before: string[] = [];
  const notes: string[] = [];
  let enableRepo: string | undefined;
  if (packages.includes('drbd9x-utils')) {
    const elrepo = drbdRepository(distro);
    if (elrepo) {
      before.push(elrepo.enable);
      notes.push(`from ${elrepo.note}`);
    }
  }
  // drbd-utils is in the main repositories everywhere but SLES, where it is part of the HA extension.
  const ha = packages.some((p) => isHaPackage(p) && (p !== 'drbd-utils' || distro.flavour === 'sles')) ? haRepository(distro) : undefined;
  if (ha?.dnfRepo) enableRepo = ha.dnfRepo;
  else if (ha?.enable) before.push(ha.enable);
  else if (ha) notes.push(`from ${ha.note}`);
  const install = installCommand(distro.packageManager, packages, enableRepo ? { enableRepo } : {});
  return `${[...before, install].join(' && ')}${notes.length ? ` (${notes.join('; ')})` : ''}`;
}

/** The same hint for every family, for a message that cannot know the distribution (a driver's error). Not for DRBD, whose RHEL package is not Fedora's. */
export function installHintAllFamilies(tool: Exclude<KnownTool, 'drbdadm' | 'drbdsetup'>): string {
  const hint = (family: Family, manager: PackageManager, label: string) => `${label}: ${installCommand(manager, [TOOL_PACKAGES[tool][family]]).replace(' -y', '').replace(' --non-interactive', '')}`;
  return [hint('debian', 'apt', 'Debian/Ubuntu'), hint('rhel', 'dnf', 'RHEL/Fedora'), hint('suse', 'zypper', 'openSUSE/SLES')].join('; ');
}
