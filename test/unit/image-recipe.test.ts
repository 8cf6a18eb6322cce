/**
 * `haoscar image recipe` (docs/clone.md#unattended-install-recipes): the parsers of what a node's
 * system is made of, the layout planner, and each generator, table-tested on inventories of the
 * three families. The preseed is checked by the real `debconf-set-selections --checkonly`, the
 * AutoYaST profile by a real XML parser (`xmllint`, libxml2-utils) and its namespace and typed
 * elements, the kickstart by a checker of kickstart's documented syntax below, and, where
 * `ksvalidator` (pykickstart) is on PATH or in $KSVALIDATOR, by it too. Debian has no pykickstart
 * and no YaST schema: CI runs no official kickstart or AutoYaST validator.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  debianManualPackages, describeDevice, inventorySchema, parseAptAutoInstalled, parseAptDeb822, parseAptSourcesList, parseDpkgStatus, parseFstab, parseLsblk,
  parseRpmRepoFile, splitLvmName, type Inventory,
} from '../../workflows/recipe/inventory.js';
import { firstBootScript, installFirstBootLines, joinCommand, planLayout, type RecipeOptions } from '../../workflows/recipe/common.js';
import { base64 } from '../../workflows/recipe/preseed.js';
import { generateRecipe } from '../../workflows/recipe/recipe.js';
import { AUTOYAST_CONFIG_NS, AUTOYAST_NS } from '../../workflows/recipe/autoyast.js';
import { imageRecipeInputSchema } from '../../workflows/inputs.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const base = (over: Partial<Inventory>): Inventory => inventorySchema.parse({
  node: 'alpha', root: '/', os: { id: 'debian', idLike: [], name: 'Debian GNU/Linux 12 (bookworm)', versionId: '12', codename: 'bookworm' }, family: 'debian', architecture: 'amd64',
  repositories: [], packages: { manual: ['nodejs', 'openssh-server', 'vim'], how: 'test' }, filesystems: [], disks: [], efi: false, leftOut: [], notes: [], ...over,
});

const debianLvm = base({
  repositories: [
    { uri: 'http://deb.debian.org/debian', suites: ['bookworm'], components: ['main', 'non-free-firmware'], enabled: true, file: '/etc/apt/sources.list' },
    { uri: 'http://deb.debian.org/debian', suites: ['bookworm-updates'], components: ['main'], enabled: true, file: '/etc/apt/sources.list' },
    { uri: 'http://security.debian.org/debian-security', suites: ['bookworm-security'], components: ['main'], enabled: true, file: '/etc/apt/sources.list' },
    { uri: 'https://deb.nodesource.com/node_20.x', suites: ['nodistro'], components: ['main'], enabled: true, key: '/usr/share/keyrings/nodesource.gpg', file: '/etc/apt/sources.list.d/nodesource.list' },
  ],
  filesystems: [
    { mountpoint: '/boot', fstype: 'ext4', source: 'UUID=1', options: 'defaults', sizeBytes: 512 * MiB, device: { kind: 'partition', name: 'sda1', disk: 'sda', under: [] } },
    { mountpoint: '/', fstype: 'ext4', source: '/dev/mapper/vg0-root', options: 'errors=remount-ro', sizeBytes: 30 * GiB, device: { kind: 'lvm', name: 'vg0-root', vg: 'vg0', lv: 'root', disk: 'sda', under: [] } },
    { mountpoint: '/var', fstype: 'xfs', source: '/dev/mapper/vg0-var', options: 'defaults', sizeBytes: 10 * GiB, device: { kind: 'lvm', name: 'vg0-var', vg: 'vg0', lv: 'var', disk: 'sda', under: [] } },
    { mountpoint: 'swap', fstype: 'swap', source: '/dev/mapper/vg0-swap', options: 'sw', sizeBytes: 2 * GiB, device: { kind: 'lvm', name: 'vg0-swap', vg: 'vg0', lv: 'swap', disk: 'sda', under: [] } },
  ],
  disks: [{ name: 'sda', sizeBytes: 64 * GiB }],
  locale: 'en_US.UTF-8', timezone: 'Europe/Paris',
  leftOut: ['10.0.0.5:/export /srv/nfs nfs defaults'],
});

const rhelPlain = base({
  os: { id: 'rocky', idLike: ['rhel', 'centos', 'fedora'], name: 'Rocky Linux 9.4 (Blue Onyx)', versionId: '9.4' }, family: 'rhel', architecture: 'x86_64',
  repositories: [
    { name: 'baseos', mirrorlist: 'https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=BaseOS-$releasever', suites: [], components: [], enabled: true, file: '/etc/yum.repos.d/rocky.repo' },
    { name: 'appstream', mirrorlist: 'https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=AppStream-$releasever', suites: [], components: [], enabled: true, file: '/etc/yum.repos.d/rocky.repo' },
    { name: 'highavailability', uri: 'http://dl.rockylinux.org/$contentdir/$releasever/HighAvailability/$basearch/os/', suites: [], components: [], enabled: true, file: '/etc/yum.repos.d/rocky.repo' },
    { name: 'devel', uri: 'http://dl.rockylinux.org/devel/', suites: [], components: [], enabled: false, file: '/etc/yum.repos.d/rocky.repo' },
  ],
  packages: { manual: ['kernel', 'openssh-server', 'resource-agents', 'rsync'], how: 'dnf repoquery --userinstalled' },
  filesystems: [
    { mountpoint: '/boot/efi', fstype: 'vfat', source: 'UUID=A', options: 'umask=0077', sizeBytes: 600 * MiB, device: { kind: 'partition', name: 'nvme0n1p1', disk: 'nvme0n1', under: [] } },
    { mountpoint: '/boot', fstype: 'xfs', source: 'UUID=B', options: 'defaults', sizeBytes: GiB, device: { kind: 'partition', name: 'nvme0n1p2', disk: 'nvme0n1', under: [] } },
    { mountpoint: '/', fstype: 'xfs', source: 'UUID=C', options: 'defaults', sizeBytes: 100 * GiB, device: { kind: 'raid', name: 'md0', level: 'raid1', disk: 'nvme0n1', under: [] } },
    { mountpoint: '/home', fstype: 'xfs', source: 'UUID=D', options: 'defaults', sizeBytes: 20 * GiB, device: { kind: 'crypt', name: 'luks-home', disk: 'nvme1n1', under: [] } },
  ],
  efi: true, timezone: 'America/New_York',
});

const suseLvm = base({
  os: { id: 'opensuse-leap', idLike: ['suse', 'opensuse'], name: 'openSUSE Leap 15.6', versionId: '15.6' }, family: 'suse', architecture: 'x86_64',
  repositories: [
    { name: 'repo-oss', uri: 'http://download.opensuse.org/distribution/leap/$releasever/repo/oss/', suites: [], components: [], enabled: true, file: '/etc/zypp/repos.d/repo-oss.repo' },
    { name: 'repo-source', uri: 'http://download.opensuse.org/source/distribution/leap/$releasever/repo/oss/', suites: [], components: [], enabled: false, file: '/etc/zypp/repos.d/repo-source.repo' },
  ],
  packages: { manual: ['drbd-utils', 'openssh-server', 'rsync'], how: 'test' },
  filesystems: [
    { mountpoint: '/', fstype: 'btrfs', source: '/dev/system/root', options: 'defaults', sizeBytes: 40 * GiB, device: { kind: 'lvm', name: 'system-root', vg: 'system', lv: 'root', disk: 'sda', under: [] } },
    { mountpoint: 'swap', fstype: 'swap', source: '/dev/system/swap', options: 'defaults', sizeBytes: GiB, device: { kind: 'lvm', name: 'system-swap', vg: 'system', lv: 'swap', disk: 'sda', under: [] } },
  ],
  efi: true,
});

const bare = base({ notes: ['a directory'] });

const options: RecipeOptions = {
  source: { node: 'alpha', addresses: ['10.213.0.11', '192.168.100.11'] },
  joinKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx1b3Rlc3Rrz root@alpha',
  joinFiles: ['/etc/haoscar/haoscar.yaml', '/etc/haoscar/authkey', '/etc/haoscar/sync_ed25519', '/etc/haoscar/sync_ed25519.pub'],
  identityFile: '/etc/haoscar/sync_ed25519',
  packageUrl: 'http://10.213.0.1/ha-oscar-0.1.0.tgz',
  hostname: 'gamma',
};

let scratch: string | undefined;
async function tmpFile(name: string, text: string): Promise<string> {
  scratch ??= await mkdtemp(join(tmpdir(), 'haoscar-recipe-unit-'));
  const file = join(scratch, name);
  await writeFile(file, text);
  return file;
}
test.after(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

// ---------------------------------------------------------------- parsers

test('fstab: fields, comments, \\040 escapes, default options', () => {
  assert.deepEqual(parseFstab('# comment\n\nUUID=abc / ext4 errors=remount-ro 0 1\n/dev/sdb1\t/srv/my\\040data xfs\n'), [
    { source: 'UUID=abc', mountpoint: '/', fstype: 'ext4', options: 'errors=remount-ro' },
    { source: '/dev/sdb1', mountpoint: '/srv/my data', fstype: 'xfs', options: 'defaults' },
  ]);
  assert.deepEqual(parseFstab('# UNCONFIGURED FSTAB FOR BASE SYSTEM\n'), []);
});

test("apt's one-line sources: options, components, deb-src and comments skipped", () => {
  const text = 'deb http://deb.debian.org/debian bookworm main contrib # tail\ndeb-src http://deb.debian.org/debian bookworm main\n# deb http://x/ y z\ndeb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] https://repo.example.org/apt stable main\n';
  assert.deepEqual(parseAptSourcesList(text, '/etc/apt/sources.list'), [
    { uri: 'http://deb.debian.org/debian', suites: ['bookworm'], components: ['main', 'contrib'], enabled: true, file: '/etc/apt/sources.list' },
    { uri: 'https://repo.example.org/apt', suites: ['stable'], components: ['main'], enabled: true, key: '/usr/share/keyrings/k.gpg', file: '/etc/apt/sources.list' },
  ]);
});

test("apt's deb822 sources: several URIs and suites, Enabled: no, deb-src only, an inline key", () => {
  const text = [
    'Types: deb deb-src', 'URIs: http://deb.debian.org/debian', 'Suites: bookworm bookworm-updates', 'Components: main non-free-firmware', 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg', '',
    'Types: deb-src', 'URIs: http://deb.debian.org/debian', 'Suites: bookworm', 'Components: main', '',
    'Types: deb', 'URIs: http://a/ http://b/', 'Suites: x', 'Components: main', 'Enabled: no', 'Signed-By:', ' -----BEGIN PGP PUBLIC KEY BLOCK-----', ' .', ' -----END PGP PUBLIC KEY BLOCK-----', '',
  ].join('\n');
  const repos = parseAptDeb822(text, '/etc/apt/sources.list.d/debian.sources');
  assert.deepEqual(repos.map((r) => [r.uri, r.suites.join(','), r.components.join(','), r.enabled, r.key]), [
    ['http://deb.debian.org/debian', 'bookworm,bookworm-updates', 'main,non-free-firmware', true, '/usr/share/keyrings/debian-archive-keyring.gpg'],
    ['http://a/', 'x', 'main', false, '(inline key in the .sources file)'],
    ['http://b/', 'x', 'main', false, '(inline key in the .sources file)'],
  ]);
});

test('rpm .repo files: baseurl, mirrorlist/metalink, enabled=0, gpgkey, a section without a source', () => {
  const text = '[baseos]\nname=Rocky Linux $releasever - BaseOS\nmirrorlist=https://m/mirrorlist?repo=BaseOS-$releasever\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9\n\n[ha]\nbaseurl=http://x/ha/ http://y/ha/\nenabled = 0\n\n[empty]\nname=nothing\n\n[fedora]\nmetalink=https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever\n';
  assert.deepEqual(parseRpmRepoFile(text, '/etc/yum.repos.d/r.repo').map((r) => [r.name, r.uri, r.mirrorlist, r.enabled, r.key]), [
    ['baseos', undefined, 'https://m/mirrorlist?repo=BaseOS-$releasever', true, 'file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9'],
    ['ha', 'http://x/ha/', undefined, false, undefined],
    ['fedora', undefined, 'https://mirrors.fedoraproject.org/metalink?repo=fedora-$releasever', true, undefined],
  ]);
});

test("dpkg status and apt's auto marks give apt-mark showmanual's list, less priority required and essential packages", () => {
  const status = [
    'Package: dpkg\nStatus: install ok installed\nPriority: required\nEssential: yes\nArchitecture: amd64',
    'Package: vim\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64',
    'Package: libvim\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64',
    'Package: removed\nStatus: deinstall ok config-files\nPriority: optional\nArchitecture: amd64',
    'Package: openssh-server\nStatus: install ok installed\nPriority: optional\nArchitecture: amd64',
    'Package: base-files\nStatus: install ok installed\nPriority: required\nArchitecture: amd64',
  ].join('\n\n');
  const parsed = parseDpkgStatus(status);
  assert.deepEqual(parsed.map((p) => p.name), ['dpkg', 'vim', 'libvim', 'openssh-server', 'base-files']);
  const auto = parseAptAutoInstalled('Package: libvim\nArchitecture: amd64\nAuto-Installed: 1\n\nPackage: vim\nArchitecture: amd64\nAuto-Installed: 0\n');
  assert.deepEqual([...auto], ['libvim']);
  assert.deepEqual(debianManualPackages(parsed, auto), ['openssh-server', 'vim']);
});

test('lsblk JSON: partitions, LVM on RAID on two disks (kept once), crypt, swap; dm names split', () => {
  const json = JSON.stringify({ blockdevices: [
    { name: 'sda', type: 'disk', size: 64 * GiB, mountpoint: null, children: [
      { name: 'sda1', type: 'part', size: 512 * MiB, mountpoint: '/boot' },
      { name: 'sda2', type: 'part', size: 60 * GiB, mountpoint: null, children: [{ name: 'md0', type: 'raid1', size: 60 * GiB, mountpoint: null, children: [{ name: 'my--vg-root', type: 'lvm', size: 20 * GiB, mountpoint: '/' }] }] },
    ] },
    { name: 'sdb', type: 'disk', size: 64 * GiB, mountpoint: null, children: [
      { name: 'sdb2', type: 'part', size: 60 * GiB, mountpoint: null, children: [{ name: 'md0', type: 'raid1', size: 60 * GiB, mountpoint: null, children: [{ name: 'my--vg-root', type: 'lvm', size: 20 * GiB, mountpoint: '/' }] }] },
      { name: 'sdb3', type: 'part', size: 4 * GiB, mountpoint: null, children: [{ name: 'cryptswap', type: 'crypt', size: 4 * GiB, mountpoints: ['[SWAP]'] }] },
    ] },
  ] });
  const devs = parseLsblk(json);
  assert.equal(devs.filter((d) => d.name === 'my--vg-root').length, 1);
  const root = devs.find((d) => d.mountpoint === '/')!;
  assert.deepEqual(describeDevice(root), { kind: 'lvm', name: 'my--vg-root', vg: 'my-vg', lv: 'root', disk: 'sda', under: ['raid1'] });
  assert.deepEqual(describeDevice(devs.find((d) => d.mountpoint === '/boot')!), { kind: 'partition', name: 'sda1', disk: 'sda', under: [] });
  assert.deepEqual(describeDevice(devs.find((d) => d.mountpoint === '[SWAP]')!), { kind: 'crypt', name: 'cryptswap', disk: 'sdb', under: [] });
  assert.deepEqual(splitLvmName('vg0-root'), { vg: 'vg0', lv: 'root' });
  assert.equal(splitLvmName('nodash'), undefined);
});

// ---------------------------------------------------------------- layout

test('the layout: sizes in MiB, the largest grows, one volume group, RAID, LUKS, several disks and unknown sizes reported', () => {
  const lvm = planLayout(debianLvm);
  assert.equal(lvm.vg, 'vg0');
  assert.deepEqual(lvm.volumes.map((v) => [v.mountpoint, v.fstype, v.sizeMiB, v.grow, v.lvm?.lv]), [
    ['/boot', 'ext4', 512, false, undefined], ['/', 'ext4', 30720, true, 'root'], ['/var', 'xfs', 10240, false, 'var'], ['swap', 'swap', 2048, false, 'swap'],
  ]);
  assert.deepEqual(lvm.unexpressed, []);

  const rhel = planLayout(rhelPlain);
  assert.equal(rhel.vg, undefined);
  assert.deepEqual(rhel.unexpressed.map((u) => u.replace(/ \(.*$/, '').replace(/:.*$/, '')), [
    'the file systems were on 2 disks', '/ was on software RAID', '/home was encrypted',
  ]);

  const unknown = planLayout(base({ filesystems: [{ mountpoint: '/', fstype: 'ext4', source: 'UUID=x', options: 'defaults' }, { mountpoint: '/srv', fstype: 'ext4', source: 'UUID=y', options: 'defaults' }, { mountpoint: 'swap', fstype: 'swap', source: '/swapfile', options: 'sw' }] }));
  assert.deepEqual(unknown.volumes.map((v) => [v.mountpoint, v.sizeMiB, v.grow]), [['/', 8192, true], ['/srv', 4096, false], ['swap', 2048, false]]);
  assert.match(unknown.unexpressed[0]!, /^sizes not known for \/, \/srv, swap: defaults used/);

  assert.deepEqual(planLayout(bare).volumes, []);
  assert.match(planLayout(bare).unexpressed[0]!, /names no local file system: the installer's own default layout/);
});

// ---------------------------------------------------------------- the first boot and the join

test('the first-boot script and its installer lines are valid sh, hold no secret and authorize the join key from the source only', async () => {
  const script = firstBootScript(options);
  await execa('sh', ['-n', await tmpFile('first-boot.sh', script)]);
  await execa('sh', ['-n', await tmpFile('install.sh', installFirstBootLines(options).join('\n'))]);
  assert.match(script, /from="10\.213\.0\.11,192\.168\.100\.11",no-agent-forwarding,no-port-forwarding,no-X11-forwarding ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx1b3Rlc3Rrz haoscar-join/);
  assert.match(script, /npm install -g 'http:\/\/10\.213\.0\.1\/ha-oscar-0\.1\.0\.tgz'/);
  assert.match(script, /\|\| echo 'HAOSCAR_NODE=gamma' >>"\$envfile"/, 'the agent takes its node name from HAOSCAR_NODE');
  const withoutUrl = firstBootScript({ ...options, packageUrl: undefined } as RecipeOptions);
  assert.match(withoutUrl, /HA-OSCAR is not installed \(no package URL in the recipe\)/);
  const join = joinCommand(options);
  assert.equal(join, `rsync -a --relative --ignore-missing-args -e 'ssh -i /etc/haoscar/sync_ed25519' /etc/haoscar/haoscar.yaml /etc/haoscar/authkey /etc/haoscar/sync_ed25519 /etc/haoscar/sync_ed25519.pub root@NEW:/ && ssh -i /etc/haoscar/sync_ed25519 root@NEW 'chmod 600 /etc/haoscar/authkey /etc/haoscar/sync_ed25519 && systemctl enable --now haoscar-guard haoscar-agent && sed -i "/ haoscar-join\\$/d" /root/.ssh/authorized_keys'`);
  // The join's sed, run through the shells as ssh runs it, removes the join key's line only.
  const keys = await tmpFile('authorized_keys', 'ssh-ed25519 AAAA admin@laptop\nfrom="10.213.0.11" ssh-ed25519 BBBB haoscar-join\n');
  const sedPart = /'chmod .* && (sed -i .*) \/root\/\.ssh\/authorized_keys'$/.exec(join)![1]!;
  await execa('sh', ['-c', `${sedPart} ${keys}`]);
  assert.equal(await execa('cat', [keys]).then((r) => r.stdout), 'ssh-ed25519 AAAA admin@laptop');
});

test('base64 without Buffer (the workflow sandbox) equals Buffer\'s, UTF-8 included', () => {
  for (const s of ['', 'a', 'ab', 'abc', 'abcd', 'héllo → wörld', firstBootScript(options)]) assert.equal(base64(s), Buffer.from(s, 'utf8').toString('base64'));
});

// ---------------------------------------------------------------- preseed

async function checkPreseed(text: string) {
  return execa('debconf-set-selections', ['--checkonly', await tmpFile('preseed.cfg', text)], { reject: false });
}

test('preseed: debconf-set-selections --checkonly accepts every inventory; it rejects a broken line (the check can fail)', async () => {
  for (const inv of [debianLvm, bare, base({ filesystems: [{ mountpoint: '/', fstype: 'ext4', source: 'UUID=x', options: 'defaults' }], efi: true })]) {
    const r = generateRecipe('preseed', inv, options);
    const checked = await checkPreseed(r.text);
    assert.equal(checked.exitCode, 0, `${checked.stderr}\n${r.text}`);
    assert.equal(checked.stderr, '', r.text);
  }
  const broken = await checkPreseed('d-i mirror/suite\n');
  assert.notEqual(broken.exitCode, 0, 'a line without a type must fail the check');
});

test('preseed: mirror, release, services, a third-party repository with its key reported, LVM recipe, packages, late command', () => {
  const r = generateRecipe('preseed', debianLvm, options);
  const has = (line: string) => assert.ok(r.text.split('\n').includes(line), `missing: ${line}\n${r.text}`);
  has('d-i mirror/http/hostname string deb.debian.org');
  has('d-i mirror/http/directory string /debian');
  has('d-i mirror/suite string bookworm');
  has('d-i apt-setup/non-free-firmware boolean true');
  has('d-i apt-setup/services-select multiselect security, updates');
  has('d-i apt-setup/local0/repository string https://deb.nodesource.com/node_20.x nodistro main');
  has('d-i partman-auto/method string lvm');
  has('d-i partman-auto-lvm/new_vg_name string vg0');
  has('d-i debian-installer/locale string en_US.UTF-8');
  has('d-i time/zone string Europe/Paris');
  has('d-i netcfg/get_hostname string gamma');
  has('d-i passwd/root-password-crypted password !');
  has('d-i pkgsel/include string nodejs openssh-server rsync vim');
  assert.match(r.text, /expert_recipe string haoscar :: \\\n {4}512 512 512 ext4 \$primary\{ \} \$bootable\{ \} method\{ format \} .* mountpoint\{ \/boot \} \. \\\n {4}30720 10000 -1 ext4 \$lvmok\{ \} lv_name\{ root \} method\{ format \} format\{ \} use_filesystem\{ \} filesystem\{ ext4 \} mountpoint\{ \/ \} \. \\\n {4}10240 10240 10240 xfs \$lvmok\{ \} lv_name\{ var \} .* \\\n {4}2048 2048 2048 linux-swap \$lvmok\{ \} lv_name\{ swap \} method\{ swap \} format\{ \} \.\n/);
  const late = /^d-i preseed\/late_command string in-target sh -c 'echo ([A-Za-z0-9+/=]+) \| base64 -d \| sh -e'$/m.exec(r.text);
  assert.ok(late, r.text);
  assert.equal(Buffer.from(late[1]!, 'base64').toString('utf8'), installFirstBootLines(options).join('\n'));
  assert.ok(r.unexpressed.some((u) => u.startsWith('repository https://deb.nodesource.com/node_20.x is signed by /usr/share/keyrings/nodesource.gpg')), r.unexpressed.join('\n'));
  assert.ok(r.unexpressed.some((u) => u.includes('10.0.0.5:/export /srv/nfs nfs')), 'the NFS line is reported');
  assert.doesNotMatch(r.text, /BEGIN|PRIVATE/);
});

test('preseed: a node of another family is reported, not silently written', () => {
  assert.match(generateRecipe('preseed', rhelPlain, options).unexpressed[0]!, /not in the Debian family: .* use --format kickstart/);
});

// ---------------------------------------------------------------- kickstart

/** kickstart's commands (pykickstart's handler for RHEL 9 / Fedora), the ones a recipe may use. */
const KS_COMMANDS = new Set(['text', 'graphical', 'cmdline', 'lang', 'keyboard', 'timezone', 'network', 'url', 'repo', 'rootpw', 'zerombr', 'clearpart', 'reqpart', 'autopart', 'part', 'partition', 'volgroup', 'logvol', 'raid', 'bootloader', 'firstboot', 'reboot', 'poweroff', 'selinux', 'firewall', 'services', 'user', 'sshkey', 'ignoredisk', 'rhsm']);
const KS_SECTIONS = new Set(['%packages', '%post', '%pre', '%pre-install', '%onerror', '%addon']);

