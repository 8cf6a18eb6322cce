/**
 * cgroup v2 for supervised services. A process group is not enough to hold a service: a daemon
 * that calls setsid() or double-forks leaves it, and then survives a stop and the agent's death.
 * A cgroup keeps every descendant, whatever it does, and `cgroup.kill` kills them all at once, so
 * the lease guard can release a service bluntly. Synchronous: each call is a few small reads or
 * writes on a virtual filesystem.
 *
 * Layout: `<mount>/haoscar/<cluster>/<node>/<group>/<resource>` (serviceCgroupPath). The groups
 * enable no controllers: they are used for membership and killing only.
 */
import { accessSync, closeSync, constants, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, statfsSync, statSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';

/** statfs(2) f_type of a cgroup v2 filesystem. */
const CGROUP2_SUPER_MAGIC = 0x63677270;
/** Where cgroup v2 is mounted on a unified host, then on a hybrid one (systemd's layouts). */
const PREFERRED_MOUNTS = ['/sys/fs/cgroup', '/sys/fs/cgroup/unified'];
/** The directory under the mount that holds HA-OSCAR's groups. */
const HAOSCAR_DIR = 'haoscar';
/** Rounds of the SIGKILL fallback (kernels before 5.14 have no cgroup.kill) before giving up. */
const FALLBACK_KILL_ROUNDS = 50;
const FALLBACK_KILL_PAUSE_MS = 10;

/**
 * A cgroup operation failed. `path` is the cgroup (or file) concerned, `code` the errno name
 * when the kernel refused (EACCES, EROFS, EBUSY, ...).
 */
export class CgroupError extends Error {
  override readonly name = 'CgroupError';
  readonly path: string;
  readonly code: string | undefined;

  constructor(message: string, path: string, code?: string, options?: ErrorOptions) {
    super(message, options);
    this.path = path;
    this.code = code;
  }
}

/**
 * The cgroup v2 mount points in a /proc/self/mountinfo text, in the order listed, counting
 * only the topmost mount of each mount point (a later mount on the same point hides an earlier
 * one).
 */
export function parseCgroup2Mounts(mountinfo: string): string[] {
  const fstypeAt = new Map<string, string>();
  for (const line of mountinfo.split('\n')) {
    // "36 35 98:0 / /mnt rw,noatime master:1 - ext3 /dev/root rw": optional fields end at "-".
    const separator = line.indexOf(' - ');
    if (separator < 0) continue;
    const mountPoint = line.slice(0, separator).split(' ')[4];
    const fstype = line.slice(separator + 3).split(' ')[0];
    if (mountPoint === undefined || fstype === undefined) continue;
    const path = unescapeMountPath(mountPoint);
    fstypeAt.delete(path); // re-insert: the map's order is then the order of the topmost mounts
    fstypeAt.set(path, fstype);
  }
  return [...fstypeAt].filter(([, fstype]) => fstype === 'cgroup2').map(([path]) => path);
}

/** mountinfo escapes space, tab, newline and backslash as octal (\040). */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Where cgroup v2 is mounted: `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified` on a
 * hybrid one, else the first cgroup2 mount. `mountinfo` defaults to /proc/self/mountinfo.
 * @returns undefined when no cgroup v2 filesystem is mounted (or mountinfo cannot be read).
 */
export function findCgroup2Mount(mountinfo?: string): string | undefined {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = readFileSync('/proc/self/mountinfo', 'utf8');
    } catch {
      return undefined;
    }
  }
  const mounts = parseCgroup2Mounts(text);
  return PREFERRED_MOUNTS.find((path) => mounts.includes(path)) ?? mounts[0];
}

/**
 * The cgroup of one service: `<root>/haoscar/<cluster>/<node>/<group>/<resource>`.
 * @throws CgroupError when `root` is not absolute or a name could leave its level (empty, `.`,
 *   containing `/`, `..` or a control character). The config schema's names never do.
 */
