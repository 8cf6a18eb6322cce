/**
 * A minimal Debian root (debootstrap --variant=minbase, with openssh-server so that `sshd -t`
 * can run in a chroot of it), built once per machine and release under
 * ~/.cache/haoscar/debootstrap/<release>: about 200 MB and a minute or two from Debian's mirror,
 * then reused by every run. Built under a temporary name and renamed, so an interrupted build
 * is never taken for a finished one.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm } from 'node:fs/promises';
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
