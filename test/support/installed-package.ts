/**
 * The package as users install it: `npm pack` of this checkout, installed with
 * `npm install -g --prefix DIR`, for the tests that run the installed `haoscar`.
 *
 * `$HAOSCAR_INSTALLED` (set by .ci/run, which installs once before `npm test`) names the installed
 * command; otherwise the package is packed and installed here, into
 * `${XDG_CACHE_HOME:-~/.cache}/haoscar/package/<hash>/`, keyed by a hash of everything that goes
 * into it, so that a rerun on unchanged code reuses it (a pack and install take one to two minutes);
 * only the newest is kept.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ROOT } from './lab.js';

/** What the package is made from: any change here makes another package. */
const INPUTS = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'README.md', 'LICENSE', 'src', 'workflows', 'activities', 'workers', 'bin', 'docs', 'examples', 'packaging'];

function filesUnder(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).sort().flatMap((name) => filesUnder(join(path, name)));
}

/** sha256 over the paths and contents of the package's inputs, and the Node.js version. */
export function packageInputsHash(root: string = ROOT): string {
  const hash = createHash('sha256').update(`${process.version}\0`);
  for (const file of INPUTS.flatMap((p) => filesUnder(join(root, p)))) hash.update(`${file.slice(root.length)}\0`).update(readFileSync(file)).update('\0');
  return hash.digest('hex');
}

export interface InstalledPackage {
  /** The installed `haoscar` command (a link into the prefix's lib/node_modules). */
  haoscar: string;
  /** The installed package's directory. */
  dir: string;
  /** The `--prefix` it was installed into: `bin/` goes on PATH. */
  prefix: string;
}

function installedAt(prefix: string): InstalledPackage {
  return { haoscar: join(prefix, 'bin', 'haoscar'), dir: join(prefix, 'lib', 'node_modules', 'ha-oscar'), prefix };
}

/**
 * Packs this checkout and installs the tarball into a prefix (or reuses the one installed from the
 * same inputs). `onProgress` hears each step. @throws Error with npm's output when a step fails.
 */
export async function installPackage(onProgress: (message: string) => void = () => {}): Promise<InstalledPackage> {
  const fromEnv = process.env.HAOSCAR_INSTALLED;
  if (fromEnv) {
    if (!existsSync(fromEnv)) throw new Error(`HAOSCAR_INSTALLED=${fromEnv} does not exist`);
    const prefix = join(fromEnv, '..', '..');
    return installedAt(prefix);
  }
  const cache = join(process.env.XDG_CACHE_HOME || join(process.env.HOME || homedir(), '.cache'), 'haoscar', 'package');
  const key = packageInputsHash().slice(0, 16);
  const done = installedAt(join(cache, key, 'prefix'));
  if (existsSync(done.haoscar)) {
    onProgress(`reusing the package installed from the same sources: ${done.prefix}`);
    return done;
  }
  // Built in a directory of its own and renamed when complete: an interrupted install is never reused.
  const work = join(cache, `${key}.partial-${process.pid}`);
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  onProgress(`npm pack (compiles dist/ and bundles the workflows) into ${work}`);
  const pack = await execa('npm', ['pack', '--pack-destination', work, '--json'], { cwd: ROOT, reject: false, stdin: 'ignore' });
  if (pack.exitCode !== 0) throw new Error(`npm pack failed (exit ${pack.exitCode}):\n${pack.stderr.slice(-3000)}`);
  const [{ filename }] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as [{ filename: string }];
  const tarball = join(work, filename);
  onProgress(`npm install -g --prefix ${join(work, 'prefix')} ${tarball}`);
  // --prefer-offline: the dependencies come from npm's cache when `npm ci` has filled it.
  const install = await execa('npm', ['install', '-g', '--prefix', join(work, 'prefix'), '--prefer-offline', '--no-audit', '--no-fund', tarball], { cwd: work, reject: false, stdin: 'ignore' });
  if (install.exitCode !== 0) throw new Error(`npm install -g of ${tarball} failed (exit ${install.exitCode}):\n${install.stderr.slice(-3000)}`);
  await rm(join(cache, key), { recursive: true, force: true });
  await rename(work, join(cache, key));
  // One package is kept (each is about 270 MB with its dependencies): the older ones go.
  for (const old of readdirSync(cache)) {
    if (old !== key && !old.includes('.partial-')) await rm(join(cache, old), { recursive: true, force: true });
  }
  return done;
}