/** Kickstart's documented structure: commands first, then sections each closed by %end; part/logvol/volgroup refer to each other. */
function checkKickstart(text: string): string[] {
  const problems: string[] = [];
  let section: string | undefined;
  const pvs = new Set<string>();
  const vgs = new Set<string>();
  const mounts = new Set<string>();
  for (const [i, raw] of text.split('\n').entries()) {
    const l = raw.trim();
    const at = `line ${i + 1}`;
    if (section) {
      if (l === '%end') section = undefined;
      else if (l.startsWith('%') && KS_SECTIONS.has(l.split(/\s/)[0]!)) problems.push(`${at}: ${l.split(/\s/)[0]} inside ${section} (no %end)`);
      continue;
    }
    if (l === '' || l.startsWith('#')) continue;
    const [word, ...args] = l.split(/\s+/);
    if (word!.startsWith('%')) {
      if (!KS_SECTIONS.has(word!)) problems.push(`${at}: unknown section ${word}`);
      section = word;
      continue;
    }
    if (!KS_COMMANDS.has(word!)) problems.push(`${at}: unknown command ${word}`);
    const options = new Map<string, string | undefined>(args.filter((a) => a.startsWith('--')).map((a) => { const [k, v] = a.slice(2).split('=', 2); return [k!, v]; }));
    if (word === 'part') {
      const target = args[0]!;
      if (!/^(\/[\w/.-]*|swap|pv\.\d+|raid\.\d+|biosboot)$/.test(target)) problems.push(`${at}: part target ${target}`);
      if (!options.has('size') || !/^\d+$/.test(options.get('size') ?? '')) problems.push(`${at}: part without a --size in MiB`);
      if (target.startsWith('pv.')) pvs.add(target);
      else if (!target.startsWith('pv.') && !options.has('fstype')) problems.push(`${at}: part ${target} without --fstype`);
      if (target.startsWith('/') && mounts.has(target)) problems.push(`${at}: ${target} twice`);
      mounts.add(target);
    }
    if (word === 'volgroup') {
      if (!args.slice(1).every((p) => p.startsWith('--') || pvs.has(p)) || args.length < 2) problems.push(`${at}: volgroup on an undefined physical volume`);
      vgs.add(args[0]!);
    }
    if (word === 'logvol') {
      if (!vgs.has(options.get('vgname') ?? '')) problems.push(`${at}: logvol in an undefined volume group`);
      if (!options.has('name') || !options.has('size') || !options.has('fstype')) problems.push(`${at}: logvol needs --name, --size and --fstype`);
      if (mounts.has(args[0]!)) problems.push(`${at}: ${args[0]} twice`);
      mounts.add(args[0]!);
    }
    if (word === 'rootpw' && !(options.has('lock') || options.has('iscrypted'))) problems.push(`${at}: a root password in clear`);
  }
  if (section) problems.push(`${section} has no %end`);
  if (!text.includes('%packages')) problems.push('no %packages section');
  return problems;
}

