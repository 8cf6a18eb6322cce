import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDiskNames, fixFstab, fixHostname, fixHosts, fixNetworkFile, machineIdOf, planClone, type CloneFacts, type TargetMount } from '../../workflows/clone-plan.js';

const facts: CloneFacts = {
  nodes: [
    { name: 'alpha', addresses: ['10.213.0.11', 'fd00:213::11'] },
    { name: 'beta', addresses: ['10.213.0.12', 'fd00:213::12'] },
    { name: 'gamma', addresses: ['gamma.example.org'] },
  ],
  stateDir: '/var/lib/haoscar',
  groupMountpoints: ['/srv/data'],
  clone: { include: ['/'], exclude: ['/var/cache/apt/archives/*.deb'] },
};

test('the whole root: runtime trees, identity files, the agent state and group mounts are left out, then everything else in', () => {
  const plan = planClone(facts, { from: 'alpha', to: 'beta' });
  for (const p of ['/proc/*', '/sys/*', '/dev/*', '/run/*', '/tmp/*', '/var/lib/haoscar/*', '/srv/data/*', '/etc/ssh/ssh_host_*', '/etc/machine-id', '/var/cache/apt/archives/*.deb']) {
    assert.ok(plan.filters.includes(`- ${p}`), `${p} is excluded`);
  }
  assert.equal(plan.filters.at(-1), '+ /**');
  // Exclusions come first: rsync takes the first rule that matches.
  const firstInclude = plan.filters.findIndex((f) => f.startsWith('+'));
  assert.ok(plan.filters.slice(firstInclude).every((f) => f.startsWith('+')));
  assert.equal(plan.hostname, 'beta');
  assert.deepEqual(plan.addresses, [{ from: '10.213.0.11', to: '10.213.0.12' }, { from: 'fd00:213::11', to: 'fd00:213::12' }]);
  assert.deepEqual(plan.warnings, []);
});

test('configured parts: each include with its parent directories, then everything else out', () => {
  const plan = planClone({ ...facts, clone: { include: ['/etc', '/usr/local/bin/'], exclude: [] } }, { from: 'alpha', to: 'beta', hostname: 'beta.example.org' });
  const after = plan.filters.slice(plan.filters.findIndex((f) => f.startsWith('+')));
  assert.deepEqual(after, ['+ /usr/', '+ /usr/local/', '+ /etc', '+ /etc/**', '+ /usr/local/bin', '+ /usr/local/bin/**', '- *']);
  assert.equal(plan.hostname, 'beta.example.org');
});

test('refusals name what is wrong', () => {
  assert.throws(() => planClone(facts, { from: 'alpha', to: 'alpha' }), /same node 'alpha'/);
  assert.throws(() => planClone(facts, { from: 'alpha', to: 'delta' }), /unknown target node 'delta' \(known: alpha, beta, gamma\)/);
  assert.throws(() => planClone(facts, { from: 'omega', to: 'beta' }), /unknown source node 'omega'/);
  assert.throws(() => planClone({ ...facts, clone: { include: ['etc'], exclude: [] } }, { from: 'alpha', to: 'beta' }), /'etc' is not absolute/);
});

