/**
 * The one place that knows the distribution families HA-OSCAR runs on (issue 12 item 5): which
 * family an os-release names, and per family its package manager, its default paths, its
 * firewall tool and the extra repositories some packages come from. Pure: the caller reads
 * os-release (os-release.ts); the packages of each program are in packages.ts. Used by
 * `haoscar doctor` and written out in docs/install.md.
 */
import type { OsRelease } from './os-release.js';

export type Family = 'debian' | 'rhel' | 'suse';
/**
 * A distribution, or a set of them, that differs from the rest of its family in something
 * HA-OSCAR needs: Ubuntu's firewall (ufw), Fedora's own DRBD and HA packages (RHEL's come from
 * extra repositories), SLES's High Availability extension.
 */
export type Flavour = 'debian' | 'ubuntu' | 'rhel' | 'fedora' | 'opensuse' | 'sles';
export type PackageManager = 'apt' | 'dnf' | 'zypper';
export type FirewallTool = 'nftables' | 'ufw' | 'firewalld';

/** Where resource-agents puts `resource.d/<provider>/<agent>` on every family (it is `/usr/lib`, not `%{_libdir}`, on 64-bit RPM distributions too). */
export const OCF_ROOT = '/usr/lib/ocf';

export interface FlavourProfile {
  flavour: Flavour;
  family: Family;
  /** What it covers, for a person. */
  label: string;
  packageManager: PackageManager;
  /** Where services' environment files live: the units read `<dir>/haoscar` (packaging/systemd). */
  environmentDir: '/etc/default' | '/etc/sysconfig';
  ocfRoot: typeof OCF_ROOT;
  /**
   * Where SysV init scripts are. `/etc/init.d` works on every family (the sysv driver's
   * default): on RHEL and Fedora it is a link to `/etc/rc.d/init.d`, made by the chkconfig package.
   */
  initDir: string;
  /** The firewall the distribution installs and enables by default, or (Debian) the framework it ships. */
  firewall: FirewallTool;
  /** chrony's systemd unit (Debian's is `chrony`, with `chronyd` only as an alias). */
  chronyService: 'chrony' | 'chronyd';
}

export const FLAVOURS: Record<Flavour, FlavourProfile> = {
  // Debian enables no firewall; nftables is its framework (the `nftables` package and its
  // disabled-by-default service, `/etc/nftables.conf` with an `inet filter` table).
  debian: { flavour: 'debian', family: 'debian', label: 'Debian', packageManager: 'apt', environmentDir: '/etc/default', ocfRoot: OCF_ROOT, initDir: '/etc/init.d', firewall: 'nftables', chronyService: 'chrony' },
  // Ubuntu installs ufw (inactive until `ufw enable`).
  ubuntu: { flavour: 'ubuntu', family: 'debian', label: 'Ubuntu', packageManager: 'apt', environmentDir: '/etc/default', ocfRoot: OCF_ROOT, initDir: '/etc/init.d', firewall: 'ufw', chronyService: 'chrony' },
  rhel: { flavour: 'rhel', family: 'rhel', label: 'RHEL and its rebuilds (CentOS Stream, Rocky Linux, AlmaLinux, Oracle Linux)', packageManager: 'dnf', environmentDir: '/etc/sysconfig', ocfRoot: OCF_ROOT, initDir: '/etc/rc.d/init.d', firewall: 'firewalld', chronyService: 'chronyd' },
  fedora: { flavour: 'fedora', family: 'rhel', label: 'Fedora', packageManager: 'dnf', environmentDir: '/etc/sysconfig', ocfRoot: OCF_ROOT, initDir: '/etc/rc.d/init.d', firewall: 'firewalld', chronyService: 'chronyd' },
  // openSUSE and SLES use firewalld since Leap 15 / SLES 15 (SuSEfirewall2 before).
  opensuse: { flavour: 'opensuse', family: 'suse', label: 'openSUSE (Leap, Tumbleweed)', packageManager: 'zypper', environmentDir: '/etc/sysconfig', ocfRoot: OCF_ROOT, initDir: '/etc/init.d', firewall: 'firewalld', chronyService: 'chronyd' },
  sles: { flavour: 'sles', family: 'suse', label: 'SUSE Linux Enterprise Server', packageManager: 'zypper', environmentDir: '/etc/sysconfig', ocfRoot: OCF_ROOT, initDir: '/etc/init.d', firewall: 'firewalld', chronyService: 'chronyd' },
};

