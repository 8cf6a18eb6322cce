/**
 * The distribution families (issue 12 item 5), from the os-release files of each distribution
 * (test/fixtures/os-release, written from the files these releases ship): the family each falls
 * in and what follows — package manager, package names, install commands with their extra
 * repositories, default paths, firewall tool and its commands — and what doctor says about a
 * distribution in none, or with no os-release at all.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseOsRelease, readOsRelease } from '../../src/distro/os-release.js';
import { FLAVOURS, classifyDistro, environmentFile, firewallCommands, type Distro } from '../../src/distro/families.js';
import { installCommand, installFix, installHintAllFamilies, packageFor } from '../../src/distro/packages.js';
import { checkTools, distributionFinding } from '../../src/doctor/doctor.js';
import { parseConfig } from '../../src/config/load.js';

const FIXTURES = join(import.meta.dirname, '../fixtures/os-release');
const load = async (file: string) => parseOsRelease(await readFile(join(FIXTURES, file), 'utf8'));
const distroOf = async (file: string): Promise<Distro> => {
  const distro = classifyDistro(await load(file));
  assert.ok(distro, `${file} is in a known family`);
  return distro;
};

interface Case {
  file: string;
  id: string;
  idLike: string[];
  name: string;
  versionId: string;
  flavour: string;
  family: string;
  manager: string;
  firewall: string;
  environmentFile: string;
  /** The package of: ip, arping, rsync, fuser, drbdadm, fence_ipmilan, fence_virsh, an OCF agent. */
  packages: [string, string, string, string, string, string, string, string];
}

