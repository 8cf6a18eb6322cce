/**
 * `haoscar doctor`'s pure parts (issue 11 item 7): os-release parsing and the package manager of
 * each distribution family, the package of each program per manager (the Debian names checked
 * against this machine's apt and dpkg), the clock-sync parsers, the programs a configuration
 * needs, and how findings make the exit code.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { parseOsRelease } from '../../src/distro/os-release.js';
import { FLAVOURS, classifyDistro, type Distro } from '../../src/distro/families.js';
import { KNOWN_TOOLS, TOOL_PACKAGES, installCommand, packageFor } from '../../src/distro/packages.js';
import { parseAdjtimexPrint, parseChronycTracking, parseNtpqPeers, parseTimedatectlShow, probeTimeSync } from '../../src/doctor/time-sync.js';
import { doctorExitCode, formatFindings, type Finding } from '../../src/doctor/finding.js';
import { requiredTools } from '../../src/doctor/prerequisites.js';
import { checkPeers, nodeOfHost } from '../../src/doctor/doctor.js';
import { configDigest } from '../../src/config/digest.js';
import type { LocalStatus } from '../../src/agent/local-status.js';
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
      assert.equal(classifyDistro(os)?.packageManager, c.manager);
    });
  }
});

void describe('packages: the package of each program, per package manager', () => {
  const TABLE: [tool: string, apt: string, dnf: string, zypper: string][] = [
    ['ip', 'iproute2', 'iproute', 'iproute2'],
    ['arping', 'iputils-arping', 'iputils', 'iputils'],
    ['/usr/libexec/heartbeat/send_ua', 'resource-agents', 'resource-agents', 'resource-agents'],
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
    ['fence_ipmilan', 'fence-agents', 'fence-agents-ipmilan', 'fence-agents'],
    ['/usr/sbin/fence_virsh', 'fence-agents', 'fence-agents-all', 'fence-agents'],
    ['/usr/lib/ocf/resource.d/heartbeat/IPaddr2', 'resource-agents', 'resource-agents', 'resource-agents'],
  ];
  for (const [tool, apt, dnf, zypper] of TABLE) {
    void test(`${tool}: Debian ${apt}, Fedora ${dnf}, openSUSE ${zypper}`, () => {
      assert.deepEqual([packageFor(tool, FLAVOURS.debian), packageFor(tool, FLAVOURS.fedora), packageFor(tool, FLAVOURS.opensuse)], [apt, dnf, zypper]);
    });
  }

  void test('a program of nobody known has no package (doctor then says to install it by name)', () => {
    assert.equal(packageFor('/opt/app/bin/start', FLAVOURS.debian), undefined);
    assert.equal(packageFor('fence', FLAVOURS.fedora), undefined);
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
    const names = [...new Set(KNOWN_TOOLS.map((tool) => TOOL_PACKAGES[tool].debian))];
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
    const tools = KNOWN_TOOLS.filter((x) => x !== 'fence-agent' && x !== 'ocf-agent');
    const dirs = ['/usr/bin', '/usr/sbin', '/bin', '/sbin'];
    // One dpkg call for every place each could be: it names the owner of those that exist.
    const owners = await execa('dpkg', ['-S', ...tools.flatMap((tool) => dirs.map((dir) => `${dir}/${tool}`))], { reject: false });
    const ownerOf = new Map(owners.stdout.split('\n').map((line) => /^([^:]+): (\S+)$/.exec(line)).filter((m) => m !== null).map((m) => [m[2]!.slice(m[2]!.lastIndexOf('/') + 1), m[1]!]));
    let checked = 0;
    for (const tool of tools) {
      const owner = ownerOf.get(tool);
      if (owner === undefined) continue;
      assert.equal(owner, TOOL_PACKAGES[tool].debian, tool);
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
      - { type: service, name: legacy, driver: sysv, script: apache2 }
`;

void describe('requiredTools: what a node needs, from its configuration', () => {
  const config = parseConfig(CONFIG);

  void test('a node of a group: its drivers, rsync, and the other nodes\' fence agents', () => {
    const tools = requiredTools(config, 'a', { embeddedServer: false }).map((t) => t.tool);
    assert.deepEqual(tools, ['ip', 'arping', '/usr/sbin/drbdadm', '/usr/sbin/drbdsetup', 'mount', 'umount', 'fuser', 'systemctl', '/opt/x/start', '/opt/x/stop', '/opt/x/monitor', '/usr/bin/rsync', 'fence_virsh']);
  });

  void test('a node outside the group: none of its tools; no arping when arpCount is 0; a sysv script where the driver runs it; the embedded server\'s CLI', () => {
    const tools = requiredTools(config, 'w', { embeddedServer: true }).map((t) => t.tool);
    assert.deepEqual(tools, ['ip', '/etc/init.d/apache2', '/usr/sbin/fence_ipmilan', 'fence_virsh', 'temporal']);
  });

  void test('an IPv6 vip needs send_ua instead of arping (none with arpCount 0)', () => {
    const v6 = parseConfig(`
cluster: c
temporal: { address: "127.0.0.1:7233" }
nodes:
  - { name: a, addresses: [fd00:213::11] }
  - { name: b, addresses: [fd00:213::12] }
groups:
  - name: web
    resources:
      - { type: vip, name: ip6, address: fd00:213::200/64, interface: eth0 }
  - name: quiet
    resources:
      - { type: vip, name: ip6q, address: fd00:213::201/64, interface: eth0, arpCount: 0 }
`);
    const tools = requiredTools(v6, 'a', { embeddedServer: false });
    assert.deepEqual(tools.map((t) => t.tool), ['ip', '/usr/libexec/heartbeat/send_ua']);
    assert.equal(tools[1]!.why, 'resource web/ip6 (vip): unsolicited neighbour advertisements');
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

void describe("checkPeers: what the agent's heartbeats prove about the peers", () => {
  const config = parseConfig(`
cluster: c
temporal: { address: "127.0.0.1:7233" }
heartbeat: { secretFile: /etc/haoscar/authkey }
nodes:
  - { name: a, addresses: [10.0.0.1, 10.1.0.1] }
  - { name: b, addresses: [10.0.0.2, 10.1.0.2] }
`);
  const secret = Buffer.from('check-peers-test-secret-0123456789');
  const mine = configDigest(config, secret);
  const other = 'f'.repeat(32);
  type Peer = NonNullable<LocalStatus['heartbeat']>['peers'][number];
  const links = (alive: [boolean, boolean]) => [{ link: '10.0.0.2->10.0.0.1', alive: alive[0], lastHeardAgoMs: alive[0] ? 80 : 7000 }, { link: '10.1.0.2->10.1.0.1', alive: alive[1], ...(alive[1] ? { lastHeardAgoMs: 90 } : {}) }];
  const alive = (more: Partial<Peer> = {}): Peer => ({ node: 'b', state: 'alive', since: 0, lastHeardAgoMs: 80, protocol: 2, configDigest: mine, configMatches: true, links: links([true, true]), ...more });
  const local = (peer: Peer, rejected: Record<string, number> = {}, agentDigest = mine): LocalStatus => ({
    kind: 'haoscar-local-status', node: 'a', cluster: 'c', pid: 1, release: '0.1.0', at: 0, phase: 'serving', temporal: { connected: true },
    heartbeat: { sent: 1, received: 1, accepted: 1, rejected, configDigest: agentDigest, peers: [peer] }, held: [], resources: [], fileSets: [],
  });
  const CASES: [what: string, status: LocalStatus, expected: [check: string, level: string, found: RegExp][]][] = [
    ['alive, same digest: same secret and same settings', local(alive()), [['config agent', 'ok', /runs with \/etc\/haoscar\/haoscar\.yaml as it is now/], ['peer b', 'ok', /equals this node's: the same secret and the same cluster-wide settings$/]]],
    ['alive, another digest: the same secret (it passed), other settings', local(alive({ configDigest: other, configMatches: false })), [['config agent', 'ok', /as it is now/], ['peer b', 'error', /differs from this node's .*its heartbeats pass, so the secret is the same/]]],
    ['alive, no digest: an older release', local(alive({ configDigest: undefined, configMatches: undefined, protocol: 1 })), [['config agent', 'ok', /./], ['peer b', 'warning', /sends no configuration digest \(heartbeat protocol 1\)/]]],
    ['never heard, packets forged: another secret', local(alive({ state: 'unknown', lastHeardAgoMs: undefined, configDigest: undefined, configMatches: undefined, links: [] }), { forged: 12 }), [['config agent', 'ok', /./], ['peer b', 'error', /^never heard; 12 heartbeat packet\(s\) were refused for a bad signature/]]],
    ['never heard, nothing refused: not running or blocked', local(alive({ state: 'unknown', lastHeardAgoMs: undefined, configDigest: undefined, configMatches: undefined, links: [] })), [['config agent', 'ok', /./], ['peer b', 'error', /^never heard on any link: its agent does not run, or UDP port 694 is blocked/]]],
    ['heard before, silent now: not judged by its old digest', local(alive({ state: 'suspect', lastHeardAgoMs: 9000 })), [['config agent', 'ok', /./], ['peer b', 'warning', /^not heard for 9 s \(suspect\) on any link/]]],
    ['one link silent', local(alive({ links: links([true, false]) })), [['config agent', 'ok', /./], ['peer b', 'ok', /./], ['link 10.1.0.2->10.1.0.1', 'warning', /^silent \(never heard\) while b is heard on another link$/]]],
    ['the agent started with another file', local(alive({ configMatches: false, configDigest: other }), {}, other), [['config agent', 'warning', /runs with another configuration than .* now holds/], ['peer b', 'error', /differs/]]],
    ['a forged packet from elsewhere, and one from a node not in the config', local(alive(), { forged: 2, 'unknown-node': 3 }), [['config agent', 'ok', /./], ['peer b', 'ok', /./], ['secret peers', 'warning', /^2 heartbeat packet\(s\) refused for a bad signature/], ['heartbeats unknown-node', 'warning', /^3 packet\(s\) refused: a node not in this configuration$/]]],
  ];
  for (const [what, status, expected] of CASES) {
    void test(what, () => {
      const findings = checkPeers(config, '/etc/haoscar/haoscar.yaml', status, secret);
      assert.deepEqual(findings.map((f) => [f.check, f.level]), expected.map(([c, l]) => [c, l]), JSON.stringify(findings, null, 1));
      expected.forEach(([, , found], i) => assert.match(findings[i]!.found, found));
      for (const f of findings) if (f.level !== 'ok') assert.ok(f.fix, `${f.check} has a fix`);
    });
  }

  void test('a peer never heard: the fix opens the heartbeat port to its addresses with this distribution\'s firewall tool', () => {
    const unheard = local(alive({ state: 'unknown', lastHeardAgoMs: undefined, configDigest: undefined, configMatches: undefined, links: [] }));
    const fixOn = (distro?: Distro) => checkPeers(config, '/etc/haoscar/haoscar.yaml', unheard, secret, distro).find((f) => f.check === 'peer b')?.fix;
    const distro = (text: string) => classifyDistro(parseOsRelease(text))!;
    assert.equal(fixOn(distro('ID=rocky\nVERSION_ID=9.4\n')), 'on b: systemctl start haoscar-agent; between the nodes open 694/udp: here (firewalld): firewall-cmd --permanent --new-zone=haoscar; firewall-cmd --permanent --zone=haoscar --add-source=10.0.0.2 --add-source=10.1.0.2; firewall-cmd --permanent --zone=haoscar --add-port=694/udp; firewall-cmd --reload (firewalld keeps --permanent rules; check with firewall-cmd --zone=haoscar --list-all); on b the same with this node\'s addresses (docs/packaging.md#firewall)');
    assert.match(fixOn(distro('ID=ubuntu\n')) ?? '', /here \(ufw\): ufw allow proto udp from 10\.0\.0\.2 to any port 694; ufw allow proto udp from 10\.1\.0\.2 to any port 694 \(/);
    assert.match(fixOn(distro('ID=debian\n')) ?? '', /here \(nftables\): nft add rule inet filter input 'ip saddr \{ 10\.0\.0\.2, 10\.1\.0\.2 \} udp dport 694 accept' \(the inet filter table is \/etc\/nftables\.conf's, loaded by systemctl enable --now nftables/);
    assert.equal(fixOn(undefined), 'on b: systemctl start haoscar-agent; between the nodes open 694/udp: docs/packaging.md#firewall');
  });

  void test('without the secret (not root), the agent\'s digest is not compared with the file\'s', () => {
    assert.deepEqual(checkPeers(config, '/etc/haoscar/haoscar.yaml', local(alive()), undefined).map((f) => f.check), ['peer b']);
  });
});