/** os-release `ID`s (and `ID_LIKE` words) of each flavour. */
const IDS: Record<Flavour, readonly string[]> = {
  debian: ['debian', 'raspbian'],
  ubuntu: ['ubuntu'],
  // Oracle Linux says ID_LIKE="fedora" only: without its ID here it would pass for Fedora.
  rhel: ['rhel', 'centos', 'rocky', 'almalinux', 'ol'],
  fedora: ['fedora'],
  opensuse: ['opensuse', 'opensuse-leap', 'opensuse-tumbleweed', 'opensuse-slowroll', 'opensuse-microos', 'suse'],
  sles: ['sles', 'sles_sap', 'sled'],
};
const FLAVOUR_OF_ID = new Map(Object.entries(IDS).flatMap(([flavour, ids]) => ids.map((id) => [id, flavour as Flavour] as const)));

/** A distribution found in a known family. */
export interface Distro extends FlavourProfile {
  os: OsRelease;
  /** How it was recognised: its own `ID`, or the first known word of its `ID_LIKE` (a derivative: the package names are its parent's, not checked on it). */
  matchedBy: { field: 'ID' | 'ID_LIKE'; value: string };
}

/**
 * The family of `os`: by its `ID`, else by the first word of its `ID_LIKE` that is known (Rocky
 * says `rhel centos fedora`: rhel; Linux Mint says `ubuntu debian`: ubuntu). undefined for a
 * distribution in none of the families (Alpine, Arch, ...): the caller says so, it does not guess.
 */
export function classifyDistro(os: OsRelease): Distro | undefined {
  const own = FLAVOUR_OF_ID.get(os.id);
  if (own) return { ...FLAVOURS[own], os, matchedBy: { field: 'ID', value: os.id } };
  for (const like of os.idLike) {
    const flavour = FLAVOUR_OF_ID.get(like);
    if (flavour) return { ...FLAVOURS[flavour], os, matchedBy: { field: 'ID_LIKE', value: like } };
  }
  return undefined;
}

/** The families, for a message about a distribution in none of them. */
export const KNOWN_FAMILIES = 'Debian/Ubuntu (apt), RHEL/CentOS/Rocky/AlmaLinux/Fedora (dnf), openSUSE/SLES (zypper)';

/** The environment file the systemd units read on this distribution (packaging/systemd: both are read, this is the one its tools expect). */
export function environmentFile(distro: Pick<FlavourProfile, 'environmentDir'>): string {
  return `${distro.environmentDir}/haoscar`;
}

/** The major version (`9` of `9.3`, `15` of `15.5`), when VERSION_ID has one. */
function majorVersion(os: OsRelease): number | undefined {
  const m = /^(\d+)/.exec(os.versionId ?? '');
  return m ? Number(m[1]) : undefined;
}

/**
 * The repository the High Availability packages (resource-agents, fence-agents-*) come from where
 * the base repositories lack them: RHEL's High Availability Add-On (a subscription), the
 * `highavailability` repository of CentOS Stream 9, Rocky 9 and AlmaLinux 9 (`ha` in their 8),
 * SLES's High Availability Extension (a registration code). Fedora, openSUSE, Debian and Ubuntu
 * have them in their main repositories: undefined. `enable` is a command when the ID and version
 * say exactly which; `note` says it in words.
 */
export function haRepository(distro: Distro): { note: string; enable?: string; dnfRepo?: string } | undefined {
  const major = majorVersion(distro.os);
  if (distro.flavour === 'rhel') {
    if (distro.os.id === 'rhel') {
      return { note: 'RHEL: the High Availability Add-On repository (a subscription that includes it)', ...(major !== undefined ? { enable: `subscription-manager repos --enable=rhel-${major}-for-$(uname -m)-highavailability-rpms` } : {}) };
    }
    const repo = major === undefined ? undefined : major >= 9 ? 'highavailability' : major === 8 ? 'ha' : undefined;
    if (repo && ['centos', 'rocky', 'almalinux'].includes(distro.os.id)) {
      return { note: `the '${repo}' repository (disabled by default)`, dnfRepo: repo };
    }
    return { note: "your distribution's High Availability repository (RHEL's High Availability Add-On: 'highavailability' on Rocky, AlmaLinux and CentOS Stream 9), if dnf does not find the package" };
  }
  if (distro.flavour === 'sles') {
    const version = distro.os.versionId;
    return { note: 'the SUSE Linux Enterprise High Availability Extension (a registration code of its own)', ...(version ? { enable: `SUSEConnect -p sle-ha/${version}/$(uname -m) -r REGISTRATION_CODE` } : {}) };
  }
  return undefined;
}