async function ksvalidator(): Promise<string[] | undefined> {
  if (process.env.KSVALIDATOR) return process.env.KSVALIDATOR.split(' ');
  const found = await execa('sh', ['-c', 'command -v ksvalidator'], { reject: false });
  return found.exitCode === 0 ? [found.stdout.trim()] : undefined;
}

test('kickstart: documented commands and sections, partitions, LVM, repositories; pykickstart where it is installed', async (t) => {
  assert.deepEqual(checkKickstart('text\n%packages\n@core\n%post\necho\n%end\n'), ['line 4: %post inside %packages (no %end)'], 'the checker fails a section without %end');
  assert.deepEqual(checkKickstart('rootpw secret\nfrobnicate\n%packages\n%end\n'), ['line 1: a root password in clear', 'line 2: unknown command frobnicate']);
  const validator = await ksvalidator();
  if (!validator) t.diagnostic('no ksvalidator here (Debian has no pykickstart): only the checker above ran');
  for (const inv of [rhelPlain, debianLvm, bare]) {
    const r = generateRecipe('kickstart', inv, options);
    assert.deepEqual(checkKickstart(r.text), [], r.text);
    if (validator) {
      const v = await execa(validator[0]!, [...validator.slice(1), '-v', 'RHEL9', await tmpFile('ks.cfg', r.text)], { reject: false });
      assert.equal(v.exitCode, 0, `ksvalidator: ${v.stdout}${v.stderr}\n${r.text}`);
    }
  }
  const r = generateRecipe('kickstart', rhelPlain, options);
  const lines = r.text.split('\n');
  for (const l of [
    'url --mirrorlist="https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=BaseOS-$releasever"',
    'repo --name=appstream --mirrorlist="https://mirrors.rockylinux.org/mirrorlist?arch=$basearch&repo=AppStream-$releasever"',
    'repo --name=highavailability --baseurl=http://dl.rockylinux.org/$contentdir/$releasever/HighAvailability/$basearch/os/',
    'network --bootproto=dhcp --activate --hostname=gamma', 'timezone America/New_York --utc', 'rootpw --lock', 'reqpart',
    'part /boot --fstype=xfs --size=1024', 'part / --fstype=xfs --size=102400 --grow', 'part /home --fstype=xfs --size=20480',
  ]) assert.ok(lines.includes(l), `missing: ${l}\n${r.text}`);
  assert.ok(!lines.some((l) => l.includes('devel')), 'a disabled repository is left out');
  assert.ok(!lines.some((l) => l.startsWith('part /boot/efi')), 'reqpart makes the EFI partition');
  assert.deepEqual(lines.slice(lines.indexOf('%packages'), lines.indexOf('%end') + 1), ['%packages', '@core', 'kernel', 'openssh-server', 'resource-agents', 'rsync', '%end']);
  assert.ok(lines.includes('%post --log=/var/log/haoscar-post.log'));

  const lvm = generateRecipe('kickstart', debianLvm, options).text.split('\n');
  for (const l of ['part /boot --fstype=ext4 --size=512', 'part pv.01 --size=1 --grow', 'volgroup vg0 pv.01', 'logvol / --vgname=vg0 --name=root --fstype=ext4 --size=30720 --grow', 'logvol swap --vgname=vg0 --name=swap --fstype=swap --size=2048']) {
    assert.ok(lvm.includes(l), `missing: ${l}`);
  }
  assert.ok(generateRecipe('kickstart', bare, options).text.split('\n').includes('autopart'));
  assert.ok(generateRecipe('kickstart', rhelPlain, { ...options, rootPasswordHash: '$6$salt$hash' }).text.split('\n').includes('rootpw --iscrypted $6$salt$hash'));
});

