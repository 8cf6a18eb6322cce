/**
 * The package that ships each program HA-OSCAR runs, per package manager, and the exact
 * command that installs a set of them. Names checked against each distribution's own package
 * lists (Debian 12 / Ubuntu 22.04+, RHEL 9 / Fedora 39+, openSUSE Leap 15.5 / Tumbleweed); the
 * Debian names are checked against `apt-cache` by the table test where apt is present.
 */
import type { PackageManager } from './os-release.js';

/** Programs doctor knows the packages of. */
export const KNOWN_TOOLS = ['ip', 'arping', 'send_ua', 'rsync', 'ssh', 'fuser', 'mount', 'umount', 'fsck', 'drbdadm', 'drbdsetup', 'systemctl', 'chronyc', 'fence-agent', 'ocf-agent'] as const;
export type KnownTool = (typeof KNOWN_TOOLS)[number];

export const TOOL_PACKAGES: Record<KnownTool, Record<PackageManager, string>> = {
  // RHEL/Fedora name the package "iproute", Debian and openSUSE "iproute2".
  ip: { apt: 'iproute2', dnf: 'iproute', zypper: 'iproute2' },
  // iputils' arping (-U/-A for gratuitous ARP), not Habets' `arping` package, which Debian
  // also has and which takes other options. Debian splits it out of iputils.
  arping: { apt: 'iputils-arping', dnf: 'iputils', zypper: 'iputils' },
  // IPv6 VIPs' unsolicited neighbour advertisements: resource-agents' helper (SEND_UA in src/drivers/vip.ts).
  send_ua: { apt: 'resource-agents', dnf: 'resource-agents', zypper: 'resource-agents' },
  rsync: { apt: 'rsync', dnf: 'rsync', zypper: 'rsync' },
  ssh: { apt: 'openssh-client', dnf: 'openssh-clients', zypper: 'openssh-clients' },
  fuser: { apt: 'psmisc', dnf: 'psmisc', zypper: 'psmisc' },
  mount: { apt: 'mount', dnf: 'util-linux', zypper: 'util-linux' },
  umount: { apt: 'mount', dnf: 'util-linux', zypper: 'util-linux' },
  // fsck itself; the fsck.<type> it runs comes with the filesystem's tools (e2fsprogs, xfsprogs).
  fsck: { apt: 'util-linux', dnf: 'util-linux', zypper: 'util-linux' },
  // On RHEL/CentOS drbd-utils comes from ELRepo (docs/doctor.md); Fedora and openSUSE ship it.
  drbdadm: { apt: 'drbd-utils', dnf: 'drbd-utils', zypper: 'drbd-utils' },
  drbdsetup: { apt: 'drbd-utils', dnf: 'drbd-utils', zypper: 'drbd-utils' },
  systemctl: { apt: 'systemd', dnf: 'systemd', zypper: 'systemd' },
  chronyc: { apt: 'chrony', dnf: 'chrony', zypper: 'chrony' },
  // Every ClusterLabs fence agent (fence_ipmilan, fence_ilo4 as a link to it, ...): RHEL and
  // Fedora split them into fence-agents-<name> packages, which fence-agents-all pulls in whole.
  'fence-agent': { apt: 'fence-agents', dnf: 'fence-agents-all', zypper: 'fence-agents' },
  // The OCF resource agents of type: ocf resources (<OCF_ROOT>/resource.d/heartbeat/IPaddr2, ...).
  'ocf-agent': { apt: 'resource-agents', dnf: 'resource-agents', zypper: 'resource-agents' },
};

/** The package of `tool` (a program name, or a path to one) under `manager`, when known. */
export function packageFor(tool: string, manager: PackageManager): string | undefined {
  const base = tool.slice(tool.lastIndexOf('/') + 1);
  if (/^fence_[a-z0-9_]+$/.test(base)) return TOOL_PACKAGES['fence-agent'][manager];
  if (/\/resource\.d\/heartbeat\/[^/]+$/.test(tool)) return TOOL_PACKAGES['ocf-agent'][manager];
  return (KNOWN_TOOLS as readonly string[]).includes(base) ? TOOL_PACKAGES[base as KnownTool][manager] : undefined;
}

/** The command, as root, that installs `packages` (deduplicated, in order) non-interactively. */
export function installCommand(manager: PackageManager, packages: readonly string[]): string {
  const list = [...new Set(packages)].join(' ');
  switch (manager) {
    case 'apt':
      return `apt-get install -y ${list}`;
    case 'dnf':
      return `dnf install -y ${list}`;
    case 'zypper':
      return `zypper --non-interactive install ${list}`;
  }
}
