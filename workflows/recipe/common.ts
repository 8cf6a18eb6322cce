/**
 * What the three recipe formats share: the options, the partition layout worked out from an
 * inventory (with what cannot be reproduced), the packages to install, and the first-boot script
 * that installs HA-OSCAR and waits for the cluster's configuration. Pure (no I/O, no Node.js
 * imports): the workflow may run it.
 *
 * The configuration and the cluster secret are never in a recipe, which an installer fetches
 * over plain HTTP: the recipe authorizes the source node's sync key (a public key) for root on
 * the new machine, and the source node pushes them over ssh ({@link joinCommand}).
 */
import type { Filesystem, Inventory } from './inventory.js';

export const RECIPE_FORMATS = ['preseed', 'kickstart', 'autoyast'] as const;
export type RecipeFormat = (typeof RECIPE_FORMATS)[number];

export interface RecipeOptions {
  /** The node whose system the recipe reproduces, which later pushes the configuration. */
  source: { node: string; addresses: string[] };
  /** The source's sync public key (one `authorized_keys` line), authorized for root on the new machine from the source's addresses. */
  joinKey?: string;
  /** The files the source pushes (the configuration, the cluster secret, the sync key ...). */
  joinFiles: string[];
  /** The private key the source pushes with (sync.ssh.identityFile). */
  identityFile: string;
  /** Where the first boot gets HA-OSCAR (`npm install -g` of it): a URL of the `npm pack` tarball. Without it, it must be installed by hand. */
  packageUrl?: string;
  /** The new machine's host name, which is also its node name (HAOSCAR_NODE) in the cluster. */
  hostname?: string;
  /** A crypt(3) hash for root's password; default: root's password is locked (ssh keys only). */
  rootPasswordHash?: string;
}

export interface Recipe {
  format: RecipeFormat;
  text: string;
  /** What the recipe could not reproduce, or reproduces differently: for the administrator. */
  unexpressed: string[];
}

/** One file system or swap of the layout, sizes in MiB. */
export interface PlannedVolume {
  mountpoint: string;
  fstype: string;
  sizeMiB: number;
  /** Takes the rest of the disk (or of the volume group). */
  grow: boolean;
  /** On LVM: in this volume group, as this logical volume. */
  lvm?: { vg: string; lv: string };
}

export interface Layout {
  /** Empty: the node's fstab names no local file system; the installer's own layout is used. */
  volumes: PlannedVolume[];
  /** The one volume group (LVM volumes are put in it). */
  vg?: string;
  efi: boolean;
  unexpressed: string[];
}

const MiB = 1024 * 1024;
/** Sizes when the node's are not known (a directory was read): enough to install, / takes the rest. */
const DEFAULT_MiB: Record<string, number> = { '/': 8192, '/boot': 1024, '/boot/efi': 512, swap: 2048 };

/** The layout an installer can make from the node's file systems, and what it cannot. */
export function planLayout(inv: Inventory): Layout {
  const unexpressed: string[] = [];
  const local = inv.filesystems;
  if (local.length === 0) {
    return { volumes: [], efi: inv.efi, unexpressed: [`${inv.node}'s fstab names no local file system: the installer's own default layout is used`] };
  }
  const unknownSizes = local.filter((f) => f.sizeBytes === undefined).map((f) => f.mountpoint);
  if (unknownSizes.length > 0) unexpressed.push(`sizes not known for ${unknownSizes.join(', ')}: defaults used (/ 8 GiB and growing, /boot 1 GiB, swap 2 GiB, others 4 GiB)`);
  const disks = new Set(local.map((f) => f.device?.disk).filter((d): d is string => d !== undefined));
  if (disks.size > 1) unexpressed.push(`the file systems were on ${disks.size} disks (${[...disks].join(', ')}): the recipe puts them all on the installer's first disk`);
  const vgs = new Set<string>();
  const volumes: PlannedVolume[] = [];
  for (const f of local) {
    const d = f.device;
    if (d?.kind === 'raid' || d?.under.some((u) => u.startsWith('raid'))) unexpressed.push(`${f.mountpoint} was on software RAID (${d.level ?? d.under.find((u) => u.startsWith('raid'))}): made without RAID (build the array by hand, or add it to the recipe)`);
    if (d?.kind === 'crypt' || d?.under.includes('crypt')) unexpressed.push(`${f.mountpoint} was encrypted (LUKS): made unencrypted (a passphrase does not belong in a recipe served over HTTP)`);
    const fstype = f.fstype;
    if (f.mountpoint === '/boot/efi' && fstype !== 'vfat') unexpressed.push(`/boot/efi is ${fstype}, not vfat: made as an EFI system partition (vfat)`);
    let lvm: PlannedVolume['lvm'];
    if (d?.kind === 'lvm' && d.vg && d.lv) {
      vgs.add(d.vg);
      lvm = { vg: [...vgs][0]!, lv: d.lv };
    }
    volumes.push({ mountpoint: f.mountpoint, fstype: f.mountpoint === '/boot/efi' ? 'vfat' : fstype, sizeMiB: sizeOf(f), grow: false, ...(lvm ? { lvm } : {}) });
  }
  if (vgs.size > 1) unexpressed.push(`the logical volumes were in ${vgs.size} volume groups (${[...vgs].join(', ')}): the recipe makes one, ${[...vgs][0]}`);
  // The largest file system (by what it had) takes the rest of the disk: / when sizes are unknown.
  const candidates = volumes.filter((v) => v.mountpoint !== 'swap' && v.mountpoint !== '/boot/efi');
  const grower = unknownSizes.length > 0 ? candidates.find((v) => v.mountpoint === '/') : [...candidates].sort((a, b) => b.sizeMiB - a.sizeMiB)[0];
  if (grower) grower.grow = true;
  return { volumes, ...(vgs.size > 0 ? { vg: [...vgs][0]! } : {}), efi: inv.efi, unexpressed };
}

