/**
 * The release a cluster upgrades from, read from this repository's history: the rolling-upgrade
 * lab test runs all of it, the heartbeat interoperability test loads its heartbeat module.
 */
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The last main before issue 10 (package version 0.1.0). When a release is made, this moves to
 * it; by commit, not tag, so that any full clone has it.
 */
export const PREVIOUS_RELEASE = { version: '0.1.0', commit: '97f0f10a7108fad48548449001740e4e89adace2' };

/**
 * Extracts the previous release (or only `paths` of it) into a new temporary directory, with this
 * checkout's node_modules linked in. @returns the directory and how to remove it.
 * @throws Error when the commit is not in this repository's history (a shallow clone).
 */
export async function checkOutPreviousRelease(paths: readonly string[] = []): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `haoscar-release-${PREVIOUS_RELEASE.version}-`));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const archive = await execa('git', ['-C', ROOT, 'archive', '--format=tar', PREVIOUS_RELEASE.commit, ...paths], { encoding: 'buffer', reject: false });
    if (archive.exitCode !== 0) {
      throw new Error(`cannot read the previous release (${PREVIOUS_RELEASE.commit}) from this repository's history: ${archive.stderr.toString().trim()} (a shallow clone? fetch the full history)`);
    }
    await execa('tar', ['-x', '-C', dir], { input: archive.stdout });
    await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  } catch (err) {
    await remove();
    throw err;
  }
  return { dir, remove };
}
