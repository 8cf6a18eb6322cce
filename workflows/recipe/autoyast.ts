/**
 * An AutoYaST profile (openSUSE, SLES; https://doc.opensuse.org/projects/autoyast/) from an
 * inventory: XML in the profile namespace, typed elements marked with `config:type`. Pure.
 */
import { headerLines, installFirstBootLines, planLayout, recipePackages, type PlannedVolume, type Recipe, type RecipeOptions } from './common.js';
import type { Inventory } from './inventory.js';

export const AUTOYAST_NS = 'http://www.suse.com/1.0/yast2ns';
export const AUTOYAST_CONFIG_NS = 'http://www.suse.com/1.0/configns';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
/** `<name>text</name>`, or typed (`boolean`, `symbol`, `integer`). */
const el = (name: string, text: string, type?: string) => `<${name}${type ? ` config:type="${type}"` : ''}>${esc(text)}</${name}>`;
const list = (name: string, items: string[]) => (items.length === 0 ? `<${name} config:type="list"/>` : [`<${name} config:type="list">`, ...items.map((i) => indent(i)), `</${name}>`].join('\n'));
const block = (name: string, children: string[]) => [`<${name}>`, ...children.map((c) => indent(c)), `</${name}>`].join('\n');
const indent = (s: string) => s.split('\n').map((l) => `  ${l}`).join('\n');

const SCRIPT_PLACEHOLDER = '@@HAOSCAR_FIRST_BOOT_SCRIPT@@';

export function autoyastRecipe(inv: Inventory, o: RecipeOptions): Recipe {
  const unexpressed: string[] = [];
  if (inv.family !== 'suse') unexpressed.push(`${inv.os.name} is not in the SUSE family: AutoYaST installs openSUSE and SLES; use --format ${inv.family === 'debian' ? 'preseed' : 'kickstart'}`);
  if (!o.hostname) unexpressed.push('no --hostname: the new machine takes the name DHCP gives it');
  unexpressed.push(`the installation source is the medium or install= the installer boots with: use ${inv.os.name}'s; ${inv.node}'s repositories are added as add-ons`);
  if (inv.os.id.startsWith('sles')) unexpressed.push('SLES: register the new machine (a <suse_register> section with your code, not written here) for its repositories and the High Availability Extension');

  const layout = planLayout(inv);
  unexpressed.push(...layout.unexpressed);
  const size = (v: PlannedVolume) => (v.grow ? 'max' : `${v.sizeMiB}M`);
  const fsPart = (v: PlannedVolume, extra: string[] = []) => block('partition', [
    ...extra,
    el('create', 'true', 'boolean'),
    el('format', 'true', 'boolean'),
    el('filesystem', v.fstype, 'symbol'),
    el('mount', v.mountpoint),
    el('size', size(v)),
  ]);
  const drives: string[] = [];
  if (layout.volumes.length > 0) {
    const plain = layout.volumes.filter((v) => !v.lvm);
    const onDisk = plain.map((v) => fsPart(v));
    if (layout.efi && !plain.some((v) => v.mountpoint === '/boot/efi')) onDisk.unshift(fsPart({ mountpoint: '/boot/efi', fstype: 'vfat', sizeMiB: 512, grow: false }));
    if (layout.vg) onDisk.push(block('partition', [el('create', 'true', 'boolean'), el('lvm_group', layout.vg), el('size', 'max')]));
    drives.push(block('drive', [el('initialize', 'true', 'boolean'), el('use', 'all'), list('partitions', onDisk)]));
    if (layout.vg) {
      drives.push(block('drive', [
        el('device', `/dev/${layout.vg}`),
        el('type', 'CT_LVM', 'symbol'),
        el('use', 'all'),
        list('partitions', layout.volumes.filter((v) => v.lvm).map((v) => fsPart(v, [el('lv_name', v.lvm!.lv)]))),
      ]));
    }
  }

  const addOns = inv.repositories.filter((r) => r.enabled && r.uri && !r.uri.startsWith('cd:') && !r.uri.startsWith('dvd:')).map((r, i) => block('listentry', [
    el('media_url', r.uri!),
    el('product_dir', '/'),
    el('alias', r.name ?? `repo${i + 1}`),
    el('name', r.name ?? r.uri!),
  ]));
  const script = installFirstBootLines(o).join('\n');
  if (script.includes(']]>')) throw new Error('the first-boot script cannot be put in a CDATA section');

  const profile = block('profile xmlns="' + AUTOYAST_NS + '" xmlns:config="' + AUTOYAST_CONFIG_NS + '"', [
    block('general', [block('mode', [el('confirm', 'false', 'boolean'), el('final_reboot', 'true', 'boolean')])]),
    block('language', [el('language', (inv.locale ?? 'en_US').replace(/\..*$/, ''))]),
    block('keyboard', [el('keymap', 'english-us')]),
    block('timezone', [el('hwclock', 'UTC'), el('timezone', inv.timezone ?? 'Etc/UTC')]),
    block('networking', [el('keep_install_network', 'true', 'boolean'), ...(o.hostname ? [block('dns', [el('hostname', o.hostname)])] : [])]),
    block('add-on', [list('add_on_products', addOns)]),
    ...(drives.length > 0 ? [list('partitioning', drives)] : []),
    block('software', [
      el('install_recommended', 'false', 'boolean'),
      list('patterns', [el('pattern', 'base')]),
      list('packages', recipePackages(inv).map((p) => el('package', p))),
    ]),
    list('users', [block('user', [el('username', 'root'), el('encrypted', 'true', 'boolean'), el('user_password', o.rootPasswordHash ?? '!')])]),
    block('scripts', [list('chroot-scripts', [block('script', [
      el('chrooted', 'true', 'boolean'),
      el('filename', 'haoscar-first-boot.sh'),
      el('interpreter', 'shell'),
      `<source><![CDATA[${SCRIPT_PLACEHOLDER}]]></source>`,
    ])])]),
  ]).replace(/<\/profile xmlns=.*>$/, '</profile>')
    // After the indentation: the script's lines (its here-documents' ends) must stay as they are.
    .replace(SCRIPT_PLACEHOLDER, () => `${script}\n`);
  if (layout.volumes.length === 0) unexpressed.push('no partitioning section: AutoYaST proposes its own layout');
  if (inv.leftOut.length > 0) unexpressed.push(...inv.leftOut.map((l) => `fstab line not made by the installer (not a local file system): ${l}; haoscar clone copies fstab`));
  // An XML comment cannot hold `--`, which the join command has: it is in the first-boot log and the CLI's output.
  const comment = [...headerLines(inv, o, 'autoyast').slice(0, 3), '  (the command is printed by haoscar image recipe and in /var/log/haoscar-first-boot.log)'].map((l) => `  ${l}`).join('\n');
  return { format: 'autoyast', text: `<?xml version="1.0"?>\n<!DOCTYPE profile>\n<!--\n${comment}\n-->\n${profile}\n`, unexpressed };
}