const CASES: Case[] = [
  { file: 'debian-12', id: 'debian', idLike: [], name: 'Debian GNU/Linux 12 (bookworm)', versionId: '12', flavour: 'debian', family: 'debian', manager: 'apt', firewall: 'nftables', environmentFile: '/etc/default/haoscar', packages: ['iproute2', 'iputils-arping', 'rsync', 'psmisc', 'drbd-utils', 'fence-agents', 'fence-agents', 'resource-agents'] },
  { file: 'ubuntu-24.04', id: 'ubuntu', idLike: ['debian'], name: 'Ubuntu 24.04 LTS', versionId: '24.04', flavour: 'ubuntu', family: 'debian', manager: 'apt', firewall: 'ufw', environmentFile: '/etc/default/haoscar', packages: ['iproute2', 'iputils-arping', 'rsync', 'psmisc', 'drbd-utils', 'fence-agents', 'fence-agents', 'resource-agents'] },
  { file: 'rhel-9', id: 'rhel', idLike: ['fedora'], name: 'Red Hat Enterprise Linux 9.4 (Plow)', versionId: '9.4', flavour: 'rhel', family: 'rhel', manager: 'dnf', firewall: 'firewalld', environmentFile: '/etc/sysconfig/haoscar', packages: ['iproute', 'iputils', 'rsync', 'psmisc', 'drbd9x-utils', 'fence-agents-ipmilan', 'fence-agents-all', 'resource-agents'] },
  { file: 'rocky-9', id: 'rocky', idLike: ['rhel', 'centos', 'fedora'], name: 'Rocky Linux 9.4 (Blue Onyx)', versionId: '9.4', flavour: 'rhel', family: 'rhel', manager: 'dnf', firewall: 'firewalld', environmentFile: '/etc/sysconfig/haoscar', packages: ['iproute', 'iputils', 'rsync', 'psmisc', 'drbd9x-utils', 'fence-agents-ipmilan', 'fence-agents-all', 'resource-agents'] },
  { file: 'almalinux-9', id: 'almalinux', idLike: ['rhel', 'centos', 'fedora'], name: 'AlmaLinux 9.4 (Seafoam Ocelot)', versionId: '9.4', flavour: 'rhel', family: 'rhel', manager: 'dnf', firewall: 'firewalld', environmentFile: '/etc/sysconfig/haoscar', packages: ['iproute', 'iputils', 'rsync', 'psmisc', 'drbd9x-utils', 'fence-agents-ipmilan', 'fence-agents-all', 'resource-agents'] },
  { file: 'centos-stream-9', id: 'centos', idLike: ['rhel', 'fedora'], name: 'CentOS Stream 9', versionId: '9', flavour: 'rhel', family: 'rhel', manager: 'dnf', firewall: 'firewalld', environmentFile: '/etc/sysconfig/haoscar', packages: ['iproute', 'iputils', 'rsync', 'psmisc', 'drbd9x-utils', 'fence-agents-ipmilan', 'fence-agents-all', 'resource-agents'] },
  { file: 'oracle-linux-9', id: 'ol', idLike: ['fedora'], name: 'Oracle Linux Server 9.4', versionId: '9.4', flavour: 'rhel', family: 'rhel', manager: 'dnf', firewall: 'firewalld', environmentFile: '/etc/sysconfig/haoscar', packages: ['iproute', 'iputils', 'rsync', 'psmisc', 'drbd9x-utils', 'fence-agents-ipmilan', 'fence-agents-all', 'resource-agents'] },
  { file: 'fedora-40', id: 'fedora', idLike: [], name: 'Fedora Linux 40 (Server Edition)', versionId: '40', flavour: 'fedora', family: 'rhel', manager: 'dnf', firewall: 'firewalld', environmentFile: '/etc/sysconfig/haoscar', packages: ['iproute', 'iputils', 'rsync', 'psmisc', 'drbd-utils', 'fence-agents-ipmilan', 'fence-agents-all', 'resource-agents'] },
  { file: 'opensuse-leap-15.6', id: 'opensuse-leap', idLike: ['suse', 'opensuse'], name: 'openSUSE Leap 15.6', versionId: '15.6', flavour: 'opensuse', family: 'suse', manager: 'zypper', firewall: 'firewalld', environmentFile: '/etc/sysconfig/haoscar', packages: ['iproute2', 'iputils', 'rsync', 'psmisc', 'drbd-utils', 'fence-agents', 'fence-agents', 'resource-agents'] },
  { file: 'opensuse-tumbleweed', id: 'opensuse-tumbleweed', idLike: ['opensuse', 'suse'], name: 'openSUSE Tumbleweed', versionId: '20240615', flavour: 'opensuse', family: 'suse', manager: 'zypper', firewall: 'firewalld', environmentFile: '/etc/sysconfig/haoscar', packages: ['iproute2', 'iputils', 'rsync', 'psmisc', 'drbd-utils', 'fence-agents', 'fence-agents', 'resource-agents'] },
  { file: 'sles-15-sp5', id: 'sles', idLike: ['suse'], name: 'SUSE Linux Enterprise Server 15 SP5', versionId: '15.5', flavour: 'sles', family: 'suse', manager: 'zypper', firewall: 'firewalld', environmentFile: '/etc/sysconfig/haoscar', packages: ['iproute2', 'iputils', 'rsync', 'psmisc', 'drbd-utils', 'fence-agents', 'fence-agents', 'resource-agents'] },
];
const TOOLS = ['ip', 'arping', '/usr/bin/rsync', 'fuser', '/usr/sbin/drbdadm', '/usr/sbin/fence_ipmilan', 'fence_virsh', '/usr/lib/ocf/resource.d/heartbeat/IPaddr2'];