test('addresses that cannot be paired are warned about, host names are not rewritten', () => {
  const plan = planClone(facts, { from: 'alpha', to: 'gamma' });
  assert.deepEqual(plan.addresses, []);
  assert.match(plan.warnings.join('\n'), /alpha has 2 IP address\(es\) in nodes: and gamma has 0/);
  assert.match(planClone(facts, { from: 'gamma', to: 'alpha' }).warnings.join('\n'), /host names in gamma's addresses/);
});

const swap = [{ from: '10.213.0.11', to: '10.213.0.12' }, { from: 'fd00:213::11', to: 'fd00:213::12' }];

test('network files of each family: the own addresses are rewritten as whole tokens, comments and peers left alone', () => {
  const table: { format: Parameters<typeof fixNetworkFile>[0]; input: string; expected: string; changes: number; warnings?: RegExp }[] = [
    {
      format: 'ifupdown',
      input: 'auto eth0\n# was 10.213.0.11\niface eth0 inet static\n    address 10.213.0.11/24\n    gateway 10.213.0.1\n    up ip route add 10.9.0.0/16 via 10.213.0.111\niface eth0 inet6 static\n    address fd00:213::11/64\n    hwaddress ether 52:54:00:12:34:56\n',
      expected: 'auto eth0\n# was 10.213.0.11\niface eth0 inet static\n    address 10.213.0.12/24\n    gateway 10.213.0.1\n    up ip route add 10.9.0.0/16 via 10.213.0.111\niface eth0 inet6 static\n    address fd00:213::12/64\n    hwaddress ether 52:54:00:12:34:56\n',
      changes: 2,
      warnings: /line 9 pins a hardware \(MAC\) address/,
    },
    {
      format: 'netplan',
      input: 'network:\n  ethernets:\n    eth0:\n      addresses:\n        - 10.213.0.11/24\n        - "fd00:213::11/64"\n      routes: [{to: default, via: 10.213.0.1}]\n      nameservers: {addresses: [10.213.0.12]}\n',
      expected: 'network:\n  ethernets:\n    eth0:\n      addresses:\n        - 10.213.0.12/24\n        - "fd00:213::12/64"\n      routes: [{to: default, via: 10.213.0.1}]\n      nameservers: {addresses: [10.213.0.12]}\n',
      changes: 2,
    },
    {
      format: 'networkmanager',
      input: '[connection]\nid=cluster\nuuid=0b6e2e63-6b4e-4f2b-9f0a-1d2e3f4a5b6c\n[ethernet]\nmac-address=52:54:00:12:34:56\n[ipv4]\naddress1=10.213.0.11/24,10.213.0.1\nmethod=manual\n[ipv6]\naddress1=FD00:213::11/64\n',
      expected: '[connection]\nid=cluster\nuuid=0b6e2e63-6b4e-4f2b-9f0a-1d2e3f4a5b6c\n[ethernet]\nmac-address=52:54:00:12:34:56\n[ipv4]\naddress1=10.213.0.12/24,10.213.0.1\nmethod=manual\n[ipv6]\naddress1=fd00:213::12/64\n',
      changes: 2,
      warnings: /line 5 pins a hardware/,
    },
    {
      format: 'sysconfig',
      input: "BOOTPROTO='static'\nIPADDR='10.213.0.11/24'\nIPADDR_1='10.213.0.110/24'\nHWADDR=52:54:00:12:34:56\n",
      expected: "BOOTPROTO='static'\nIPADDR='10.213.0.12/24'\nIPADDR_1='10.213.0.110/24'\nHWADDR=52:54:00:12:34:56\n",
      changes: 1,
      warnings: /HWADDR/,
    },
  ];
  for (const row of table) {
    const fix = fixNetworkFile(row.format, row.input, swap);
    assert.equal(fix.content, row.expected, row.format);
    assert.equal(fix.changes.length, row.changes, `${row.format}: ${fix.changes.join('; ')}`);
    if (row.warnings) assert.match(fix.warnings.join('\n'), row.warnings, row.format);
    else assert.deepEqual(fix.warnings, [], row.format);
  }
});

test('two addresses swapped are replaced at once, not twice', () => {
  const fix = fixNetworkFile('ifupdown', 'address 10.0.0.1\naddress 10.0.0.2\n', [{ from: '10.0.0.1', to: '10.0.0.2' }, { from: '10.0.0.2', to: '10.0.0.1' }]);
  assert.equal(fix.content, 'address 10.0.0.2\naddress 10.0.0.1\n');
});

test('a file without the own addresses is left unchanged (no write)', () => {
  assert.equal(fixNetworkFile('netplan', 'network:\n  ethernets:\n    eth0: {dhcp4: true}\n', swap).content, undefined);
});

test('host name and /etc/hosts: only the loopback lines carry the machine\'s own name', () => {
  assert.deepEqual(fixHostname('alpha\n', 'beta'), { content: 'beta\n', changes: ['alpha -> beta'], warnings: [] });
  assert.equal(fixHostname('beta\n', 'beta').content, undefined);
  const hosts = '127.0.0.1\tlocalhost\n127.0.1.1\talpha.example.org alpha # this host\n10.213.0.11\talpha\n10.213.0.12\tbeta\n::1 localhost alphabet\n';
  const fix = fixHosts(hosts, 'alpha', 'beta');
  assert.equal(fix.content, '127.0.0.1\tlocalhost\n127.0.1.1\tbeta.example.org beta # this host\n10.213.0.11\talpha\n10.213.0.12\tbeta\n::1 localhost alphabet\n');
  assert.equal(fix.changes.length, 1);
  assert.equal(fixHosts(hosts, 'beta', 'beta').content, undefined);
});

test('crypttab: LUKS containers named by UUID are reported, not rewritten', () => {
  const warnings = checkDiskNames('/etc/crypttab', '# UUID=old\ncrypt UUID=1234-abcd none luks\nswap /dev/sda3 /dev/urandom swap\n');
  assert.equal(warnings.length, 1);
  assert.match(warnings[0] ?? '', /\/etc\/crypttab line 2 names a disk of the source: crypt UUID=1234-abcd/);
});

const FSTAB = [
  '# <file system> <mount point> <type> <options> <dump> <pass>',
  '# UUID=commented / ext4 defaults 0 1',
  'UUID=1111-source-root /               ext4    errors=remount-ro 0       1',
  'LABEL=src-boot  /boot  ext4  defaults  0  2',
  'PARTUUID=aaaa-01 /boot/efi vfat umask=0077 0 1',
  'UUID=2222-source-swap none swap sw 0 0',
  '/dev/sdb1 /srv ext4 defaults 0 2',
  'UUID=3333-data /data/ xfs defaults 0 2',
  '',
].join('\n');

const cases: { name: string; mounts: TargetMount[]; lines: Record<number, string>; changes: number; warnings: RegExp[] }[] = [
  {
    name: 'nothing mounted under the target root (a directory): every name is reported, nothing changes',
    mounts: [],
    lines: {},
    changes: 0,
    warnings: [/line 3 .*nothing is mounted at \/ under the target root/, /line 4 .*LABEL=src-boot/, /line 5 .*PARTUUID=aaaa-01/, /line 6 .*swap/, /line 8 .*UUID=3333-data/],
  },
  {
    name: 'the target\'s root, /boot and EFI partition mounted: each gets the target\'s name of the same kind, else its UUID',
    mounts: [
      { mountpoint: '/', source: '/dev/vda2', fstype: 'ext4', uuid: 'tttt-root' },
      { mountpoint: '/boot', source: '/dev/vda1', fstype: 'ext4', uuid: 'tttt-boot', label: 'tgt-boot' },
      { mountpoint: '/boot/efi', source: '/dev/vda3', fstype: 'vfat', uuid: 'AB12-CD34' },
      { mountpoint: '/data', source: '/dev/vdb1', fstype: 'ext4', uuid: 'tttt-data' },
    ],
    lines: {
      3: 'UUID=tttt-root /               ext4    errors=remount-ro 0       1',
      4: 'LABEL=tgt-boot  /boot  ext4  defaults  0  2',
      5: 'UUID=AB12-CD34 /boot/efi vfat umask=0077 0 1',
      8: 'UUID=tttt-data /data/ xfs defaults 0 2',
    },
    changes: 4,
    warnings: [/line 6 .*UUID=2222-source-swap.*nothing is mounted at none/, /line 8 says xfs for \/data\/, the target's file system there is ext4/],
  },
  {
    name: 'a target file system without a UUID is reported; one already named right is left alone',
    mounts: [{ mountpoint: '/', fstype: 'ext4', uuid: '1111-source-root' }, { mountpoint: '/boot', fstype: 'ext4' }],
    lines: {},
    changes: 0,
    warnings: [/line 4 .*the target's file system at \/boot has no UUID/],
  },
];

for (const c of cases) {
  test(`fstab: ${c.name}`, () => {
    const fix = fixFstab(FSTAB, c.mounts);
    assert.equal(fix.changes.length, c.changes, fix.changes.join('\n'));
    const lines = (fix.content ?? FSTAB).split('\n');
    const source = FSTAB.split('\n');
    lines.forEach((line, i) => assert.equal(line, c.lines[i + 1] ?? source[i], `line ${i + 1}`));
    for (const w of c.warnings) assert.ok(fix.warnings.some((x) => w.test(x)), `a warning like ${w}: ${fix.warnings.join(' | ')}`);
    assert.equal(fix.content === undefined, c.changes === 0);
  });
}

test('machine ID: 32 hex digits', () => {
  assert.equal(machineIdOf(new Uint8Array(16).fill(171)), 'ab'.repeat(16));
  assert.throws(() => machineIdOf(new Uint8Array(8)), /16 random bytes/);
});

test('clone: in haoscar.yaml: defaults, and errors that name the field', async () => {
  const { parseConfig, ConfigError } = await import('../../src/config/load.js');
  const base = 'cluster: c\nnodes:\n  - { name: alpha, addresses: [10.213.0.11] }\n';
  assert.deepEqual(parseConfig(base).clone, { include: ['/'], exclude: [], checksumSample: 200, sshPort: 22 });
  assert.deepEqual(parseConfig(`${base}clone: { exclude: [/var/cache/*], sshPort: 2222 }\n`).clone.exclude, ['/var/cache/*']);
  for (const [text, path, message] of [
    ['clone: { include: [etc] }', 'clone.include', /patterns start at the root/],
    ['clone: { exclude: /tmp }', 'clone.exclude', /expected a list/],
    ['clone: { checksumSample: -1 }', 'clone.checksumSample', /integer 0-100000/],
    ['clone: { includes: [/] }', 'clone', /includes/],
  ] as const) {
    try {
      parseConfig(`${base}${text}\n`);
      assert.fail(`${text} was accepted`);
    } catch (err) {
      assert.ok(err instanceof ConfigError, String(err));
      assert.ok(err.issues.some((i) => i.path.startsWith(path) && message.test(`${i.path}: ${i.message}`)), `${text}: ${JSON.stringify(err.issues)}`);
    }
  }
});
