/**
 * `haoscar doctor`'s pure parts (issue 11 item 7): os-release parsing and the package manager of
 * each distribution family, the package of each program per manager (the Debian names checked
 * against this machine's apt and dpkg), the clock-sync parsers, the programs a configuration
 * needs, and how findings make the exit code.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { packageManagerOf, parseOsRelease } from '../../src/doctor/os-release.js';
import { KNOWN_TOOLS, TOOL_PACKAGES, installCommand, packageFor } from '../../src/doctor/packages.js';
import { parseAdjtimexPrint, parseChronycTracking, parseNtpqPeers, parseTimedatectlShow, probeTimeSync } from '../../src/doctor/time-sync.js';
import { doctorExitCode, formatFindings, type Finding } from '../../src/doctor/finding.js';
import { requiredTools } from '../../src/doctor/prerequisites.js';
import { nodeOfHost } from '../../src/doctor/doctor.js';
import { parseConfig } from '../../src/config/load.js';
import { ExecError, type Exec } from '../../src/exec.js';

/** os-release files as these distributions ship them (trimmed of URLs). */
const OS_RELEASES: { file: string; text: string; id: string; idLike: string[]; name: string; manager: string | undefined }[] = [
  { file: 'Debian 12', id: 'debian', idLike: [], name: 'Debian GNU/Linux 12 (bookworm)', manager: 'apt', text: 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\nHOME_URL="https://www.debian.org/"\n' },
  { file: 'Ubuntu 22.04', id: 'ubuntu', idLike: ['debian'], name: 'Ubuntu 22.04.4 LTS', manager: 'apt', text: 'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nNAME="Ubuntu"\nVERSION_ID="22.04"\nVERSION="22.04.4 LTS (Jammy Jellyfish)"\nVERSION_CODENAME=jammy\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=jammy\n' },
  { file: 'RHEL 9', id: 'rhel', idLike: ['fedora'], name: 'Red Hat Enterprise Linux 9.3 (Plow)', manager: 'dnf', text: 'NAME="Red Hat Enterprise Linux"\nVERSION="9.3 (Plow)"\nID="rhel"\nID_LIKE="fedora"\nVERSION_ID="9.3"\nPLATFORM_ID="platform:el9"\nPRETTY_NAME="Red Hat Enterprise Linux 9.3 (Plow)"\nANSI_COLOR="0;31"\n' },
  { file: 'CentOS Stream 9', id: 'centos', idLike: ['rhel', 'fedora'], name: 'CentOS Stream 9', manager: 'dnf', text: 'NAME="CentOS Stream"\nVERSION="9"\nID="centos"\nID_LIKE="rhel fedora"\nVERSION_ID="9"\nPLATFORM_ID="platform:el9"\nPRETTY_NAME="CentOS Stream 9"\n' },
  { file: 'Rocky Linux 9', id: 'rocky', idLike: ['rhel', 'centos', 'fedora'], name: 'Rocky Linux 9.3 (Blue Onyx)', manager: 'dnf', text: 'NAME="Rocky Linux"\nVERSION="9.3 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"\nPRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"\n' },
  { file: 'Fedora 39', id: 'fedora', idLike: [], name: 'Fedora Linux 39 (Server Edition)', manager: 'dnf', text: 'NAME="Fedora Linux"\nVERSION="39 (Server Edition)"\nID=fedora\nVERSION_ID=39\nPRETTY_NAME="Fedora Linux 39 (Server Edition)"\nVARIANT_ID=server\n' },
  { file: 'openSUSE Leap 15.5', id: 'opensuse-leap', idLike: ['suse', 'opensuse'], name: 'openSUSE Leap 15.5', manager: 'zypper', text: 'NAME="openSUSE Leap"\nVERSION="15.5"\nID="opensuse-leap"\nID_LIKE="suse opensuse"\nVERSION_ID="15.5"\nPRETTY_NAME="openSUSE Leap 15.5"\n' },
  { file: 'openSUSE Tumbleweed', id: 'opensuse-tumbleweed', idLike: ['opensuse', 'suse'], name: 'openSUSE Tumbleweed', manager: 'zypper', text: 'NAME="openSUSE Tumbleweed"\n# VERSION="20240101"\nID="opensuse-tumbleweed"\nID_LIKE="opensuse suse"\nVERSION_ID="20240101"\nPRETTY_NAME="openSUSE Tumbleweed"\n' },
  { file: 'SLES 15', id: 'sles', idLike: ['suse'], name: 'SUSE Linux Enterprise Server 15 SP5', manager: 'zypper', text: 'NAME="SLES"\nVERSION="15-SP5"\nVERSION_ID="15.5"\nPRETTY_NAME="SUSE Linux Enterprise Server 15 SP5"\nID="sles"\nID_LIKE="suse"\n' },
  { file: 'Alpine 3.19', id: 'alpine', idLike: [], name: 'Alpine Linux v3.19', manager: undefined, text: 'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.19.0\nPRETTY_NAME="Alpine Linux v3.19"\n' },
  { file: 'no PRETTY_NAME, single quotes, escapes', id: 'mydist', idLike: ['debian'], name: 'My "Dist" 1', manager: 'apt', text: "NAME=\"My \\\"Dist\\\"\"\nVERSION_ID='1'\nID=MyDist\nID_LIKE='debian'\n\ngarbage line\n" },
];

void describe('os-release: the distribution and its package manager', () => {
  for (const c of OS_RELEASES) {
    void test(`${c.file}: ID ${c.id}, ID_LIKE [${c.idLike.join(' ')}] → ${c.manager ?? 'unknown'}`, () => {
      const os = parseOsRelease(c.text);
      assert.equal(os.id, c.id);
      assert.deepEqual(os.idLike, c.idLike);
      assert.equal(os.name, c.name);
      assert.equal(packageManagerOf(os), c.manager);
    });
  }
});

void describe('packages: the package of each program, per package manager', () => {
  const TABLE: [tool: string, apt: string, dnf: string, zypper: string][] = [
    ['ip', 'iproute2', 'iproute', 'iproute2'],
    ['arping', 'iputils-arping', 'iputils', 'iputils'],
    ['rsync', 'rsync', 'rsync', 'rsync'],
    ['/usr/bin/rsync', 'rsync', 'rsync', 'rsync'],
    ['ssh', 'openssh-client', 'openssh-clients', 'openssh-clients'],
    ['fuser', 'psmisc', 'psmisc', 'psmisc'],
    ['mount', 'mount', 'util-linux', 'util-linux'],
    ['fsck', 'util-linux', 'util-linux', 'util-linux'],
    ['/sbin/drbdadm', 'drbd-utils', 'drbd-utils', 'drbd-utils'],
    ['drbdsetup', 'drbd-utils', 'drbd-utils', 'drbd-utils'],
    ['systemctl', 'systemd', 'systemd', 'systemd'],
    ['chronyc', 'chrony', 'chrony', 'chrony'],
    ['fence_ipmilan', 'fence-agents', 'fence-agents-all', 'fence-agents'],
    ['/usr/sbin/fence_virsh', 'fence-agents', 'fence-agents-all', 'fence-agents'],
  ];
  for (const [tool, apt, dnf, zypper] of TABLE) {
    void test(`${tool}: apt ${apt}, dnf ${dnf}, zypper ${zypper}`, () => {
      assert.deepEqual([packageFor(tool, 'apt'), packageFor(tool, 'dnf'), packageFor(tool, 'zypper')], [apt, dnf, zypper]);
    });
  }

  void test('a program of nobody known has no package (doctor then says to install it by name)', () => {
    assert.equal(packageFor('/opt/app/bin/start', 'apt'), undefined);
    assert.equal(packageFor('fence', 'dnf'), undefined);
  });

  void test('the install commands, non-interactive, each package once', () => {
    assert.equal(installCommand('apt', ['rsync', 'psmisc', 'rsync']), 'apt-get install -y rsync psmisc');
    assert.equal(installCommand('dnf', ['iproute', 'iputils']), 'dnf install -y iproute iputils');
    assert.equal(installCommand('zypper', ['iproute2']), 'zypper --non-interactive install iproute2');
  });

  void test('every Debian name is a package apt can install here', async (t) => {
    const probe = await execa('apt-cache', ['--version'], { reject: false });
    if (probe.exitCode !== 0) return t.skip('no apt-cache on this machine');
    // One apt-cache call for all (each takes a second or two on a loaded machine).
    const names = [...new Set(KNOWN_TOOLS.map((tool) => TOOL_PACKAGES[tool].apt))];
    const policy = await execa('apt-cache', ['policy', ...names], { reject: false });
    const candidates = new Map([...policy.stdout.matchAll(/^(\S+):\n(?:\s+.*\n)*?\s+Candidate:\s*(\S+)/gm)].map((m) => [m[1]!, m[2]!]));
    for (const name of names) {
      const candidate = candidates.get(name);
      assert.ok(candidate !== undefined && candidate !== '(none)', `apt has no candidate for ${name}: ${policy.stdout}`);
    }
  });

  void test("the programs installed here come from the Debian package the table names (dpkg -S)", async (t) => {
    const probe = await execa('dpkg', ['--version'], { reject: false });
    if (probe.exitCode !== 0) return t.skip('no dpkg on this machine');
    const tools = KNOWN_TOOLS.filter((x) => x !== 'fence-agent');
    const dirs = ['/usr/bin', '/usr/sbin', '/bin', '/sbin'];
    // One dpkg call for every place each could be: it names the owner of those that exist.
    const owners = await execa('dpkg', ['-S', ...tools.flatMap((tool) => dirs.map((dir) => `${dir}/${tool}`))], { reject: false });
    const ownerOf = new Map(owners.stdout.split('\n').map((line) => /^([^:]+): (\S+)$/.exec(line)).filter((m) => m !== null).map((m) => [m[2]!.slice(m[2]!.lastIndexOf('/') + 1), m[1]!]));
    let checked = 0;
    for (const tool of tools) {
      const owner = ownerOf.get(tool);
      if (owner === undefined) continue;
      assert.equal(owner, TOOL_PACKAGES[tool].apt, tool);
      checked++;
    }
    assert.ok(checked >= 5, `at least ip, arping, rsync, fuser, mount checked (${checked})`);
  });
});

const CHRONY_SYNCED = `Reference ID    : C0A80101 (ntp.example.org)
Stratum         : 3
Ref time (UTC)  : Mon Dec 07 06:00:00 2026
System time     : 0.000012345 seconds fast of NTP time
Last offset     : +0.000001234 seconds
Update interval : 64.2 seconds
Leap status     : Normal
`;
const CHRONY_UNSYNCED = 'Reference ID    : 00000000 ()\nStratum         : 0\nRef time (UTC)  : Thu Jan 01 00:00:00 1970\nLeap status     : Not synchronised\n';
const NTPQ_SYNCED = `     remote           refid      st t when poll reach   delay   offset  jitter
==============================================================================
*192.168.1.1     .GPS.            1 u   33   64  377    0.512   -0.021   0.015
+10.0.0.5        192.168.1.1      2 u   12   64  377    0.301    0.110   0.040
`;
const NTPQ_UNSYNCED = `     remote           refid      st t when poll reach   delay   offset  jitter
==============================================================================
 192.168.1.1     .INIT.          16 u    -   64    0    0.000    0.000   0.000
`;

void describe('time sync: what chrony, ntpd, systemd and the kernel say', () => {
  const CASES: [what: string, parse: (text: string) => { synced: boolean; source: string } | undefined, text: string, synced: boolean | undefined][] = [
    ['chronyc tracking, synchronised', parseChronycTracking, CHRONY_SYNCED, true],
    ['chronyc tracking, not synchronised', parseChronycTracking, CHRONY_UNSYNCED, false],
    ['chronyc, daemon not running', parseChronycTracking, '506 Cannot talk to daemon', undefined],
    ['ntpq -p, a system peer', parseNtpqPeers, NTPQ_SYNCED, true],
    ['ntpq -p, no system peer', parseNtpqPeers, NTPQ_UNSYNCED, false],
    ['ntpq -p, no associations', parseNtpqPeers, "No association ID's returned", false],
    ['timedatectl show, synchronised', parseTimedatectlShow, 'Timezone=Etc/UTC\nLocalRTC=no\nCanNTP=yes\nNTP=yes\nNTPSynchronized=yes\n', true],
    ['timedatectl show, not', parseTimedatectlShow, 'Timezone=Etc/UTC\nCanNTP=yes\nNTP=no\nNTPSynchronized=no\n', false],
    ['timedatectl, no systemd', parseTimedatectlShow, '', undefined],
    ['adjtimex --print, STA_UNSYNC (64)', parseAdjtimexPrint, '         mode: 0\n       offset: 0\n       status: 64\ntime_constant: 2\n', false],
    ['adjtimex --print, PLL|NANO (8193)', parseAdjtimexPrint, '       status: 8193\n', true],
    ['adjtimex --print, STA_UNSYNC among others (65)', parseAdjtimexPrint, '       status: 65\n', false],
  ];
  for (const [what, parse, text, synced] of CASES) {
    void test(what, () => assert.equal(parse(text)?.synced, synced));
  }

  /** Answers as src/exec.ts does: a missing program "could not be run", a failing one exits non-zero. */
  const execWith = (answers: Record<string, { stdout: string } | 'missing' | number>): Exec => async (file, args) => {
    const a = answers[file] ?? 'missing';
    if (a === 'missing') throw new ExecError([file, ...args], undefined, `spawn ${file} ENOENT`, false);
    if (typeof a === 'number') throw new ExecError([file, ...args], a, 'failed', false);
    return { exitCode: 0, stdout: a.stdout, stderr: '' };
  };

  void test('the first program that can tell answers; the kernel last', async () => {
    assert.equal((await probeTimeSync(execWith({ chronyc: { stdout: CHRONY_SYNCED }, adjtimex: { stdout: 'status: 64' } }), 1000)).answer?.source, 'chrony');
    const kernel = await probeTimeSync(execWith({ chronyc: 1, timedatectl: 1, adjtimex: { stdout: 'status: 64' } }), 1000);
    assert.deepEqual([kernel.answer?.source, kernel.answer?.synced], ['kernel', false]);
  });

  void test('nothing can tell: no answer, and what was tried (never "synchronised")', async () => {
    const none = await probeTimeSync(execWith({ timedatectl: 1 }), 1000);
    assert.equal(none.answer, undefined);
    assert.equal(none.tried.length, 4);
    assert.match(none.tried.join('; '), /chronyc: not installed; ntpq: not installed; timedatectl: command .* exited with 1.*; adjtimex: not installed/);
  });
});

void describe('findings: the exit code and the report', () => {
  const f = (level: Finding['level']): Finding => ({ check: `c ${level}`, level, found: 'x', ...(level === 'ok' ? {} : { fix: `fix ${level}` }) });
  const CASES: [levels: Finding['level'][], code: number][] = [
    [[], 0],
    [['ok', 'skipped'], 0],
    [['ok', 'warning'], 1],
    [['warning', 'error', 'ok'], 2],
    [['error'], 2],
  ];
  for (const [levels, code] of CASES) void test(`[${levels.join(', ')}] → exit ${code}`, () => assert.equal(doctorExitCode(levels.map(f)), code));

  void test('each finding on a line, its fix under it, a summary; control characters escaped', () => {
    const text = formatFindings([f('ok'), { check: 'secret', level: 'error', found: 'bad\x1b[2Jname', fix: 'chmod 600 /etc/haoscar/authkey' }]);
    assert.equal(text, 'ok      c ok: x\nERROR   secret: bad\\x1b[2Jname\n        fix: chmod 600 /etc/haoscar/authkey\n1 error(s), 0 warning(s), 1 ok, 0 skipped\n');
  });
});

const CONFIG = `
cluster: c
temporal: { address: "127.0.0.1:7233" }
nodes:
  - { name: a, addresses: [10.0.0.1, 192.168.9.1], fence: { command: [/usr/sbin/fence_ipmilan], params: { ip: 10.9.0.1 } } }
  - { name: b, addresses: [10.0.0.2], fence: { command: [fence_virsh], params: { ip: 10.9.0.2 } } }
  - { name: w, addresses: [10.0.0.3] }
groups:
  - name: web
    nodes: [a, b]
    resources:
      - { type: vip, name: ip, address: 10.0.0.100/24, interface: eth0 }
      - { type: drbd, name: disk, resource: r0 }
      - { type: filesystem, name: fs, device: /dev/drbd0, mountpoint: /srv, fstype: ext4 }
      - { type: service, name: app, driver: systemd, unit: nginx.service }
      - { type: command, name: cmd, start: [/opt/x/start], stop: [/opt/x/stop], monitor: [/opt/x/monitor] }
    fileSets:
      - { name: data, paths: [/var/lib/app] }
  - name: quiet
    nodes: [w]
    resources:
      - { type: vip, name: ip2, address: 10.0.0.101/24, interface: eth0, arpCount: 0 }
`;

void describe('requiredTools: what a node needs, from its configuration', () => {
  const config = parseConfig(CONFIG);

  void test('a node of a group: its drivers, rsync, and the other nodes\' fence agents', () => {
    const tools = requiredTools(config, 'a', { embeddedServer: false }).map((t) => t.tool);
    assert.deepEqual(tools, ['ip', 'arping', '/usr/sbin/drbdadm', '/usr/sbin/drbdsetup', 'mount', 'umount', 'fuser', 'systemctl', '/opt/x/start', '/opt/x/stop', '/opt/x/monitor', '/usr/bin/rsync', 'fence_virsh']);
  });

  void test('a node outside the group: none of its tools; no arping when arpCount is 0; the embedded server\'s CLI', () => {
    const tools = requiredTools(config, 'w', { embeddedServer: true }).map((t) => t.tool);
    assert.deepEqual(tools, ['ip', '/usr/sbin/fence_ipmilan', 'fence_virsh', 'temporal']);
  });

  void test('every tool says why', () => {
    const why = Object.fromEntries(requiredTools(config, 'a', { embeddedServer: false }).map((t) => [t.tool, t.why]));
    assert.equal(why.fuser, 'resource web/fs (filesystem): who holds a busy mount point');
    assert.equal(why.fence_virsh, 'fencing node b');
  });

  void test('this host\'s node: the one whose address is here, none when two or none match', () => {
    assert.equal(nodeOfHost(config, new Set(['127.0.0.1', '192.168.9.1'])), 'a');
    assert.equal(nodeOfHost(config, new Set(['127.0.0.1'])), undefined);
    assert.equal(nodeOfHost(config, new Set(['10.0.0.1', '10.0.0.2'])), undefined);
  });
});
