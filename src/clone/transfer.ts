/**
 * The rsync command lines of a standby clone (docs/clone.md): the target pulls the source's
 * root over ssh, as the file sets' ssh transport does (docs/sync.md), with the same key and
 * known hosts. Never the read-only rsync daemon: it does not export `/`, `/etc/shadow` or the
 * cluster secret, and must not.
 */
import { checkDirectory, RsyncArgsError, sshRemotePath, sshRemoteShell, withSlash, type SshEnd } from '../sync/rsync.js';

export interface CloneSource extends SshEnd {
  port: number;
  /** The source's root directory: `/` (a test or a chroot: a directory). */
  root: string;
}

/** rsync keeps an interrupted file here (per directory) and the next attempt resumes it. */
export const CLONE_PARTIAL_DIR = '.haoscar-clone-partial';

/** The remote shell: the file sets' ssh (src/sync/rsync.ts), with keep-alives for a long copy. */
export function sshShell(source: CloneSource): string {
  return sshRemoteShell(source, ['ConnectTimeout=30', 'ServerAliveInterval=15']);
}

/** `user@host:/root/PATH`. */
export function remoteRoot(source: CloneSource, path = ''): string {
  checkDirectory('the source root', source.root);
  return `${sshRemotePath(source, source.root)}${path}`;
}

/**
 * The copy: `-aHAX --numeric-ids` (hard links, ACLs, extended attributes, ids as numbers: the
 * clone is the same system, whatever the rescue system's passwd says), `--delete` (the target
 * becomes the image; an excluded path on the target is not deleted: no `--delete-excluded`),
 * the plan's filter rules, a partial dir for resuming, overall progress and a summary.
 * `--dry-run --itemize-changes` lists instead of changing; `--checksum` compares contents, not
 * sizes and times.
 */
export function cloneCopyArgs(opts: { source: CloneSource; targetRoot: string; filters: readonly string[]; dryRun?: boolean; checksum?: boolean }): string[] {
  checkDirectory('the target root', opts.targetRoot);
  const args = ['-aHAX', '--numeric-ids', '--delete', '--delete-delay', `--partial-dir=${CLONE_PARTIAL_DIR}`, '--timeout=300'];
  if (opts.dryRun) args.push('--dry-run', '--itemize-changes');
  if (opts.checksum) args.push('--checksum');
  for (const rule of opts.filters) {
    if (!/^[+-] [^\0\n]+$/.test(rule)) throw new RsyncArgsError(`filter rule ${JSON.stringify(rule)} is not "+ PATTERN" or "- PATTERN"`);
    args.push(`--filter=${rule}`);
  }
  args.push('--info=progress2', '--stats', '-e', sshShell(opts.source), remoteRoot(opts.source), withSlash(opts.targetRoot));
  return args;
}

/**
 * A comparison that changes nothing: `--dry-run --checksum --itemize-changes` of the listed
 * files only (each with its parent directories, then everything else out), so that every file
 * whose content differs from the source's is printed as `>f...`.
 */
export function compareArgs(opts: { source: CloneSource; targetRoot: string; files: readonly string[] }): string[] {
  checkDirectory('the target root', opts.targetRoot);
  const parents = new Set<string>();
  for (const f of opts.files) {
    const parts = f.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) parents.add(`/${parts.slice(0, i).join('/')}/`);
  }
  const escape = (p: string) => p.replace(/[[*?\\]/g, '\\$&');
  const filters = [...[...parents].map((p) => `+ ${escape(p)}`), ...opts.files.map((f) => `+ ${escape(f)}`), '- *'];
  return ['-aHAX', '--numeric-ids', '--dry-run', '--checksum', '--itemize-changes', '--timeout=300', ...filters.map((r) => `--filter=${r}`), '-e', sshShell(opts.source), remoteRoot(opts.source), withSlash(opts.targetRoot)];
}

/** Reachability: lists the source's /etc/os-release (also through `rrsync -ro`). */
export function probeArgs(source: CloneSource): string[] {
  return ['--list-only', '--timeout=30', '-e', sshShell(source), remoteRoot(source, 'etc/os-release')];
}

/** The paths an itemized dry run says differ in content (`>f` with a `c` checksum flag, or new). */
export function differingFiles(stdout: string): string[] {
  return stdout.split('\n').flatMap((line) => {
    const m = /^[<>ch.*][f]([.+cstpoguax]{9}) (.+)$/.exec(line);
    if (!m || !m[1] || !m[2]) return [];
    return m[1].startsWith('+') || m[1][0] === 'c' ? [m[2]] : [];
  });
}