function sizeOf(f: Filesystem): number {
  if (f.sizeBytes !== undefined) return Math.max(1, Math.round(f.sizeBytes / MiB));
  return DEFAULT_MiB[f.mountpoint] ?? 4096;
}

/** The packages of the recipe: the node's own, with what the first boot and the join need. */
export function recipePackages(inv: Inventory): string[] {
  const needed = inv.family === 'debian' ? ['openssh-server', 'rsync'] : ['openssh-server', 'rsync'];
  return [...new Set([...inv.packages.manual, ...needed])].sort();
}

/** Where the first-boot script and its unit go on the new machine. */
export const FIRST_BOOT_SCRIPT = '/usr/local/sbin/haoscar-first-boot';
export const FIRST_BOOT_UNIT = '/etc/systemd/system/haoscar-first-boot.service';
/** The comment of the join key's authorized_keys line; the join removes the line by it. */
export const JOIN_KEY_COMMENT = 'haoscar-join';

/** `'…'` for sh: the text as one word. */
export const shQuote = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** The authorized_keys line of the join key: root from the source's addresses only, no forwarding. */
export function joinKeyLine(o: RecipeOptions): string | undefined {
  const key = o.joinKey?.trim().split(/\s+/).slice(0, 2);
  if (!key || key.length < 2) return undefined;
  const from = o.source.addresses.length > 0 ? `from="${o.source.addresses.join(',')}",` : '';
  return `${from}no-agent-forwarding,no-port-forwarding,no-X11-forwarding ${key.join(' ')} ${JOIN_KEY_COMMENT}`;
}

/**
 * The script the new machine runs once at first boot (its network up): authorize the join key,
 * install HA-OSCAR and its units, print the host keys' fingerprints, and leave the rest to
 * {@link joinCommand}. Logs to /var/log/haoscar-first-boot.log.
 */