// ---------------------------------------------------------------- AutoYaST

async function xpath(file: string, expr: string): Promise<string> {
  return (await execa('xmllint', ['--xpath', expr, file])).stdout.trim();
}

test('AutoYaST: well-formed XML (xmllint) in the profile namespace, typed elements, LVM drives, packages, the chroot script; xmllint rejects a broken file', async () => {
  const broken = await execa('xmllint', ['--noout', await tmpFile('broken.xml', '<profile><a></profile>')], { reject: false });
  assert.notEqual(broken.exitCode, 0, 'xmllint fails malformed XML');
  for (const inv of [suseLvm, rhelPlain, bare]) {
    const r = generateRecipe('autoyast', inv, options);
    const file = await tmpFile('autoinst.xml', r.text);
    const lint = await execa('xmllint', ['--noout', file], { reject: false });
    assert.equal(lint.exitCode, 0, `${lint.stderr}\n${r.text}`);
    assert.equal(await xpath(file, 'namespace-uri(/*)'), AUTOYAST_NS);
    assert.equal(await xpath(file, 'local-name(/*)'), 'profile');
    // Every typed element uses one of the documented types; list elements hold elements only; booleans are true/false.
    const types = (await xpath(file, `//@*[namespace-uri()='${AUTOYAST_CONFIG_NS}' and local-name()='type']`)).split('\n').map((l) => /"(.*)"/.exec(l)![1]);
    assert.ok(types.every((x) => ['list', 'boolean', 'symbol', 'integer'].includes(x!)), types.join(' '));
    assert.equal(await xpath(file, `count(//*[@*[local-name()='type']='list']/text()[normalize-space()])`), '0');
    assert.equal(await xpath(file, `count(//*[@*[local-name()='type']='boolean'][. != 'true' and . != 'false'])`), '0');
  }
  const r = generateRecipe('autoyast', suseLvm, options);
  const file = await tmpFile('suse.xml', r.text);
  // `/profile/drive[2]` in the profile's namespace: each step by its local name, with its position.
  const y = (p: string) => p.split('/').map((s) => s.replace(/^([\w-]+)(\[\d+\])?$/, (_, n: string, i?: string) => `*[local-name()='${n}']${i ?? ''}`)).join('/');
  assert.equal(await xpath(file, `count(${y('/profile/partitioning/drive')})`), '2');
  assert.equal(await xpath(file, `string(${y('/profile/partitioning/drive[2]')}/*[local-name()='device'])`), '/dev/system');
  assert.equal(await xpath(file, `string(${y('/profile/partitioning/drive[2]')}/*[local-name()='type'])`), 'CT_LVM');
  assert.equal(await xpath(file, `string(${y('/profile/partitioning/drive[1]/partitions/partition[1]/mount')})`), '/boot/efi', 'an EFI node gets an EFI partition');
  assert.equal(await xpath(file, `string(${y('/profile/partitioning/drive[1]/partitions/partition[2]/lvm_group')})`), 'system');
  assert.equal(await xpath(file, `string(${y('/profile/partitioning/drive[2]/partitions/partition[1]/size')})`), 'max');
  assert.equal(await xpath(file, `string(${y('/profile/partitioning/drive[2]/partitions/partition[2]/size')})`), '1024M');
  assert.equal(await xpath(file, `count(${y('/profile/software/packages/package')})`), '3');
  assert.equal(await xpath(file, `count(${y('/profile/add-on/add_on_products/listentry')})`), '1', 'the disabled repository is left out');
  assert.equal(await xpath(file, `string(${y('/profile/scripts/chroot-scripts/script/source')})`), installFirstBootLines(options).join('\n'), 'the script as it is, not indented (its here-documents end at the start of a line)');
  assert.equal(await xpath(file, `string(${y('/profile/users/user/user_password')})`), '!');
});

// ---------------------------------------------------------------- the workflow's input

test('the workflow input: formats, URLs and hashes that cannot break out of the files they go into', () => {
  const ok = imageRecipeInputSchema.parse({ cluster: 'prod', node: 'alpha', format: 'kickstart', packageUrl: 'https://x/ha-oscar-0.1.0.tgz', rootPasswordHash: '$6$abc$def' });
  assert.equal(ok.root, '/');
  for (const bad of [{ format: 'ignition' }, { packageUrl: "http://x/a'; rm -rf /" }, { packageUrl: 'ftp://x/a.tgz' }, { rootPasswordHash: 'hunter2' }, { rootPasswordHash: '$6$a b$c' }, { root: 'relative' }]) {
    assert.equal(imageRecipeInputSchema.safeParse({ cluster: 'prod', node: 'alpha', ...bad }).success, false, JSON.stringify(bad));
  }
});
