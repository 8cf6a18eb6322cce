/**
 * VIP addresses, IPv4 and IPv6: parsing, the canonical IPv6 text (what `ip` prints, so what the
 * driver and the lease guard look for), the addresses refused and why, the schema's messages,
 * and the exact commands the vip driver runs for each family.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIPv6, parseIPv6, parseVipAddress } from '../../src/config/ip-address.js';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import { announceCommand, ipArguments, parseIpAddressShow, SEND_UA, VipDriver } from '../../src/drivers/vip.js';
import type { VipResource } from '../../src/config/types.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';

void describe('IPv6 text', () => {
  const CANONICAL: [written: string, canonical: string][] = [
    ['fd00:213::200', 'fd00:213::200'],
    ['FD00:0213:0000:0000:0000:0000:0000:0200', 'fd00:213::200'],
    ['fd00:213:0::200', 'fd00:213::200'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'], // the first of two equal runs
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'], // one zero group stays
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1'], // the longest run
    ['::', '::'],
    ['::1', '::1'],
    ['1::', '1::'],
    ['fd00::', 'fd00::'],
  ];
  for (const [written, canonical] of CANONICAL) void test(`${written} → ${canonical}`, () => assert.equal(canonicalIPv6(written), canonical));

  void test('not IPv6', () => {
    for (const bad of ['', ':', ':::', '1:2:3:4:5:6:7', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', 'g::1', 'fe80::1%eth0', '::ffff:10.0.0.1', '10.0.0.1', '1:2:3:4:5:6:7:8::']) {
      assert.equal(parseIPv6(bad), undefined, bad);
    }
    assert.deepEqual(parseIPv6('1:2:3:4:5:6:7::'), [1, 2, 3, 4, 5, 6, 7, 0]);
  });
});

void describe('parseVipAddress', () => {
  void test('IPv4 as written, IPv6 canonical', () => {
    assert.deepEqual(parseVipAddress('10.213.0.100/24'), { family: 4, address: '10.213.0.100', prefixLength: 24 });
    assert.deepEqual(parseVipAddress('FD00:213:0::200/64'), { family: 6, address: 'fd00:213::200', prefixLength: 64 });
    assert.deepEqual(parseVipAddress('2001:db8::5/128'), { family: 6, address: '2001:db8::5', prefixLength: 128 });
  });

  const REFUSED: [text: string, problem: RegExp][] = [
    ['10.213.0.100', /prefix length \/1 to \/32/],
    ['10.213.0.100/33', /prefix length \/1 to \/32/],
    ['fd00:213::200', /prefix length \/1 to \/128/],
    ['fd00:213::200/129', /prefix length \/1 to \/128/],
    ['fd00:213::200/0', /prefix length \/1 to \/128/],
    ['fe80::200/64', /fe80::200 cannot be a VIP: a link-local address \(fe80::\/10\) is valid on one link only/],
    ['febf:ffff::1/64', /link-local/],
    ['fe80::1%eth0/64', /with a zone such as %eth0 is link-local/],
    ['ff02::1/64', /multicast/],
    ['::1/128', /loopback/],
    ['::/64', /unspecified/],
    ['::ffff:a00:1/96', /IPv4-mapped/],
    ['10.0.0.300/24', /expected an IPv4 or IPv6 address with its prefix length, e\.g\. 10\.213\.0\.100\/24 or fd00:213::200\/64/],
  ];
  for (const [text, problem] of REFUSED) {
    void test(`refuses ${text}`, () => {
      const r = parseVipAddress(text);
      assert.ok('problem' in r, `accepted ${text}`);
      assert.match(r.problem, problem);
    });
  }
  void test('fec0::/10 (next to link-local) is accepted', () => assert.equal((parseVipAddress('fec0::1/64') as { family: number }).family, 6));
});

void describe('the schema', () => {
  const config = (address: string) => `
cluster: c
temporal: { address: "127.0.0.1:7233" }
nodes:
  - { name: a, addresses: [10.0.0.1, fd00:213::11] }
  - { name: b, addresses: [10.0.0.2, fd00:213::12] }
groups:
  - name: web
    resources:
      - { type: vip, name: ip, address: "${address}", interface: eth0 }
`;
  void test('takes an IPv6 vip (kept as written) and IPv6 node addresses', () => {
    const c = parseConfig(config('fd00:213:0::200/64'));
    assert.equal((c.groups[0]!.resources[0] as VipResource).address, 'fd00:213:0::200/64');
    assert.deepEqual(c.nodes[0]!.addresses, ['10.0.0.1', 'fd00:213::11']);
  });
  void test('says why a link-local vip is refused, at its path', () => {
    assert.throws(() => parseConfig(config('fe80::5/64')), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /groups\[0\]\.resources\[0\]\.address/);
      assert.match(e.message, /fe80::5 cannot be a VIP: a link-local address \(fe80::\/10\)/);
      return true;
    });
  });
});

void describe('the commands of each family (argument arrays)', () => {
  const v4 = { family: 4, address: '10.213.0.200', prefixLength: 24 } as const;
  const v6 = { family: 6, address: 'fd00:213::200', prefixLength: 64 } as const;
  void test('ip', () => {
    assert.deepEqual(ipArguments('add', v4, 'eth0'), ['-4', 'address', 'add', '10.213.0.200/24', 'dev', 'eth0']);
    assert.deepEqual(ipArguments('del', v4, 'eth0'), ['-4', 'address', 'del', '10.213.0.200/24', 'dev', 'eth0']);
    assert.deepEqual(ipArguments('show', v4, 'eth0'), ['-o', '-4', 'address', 'show', 'dev', 'eth0']);
    assert.deepEqual(ipArguments('add', v6, 'eth0'), ['-6', 'address', 'add', 'fd00:213::200/64', 'dev', 'eth0', 'nodad']);
    assert.deepEqual(ipArguments('del', v6, 'eth0'), ['-6', 'address', 'del', 'fd00:213::200/64', 'dev', 'eth0']);
    assert.deepEqual(ipArguments('show', v6, 'eth0'), ['-o', '-6', 'address', 'show', 'dev', 'eth0']);
  });
  void test('announcements: arping for IPv4, send_ua for IPv6', () => {
    const bins = { arping: 'arping', sendUa: SEND_UA };
    assert.deepEqual(announceCommand(v4, 'eth0', bins), ['arping', ['-U', '-c', '1', '-I', 'eth0', '10.213.0.200']]);
    assert.deepEqual(announceCommand(v6, 'eth0', bins), ['/usr/libexec/heartbeat/send_ua', ['-i', '1000', '-c', '1', 'fd00:213::200', '64', 'eth0']]);
  });
  void test('the guard is handed the canonical text', () => {
    const resource = {
      type: 'vip', name: 'vip', address: 'FD00:213:0::200/64', interface: 'eth0', arpCount: 0,
      check: { type: 'status', intervalMs: 1000, timeoutMs: 1000, rise: 1, fall: 1 },
      healing: { maxRestarts: 3, windowMs: 60_000, backoff: { initialMs: 100, maxMs: 1000, multiplier: 2 }, startTimeoutMs: 10_000 },
    } satisfies VipResource;
    const driver = new VipDriver(resource, { exec: createExec(silentLogger), logger: silentLogger });
    assert.deepEqual(driver.guardActions(), [{ kind: 'vip', device: 'eth0', address: 'fd00:213::200/64' }]);
  });
  void test('parseIpAddressShow reads the inet6 lines, canonical', () => {
    // Captured from iproute2 6.1 (`ip -o -6 address show`) in a network namespace.
    const text = [
      '2: eth0    inet6 fd00:213::200/64 scope global nodad \\       valid_lft forever preferred_lft forever',
      '2: eth0    inet6 fe80::8810:3fff:fe9f:d446/64 scope link tentative \\       valid_lft forever preferred_lft forever',
      '3: eth1@if2    inet6 2001:db8::1/128 scope global \\       valid_lft forever preferred_lft forever',
      '2: eth0    inet 10.213.0.11/24 scope global eth0\\       valid_lft forever preferred_lft forever',
    ].join('\n');
    assert.deepEqual(parseIpAddressShow(text, 6), [
      { ifindex: 2, ifname: 'eth0', address: 'fd00:213::200', prefixLength: 64 },
      { ifindex: 2, ifname: 'eth0', address: 'fe80::8810:3fff:fe9f:d446', prefixLength: 64 },
      { ifindex: 3, ifname: 'eth1', address: '2001:db8::1', prefixLength: 128 },
    ]);
    assert.deepEqual(parseIpAddressShow(text).map((l) => l.address), ['10.213.0.11']);
  });
});
