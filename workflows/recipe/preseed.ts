/**
 * A Debian installer preseed file (https://www.debian.org/releases/stable/amd64/apbs04) from an
 * inventory: `owner question type value` lines, as debconf-set-selections reads them. Debian and
 * Ubuntu's netboot installer. Pure.
 */
import { headerLines, installFirstBootLines, planLayout, recipePackages, type Recipe, type RecipeOptions } from './common.js';
import type { Inventory, Repository } from './inventory.js';

/** debconf values are one line: a newline would start a new question. */
const oneLine = (s: string) => s.replace(/[\r\n]+/g, ' ');

export function preseedRecipe(inv: Inventory, o: RecipeOptions): Recipe {
  const unexpressed: string[] = [];
  const lines: string[] = headerLines(inv, o, 'preseed').map((l) => `# ${l}`);
  const d = (question: string, type: string, value: string, owner = 'd-i') => lines.push(`${owner} ${question} ${type} ${oneLine(value)}`.trimEnd());
  if (inv.family !== 'debian') unexpressed.push(`${inv.os.name} is not in the Debian family: a preseed file installs Debian or Ubuntu only; use --format ${inv.family === 'rhel' ? 'kickstart' : 'autoyast'}`);

  lines.push('', '# Localization and network');
  d('debian-installer/locale', 'string', inv.locale ?? 'C.UTF-8');
  d('keyboard-configuration/xkb-keymap', 'select', 'us');
  d('netcfg/choose_interface', 'select', 'auto');
  d('netcfg/get_hostname', 'string', o.hostname ?? 'standby');
  d('netcfg/get_domain', 'string', '');
  d('netcfg/hostname', 'string', o.hostname ?? 'standby');
  if (!o.hostname) unexpressed.push('no --hostname: the new machine is called "standby" (or what DHCP says)');

  lines.push('', `# The mirror and the release of ${inv.node}`);
  const { mirror, services, local } = classifyAptRepositories(inv);
  if (mirror) {
    const url = new URL(mirror.uri!);
    const protocol = url.protocol.replace(':', '');
    d('mirror/country', 'string', 'manual');
    d('mirror/protocol', 'string', protocol);
    d(`mirror/${protocol}/hostname`, 'string', url.host);
    d(`mirror/${protocol}/directory`, 'string', url.pathname.replace(/\/$/, '') || '/');
    d(`mirror/${protocol}/proxy`, 'string', '');
  } else {
    unexpressed.push(`no repository of ${inv.node} carries its release${inv.os.codename ? ` ${inv.os.codename}` : ''}: the installer's default mirror is used`);
  }
  if (inv.os.codename) d('mirror/suite', 'string', inv.os.codename);
  else unexpressed.push(`${inv.node}'s os-release has no VERSION_CODENAME: the installer's own release is installed`);
  const components = new Set(mirror?.components ?? ['main']);
  d('apt-setup/non-free-firmware', 'boolean', String(components.has('non-free-firmware')));
  d('apt-setup/non-free', 'boolean', String(components.has('non-free')));
  d('apt-setup/contrib', 'boolean', String(components.has('contrib')));
  d('apt-setup/services-select', 'multiselect', services.join(', '));
  local.forEach((r, i) => {
    d(`apt-setup/local${i}/repository`, 'string', `${r.uri} ${r.suites.join(' ')} ${r.components.join(' ')}`.trim());
    d(`apt-setup/local${i}/comment`, 'string', `from ${inv.node}:${r.file}`);
    if (r.key) unexpressed.push(`repository ${r.uri} is signed by ${r.key} on ${inv.node}: serve that key over HTTP and add "d-i apt-setup/local${i}/key string URL", or the installer leaves the repository out`);
  });

  lines.push('', '# Accounts: no password in clear; root logs in with ssh keys unless a hash is given');
  d('passwd/root-login', 'boolean', 'true');
  d('passwd/make-user', 'boolean', 'false');
  d('passwd/root-password-crypted', 'password', o.rootPasswordHash ?? '!');
  lines.push('', '# Clock');
  d('clock-setup/utc', 'boolean', 'true');
  d('time/zone', 'string', inv.timezone ?? 'Etc/UTC');
  d('clock-setup/ntp', 'boolean', 'true');

  lines.push('', `# Partitioning, from ${inv.node}'s fstab${inv.disks.length > 0 ? ' and lsblk' : ''}`);
  const layout = planLayout(inv);
  unexpressed.push(...layout.unexpressed);
  d('partman-auto/init_automatically_partition', 'select', 'biggest_free');
  d('partman-auto/method', 'string', layout.vg ? 'lvm' : 'regular');
  d('partman-lvm/device_remove_lvm', 'boolean', 'true');
  d('partman-md/device_remove_md', 'boolean', 'true');
  d('partman-lvm/confirm', 'boolean', 'true');
  d('partman-lvm/confirm_nooverwrite', 'boolean', 'true');
  if (layout.vg) {
    d('partman-auto-lvm/new_vg_name', 'string', layout.vg);
    d('partman-auto-lvm/guided_size', 'string', 'max');
  }
  if (layout.volumes.length === 0) {
    d('partman-auto/choose_recipe', 'select', 'atomic');
  } else {
    // partman-auto-recipe.txt: `min priority max fstype` then options, `.` ends each partition.
    const parts: string[] = [];
    if (layout.efi && !layout.volumes.some((v) => v.mountpoint === '/boot/efi')) parts.push('538 538 1075 free $iflabel{ gpt } $reusemethod{ } method{ efi } format{ } .');
    for (const v of layout.volumes) {
      const max = v.grow ? -1 : v.sizeMiB;
      // partman-auto-lvm puts the $lvmok{ } ones in its one volume group (new_vg_name), on a
      // physical volume it makes of the rest; the others stay partitions.
      const lvm = v.lvm ? `$lvmok{ } lv_name{ ${v.lvm.lv} } ` : '';
      if (v.mountpoint === 'swap') parts.push(`${v.sizeMiB} ${v.sizeMiB} ${max} linux-swap ${lvm}method{ swap } format{ } .`);
      else if (v.mountpoint === '/boot/efi') parts.push(`${v.sizeMiB} ${v.sizeMiB} ${max} free $iflabel{ gpt } $reusemethod{ } method{ efi } format{ } .`);
      else parts.push(`${v.sizeMiB} ${v.grow ? 10000 : v.sizeMiB} ${max} ${v.fstype} ${lvm}${v.mountpoint === '/boot' || (v.mountpoint === '/' && !v.lvm) ? '$primary{ } $bootable{ } ' : ''}method{ format } format{ } use_filesystem{ } filesystem{ ${v.fstype} } mountpoint{ ${v.mountpoint} } .`);
    }
    lines.push(`d-i partman-auto/expert_recipe string haoscar :: \\\n${parts.map((p) => `    ${p}`).join(' \\\n')}`);
    d('partman-auto/choose_recipe', 'select', 'haoscar');
  }
  lines.push('# The installer asks which disk when it sees several: then add d-i partman-auto/disk string /dev/sda (or vda, nvme0n1)');
  d('partman-partitioning/confirm_write_new_label', 'boolean', 'true');
  d('partman/choose_partition', 'select', 'finish');
  d('partman/confirm', 'boolean', 'true');
  d('partman/confirm_nooverwrite', 'boolean', 'true');
  d('partman-efi/non_efi_system', 'boolean', 'true');

  lines.push('', `# ${inv.node}'s packages installed on purpose (${inv.packages.how})`);
  d('tasksel/first', 'multiselect', '', 'tasksel');
  d('pkgsel/include', 'string', recipePackages(inv).join(' '));
  d('pkgsel/upgrade', 'select', 'safe-upgrade');
  d('popularity-contest/participate', 'boolean', 'false', 'popularity-contest');
  d('grub-installer/only_debian', 'boolean', 'true');
  d('grub-installer/bootdev', 'string', 'default');

  lines.push('', '# First boot: install HA-OSCAR, then wait for the join (the script, in clear, is what the base64 below decodes to)');
  const script = installFirstBootLines(o).join('\n');
  for (const l of script.split('\n')) lines.push(`#   ${l}`);
  d('preseed/late_command', 'string', `in-target sh -c 'echo ${base64(script)} | base64 -d | sh -e'`);
  d('finish-install/reboot_in_progress', 'note', '');
  if (inv.leftOut.length > 0) unexpressed.push(...inv.leftOut.map((l) => `fstab line not made by the installer (not a local file system): ${l}; haoscar clone copies fstab`));
  return { format: 'preseed', text: `${lines.join('\n')}\n`, unexpressed };
}

