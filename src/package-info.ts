/**
 * Where the installed package is and which version it is. The code runs from two layouts: a
 * checkout (src/, workers/ at the top, run through tsx) and the package (compiled under dist/,
 * bin/ and docs/ beside dist/), so paths to shipped files are taken from the package's root, the
 * nearest directory above this module with HA-OSCAR's package.json, never from `../..`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'ha-oscar';

/** The directory holding HA-OSCAR's package.json above `from`. @throws Error when there is none (an incomplete installation). */
export function findPackageRoot(from: string): string {
  for (let dir = dirname(from); ; dir = dirname(dir)) {
    const file = join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown };
      if (pkg.name === PACKAGE_NAME) return dir;
    }
    if (dirname(dir) === dir) throw new Error(`no package.json of ${PACKAGE_NAME} above ${from}: is the installation complete?`);
  }
}

export const PACKAGE_ROOT = findPackageRoot(fileURLToPath(import.meta.url));

/** The package's version, from its package.json. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error(`${join(PACKAGE_ROOT, 'package.json')} has no version`);
  return pkg.version;
}