export function serviceCgroupPath(root: string, cluster: string, node: string, group: string, resource: string): string {
  if (!isAbsolute(root)) throw new CgroupError(`cgroup root '${root}' is not an absolute path: give the cgroup v2 mount point, e.g. /sys/fs/cgroup`, root);
  const names = { cluster, node, group, resource };
  for (const [what, name] of Object.entries(names)) {
    // eslint-disable-next-line no-control-regex -- control characters are what is refused
    if (name === '' || name === '.' || name.includes('/') || name.includes('..') || /[\x00-\x1f\x7f]/.test(name)) {
      throw new CgroupError(`${what} name ${JSON.stringify(name)} cannot name a cgroup directory (it is empty, '.', or contains '/', '..' or a control character)`, root);
    }
  }
  return join(root, HAOSCAR_DIR, cluster, node, group, resource);
}

/**
 * Run by /bin/sh: moves the shell into the cgroup named by $1, then execs the command (the
 * remaining arguments) in the same process, so nothing it forks starts outside. A constant: the
 * cgroup and the command are arguments, never part of the script's text.
 */
const ENTER_CGROUP_SCRIPT = 'echo $$ > "$1/cgroup.procs" || exit 125; shift; exec "$@"';
/** $0 of the wrapper: what `ps` shows for the instant before the exec. */
const ENTER_CGROUP_NAME = 'haoscar-cgroup';
/** The wrapper's exit code when it could not enter the cgroup. */
export const EXIT_CANNOT_ENTER_CGROUP = 125;

/** `argv` run inside the cgroup `path` (it must exist): a shell enters it, then becomes the command (exec: same pid). */
export function inCgroupArgv(path: string, argv: readonly string[]): [string, string[]] {
  return ['/bin/sh', ['-c', ENTER_CGROUP_SCRIPT, ENTER_CGROUP_NAME, path, ...argv]];
}

/**
 * Creates the cgroup (and its parents) unless it exists. Nothing is created unless the nearest
 * existing ancestor is on a cgroup v2 filesystem, so a wrong root never leaves directories behind.
 * @throws CgroupError when `path` is not absolute, is not under a cgroup v2 mount, or the kernel
 *   refuses the mkdir (EACCES/EPERM: not root; EROFS: mounted read-only; ENOSPC:
 *   cgroup.max.descendants or max.depth reached).
 */
export function ensureCgroup(path: string): void {
  if (!isAbsolute(path)) throw new CgroupError(`cgroup path '${path}' is not absolute`, path);
  const existing = nearestExistingAncestor(path);
  requireCgroup2(existing, path);
  if (existing === path) return;
  try {
    mkdirSync(path, { recursive: true });
  } catch (error) {
    const code = errnoName(error);
    throw new CgroupError(`cannot create cgroup ${path} (${code}): ${mkdirAdvice(code)}`, path, code, { cause: error });
  }
}

/** @throws CgroupError unless `existing` (an existing path) is on a cgroup v2 filesystem. */
function requireCgroup2(existing: string, path: string): void {
  let fstype: number;
  try {
    fstype = statfsSync(existing).type;
  } catch (error) {
    const code = errnoName(error);
    throw new CgroupError(`cannot inspect ${existing} for cgroup ${path} (${code})`, path, code, { cause: error });
  }
  if (fstype !== CGROUP2_SUPER_MAGIC) {
    throw new CgroupError(
      `cgroup ${path}: ${existing} is not on a cgroup v2 filesystem: give the cgroup v2 mount point as the root (the cgroup2 line of /proc/self/mountinfo), or run without cgroups`,
      path,
    );
  }
}

function mkdirAdvice(code: string | undefined): string {
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return 'the agent must run as root (or be delegated this part of the cgroup tree)';
    case 'EROFS':
      return 'the cgroup filesystem is mounted read-only (in a container: give it a writable cgroup namespace)';
    case 'ENOSPC':
    case 'EAGAIN':
      return 'cgroup.max.descendants or cgroup.max.depth of a parent group is reached';
    default:
      return 'check that cgroup v2 is mounted read-write';
  }
}

