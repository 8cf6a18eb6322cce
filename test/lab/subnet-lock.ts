/**
 * Which /24 of 10.213.0.0/16 a network lab uses, the names of everything it creates there,
 * and the lock that keeps two labs (in this process or another) off the same /24.
 *
 * A lock is the directory `/tmp/haoscar-lab-locks/<X>` holding `owner.json` (pid, process
 * start time, lab dir). It is taken by renaming a complete temporary directory onto that
 * name, so a lock is never seen without its owner; it is released (and a stale one claimed)
 * by renaming it away first, so two cleaners never both remove the same lock.
 */
import { readFileSync, renameSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The first two octets of every lab address: 10.213.X.0/24, used only inside the labs. */
export const LAB_NET = '10.213';
export const LOCK_ROOT = '/tmp/haoscar-lab-locks';
/** Prefix of every namespace, link and nftables table a lab creates (and cleanupStale removes). */
export const NAME_PREFIX = 'hlab';

/** The names of lab X's objects. Interface names stay within Linux's 15 characters. */
export interface LabNames {
  x: number;
  /** `hlab<X>`: prefix of the namespaces; also the name of its nftables table (bridge family). */
  prefix: string;
  /** Root-side bridge, `hlab<X>br`. */
  bridge: string;
  /** `10.213.X.0/24`. */
  subnet: string;
  ip(lastOctet: number): string;
  /** Namespace of a lab host: `hlab<X>-<host>`. */
  namespace(host: string): string;
  /** Bridge-side end of a host's veth pair, named after its address: `hlab<X>v<lastOctet>`. */
  veth(lastOctet: number): string;
}

export function labNames(x: number): LabNames {
  const prefix = `${NAME_PREFIX}${x}`;
  return {
    x,
    prefix,
    bridge: `${prefix}br`,
    subnet: `${LAB_NET}.${x}.0/24`,
    ip: (n) => `${LAB_NET}.${x}.${n}`,
    namespace: (host) => `${prefix}-${host}`,
    veth: (n) => `${prefix}v${n}`,
  };
}

/** Lab X that a namespace, link or nftables table name belongs to, or undefined if it is not a lab's. */
export function labOfName(name: string): number | undefined {
  const m = /^hlab(\d{1,3})(?:-.+|br|v\d{1,3})?$/.exec(name);
  if (!m) return undefined;
  const x = Number(m[1]);
  return x <= 255 ? x : undefined;
}

function ipToInt(ip: string): number | undefined {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return (((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0);
}

/**
 * Third octets X whose 10.213.X.0/24 overlaps an address or route mentioned in `text` (the
 * output of `ip -o -4 addr` and `ip -4 route show table all`): every dotted quad counts, with
 * its /len or as a /32 (so gateways and `src` addresses count too); /0 (a default route
 * spelled out) does not. Conservative on purpose: a /24 is taken only when nothing on the
 * machine mentions it.
 */
export function usedThirdOctets(text: string): Set<number> {
  const used = new Set<number>();
  const base = ipToInt(`${LAB_NET}.0.0`)!;
  for (const m of text.matchAll(/(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?(?![\d.])/g)) {
    const ip = ipToInt(m[1]!);
    const len = m[2] === undefined ? 32 : Number(m[2]);
    if (ip === undefined || len === 0 || len > 32) continue;
    const common = Math.min(len, 16);
    if (ip >>> (32 - common) !== base >>> (32 - common)) continue;
    if (len <= 16) {
      for (let x = 0; x < 256; x++) used.add(x);
    } else if (len <= 24) {
      // A prefix between /17 and /24 covers a range of third octets.
      const first = (ip >>> 8) & 0xff & (0xff << (24 - len));
      for (let x = first; x < first + (1 << (24 - len)); x++) used.add(x);
    } else {
      used.add((ip >>> 8) & 0xff);
    }
  }
  return used;
}

export interface LockOwner {
  pid: number;
  /** Field 22 of /proc/<pid>/stat: tells a live owner from a later process with the same pid. */
  start: string;
  /** The owner's lab directory, removed by the stale cleanup. */
  dir?: string;
}

export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function ownerAlive(owner: LockOwner): boolean {
  const start = processStartTime(owner.pid);
  return start !== undefined && start === owner.start;
}

export async function readOwner(x: number): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(join(LOCK_ROOT, String(x), 'owner.json'), 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

/** The labs with a lock directory (live or not). */
export async function lockedLabs(): Promise<number[]> {
  const names = await readdir(LOCK_ROOT).catch(() => [] as string[]);
  return names.filter((n) => /^\d{1,3}$/.test(n)).map(Number);
}

export interface LabLock {
  x: number;
  /** Records the lab directory in the lock, for the stale cleanup. */
  setDir(dir: string): Promise<void>;
  release(): Promise<void>;
  /** For process-exit handlers, where nothing asynchronous runs. */
  releaseSync(): void;
}

function me(): LockOwner {
  return { pid: process.pid, start: processStartTime(process.pid) ?? 'unknown' };
}

function lockObject(x: number, owner: LockOwner): LabLock {
  const path = join(LOCK_ROOT, String(x));
  let released = false;
  const aside = () => join(LOCK_ROOT, `.released-${x}-${process.pid}-${Date.now()}`);
  return {
    x,
    async setDir(dir) {
      owner.dir = dir;
      await writeFile(join(path, 'owner.json'), JSON.stringify(owner));
    },
    async release() {
      if (released) return;
      released = true;
      const to = aside();
      await rename(path, to);
      await rm(to, { recursive: true, force: true });
    },
    releaseSync() {
      if (released) return;
      released = true;
      const to = aside();
      renameSync(path, to);
      rmSync(to, { recursive: true, force: true });
    },
  };
}

/** Takes the lock of lab X for this process; undefined when somebody holds it. */
export async function tryLock(x: number): Promise<LabLock | undefined> {
  await mkdir(LOCK_ROOT, { recursive: true });
  const owner = me();
  const tmp = await mkdtemp(join(LOCK_ROOT, '.new-'));
  await writeFile(join(tmp, 'owner.json'), JSON.stringify(owner));
  try {
    // rename(2) onto an existing non-empty directory fails (ENOTEMPTY/EEXIST): the lock is held.
    await rename(tmp, join(LOCK_ROOT, String(x)));
    return lockObject(x, owner);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return undefined;
    throw e;
  }
}

/**
 * Takes over lab X's lock when its owner is dead (or it has none): the stale lock is renamed
 * away (only one cleaner wins) and replaced by this process's own, so no new lab takes X while
 * its leftovers are removed. @returns the lock and the dead owner, or undefined when X belongs
 * to a live process or another cleaner got there first.
 */
export async function claimStale(x: number): Promise<{ lock: LabLock; previous?: LockOwner } | undefined> {
  const path = join(LOCK_ROOT, String(x));
  const previous = await readOwner(x);
  if (previous && ownerAlive(previous)) return undefined;
  if (previous) {
    const aside = join(LOCK_ROOT, `.stale-${x}-${process.pid}-${Date.now()}`);
    try {
      await rename(path, aside);
    } catch {
      return undefined;
    }
    await rm(aside, { recursive: true, force: true });
  }
  const lock = await tryLock(x);
  return lock ? { lock, previous } : undefined;
}
