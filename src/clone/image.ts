/**
 * Reading a golden image's files on the witness (docs/clone.md#golden-images): the captured
 * tree's os-release, and JSON written so that a reader never sees half a file.
 */
import { lstat, readFile, readlink, rename, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { parseOsRelease, type OsRelease } from '../distro/os-release.js';

/**
 * The os-release(5) of the tree under `root` (`etc/os-release`, else `usr/lib/os-release`);
 * undefined when it has none. A symbolic link (Debian's `etc/os-release -> ../usr/lib/os-release`)
 * is followed inside the tree only: an absolute target is taken from `root`, not from the
 * witness's own `/`.
 */
export async function readOsReleaseUnder(root: string): Promise<OsRelease | undefined> {
  for (const file of ['etc/os-release', 'usr/lib/os-release']) {
    let path = join(root, file);
    for (let hops = 0; hops < 5; hops++) {
      const st = await lstat(path).catch(() => undefined);
      if (!st?.isSymbolicLink()) break;
      const to = await readlink(path);
      path = isAbsolute(to) ? join(root, to) : join(dirname(path), to);
      if (relative(root, path).startsWith('..')) break;
    }
    if (relative(root, path).startsWith('..')) continue;
    const st = await lstat(path).catch(() => undefined);
    if (!st?.isFile()) continue;
    return parseOsRelease(await readFile(path, 'utf8'));
  }
  return undefined;
}

/** `value` as JSON in `file`, written beside it and renamed over it (mode 0600). */
export async function writeJsonFile(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}