function nearestExistingAncestor(path: string): string {
  let current = path;
  for (;;) {
    try {
      statSync(current);
      return current;
    } catch (error) {
      const parent = dirname(current);
      if (errnoName(error) !== 'ENOENT' || parent === current) return current;
      current = parent;
    }
  }
}

/**
 * The pids in the cgroup and its descendants (cgroup.kill reaches those too). Exited processes
 * leave cgroup.procs at once, even while they are zombies. A threaded cgroup adds none: its
 * processes are listed by its threaded domain.
 * @returns [] when the cgroup does not exist.
 * @throws CgroupError when cgroup.procs exists but cannot be read.
 */
export function cgroupPids(path: string): number[] {
  let text: string;
  try {
    text = readFileSync(join(path, 'cgroup.procs'), 'utf8');
  } catch (error) {
    const code = errnoName(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return []; // no such group (or removed while we looked)
    // A threaded cgroup lists no processes: they are in its threaded domain's cgroup.procs.
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return [];
    throw new CgroupError(`cannot read ${join(path, 'cgroup.procs')} (${code})`, path, code, { cause: error });
  }
  const pids = text.split('\n').filter((line) => line !== '').map(Number);
  for (const child of subgroups(path)) pids.push(...cgroupPids(child));
  return pids;
}

function subgroups(path: string): string[] {
  try {
    return readdirSync(path, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => join(path, entry.name));
  } catch {
    return []; // removed while we looked
  }
}

/**
 * The pids of the cgroup (and descendants) that are alive: zombies do not count (they hold
 * nothing, and where PID 1 does not reap they would never leave).
 * @throws CgroupError as cgroupPids.
 */
export function cgroupLivePids(path: string): number[] {
  return cgroupPids(path).filter((pid) => {
    const stat = readProcessStat(pid);
    return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X';
  });
}

/**
 * A process's state letter and process group, from /proc/PID/stat.
 * @returns undefined when the process is gone (or /proc cannot be read).
 */
export function readProcessStat(pid: number): { state: string; pgrp: number } | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // "pid (comm) state ppid pgrp ..."; comm may contain spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '', pgrp: Number(fields[2]) };
}

/**
 * Sends `signal` to every live process of the cgroup (and descendants) but those `skip` names
 * (the ones the caller reached another way, e.g. through their process group).
 * @returns the pids signalled.
 * @throws CgroupError as cgroupPids, or when a process may not be signalled (EPERM).
 */
export function signalCgroup(path: string, signal: NodeJS.Signals, skip: (pid: number) => boolean = () => false): number[] {
  const signalled: number[] = [];
  for (const pid of cgroupLivePids(path)) {
    if (skip(pid)) continue;
    try {
      process.kill(pid, signal);
      signalled.push(pid);
    } catch (error) {
      const code = errnoName(error);
      if (code === 'ESRCH') continue; // exited meanwhile
      throw new CgroupError(`cannot send ${signal} to process ${pid} of cgroup ${path} (${code})`, path, code, { cause: error });
    }
  }
  return signalled;
}

/**
 * SIGKILLs every process of the cgroup and its descendants, by writing 1 to cgroup.kill (Linux
 * 5.14 and later: atomic, no fork can slip through). Without cgroup.kill (or with
 * `{ killFile: false }`), it freezes the group where it can, SIGKILLs each member, repeated until
 * none is left or 50 rounds, and thaws it. Returns once the signals are sent; the processes
 * exit shortly after (wait for cgroupLivePids to be empty). A missing cgroup has nothing to kill.
 * @throws CgroupError when the kernel refuses (EACCES/EPERM: not root).
 */