void describe('each distribution: its family, and what follows from it', () => {
  for (const c of CASES) {
    void test(`${c.file}: ${c.flavour} (${c.family}), ${c.manager}, ${c.firewall}`, async () => {
      const os = await load(c.file);
      assert.deepEqual(os, { id: c.id, idLike: c.idLike, name: c.name, versionId: c.versionId });
      const distro = await distroOf(c.file);
      assert.deepEqual([distro.flavour, distro.family, distro.packageManager, distro.firewall, environmentFile(distro), distro.ocfRoot], [c.flavour, c.family, c.manager, c.firewall, c.environmentFile, '/usr/lib/ocf']);
      assert.deepEqual(TOOLS.map((tool) => packageFor(tool, distro)), c.packages);
    });
  }

  void test('a derivative is recognised through ID_LIKE, its own ID first: Rocky by ID, Oracle Linux (ID_LIKE fedora) by its ID, not as Fedora', async () => {
    assert.deepEqual((await distroOf('rocky-9')).matchedBy, { field: 'ID', value: 'rocky' });
    assert.deepEqual((await distroOf('oracle-linux-9')).matchedBy, { field: 'ID', value: 'ol' });
    const mint = classifyDistro(parseOsRelease('NAME="Linux Mint"\nID=linuxmint\nID_LIKE="ubuntu debian"\n'));
    assert.deepEqual([mint?.flavour, mint?.matchedBy], ['ubuntu', { field: 'ID_LIKE', value: 'ubuntu' }]);
    const rebuild = classifyDistro(parseOsRelease('ID="eurolinux"\nID_LIKE="rhel fedora centos"\nVERSION_ID="9.2"\n'));
    assert.deepEqual([rebuild?.flavour, rebuild?.matchedBy.value], ['rhel', 'rhel']);
  });

  void test('paths: /etc/default on Debian and Ubuntu, /etc/sysconfig elsewhere; the init scripts\' real directory; chrony\'s unit', () => {
    assert.deepEqual(Object.values(FLAVOURS).map((f) => [f.flavour, f.environmentDir, f.initDir, f.chronyService]), [
      ['debian', '/etc/default', '/etc/init.d', 'chrony'],
      ['ubuntu', '/etc/default', '/etc/init.d', 'chrony'],
      ['rhel', '/etc/sysconfig', '/etc/rc.d/init.d', 'chronyd'],
      ['fedora', '/etc/sysconfig', '/etc/rc.d/init.d', 'chronyd'],
      ['opensuse', '/etc/sysconfig', '/etc/init.d', 'chronyd'],
      ['sles', '/etc/sysconfig', '/etc/init.d', 'chronyd'],
    ]);
  });
});

void describe('quoting and odd files', () => {
  void test('double quotes with escapes, single quotes, a backslash-escaped bare value, CRLF, comments and junk lines', async () => {
    const os = await load('derivative-quoted');
    assert.deepEqual(os, { id: 'exampleos', idLike: ['ubuntu', 'debian'], name: 'Example "Cluster" OS 2.0 $HOME `x` \\o/', versionId: '2.0' });
    assert.equal(classifyDistro(os)?.flavour, 'ubuntu');
    assert.equal(parseOsRelease('NAME=Foo\\ Bar\nID=x\n').name, 'Foo Bar');
  });

  void test('an empty file, or an empty ID, is "linux" of no family; a name from NAME and VERSION_ID without PRETTY_NAME', () => {
    assert.deepEqual(parseOsRelease(''), { id: 'linux', idLike: [], name: 'linux' });
    assert.deepEqual(parseOsRelease('ID=""\nNAME="Foo"\nVERSION_ID=3\n'), { id: 'linux', idLike: [], name: 'Foo 3', versionId: '3' });
    assert.equal(classifyDistro(parseOsRelease('')), undefined);
  });

  void test('readOsRelease takes the first file that exists (/etc/os-release, else /usr/lib/os-release), undefined when none', async () => {
    const read = await readOsRelease([join(FIXTURES, 'no-such-file'), join(FIXTURES, 'fedora-40')]);
    assert.equal(read?.file, join(FIXTURES, 'fedora-40'));
    assert.equal(read?.os.id, 'fedora');
    assert.equal(await readOsRelease([join(FIXTURES, 'no-such-file')]), undefined);
  });
});

