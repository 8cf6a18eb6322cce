/**
 * A kickstart file (Anaconda: RHEL and its rebuilds, Fedora;
 * https://pykickstart.readthedocs.io/en/latest/kickstart-docs.html) from an inventory:
 * commands, then the `%packages` and `%post` sections, each closed by `%end`. Pure.
 */
import { headerLines, installFirstBootLines, planLayout, recipePackages, type Recipe, type RecipeOptions } from './common.js';
import type { Inventory, Repository } from './inventory.js';

/** kickstart's file-system names differ for EFI and swap. */
const ksFstype = (fstype: string, mountpoint: string) => (mountpoint === '/boot/efi' ? 'efi' : fstype === 'swap' ? 'swap' : fstype);
/** A kickstart argument: bare if safe, else double-quoted (shlex, as pykickstart splits lines). */
const arg = (s: string) => (/^[A-Za-z0-9_./:=$@%+,-]+$/.test(s) ? s : `"${s.replace(/(["\\])/g, '\\$1')}"`);

export function kickstartRecipe(inv: Inventory, o: RecipeOptions): Recipe {
  const unexpressed: string[] = [];
  const lines: string[] = headerLines(inv, o, 'kickstart').map((l) => `# ${l}`);
  if (inv.family !== 'rhel') unexpressed.push(`${inv.os.name} is not in the RHEL family: kickstart installs RHEL, its rebuilds and Fedora; use --format ${inv.family === 'debian' ? 'preseed' : 'autoyast'}`);
  lines.push('text', `lang ${arg(inv.locale ?? 'en_US.UTF-8')}`, 'keyboard --vckeymap=us', `timezone ${arg(inv.timezone ?? 'Etc/UTC')} --utc`);
  lines.push(`network --bootproto=dhcp --activate${o.hostname ? ` --hostname=${arg(o.hostname)}` : ''}`);
  if (!o.hostname) unexpressed.push('no --hostname: the new machine takes the name DHCP gives it');

  // The install source: the repository of the base system (BaseOS on RHEL 8+ and rebuilds, `fedora` on Fedora).
  const enabled = inv.repositories.filter((r) => r.enabled && (r.uri || r.mirrorlist));
  const base = enabled.find((r) => /^(baseos|fedora|rhel-\d+-for-.*-baseos-rpms)$/i.test(r.name ?? '')) ?? enabled.find((r) => /baseos/i.test(r.name ?? ''));
  const source = (r: Repository) => (r.uri ? `--baseurl=${arg(r.uri)}` : /metalink/.test(r.mirrorlist!) ? `--metalink=${arg(r.mirrorlist!)}` : `--mirrorlist=${arg(r.mirrorlist!)}`);
  if (base) lines.push(`url ${source(base).replace('--baseurl=', '--url=')}`);
  else unexpressed.push(`no BaseOS (or fedora) repository on ${inv.node}: the install source is the one the installer boots with (inst.repo=, or the DVD)`);
  // Names must differ (anaconda refuses a second repo of a name): apt's repositories have none.
  enabled.filter((r) => r !== base).forEach((r, i) => lines.push(`repo --name=${arg(r.name ?? `repo${i + 1}`)} ${source(r)}`));
  for (const r of enabled.filter((x) => x.uri?.startsWith('file:') || x.uri?.startsWith('cdrom:'))) unexpressed.push(`repository ${r.name} (${r.uri}) is local to ${inv.node}: the installer cannot reach it`);
  if (inv.os.id === 'rhel') unexpressed.push('RHEL: register the new machine (rhc connect, or the kickstart "rhsm" command) for its repositories; the High Availability add-on needs its subscription');

  lines.push(o.rootPasswordHash ? `rootpw --iscrypted ${arg(o.rootPasswordHash)}` : 'rootpw --lock');

  const layout = planLayout(inv);
  unexpressed.push(...layout.unexpressed);
  lines.push('zerombr', 'clearpart --all --initlabel');
  if (layout.volumes.length === 0) {
    lines.push('autopart');
  } else {
    // reqpart makes what the platform needs to boot (the EFI system partition, BIOS boot).
    lines.push('reqpart');
    const size = (v: { sizeMiB: number; grow: boolean }) => `--size=${v.sizeMiB}${v.grow ? ' --grow' : ''}`;
    for (const v of layout.volumes.filter((x) => !x.lvm && x.mountpoint !== '/boot/efi')) {
      lines.push(`part ${v.mountpoint} --fstype=${ksFstype(v.fstype, v.mountpoint)} ${size(v)}`);
    }
    if (layout.vg) {
      lines.push('part pv.01 --size=1 --grow', `volgroup ${arg(layout.vg)} pv.01`);
      for (const v of layout.volumes.filter((x) => x.lvm)) {
        lines.push(`logvol ${v.mountpoint} --vgname=${arg(layout.vg)} --name=${arg(v.lvm!.lv)} --fstype=${ksFstype(v.fstype, v.mountpoint)} ${size(v)}`);
      }
    }
  }
  lines.push('bootloader', 'firstboot --disable', 'reboot', '');

  lines.push(`# ${inv.node}'s packages installed on purpose (${inv.packages.how})`, '%packages', '@core', ...recipePackages(inv), '%end', '');
  lines.push('# First boot: install HA-OSCAR, then wait for the join', '%post --log=/var/log/haoscar-post.log', ...installFirstBootLines(o), '%end', '');
  if (inv.leftOut.length > 0) unexpressed.push(...inv.leftOut.map((l) => `fstab line not made by the installer (not a local file system): ${l}; haoscar clone copies fstab`));
  return { format: 'kickstart', text: lines.join('\n'), unexpressed };
}
