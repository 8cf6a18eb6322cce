/**
 * A minimal Debian root (debootstrap --variant=minbase, with openssh-server so that `sshd -t`
 * can run in a chroot of it), built once per machine and release under
 * ~/.cache/haoscar/debootstrap/<release>: about 200 MB and a minute or two from Debian's mirror,
 * then reused by every run. Built under a temporary name and renamed, so an interrupted build
 * is never taken for a finished one.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

export const DEBOOTSTRAP_RELEASE = 'bookworm';

/** The mirror apt on this machine uses (Debian's package reaches Debian's repository here). */
export async function debianMirror(): Promise<string> {
  for (const file of ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list']) {
    const text = await readFile(file, 'utf8').catch(() => '');
    const deb822 = /^URIs:\s*(\S+\/debian)\/?\s*$/m.exec(text);
    if (deb822?.[1]) return deb822[1];
    const oneLine = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+\/debian)\/?\s+/m.exec(text);
    if (oneLine?.[1]) return oneLine[1];
  }
  return 'http://deb.debian.org/debian';
}

/** The cached tree's path, building it first if this machine has none. */
export async function debootstrapTree(release = DEBOOTSTRAP_RELEASE): Promise<string> {
  const cache = join(process.env.HAOSCAR_CACHE ?? join(homedir(), '.cache', 'haoscar'), 'debootstrap');
  const tree = join(cache, `${release}-minbase`);
  if (existsSync(join(tree, 'etc', 'os-release'))) return tree;
  await mkdir(cache, { recursive: true });
  const building = `${tree}.building-${process.pid}`;
  await rm(building, { recursive: true, force: true });
  await execa('debootstrap', ['--variant=minbase', '--include=openssh-server', release, building, await debianMirror()], { stdio: 'inherit' });
  // Apt's downloaded packages are not part of a system and would only slow every copy down.
  await execa('find', [join(building, 'var', 'cache', 'apt', 'archives'), '-name', '*.deb', '-delete']);
  await rename(building, tree);
  return tree;
}

/**
 * A node's root for a test: hard links to the cached `tree` (fast: `cp -al`), with `files` (path
 * relative to the root → content) written over it. Each is removed before it is written, so the
 * cache's own files are never changed.
 */
export async function linkedRoot(tree: string, root: string, files: Record<string, string>): Promise<void> {
  await execa('cp', ['-al', tree, root]);
  for (const [file, text] of Object.entries(files)) {
    await rm(join(root, file), { force: true });
    await mkdir(join(root, file, '..'), { recursive: true });
    await writeFile(join(root, file), text);
  }
}

/**
 * A standby's target root as a rescue system has it mounted: a file of its old system (a clone
 * deletes it) and the rescue system's own mount under /mnt (a clone keeps it).
 */
export async function rescueTargetRoot(target: string): Promise<void> {
  await mkdir(join(target, 'mnt', 'rescue'), { recursive: true });
  await writeFile(join(target, 'mnt', 'rescue', 'keep'), 'the rescue system mounts things here\n');
  await writeFile(join(target, 'stale-file'), "from the standby's old system\n");
}