export function firstBootScript(o: RecipeOptions): string {
  const keyLine = joinKeyLine(o);
  return [
    '#!/bin/sh',
    `# Written by \`haoscar image recipe ${o.source.node}\` (docs/clone.md#unattended-install-recipes).`,
    '# Runs once, at first boot: installs HA-OSCAR; the configuration and the cluster secret are',
    `# pushed later by ${o.source.node} over ssh (never in this recipe).`,
    'set -eu',
    'exec >>/var/log/haoscar-first-boot.log 2>&1',
    'echo "haoscar first boot: $(date)"',
    ...(keyLine
      ? [
        `# ${o.source.node}'s sync key (a public key), so that it can push the configuration as root.`,
        'install -d -m 700 /root/.ssh',
        `grep -qs ' ${JOIN_KEY_COMMENT}$' /root/.ssh/authorized_keys || echo ${shQuote(keyLine)} >>/root/.ssh/authorized_keys`,
        'chmod 600 /root/.ssh/authorized_keys',
      ]
      : [`# ${o.source.node} had no sync public key: authorize one for root by hand before the join.`]),
    'install -d -m 755 /etc/haoscar /var/lib/haoscar',
    ...(o.hostname
      ? [
        '# The agent takes its node name from HAOSCAR_NODE (packaging/systemd reads both files; the family has one of the directories).',
        'envfile=/etc/default/haoscar; if [ -d /etc/sysconfig ]; then envfile=/etc/sysconfig/haoscar; fi',
        `grep -qs '^HAOSCAR_NODE=' "$envfile" || echo ${shQuote(`HAOSCAR_NODE=${o.hostname}`)} >>"$envfile"`,
      ]
      : ['# No --hostname: set HAOSCAR_NODE=<its node name> in /etc/default/haoscar or /etc/sysconfig/haoscar before the join.']),
    'if ! command -v haoscar >/dev/null 2>&1; then',
    ...(o.packageUrl
      ? [
        '  if ! command -v npm >/dev/null 2>&1; then echo "haoscar first boot: no npm: install Node.js >= 20.19 and npm, then run this script again"; exit 1; fi',
        `  npm install -g ${shQuote(o.packageUrl)}`,
      ]
      : ['  echo "haoscar first boot: HA-OSCAR is not installed (no package URL in the recipe): install it with npm install -g ./ha-oscar-<version>.tgz, then run this script again"', '  exit 1']),
    'fi',
    'units="$(npm root -g)/ha-oscar/packaging/systemd"',
    'for unit in haoscar-agent haoscar-guard; do install -m 644 "$units/$unit.service" /etc/systemd/system/; done',
    'systemctl daemon-reload',
    'echo "haoscar first boot: HA-OSCAR $(haoscar --version) installed; its ssh host keys (compare when the join asks):"',
    'for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$k"; done',
    `echo ${shQuote(`haoscar first boot: done; now, on ${o.source.node}, as root, with NEW this machine's address: ${joinCommand(o)}`)}`,
    'touch /var/lib/haoscar/first-boot.done',
    '',
  ].join('\n');
}

/** The systemd unit that runs the first-boot script once, after the network is up. */
export function firstBootUnit(): string {
  return [
    '[Unit]',
    'Description=HA-OSCAR first boot: install HA-OSCAR (docs/clone.md#unattended-install-recipes)',
    'Wants=network-online.target',
    'After=network-online.target',
    'ConditionPathExists=!/var/lib/haoscar/first-boot.done',
    '',
    '[Service]',
    'Type=oneshot',
    `ExecStart=${FIRST_BOOT_SCRIPT}`,
    'RemainAfterExit=yes',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** Shell lines (run as root in the installed system) that write the script and the unit and enable the unit. */
export function installFirstBootLines(o: RecipeOptions): string[] {
  const heredoc = (file: string, text: string, mode: string) => [`cat >${file} <<'HAOSCAR_EOF'`, ...text.replace(/\n$/, '').split('\n'), 'HAOSCAR_EOF', `chmod ${mode} ${file}`];
  return [
    'mkdir -p /usr/local/sbin /etc/systemd/system/multi-user.target.wants',
    ...heredoc(FIRST_BOOT_SCRIPT, firstBootScript(o), '755'),
    ...heredoc(FIRST_BOOT_UNIT, firstBootUnit(), '644'),
    `ln -sf ${FIRST_BOOT_UNIT} /etc/systemd/system/multi-user.target.wants/haoscar-first-boot.service`,
  ];
}

/**
 * What the administrator runs on the source, as root, once the new machine has booted (NEW is
 * its address): push the configuration, the secret and the sync key over ssh (the host key is
 * asked for: compare it with the first-boot log), start HA-OSCAR there, and remove the join key.
 */
export function joinCommand(o: RecipeOptions): string {
  const ssh = `ssh -i ${o.identityFile}`;
  return `rsync -a --relative --ignore-missing-args -e ${shQuote(ssh)} ${o.joinFiles.join(' ')} root@NEW:/ && ${ssh} root@NEW 'chmod 600 ${o.joinFiles.filter((f) => !/\.(ya?ml|pub)$/.test(f)).join(' ')} && systemctl enable --now haoscar-guard haoscar-agent && sed -i "/ ${JOIN_KEY_COMMENT}\\$/d" /root/.ssh/authorized_keys'`;
}

/** The header comment every format starts with (`prefix` is the format's comment marker). */
export function headerLines(inv: Inventory, o: RecipeOptions, format: RecipeFormat): string[] {
  return [
    `${format} recipe written by haoscar image recipe ${inv.node} (docs/clone.md#unattended-install-recipes)`,
    `reproduces ${inv.node}: ${inv.os.name} (${inv.architecture}), ${inv.packages.manual.length} packages installed on purpose, its file systems`,
    'holds no secret: on first boot it installs HA-OSCAR and waits; then, on ' + inv.node + ', as root (NEW: the new machine):',
    `  ${joinCommand(o)}`,
  ];
}