/**
 * Where RHEL and its rebuilds get drbd-utils: not from Red Hat but from ELRepo, as `drbd9x-utils`
 * (with the kernel module `kmod-drbd9x`). Rocky and AlmaLinux carry `elrepo-release` in their
 * extras repository; on RHEL and CentOS Stream it is installed from elrepo.org.
 */
export function drbdRepository(distro: Distro): { note: string; enable: string } | undefined {
  if (distro.flavour !== 'rhel') return undefined;
  const fromExtras = ['rocky', 'almalinux'].includes(distro.os.id);
  const major = majorVersion(distro.os) ?? 9;
  return {
    note: 'ELRepo (https://elrepo.org), with the DRBD 9 kernel module kmod-drbd9x',
    enable: fromExtras ? 'dnf install -y elrepo-release' : `dnf install -y https://www.elrepo.org/elrepo-release-${major}.el${major}.elrepo.noarch.rpm`,
  };
}

/** A port HA-OSCAR needs open, and from where. */
export interface PortOpening {
  port: number;
  protocol: 'udp' | 'tcp';
  /** The addresses it must be open to (the other nodes' `addresses`, every link). */
  from: readonly string[];
}

const isIpv6 = (address: string) => address.includes(':');

/**
 * The commands, as root, that open `openings` in `tool` to their sources only, and keep them
 * open after a reboot. firewalld: a zone `haoscar` whose sources are the peers (a source can
 * be in one zone only), its ports from the configuration (the shipped `haoscar` service has the
 * default ports: docs/packaging.md#firewall); `--new-zone` fails harmlessly when the zone exists.
 * nftables: rules in the `inet filter` table's `input` chain of Debian's /etc/nftables.conf,
 * which the same lines must go into to outlive a reboot. ufw: one rule per source and port.
 */
export function firewallCommands(tool: FirewallTool, openings: readonly PortOpening[]): string[] {
  switch (tool) {
    case 'firewalld': {
      const sources = [...new Set(openings.flatMap((o) => o.from))];
      return [
        'firewall-cmd --permanent --new-zone=haoscar',
        `firewall-cmd --permanent --zone=haoscar ${sources.map((s) => `--add-source=${s}`).join(' ')}`,
        `firewall-cmd --permanent --zone=haoscar ${openings.map((o) => `--add-port=${o.port}/${o.protocol}`).join(' ')}`,
        'firewall-cmd --reload',
      ];
    }
    case 'nftables':
      return openings.flatMap((o) => [o.from.filter((a) => !isIpv6(a)), o.from.filter(isIpv6)].flatMap((from, v6) => from.length === 0
        ? []
        : [`nft add rule inet filter input '${v6 ? 'ip6' : 'ip'} saddr { ${from.join(', ')} } ${o.protocol} dport ${o.port} accept'`]));
    case 'ufw':
      return openings.flatMap((o) => o.from.map((from) => `ufw allow proto ${o.protocol} from ${from} to any port ${o.port}`));
  }
}

/** What to tell after firewallCommands, so that the rules outlive a reboot or reach the right place. */
export function firewallNote(tool: FirewallTool): string {
  switch (tool) {
    case 'firewalld':
      return 'firewalld keeps --permanent rules; check with firewall-cmd --zone=haoscar --list-all';
    case 'nftables':
      return "the inet filter table is /etc/nftables.conf's, loaded by systemctl enable --now nftables; put the same rules in that file for the next boot";
    case 'ufw':
      return 'ufw keeps its rules; they apply once ufw is enabled (ufw status)';
  }
}
