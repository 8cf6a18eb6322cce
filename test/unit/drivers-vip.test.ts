import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { networkInterfaces } from 'node:os';
import { after, before, describe, test } from 'node:test';
import { pino, type Logger } from 'pino';
import type { VipResource } from '../../src/config/types.js';
import { InterfaceNotFoundError, parseIpAddressShow, parseIpLinkNames, SEND_UA, VipDriver } from '../../src/drivers/vip.js';
import { createExec, type Exec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { waitFor } from '../support/wait.js';

// ------------------------------------------------------------------------------- parsers
// Captured from iproute2 6.1 (`ip -o -4 address show`, `ip -o link`) in a network namespace.
const ADDRESS_SHOW = [
  '1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever',
  '2: hv0    inet 10.213.250.10/24 scope global hv0\\       valid_lft forever preferred_lft forever',
  '2: hv0    inet 10.213.250.10/32 scope global hv0\\       valid_lft forever preferred_lft forever',
  '2: hv0    inet 10.213.250.11/24 scope global secondary hv0:vip\\       valid_lft forever preferred_lft forever',
  '4: eth0    inet 192.168.1.20/24 brd 192.168.1.255 scope global dynamic noprefixroute eth0\\       valid_lft 85566sec preferred_lft 85566sec',
  '5: tun0    inet 10.8.0.1 peer 10.8.0.2/32 scope global tun0\\       valid_lft forever preferred_lft forever',
  '2: hv0    inet6 fe80::ccb1:4cff:fe5e:1d2/64 scope link \\       valid_lft forever preferred_lft forever',
  '',
].join('\n');

const LINK_SHOW = [
  '1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN mode DEFAULT group default qlen 1000\\    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00',
  '2: hv0@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP mode DEFAULT group default qlen 1000\\    link/ether ce:a7:b5:1c:e6:45 brd ff:ff:ff:ff:ff:ff link-netns haovip-expp-11216',
  '3: eth0.100@eth0: <BROADCAST,MULTICAST> mtu 1500 qdisc noop state DOWN mode DEFAULT group default qlen 1000\\    link/ether 02:fc:00:00:00:01 brd ff:ff:ff:ff:ff:ff',
  '',
].join('\n');

void test('parseIpAddressShow reads address and prefix of every IPv4 line, whatever the flags and label', () => {
  assert.deepEqual(parseIpAddressShow(ADDRESS_SHOW), [
    { ifindex: 1, ifname: 'lo', address: '127.0.0.1', prefixLength: 8 },
    { ifindex: 2, ifname: 'hv0', address: '10.213.250.10', prefixLength: 24 },
    { ifindex: 2, ifname: 'hv0', address: '10.213.250.10', prefixLength: 32 },
    { ifindex: 2, ifname: 'hv0', address: '10.213.250.11', prefixLength: 24 },
    { ifindex: 4, ifname: 'eth0', address: '192.168.1.20', prefixLength: 24 },
    { ifindex: 5, ifname: 'tun0', address: '10.8.0.1', prefixLength: 32 },
  ]);
  assert.deepEqual(parseIpAddressShow(''), []);
  assert.deepEqual(parseIpAddressShow('Device "eth9" does not exist.\ngarbage\n2: x inet 300.1.1.1/24 scope global x'), []);
});

void test('parseIpLinkNames drops the @peer suffix', () => {
  assert.deepEqual(parseIpLinkNames(LINK_SHOW), ['lo', 'hv0', 'eth0.100']);
  assert.deepEqual(parseIpLinkNames(''), []);
});

void test('the constructor refuses an address without a prefix length', () => {
  assert.throws(() => new VipDriver(vip({ address: '10.213.250.10' }), { exec: createExec(silentLogger), logger: silentLogger }), /10\.213\.250\.10/);
});

// ----------------------------------------------------------------- real ip in namespaces
/**
 * Two network namespaces joined by a veth pair: the driver works on `eth0` in NS; PEER plays
 * a client on the same link (`peer0`, 10.213.250.2) whose neighbour table shows what the
 * gratuitous ARPs taught it. (A dummy interface would do for `ip`, but arping needs a link
 * with someone on the other end to prove anything, and the dummy module may be missing.)
 */
const NS = `haovip-test-${process.pid}`;
const PEER = `haovip-peer-${process.pid}`;
const VIP = '10.213.250.10';
/** What the peer believed before the failover: the VIP at the old owner's MAC. */
const OLD_OWNER_MAC = '02:00:00:00:00:01';

function sh(...argv: string[]): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function canUseNamespaces(): string | false {
  if (process.getuid?.() !== 0) return 'needs root for ip netns';
  try {
    sh('ip', '-V');
    sh('arping', '-V');
  } catch {
    return 'needs iproute2 and iputils-arping';
  }
  return false;
}

function vip(overrides: Partial<VipResource> = {}): VipResource {
  return {
    type: 'vip',
    name: 'vip',
    address: `${VIP}/24`,
    interface: 'eth0',
    arpCount: 0,
    check: { type: 'status', intervalMs: 1000, timeoutMs: 1000, rise: 1, fall: 1 },
    healing: { maxRestarts: 3, windowMs: 60_000, backoff: { initialMs: 100, maxMs: 1000, multiplier: 2 }, startTimeoutMs: 10_000 },
    ...overrides,
  };
}

interface Call {
  argv: string[];
  exitCode?: number;
  failed?: string;
  done: boolean;
}

/** An exec that runs every command inside `ns` (NS by default) and writes down how each ended. */
function namespaceExec(ns = NS): { exec: Exec; calls: Call[] } {
  const base = createExec(silentLogger);
  const calls: Call[] = [];
  const exec: Exec = async (file, args, options) => {
    const call: Call = { argv: [file, ...args], done: false };
    calls.push(call);
    try {
      const result = await base('ip', ['netns', 'exec', ns, file, ...args], options);
      call.exitCode = result.exitCode;
      return result;
    } catch (error) {
      call.failed = error instanceof Error ? error.message : String(error);
      throw error;
    } finally {
      call.done = true;
    }
  };
  return { exec, calls };
}

/** os.networkInterfaces() as a process in NS sees it (the driver's cheap look-up, run where the driver would run). */
function namespaceInterfaces(ns = NS): ReturnType<typeof networkInterfaces> {
  const script = 'process.stdout.write(JSON.stringify(require("node:os").networkInterfaces()))';
  return JSON.parse(execFileSync('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { encoding: 'utf8' })) as ReturnType<typeof networkInterfaces>;
}

/** A logger that keeps its records, to check what was logged. */
function capturingLogger(): { logger: Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, records };
}

function addressesInNs(): string {
  return sh('ip', '-n', NS, '-o', '-4', 'address', 'show', 'dev', 'eth0');
}

function macOf(ns: string, dev: string): string {
  const match = /link\/ether (\S+)/.exec(sh('ip', '-n', ns, '-o', 'link', 'show', dev));
  assert.ok(match?.[1], `no MAC for ${dev} in ${ns}`);
  return match[1];
}

function peerNeighbour(): string {
  return sh('ip', '-n', PEER, 'neigh', 'show', VIP, 'dev', 'peer0').trim();
}

const arpings = (calls: Call[]) => calls.filter((call) => call.argv[0] === 'arping');

void describe('VipDriver with real ip and arping in a network namespace', { skip: canUseNamespaces() }, () => {
  before(() => {
    sh('ip', 'netns', 'add', NS);
    sh('ip', 'netns', 'add', PEER);
    sh('ip', '-n', NS, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0', 'netns', PEER);
    for (const [ns, dev] of [[NS, 'lo'], [NS, 'eth0'], [PEER, 'lo'], [PEER, 'peer0']] as const) sh('ip', '-n', ns, 'link', 'set', dev, 'up');
    sh('ip', '-n', PEER, 'address', 'add', '10.213.250.2/24', 'dev', 'peer0');
  });

  after(() => {
    for (const ns of [NS, PEER]) {
      try {
        sh('ip', 'netns', 'del', ns);
      } catch {
        // never created
      }
    }
  });

  void test('start adds the address, twice is fine; stop removes it, twice is fine; status follows', async () => {
    const { exec, calls } = namespaceExec();
    const driver = new VipDriver(vip(), { exec, logger: silentLogger });

    assert.deepEqual(await driver.status(), { running: false, detail: `${VIP} not on eth0` });
    await driver.start();
    assert.match(addressesInNs(), /inet 10\.213\.250\.10\/24 /);
    assert.deepEqual(await driver.status(), { running: true, detail: `${VIP}/24 on eth0` });

    await driver.start();
    assert.equal(addressesInNs().match(/10\.213\.250\.10\//g)?.length, 1, 'the address is there once');
    assert.ok(calls.every((call) => call.failed === undefined), 'the second start did not even try to add');

    await driver.stop();
    assert.doesNotMatch(addressesInNs(), /10\.213\.250\.10/);
    assert.deepEqual(await driver.status(), { running: false, detail: `${VIP} not on eth0` });
    await driver.stop();
    assert.deepEqual(arpings(calls), [], 'arpCount 0 sends no ARP');
  });

  void test('status of an address that is on the interface runs no command (the agent checks it every interval)', async () => {
    const { exec, calls } = namespaceExec();
    const driver = new VipDriver(vip(), { exec, logger: silentLogger, listAddresses: () => namespaceInterfaces() });
    await driver.start();
    const before = calls.length;
    assert.deepEqual(await driver.status(), { running: true, detail: `${VIP}/24 on eth0` });
    assert.deepEqual(calls.slice(before).map((c) => c.argv.join(' ')), [], 'no command ran for a held address');
    // Absent, or present with another prefix length: `ip` says exactly what is there.
    sh('ip', '-n', NS, 'address', 'add', `${VIP}/32`, 'dev', 'eth0');
    await driver.stop();
    assert.deepEqual(await driver.status(), { running: false, detail: `${VIP} not on eth0 (it is there as ${VIP}/32)` });
    assert.ok(calls.length > before + 1, 'an address that is not held is looked up with ip');
    sh('ip', '-n', NS, 'address', 'del', `${VIP}/32`, 'dev', 'eth0');
  });

  void test('an add or delete that loses a race with another one still succeeds', async () => {
    const { exec } = namespaceExec();
    // Between the driver's look and its change, someone else makes the same change.
    const racing: Exec = async (file, args, options) => {
      if (args.includes('add')) sh('ip', '-n', NS, 'address', 'add', `${VIP}/24`, 'dev', 'eth0');
      if (args.includes('del')) sh('ip', '-n', NS, 'address', 'del', `${VIP}/24`, 'dev', 'eth0');
      return exec(file, args, options);
    };
    const driver = new VipDriver(vip(), { exec: racing, logger: silentLogger });
    await driver.start();
    assert.match(addressesInNs(), /inet 10\.213\.250\.10\/24 /);
    await driver.stop();
    assert.doesNotMatch(addressesInNs(), /10\.213\.250\.10/);
  });

  void test('the same address with another prefix length is not this VIP', async () => {
    sh('ip', '-n', NS, 'address', 'add', `${VIP}/32`, 'dev', 'eth0');
    try {
      const driver = new VipDriver(vip(), { exec: namespaceExec().exec, logger: silentLogger });
      assert.deepEqual(await driver.status(), { running: false, detail: `${VIP} not on eth0 (it is there as ${VIP}/32)` });
      await driver.stop(); // not ours: left alone
      assert.match(addressesInNs(), /10\.213\.250\.10\/32/);
    } finally {
      sh('ip', '-n', NS, 'address', 'del', `${VIP}/32`, 'dev', 'eth0');
    }
  });

  void test('a missing interface: start fails naming it and the node interfaces; stop and status do not fail', async () => {
    const driver = new VipDriver(vip({ interface: 'eth9' }), { exec: namespaceExec().exec, logger: silentLogger });
    await assert.rejects(driver.start(), (error: unknown) => {
      assert.ok(error instanceof InterfaceNotFoundError);
      assert.equal(error.message, 'interface eth9 not found on this node (this node has lo, eth0): fix groups[..] interface');
      assert.deepEqual(error.available, ['lo', 'eth0']);
      return true;
    });
    await driver.stop();
    assert.deepEqual(await driver.status(), { running: false, detail: 'interface eth9 not found' });
  });

  void test('start announces the address with gratuitous ARP without waiting for it; the peer learns the new MAC', async () => {
    // The peer still has the VIP at the old owner's MAC, as a client has after a failover.
    // (Linux updates an existing entry from a gratuitous ARP; it creates none by default.)
    sh('ip', '-n', PEER, 'neigh', 'replace', VIP, 'lladdr', OLD_OWNER_MAC, 'dev', 'peer0', 'nud', 'stale');
    assert.match(peerNeighbour(), new RegExp(OLD_OWNER_MAC));
    const ourMac = macOf(NS, 'eth0');

    const { exec, calls } = namespaceExec();
    const driver = new VipDriver(vip({ arpCount: 2 }), { exec, logger: silentLogger });
    await driver.start();
    // Each arping -c 1 takes about a second: had start waited for one, it would be done.
    assert.equal(arpings(calls).length, 1, 'the first arping started before start returned');
    assert.equal(arpings(calls)[0]!.done, false, 'start did not wait for arping');
    assert.deepEqual(arpings(calls)[0]!.argv, ['arping', '-U', '-c', '1', '-I', 'eth0', VIP]);

    await waitFor(`peer's neighbour entry for ${VIP} to show ${ourMac}`, () => peerNeighbour().includes(ourMac), 5_000);
    await waitFor('both arpings to finish', () => arpings(calls).length === 2 && arpings(calls).every((call) => call.done), 10_000);
    assert.deepEqual(
      arpings(calls).map((call) => call.exitCode),
      [0, 0],
    );
    await driver.stop();
  });

  void test('stop ends a running announcement before deleting the address', async () => {
    const { exec, calls } = namespaceExec();
    const driver = new VipDriver(vip({ arpCount: 20 }), { exec, logger: silentLogger });
    await driver.start();
    await driver.stop();
    const started = arpings(calls).length;
    assert.ok(started < 20, `only ${started} of 20 arpings ran`);
    assert.ok(
      arpings(calls).every((call) => call.done),
      'no arping is still running once stop returned',
    );
    const stopIndex = calls.findIndex((call) => call.argv.includes('del'));
    assert.ok(
      calls.slice(stopIndex).every((call) => call.argv[0] !== 'arping'),
      'no arping started after the delete',
    );
  });

  void test('a failing arping is logged, not fatal', async () => {
    const { exec } = namespaceExec();
    const { logger, records } = capturingLogger();
    const driver = new VipDriver(vip({ arpCount: 3 }), { exec, logger, arpingBin: '/nonexistent/arping' });
    await driver.start();
    assert.deepEqual((await driver.status()).running, true);
    await waitFor('the arping failure to be logged', () => records.find((r) => r.level === 40 && String(r.msg).startsWith('gratuitous ARP failed')), 5_000);
    await driver.stop();
    assert.doesNotMatch(addressesInNs(), /10\.213\.250\.10/);
  });
});

// ------------------------------------------------------------------ IPv6, real ip and send_ua
/**
 * The same pair of namespaces for an IPv6 VIP (the lab's ULA range, fd00:213::/64): the peer
 * (fd00:213::2) still has the VIP at the old owner's MAC, as a client has after a failover, and
 * learns the new one from send_ua's unsolicited neighbour advertisement. No link-local
 * addresses (addrgenmode none) and nodad on the peer: nothing but the driver's packets.
 */
const NS6 = `haovip6-test-${process.pid}`;
const PEER6 = `haovip6-peer-${process.pid}`;
const VIP6 = 'fd00:213::200';

function canUseIPv6Namespaces(): string | false {
  const base = canUseNamespaces();
  if (base) return base;
  if (!existsSync(SEND_UA)) return `needs ${SEND_UA} (Debian package resource-agents)`;
  return false;
}

function vip6(overrides: Partial<VipResource> = {}): VipResource {
  return vip({ address: `${VIP6}/64`, ...overrides });
}

const addresses6 = () => sh('ip', '-n', NS6, '-o', '-6', 'address', 'show', 'dev', 'eth0');
const peerNeighbour6 = () => sh('ip', '-n', PEER6, 'neigh', 'show', VIP6, 'dev', 'peer0').trim();

void describe('VipDriver with an IPv6 address, real ip and send_ua in a network namespace', { skip: canUseIPv6Namespaces() }, () => {
  before(() => {
    sh('ip', 'netns', 'add', NS6);
    sh('ip', 'netns', 'add', PEER6);
    sh('ip', '-n', NS6, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'peer0', 'netns', PEER6);
    for (const [ns, dev] of [[NS6, 'eth0'], [PEER6, 'peer0']] as const) sh('ip', '-n', ns, 'link', 'set', dev, 'addrgenmode', 'none');
    for (const [ns, dev] of [[NS6, 'lo'], [NS6, 'eth0'], [PEER6, 'lo'], [PEER6, 'peer0']] as const) sh('ip', '-n', ns, 'link', 'set', dev, 'up');
    sh('ip', '-n', PEER6, '-6', 'address', 'add', 'fd00:213::2/64', 'dev', 'peer0', 'nodad');
  });

  after(() => {
    for (const ns of [NS6, PEER6]) {
      try {
        sh('ip', 'netns', 'del', ns);
      } catch {
        // never created
      }
    }
  });

  void test('start adds it with nodad (usable at once), announces it, the peer learns the new MAC and reaches it; stop removes it', async () => {
    sh('ip', '-n', PEER6, 'neigh', 'replace', VIP6, 'lladdr', OLD_OWNER_MAC, 'dev', 'peer0', 'nud', 'stale');
    const ourMac = macOf(NS6, 'eth0');
    const { exec, calls } = namespaceExec(NS6);
    // Written long-hand: the driver must find it under the text `ip` prints.
    const driver = new VipDriver(vip6({ address: 'fd00:0213:0::0200/64', arpCount: 2 }), { exec, logger: silentLogger, listAddresses: () => namespaceInterfaces(NS6) });
    assert.deepEqual(await driver.status(), { running: false, detail: `${VIP6} not on eth0` });

    await driver.start();
    assert.match(addresses6(), /inet6 fd00:213::200\/64 scope global nodad/);
    assert.doesNotMatch(addresses6(), /tentative/, 'no duplicate address detection to wait for');
    const before = calls.length;
    assert.deepEqual(await driver.status(), { running: true, detail: `${VIP6}/64 on eth0` });
    assert.equal(calls.length, before, 'a held address (written long-hand in the configuration) is found without running ip');
    assert.deepEqual(calls.find((c) => c.argv.includes('add'))?.argv, ['ip', '-6', 'address', 'add', `${VIP6}/64`, 'dev', 'eth0', 'nodad']);
    const announcements = () => calls.filter((c) => c.argv[0] === SEND_UA);
    assert.deepEqual(announcements()[0]?.argv, [SEND_UA, '-i', '1000', '-c', '1', VIP6, '64', 'eth0']);

    await waitFor(`peer's neighbour entry for ${VIP6} to show ${ourMac}`, () => peerNeighbour6().includes(ourMac), 5_000);
    // Reachable from the peer right away (not tentative): ping6 through the new entry.
    sh('ip', 'netns', 'exec', PEER6, 'ping', '-6', '-c', '1', '-W', '2', VIP6);

    await driver.start();
    assert.equal(addresses6().match(/fd00:213::200\//g)?.length, 1, 'the address is there once');
    await waitFor('the announcements to finish', () => announcements().length >= 2 && announcements().every((c) => c.done), 10_000);
    assert.ok(announcements().every((c) => c.exitCode === 0));

    await driver.stop();
    assert.doesNotMatch(addresses6(), /fd00:213::200/);
    assert.deepEqual(calls.find((c) => c.argv.includes('del'))?.argv, ['ip', '-6', 'address', 'del', `${VIP6}/64`, 'dev', 'eth0']);
    assert.deepEqual(await driver.status(), { running: false, detail: `${VIP6} not on eth0` });
    await driver.stop();
  });

  void test('the same address with another prefix length is not this VIP', async () => {
    sh('ip', '-n', NS6, '-6', 'address', 'add', `${VIP6}/128`, 'dev', 'eth0', 'nodad');
    try {
      const driver = new VipDriver(vip6(), { exec: namespaceExec(NS6).exec, logger: silentLogger });
      assert.deepEqual(await driver.status(), { running: false, detail: `${VIP6} not on eth0 (it is there as ${VIP6}/128)` });
      await driver.stop();
      assert.match(addresses6(), /fd00:213::200\/128/);
    } finally {
      sh('ip', '-n', NS6, '-6', 'address', 'del', `${VIP6}/128`, 'dev', 'eth0');
    }
  });

  void test('send_ua that cannot send (exit 0, ERROR on its output) and a missing send_ua are logged, not fatal', async () => {
    const { exec } = namespaceExec(NS6);
    const { logger, records } = capturingLogger();
    // The address is deleted behind the driver's back before its announcement: send_ua's bind fails.
    const deleting: Exec = async (file, args, options) => {
      if (file === SEND_UA) sh('ip', '-n', NS6, '-6', 'address', 'del', `${VIP6}/64`, 'dev', 'eth0');
      return exec(file, args, options);
    };
    const driver = new VipDriver(vip6({ arpCount: 3 }), { exec: deleting, logger });
    await driver.start();
    const failed = await waitFor('the failed advertisement to be logged', () => records.find((r) => r.level === 40 && String(r.msg).startsWith('unsolicited neighbour advertisement failed')), 5_000);
    assert.match(String(failed.msg), /ERROR: bind\(\) failed/);
    await driver.stop();

    const missing = capturingLogger();
    const driver2 = new VipDriver(vip6({ arpCount: 1 }), { exec, logger: missing.logger, sendUaBin: '/nonexistent/send_ua' });
    await driver2.start();
    const logged = await waitFor('the missing send_ua to be logged', () => missing.records.find((r) => r.level === 40), 5_000);
    assert.match(String(logged.msg), /resource-agents/);
    assert.deepEqual((await driver2.status()).running, true);
    await driver2.stop();
    assert.doesNotMatch(addresses6(), /fd00:213::200/);
  });
});