void describe('the install commands, with the repository each package needs', () => {
  const CASES: [file: string, packages: string[], command: string][] = [
    ['debian-12', ['iputils-arping', 'rsync'], 'apt-get install -y iputils-arping rsync'],
    ['ubuntu-24.04', ['resource-agents'], 'apt-get install -y resource-agents'],
    ['fedora-40', ['resource-agents', 'fence-agents-ipmilan', 'drbd-utils'], 'dnf install -y resource-agents fence-agents-ipmilan drbd-utils'],
    ['rocky-9', ['iproute'], 'dnf install -y iproute'],
    ['rocky-9', ['resource-agents'], 'dnf install -y --enablerepo=highavailability resource-agents'],
    ['almalinux-9', ['fence-agents-ipmilan'], 'dnf install -y --enablerepo=highavailability fence-agents-ipmilan'],
    ['centos-stream-9', ['fence-agents-all'], 'dnf install -y --enablerepo=highavailability fence-agents-all'],
    ['rhel-9', ['resource-agents'], 'subscription-manager repos --enable=rhel-9-for-$(uname -m)-highavailability-rpms && dnf install -y resource-agents'],
    ['rocky-9', ['drbd9x-utils'], 'dnf install -y elrepo-release && dnf install -y drbd9x-utils (from ELRepo (https://elrepo.org), with the DRBD 9 kernel module kmod-drbd9x)'],
    ['rhel-9', ['drbd9x-utils'], 'dnf install -y https://www.elrepo.org/elrepo-release-9.el9.elrepo.noarch.rpm && dnf install -y drbd9x-utils (from ELRepo (https://elrepo.org), with the DRBD 9 kernel module kmod-drbd9x)'],
    ['oracle-linux-9', ['resource-agents'], "dnf install -y resource-agents (from your distribution's High Availability repository (RHEL's High Availability Add-On: 'highavailability' on Rocky, AlmaLinux and CentOS Stream 9), if dnf does not find the package)"],
    ['opensuse-leap-15.6', ['fence-agents', 'drbd-utils'], 'zypper --non-interactive install fence-agents drbd-utils'],
    ['sles-15-sp5', ['iproute2'], 'zypper --non-interactive install iproute2'],
    ['sles-15-sp5', ['drbd-utils'], 'SUSEConnect -p sle-ha/15.5/$(uname -m) -r REGISTRATION_CODE && zypper --non-interactive install drbd-utils'],
  ];
  for (const [file, packages, command] of CASES) {
    void test(`${file}: ${packages.join(' ')}`, async () => assert.equal(installFix(await distroOf(file), packages), command));
  }

  void test('the hint for a message that cannot know the distribution names all three', () => {
    assert.equal(installHintAllFamilies('ocf-agent'), 'Debian/Ubuntu: apt-get install resource-agents; RHEL/Fedora: dnf install resource-agents; openSUSE/SLES: zypper install resource-agents');
  });
});

void describe('the firewall: the commands that open a port to the peers only', () => {
  const heartbeat = { port: 694, protocol: 'udp' as const, from: ['10.0.0.12', '192.168.100.12'] };
  const rsync = { port: 8873, protocol: 'tcp' as const, from: ['10.0.0.12', 'fd00::12'] };
  void test('firewalld: a zone of the peers with the configured ports', () => {
    assert.deepEqual(firewallCommands('firewalld', [heartbeat, rsync]), [
      'firewall-cmd --permanent --new-zone=haoscar',
      'firewall-cmd --permanent --zone=haoscar --add-source=10.0.0.12 --add-source=192.168.100.12 --add-source=fd00::12',
      'firewall-cmd --permanent --zone=haoscar --add-port=694/udp --add-port=8873/tcp',
      'firewall-cmd --reload',
    ]);
  });
  void test('nftables: a rule per port and address family in the inet filter table', () => {
    assert.deepEqual(firewallCommands('nftables', [heartbeat, rsync]), [
      "nft add rule inet filter input 'ip saddr { 10.0.0.12, 192.168.100.12 } udp dport 694 accept'",
      "nft add rule inet filter input 'ip saddr { 10.0.0.12 } tcp dport 8873 accept'",
      "nft add rule inet filter input 'ip6 saddr { fd00::12 } tcp dport 8873 accept'",
    ]);
  });
  void test('ufw: a rule per source and port', () => {
    assert.deepEqual(firewallCommands('ufw', [heartbeat]), [
      'ufw allow proto udp from 10.0.0.12 to any port 694',
      'ufw allow proto udp from 192.168.100.12 to any port 694',
    ]);
  });
});