/**
 * The installer's mirror (the repository of the release itself), the Debian services
 * (security, updates, backports) it configures by name, and the other repositories.
 */
export function classifyAptRepositories(inv: Inventory): { mirror?: Repository; services: string[]; local: Repository[] } {
  const enabled = inv.repositories.filter((r) => r.enabled && r.uri && /^https?:\/\//.test(r.uri));
  const codename = inv.os.codename;
  const mirror = enabled.find((r) => codename !== undefined && r.suites.includes(codename));
  const services = new Set<string>();
  const local: Repository[] = [];
  for (const r of enabled) {
    if (r === mirror) continue;
    const known = codename && r.suites.every((s) => [`${codename}-security`, `${codename}/updates`, `${codename}-updates`, `${codename}-backports`].includes(s)) && (r.uri === mirror?.uri || /security\.(debian|ubuntu)\.(org|com)|debian-security/.test(r.uri!));
    if (known) {
      for (const s of r.suites) services.add(s.endsWith('updates') && !s.includes('/') ? 'updates' : s.endsWith('backports') ? 'backports' : 'security');
      continue;
    }
    local.push(r);
  }
  return { ...(mirror ? { mirror } : {}), services: [...services].sort(), local };
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Base64 of the UTF-8 text, without Buffer or btoa (the workflow sandbox may run this). */
export function base64(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let out = '';
  for (let i = 0; i < bytes.length; i += 3) {
    const [a, b, c] = [bytes[i]!, bytes[i + 1], bytes[i + 2]];
    const n = (a << 16) | ((b ?? 0) << 8) | (c ?? 0);
    out += BASE64[(n >> 18) & 63]! + BASE64[(n >> 12) & 63]! + (b === undefined ? '=' : BASE64[(n >> 6) & 63]!) + (c === undefined ? '=' : BASE64[n & 63]!);
  }
  return out;
}