export function killCgroup(path: string, options: { killFile?: boolean } = {}): void {
  if (options.killFile ?? true) {
    // No such group (nothing to kill: the fallback finds no one) or a kernel before 5.14.
    if (writeCgroupFile(path, 'cgroup.kill', '1')) return;
  }
  // A frozen process cannot fork, and SIGKILL still ends it.
  const frozen = writeCgroupFile(path, 'cgroup.freeze', '1');
  try {
    for (let round = 0; round < FALLBACK_KILL_ROUNDS; round++) {
      if (signalCgroup(path, 'SIGKILL').length === 0) return;
      pauseSync(FALLBACK_KILL_PAUSE_MS);
    }
  } finally {
    if (frozen) writeCgroupFile(path, 'cgroup.freeze', '0');
  }
}

/**
 * Writes an existing interface file (without O_CREAT: cgroupfs answers a create with EACCES).
 * @returns false when the file (or the group) does not exist.
 */
function writeCgroupFile(path: string, file: string, value: string): boolean {
  const target = join(path, file);
  let fd: number;
  try {
    fd = openSync(target, constants.O_WRONLY);
  } catch (error) {
    const code = errnoName(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    throw new CgroupError(`cannot open ${target} (${code}): the agent must run as root`, path, code, { cause: error });
  }
  try {
    writeSync(fd, value);
    return true;
  } catch (error) {
    const code = errnoName(error);
    throw new CgroupError(`cannot write ${value} to ${target} (${code})`, path, code, { cause: error });
  } finally {
    closeSync(fd);
  }
}

function pauseSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * Removes the (empty) cgroup directory; not its sub-groups, and never its parents, which
 * other services share.
 * @returns true when it is gone (removed now, or it did not exist); false when the kernel keeps
 *   it (EBUSY: it still has processes or sub-groups).
 * @throws CgroupError for any other refusal (EACCES, EROFS, ENOTDIR).
 */
export function removeCgroup(path: string): boolean {
  try {
    rmdirSync(path);
    return true;
  } catch (error) {
    const code = errnoName(error);
    if (code === 'ENOENT') return true;
    if (code === 'EBUSY' || code === 'ENOTEMPTY') return false;
    throw new CgroupError(`cannot remove cgroup ${path} (${code})`, path, code, { cause: error });
  }
}

/**
 * Checks that services can be given cgroups under `root`: it is on a cgroup v2 filesystem, and
 * a probe group `<root>/haoscar-probe-<pid>` can be created, offers a writable cgroup.procs and
 * cgroup.kill (or cgroup.freeze), and is removed again. Touches nothing else.
 * @throws CgroupError saying what is missing.
 */
export function checkCgroupRoot(root: string): void {
  if (!isAbsolute(root)) throw new CgroupError(`cgroup root '${root}' is not an absolute path`, root);
  if (!exists(join(root, 'cgroup.procs'))) {
    throw new CgroupError(`${root} is not a cgroup directory (no cgroup.procs): give the cgroup v2 mount point (the cgroup2 line of /proc/self/mountinfo)`, root);
  }
  requireCgroup2(root, root); // a cgroup v1 hierarchy has cgroup.procs too
  const probe = join(root, `haoscar-probe-${process.pid}`);
  ensureCgroup(probe);
  let problem: CgroupError | undefined;
  try {
    accessSync(join(probe, 'cgroup.procs'), constants.W_OK);
    if (!exists(join(probe, 'cgroup.kill')) && !exists(join(probe, 'cgroup.freeze'))) {
      problem = new CgroupError(`${probe} has neither cgroup.kill nor cgroup.freeze: the kernel is older than 5.2`, probe);
    }
  } catch (error) {
    const code = errnoName(error);
    problem = new CgroupError(`cannot write ${join(probe, 'cgroup.procs')} (${code}): the agent must run as root`, probe, code, { cause: error });
  }
  if (!removeCgroup(probe)) problem ??= new CgroupError(`cannot remove the probe cgroup ${probe}: it is busy`, probe, 'EBUSY');
  if (problem) throw problem;
}

/** Whether checkCgroupRoot passes (it says why not). */
export function cgroupsUsable(root: string): boolean {
  try {
    checkCgroupRoot(root);
    return true;
  } catch {
    return false;
  }
}

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function errnoName(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}