void describe("doctor's distribution finding", () => {
  void test('a known family: ok, with the package manager, firewall and environment file', async () => {
    const os = await load('rocky-9');
    assert.deepEqual(distributionFinding({ file: '/etc/os-release', os }, classifyDistro(os)), {
      check: 'distribution', level: 'ok',
      found: 'Rocky Linux 9.4 (Blue Onyx) (ID=rocky, ID_LIKE=rhel centos fedora): RHEL and its rebuilds (CentOS Stream, Rocky Linux, AlmaLinux, Oracle Linux); packages with dnf, firewall firewalld, environment file /etc/sysconfig/haoscar',
    });
    const mint = parseOsRelease('PRETTY_NAME="Linux Mint 22"\nID=linuxmint\nID_LIKE="ubuntu debian"\n');
    assert.match(distributionFinding({ file: '/etc/os-release', os: mint }, classifyDistro(mint)).found, /: Ubuntu through ID_LIKE ubuntu \(a derivative: the package names are Ubuntu's\); packages with apt, firewall ufw/);
  });
  void test('an unknown distribution: a warning that names the known families, not a crash', async () => {
    const os = await load('alpine-3.20');
    assert.equal(classifyDistro(os), undefined);
    assert.deepEqual(distributionFinding({ file: '/etc/os-release', os }, undefined), {
      check: 'distribution', level: 'warning',
      found: 'Alpine Linux v3.20 (ID=alpine, /etc/os-release) is in none of the distribution families doctor knows the package names of: Debian/Ubuntu (apt), RHEL/CentOS/Rocky/AlmaLinux/Fedora (dnf), openSUSE/SLES (zypper)',
      fix: 'install the programs named below with your package manager (docs/install.md lists what each is)',
    });
  });
  void test('no os-release at all: a warning', () => {
    assert.equal(distributionFinding(undefined, undefined).level, 'warning');
    assert.match(distributionFinding(undefined, undefined).found, /neither \/etc\/os-release nor \/usr\/lib\/os-release exists/);
  });
});

void describe("doctor's tool findings: the exact install command for the family found", () => {
  // An empty PATH and paths that exist nowhere: every program is missing, whatever this machine has.
  const none = '/nonexistent/haoscar-test';
  const config = parseConfig(`
cluster: c
temporal: { address: "192.0.2.5:7233" }   # not this host: no embedded server, no Temporal CLI needed
nodes:
  - { name: a, addresses: [10.0.0.1] }
  - { name: b, addresses: [10.0.0.2], fence: { command: [${none}/fence_ipmilan], params: { ip: 10.9.0.2 } } }
groups:
  - name: web
    nodes: [a, b]
    resources:
      - { type: vip, name: ip, address: 10.0.0.100/24, interface: eth0 }
      - { type: drbd, name: disk, resource: r0, drbdadm: ${none}/drbdadm, drbdsetup: ${none}/drbdsetup }
      - { type: ocf, name: addr, agent: "ocf:heartbeat:IPaddr2", ocfRoot: ${none}/ocf, params: { ip: 10.0.0.101 } }
      - { type: service, name: legacy, driver: sysv, script: haoscar-test-no-such-script }
`);
  const fixesOn = async (file: string) => {
    const findings = checkTools(config, 'a', await distroOf(file), { PATH: join(FIXTURES, 'no-such-dir') });
    assert.ok(findings.every((f) => f.level === 'error'), JSON.stringify(findings));
    return Object.fromEntries(findings.map((f) => [f.check.slice('tool '.length), f.fix]));
  };
  const elsewhere = (path: string) => ` (it installs into /usr/bin or /usr/sbin: if ${path} is not where it is, correct the path in the configuration)`;
  const agent = `${none}/ocf/resource.d/heartbeat/IPaddr2`;
  const script = '/etc/init.d/haoscar-test-no-such-script';

  void test('Rocky 9: iproute, iputils; drbd9x-utils from ELRepo; resource-agents and fence-agents-ipmilan from highavailability; the init script under /etc/rc.d/init.d', async () => {
    assert.deepEqual(await fixesOn('rocky-9'), {
      ip: 'dnf install -y iproute',
      arping: 'dnf install -y iputils',
      [`${none}/drbdadm`]: `dnf install -y elrepo-release && dnf install -y drbd9x-utils (from ELRepo (https://elrepo.org), with the DRBD 9 kernel module kmod-drbd9x)${elsewhere(`${none}/drbdadm`)}`,
      [`${none}/drbdsetup`]: `dnf install -y elrepo-release && dnf install -y drbd9x-utils (from ELRepo (https://elrepo.org), with the DRBD 9 kernel module kmod-drbd9x)${elsewhere(`${none}/drbdsetup`)}`,
      [agent]: "dnf install -y --enablerepo=highavailability resource-agents (it installs under /usr/lib/ocf: if the agent is not there, correct the resource's ocfRoot)",
      [script]: "install the package that ships the init script haoscar-test-no-such-script (here /etc/init.d is a link to /etc/rc.d/init.d, made by the chkconfig package), or correct the script's name in the configuration",
      [`${none}/fence_ipmilan`]: `dnf install -y --enablerepo=highavailability fence-agents-ipmilan${elsewhere(`${none}/fence_ipmilan`)}`,
    });
  });

  void test('Debian 12 and SLES 15 SP5: their names and commands', async () => {
    const debian = await fixesOn('debian-12');
    assert.deepEqual([debian.ip, debian.arping, debian[agent], debian[script]], [
      'apt-get install -y iproute2',
      'apt-get install -y iputils-arping',
      "apt-get install -y resource-agents (it installs under /usr/lib/ocf: if the agent is not there, correct the resource's ocfRoot)",
      "install the package that ships the init script haoscar-test-no-such-script, or correct the script's name in the configuration",
    ]);
    const sles = await fixesOn('sles-15-sp5');
    assert.deepEqual([sles.ip, sles.arping, sles[`${none}/fence_ipmilan`]], [
      'zypper --non-interactive install iproute2',
      'zypper --non-interactive install iputils',
      `SUSEConnect -p sle-ha/15.5/$(uname -m) -r REGISTRATION_CODE && zypper --non-interactive install fence-agents${elsewhere(`${none}/fence_ipmilan`)}`,
    ]);
  });

  void test('an unknown distribution: each program by name', () => {
    const findings = checkTools(config, 'a', undefined, { PATH: join(FIXTURES, 'no-such-dir') });
    assert.equal(findings.find((f) => f.check === 'tool ip')?.fix, 'install ip (or correct its path in the configuration)');
  });
});

void describe('docs/install.md says what the code does', () => {
  const BASE = ['ip', 'arping', 'rsync', 'fuser', 'ssh', 'chronyc'];
  const docLines = async () => new Set((await readFile(join(import.meta.dirname, '../../docs/install.md'), 'utf8')).split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()));

  void test('the base packages of each family, as doctor names them', async () => {
    const lines = await docLines();
    for (const file of ['debian-12', 'ubuntu-24.04', 'rocky-9', 'rhel-9', 'fedora-40', 'opensuse-leap-15.6']) {
      const distro = await distroOf(file);
      const command = `sudo ${installCommand(distro.packageManager, BASE.map((tool) => packageFor(tool, distro)!))}`;
      assert.ok(lines.has(command), `${file}: docs/install.md has: ${command}`);
    }
  });

  void test('the HA packages, with their repositories', async () => {
    const lines = await docLines();
    const expect = async (file: string, packages: string[]) => {
      const command = `sudo ${installFix(await distroOf(file), packages)}`;
      assert.ok(lines.has(command), `${file}: docs/install.md has: ${command}`);
    };
    await expect('rocky-9', ['resource-agents', 'fence-agents-ipmilan']);
    await expect('fedora-40', ['resource-agents', 'fence-agents-ipmilan', 'drbd-utils']);
    await expect('opensuse-leap-15.6', ['resource-agents', 'fence-agents', 'drbd-utils']);
    await expect('debian-12', ['fence-agents']);
    const sles = installFix(await distroOf('sles-15-sp5'), ['resource-agents', 'fence-agents', 'drbd-utils']);
    assert.ok(lines.has(`sudo ${sles.replace(' && ', ' && sudo ')}`), `docs/install.md has: ${sles}`);
    const rhel = installFix(await distroOf('rhel-9'), ['resource-agents', 'fence-agents-ipmilan']);
    assert.ok(lines.has(`sudo ${rhel.replace(' && ', ' && sudo ')}`), `docs/install.md has: ${rhel}`);
  });

  void test('the firewall commands of each tool, for the example\'s peer', async () => {
    const lines = await docLines();
    const from = ['10.0.0.12', '192.168.100.12'];
    const openings = [{ port: 694, protocol: 'udp' as const, from }, { port: 8873, protocol: 'tcp' as const, from }];
    for (const tool of ['firewalld', 'nftables', 'ufw'] as const) {
      for (const command of firewallCommands(tool, openings)) assert.ok(lines.has(`sudo ${command}`), `docs/install.md has: sudo ${command}`);
    }
  });
});
