/**
 * The `filesystem` driver: a filesystem mounted on the node owning the group, typically on a
 * DRBD device the `drbd` resource before it has promoted. start optionally checks it
 * (`fsck -a`, for a node taking over after the owner crashed mid-write), creates the mount
 * point if missing and mounts; stop unmounts. Whether it is mounted is read from
 * /proc/self/mountinfo, which (unlike `mount` output) escapes odd characters unambiguously
 * and lists stacked mounts in order.
 *
 * Every command goes through the injected {@link Exec}; tests mount real tmpfs and loop
 * devices (they run as root).
 */
import { mkdir, readFile, realpath } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { FilesystemResource } from '../config/types.js';
import { ExecError, lastLine, type Exec } from '../exec.js';
import type { Logger } from '../log.js';
import type { ServiceDriver, ServiceStatus } from './service-driver.js';
import type { GuardAction } from '../guard/protocol.js';

export interface FilesystemDriverDeps {
  exec: Exec;
  logger: Logger;
  /** Where the mount table is read; a test may point elsewhere. */
  mountInfoPath?: string;
  /** Programs, from PATH unless a distribution or test says otherwise. */
  mountBin?: string;
  umountBin?: string;
  fsckBin?: string;
  fuserBin?: string;
}

/** One line of /proc/self/mountinfo (proc(5)), with the octal escapes undone. */
export interface MountInfoEntry {
  mountId: number;
  parentId: number;
  /** `major:minor` of the filesystem's device. */
  majorMinor: string;
  /** The directory of the filesystem that is mounted (`/` unless a bind mount). */
  root: string;
  mountPoint: string;
  options: string;
  fstype: string;
  /** The device or name it was mounted from (`/dev/drbd0`, `tmpfs`). */
  source: string;
  superOptions: string;
}

/**
 * Undoes the kernel's escaping of space, tab, newline and backslash in mountinfo fields
 * (`\040`, `\011`, `\012`, `\134`). Pure.
 */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Parses /proc/self/mountinfo: `36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3
 * /dev/root rw,errors=continue` (optional fields, any number of them, end at ` - `). Lines
 * it cannot read are skipped. Pure.
 */
export function parseMountInfo(text: string): MountInfoEntry[] {
  const entries: MountInfoEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(' ');
    const separator = fields.indexOf('-', 6);
    if (fields.length < 7 || separator < 0 || fields.length < separator + 3) continue;
    const [id, parent, majorMinor, root, mountPoint, options] = fields;
    const [fstype, source, superOptions = ''] = fields.slice(separator + 1);
    if (!id || !parent || !majorMinor || !root || !mountPoint || !options || !fstype || source === undefined) continue;
    entries.push({
      mountId: Number(id),
      parentId: Number(parent),
      majorMinor,
      root: unescapeMountField(root),
      mountPoint: unescapeMountField(mountPoint),
      options,
      fstype: unescapeMountField(fstype),
      source: unescapeMountField(source),
      superOptions,
    });
  }
  return entries;
}

/** A process that keeps a mount busy, as `fuser -vm` reports it. */
export interface MountHolder {
  pid: number;
  user?: string;
  /** fuser's access letters: c current directory, e executable, f open file, r root, m mmap. */
  access?: string;
  command?: string;
}

/**
 * Pairs `fuser -vm MOUNTPOINT`'s two streams: the PIDs go to standard output, the table
 * (USER, ACCESS, COMMAND) to standard error, in the same order. The kernel's own line (the
 * mount itself, PID "kernel") is skipped, and so is noise such as "Cannot stat file". Pure.
 */
export function parseFuserVerbose(stdout: string, stderr: string): MountHolder[] {
  const pids = stdout.trim().split(/\s+/).filter(Boolean);
  const rows = stderr
    .split('\n')
    // A name longer than its 20-column field gets a line of its own, ending in a colon.
    .filter((l) => l.trim() && !/^(Cannot stat|Specified filename|No such file)/.test(l.trim()) && !/:\s*$/.test(l))
    // The first 21 columns hold the name (or nothing); USER, ACCESS and COMMAND follow.
    .map((l) => (l.length > 21 ? l.slice(21) : l).trim())
    .filter((l) => !/^USER\s+PID/.test(l));
  const holders: MountHolder[] = [];
  pids.forEach((token, i) => {
    if (token === 'kernel') return;
    const pid = Number(token.replace(/\D+$/, ''));
    if (!Number.isInteger(pid) || pid <= 0) return;
    const row = rows.length === pids.length ? rows[i] : undefined;
    const words = row?.split(/\s+/) ?? [];
    const [user, access, ...command] = words;
    holders.push({ pid, ...(user ? { user } : {}), ...(access ? { access } : {}), ...(command.length > 0 ? { command: command.join(' ') } : {}) });
  });
  return holders;
}

/** What fsck's exit code means (fsck(8): a sum of these bits). */
export function describeFsckExit(code: number): string {
  const bits: [number, string][] = [
    [1, 'errors corrected'],
    [2, 'system should be rebooted'],
    [4, 'errors left uncorrected'],
    [8, 'operational error'],
    [16, 'usage or syntax error'],
    [32, 'checking canceled by user request'],
    [128, 'shared-library error'],
  ];
  const said = bits.filter(([bit]) => (code & bit) !== 0).map(([, text]) => text);
  return said.length > 0 ? said.join(', ') : 'no errors';
}

/** Thrown by stop when processes keep the filesystem busy; it names them when it can. */
export class FilesystemBusyError extends Error {
  constructor(
    readonly mountpoint: string,
    /** Undefined when they could not be listed (no fuser). */
    readonly holders: readonly MountHolder[] | undefined,
    cause?: unknown,
  ) {
    const who =
      holders === undefined
        ? `find them with \`fuser -vm ${mountpoint}\` or \`lsof ${mountpoint}\``
        : holders.length === 0
          ? `fuser found no process (a bind mount, a swap file or an NFS export may hold it; see \`findmnt\` and \`lsof ${mountpoint}\`)`
          : `held by ${holders.map((h) => `${h.command ?? 'pid'} (pid ${h.pid}${h.user ? `, user ${h.user}` : ''}${h.access ? `, access ${h.access}` : ''})`).join(', ')}`;
    super(`umount ${mountpoint} failed: target is busy; ${who}. Stop those processes (or the services using ${mountpoint}) and stop again`, { cause });
    this.name = 'FilesystemBusyError';
  }
}

/** Thrown by start when something else is mounted on the mount point: HA-OSCAR will not stack on it. */
export class MountpointTakenError extends Error {
  constructor(
    readonly mountpoint: string,
    readonly found: MountInfoEntry,
    readonly wanted: string,
  ) {
    super(
      `${mountpoint} already has ${found.source} (${found.fstype}) mounted, not ${wanted}: unmount it (\`umount ${mountpoint}\`) or choose another mountpoint for this filesystem resource`,
    );
    this.name = 'MountpointTakenError';
  }
}

const BUSY = /target is busy|device is busy/i;
const NOT_MOUNTED = /not mounted/i;

export class FilesystemDriver implements ServiceDriver {
  readonly kind = 'filesystem' as const;
  readonly #resource: FilesystemResource;
  readonly #mountpoint: string;
  readonly #exec: Exec;
  readonly #logger: Logger;
  readonly #mountInfoPath: string;
  readonly #bins: { mount: string; umount: string; fsck: string; fuser: string };

  constructor(resource: FilesystemResource, deps: FilesystemDriverDeps) {
    this.#resource = resource;
    this.#mountpoint = resolve(resource.mountpoint);
    this.#exec = deps.exec;
    this.#mountInfoPath = deps.mountInfoPath ?? '/proc/self/mountinfo';
    this.#bins = { mount: deps.mountBin ?? 'mount', umount: deps.umountBin ?? 'umount', fsck: deps.fsckBin ?? 'fsck', fuser: deps.fuserBin ?? 'fuser' };
    this.#logger = deps.logger.child({ driver: 'filesystem', device: resource.device, mountpoint: this.#mountpoint });
  }

  /**
   * Mounts the filesystem (after `fsck -a` when the resource asks for it), creating the mount
   * point if missing. Succeeds at once when it is already mounted there.
   * @throws MountpointTakenError when something else is mounted there; Error when fsck finds
   *   what it cannot fix (the filesystem then needs a manual fsck) or mount fails.
   */
  async start(): Promise<void> {
    const mountpoint = await this.#realMountpoint(true);
    const top = await this.#topMount(mountpoint);
    if (top) {
      if (await this.#isOurs(top)) {
        this.#logger.info('already mounted');
        return;
      }
      throw new MountpointTakenError(mountpoint, top, this.#resource.device);
    }
    if (this.#resource.fsck) await this.#fsck();
    const { fstype, options, device } = this.#resource;
    const args = ['-t', fstype, ...(options.length > 0 ? ['-o', options.join(',')] : []), device, mountpoint];
    this.#logger.info({ command: [this.#bins.mount, ...args] }, 'mounting');
    try {
      await this.#exec(this.#bins.mount, args, { timeoutMs: this.#resource.timeoutMs });
    } catch (error) {
      // Mounted by someone else between our look and our mount: fine if it is ours.
      const now = await this.#topMount(mountpoint).catch(() => undefined);
      if (now && (await this.#isOurs(now))) {
        this.#logger.info('was mounted meanwhile');
        return;
      }
      throw this.#describe(`mount ${args.join(' ')}`, error);
    }
  }

  /**
   * Unmounts; succeeds at once when the filesystem is not mounted there.
   * @throws FilesystemBusyError when processes keep it busy; Error when umount fails otherwise.
   */
  async stop(): Promise<void> {
    const mountpoint = await this.#realMountpoint(false);
    const top = await this.#topMount(mountpoint);
    if (!top) {
      this.#logger.info('not mounted: already stopped');
      return;
    }
    if (!(await this.#isOurs(top))) {
      // Not ours to take away; our filesystem is not mounted here, which is what stop wants.
      this.#logger.warn({ source: top.source, fstype: top.fstype }, 'something else is mounted on the mount point; leaving it');
      return;
    }
    this.#logger.info({ command: [this.#bins.umount, mountpoint] }, 'unmounting');
    try {
      await this.#exec(this.#bins.umount, [mountpoint], { timeoutMs: this.#resource.timeoutMs });
    } catch (error) {
      if (error instanceof ExecError && NOT_MOUNTED.test(error.stderr)) return;
      if (error instanceof ExecError && BUSY.test(error.stderr)) throw new FilesystemBusyError(mountpoint, await this.#holders(mountpoint), error);
      throw this.#describe(`umount ${mountpoint}`, error);
    }
  }

  /**
   * Running means the device is what is mounted on the mount point; `detail` says what is.
   * @throws Error when the mount table cannot be read.
   */
  /**
   * Unmount, bounded, once the group's processes are gone; a mount point with nothing mounted
   * is released already (a constant script: the paths are its arguments, never its text).
   */
  guardActions(): GuardAction[] {
    return [{
      kind: 'run',
      timeoutMs: this.#resource.timeoutMs,
      argv: ['/bin/sh', '-c', 'if mountpoint -q -- "$1"; then exec "$2" -- "$1"; fi', 'haoscar-guard-umount', this.#mountpoint, this.#bins.umount],
    }];
  }

  async status(): Promise<ServiceStatus> {
    const mountpoint = await this.#realMountpoint(false);
    const top = await this.#topMount(mountpoint);
    if (!top) return { running: false, detail: `nothing mounted on ${mountpoint}` };
    const detail = `${top.source} on ${mountpoint} type ${top.fstype} (${top.options})`;
    if (await this.#isOurs(top)) return { running: true, detail };
    return { running: false, detail: `${detail}, not ${this.#resource.device}` };
  }

  async #fsck(): Promise<void> {
    const device = this.#resource.device;
    this.#logger.info({ command: [this.#bins.fsck, '-a', device] }, 'checking the filesystem');
    try {
      // 0: clean; 1: errors corrected. Both leave a filesystem fit to mount.
      const { exitCode, stdout } = await this.#exec(this.#bins.fsck, ['-a', device], { timeoutMs: this.#resource.timeoutMs, okExitCodes: [1] });
      if (exitCode === 1) this.#logger.warn({ said: lastLine(stdout) }, 'fsck corrected errors');
    } catch (error) {
      if (error instanceof ExecError && error.exitCode !== undefined) {
        const said = lastLine(error.stderr);
        throw new Error(
          `fsck -a ${device} exited ${error.exitCode} (${describeFsckExit(error.exitCode)})${said ? `: ${said}` : ''}: the filesystem needs a manual fsck. ` +
            `Run \`fsck ${device}\` on this node and answer its questions, then start the group again`,
          { cause: error },
        );
      }
      throw this.#describe(`fsck -a ${device}`, error);
    }
  }

  /** The mount point as the kernel lists it (symlinks resolved); created first if asked. */
  async #realMountpoint(create: boolean): Promise<string> {
    if (create) {
      try {
        await mkdir(this.#mountpoint, { recursive: true });
      } catch (error) {
        throw new Error(`cannot create mount point ${this.#mountpoint}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      }
    }
    try {
      return await realpath(this.#mountpoint);
    } catch {
      return this.#mountpoint;
    }
  }

  /** What is visible on the mount point: the last of the mounts stacked on it. */
  async #topMount(mountpoint: string): Promise<MountInfoEntry | undefined> {
    let text: string;
    try {
      text = await readFile(this.#mountInfoPath, 'utf8');
    } catch (error) {
      throw new Error(`cannot read the mount table ${this.#mountInfoPath}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
    return parseMountInfo(text)
      .filter((e) => e.mountPoint === mountpoint)
      .pop();
  }

  /** The same device under another name (a /dev/drbd/by-res symlink) counts as ours. */
  async #isOurs(entry: MountInfoEntry): Promise<boolean> {
    const device = this.#resource.device;
    if (entry.source === device) return true;
    if (!device.startsWith('/') || !entry.source.startsWith('/')) return false;
    const [a, b] = await Promise.all([realpath(device).catch(() => device), realpath(entry.source).catch(() => entry.source)]);
    return a === b;
  }

  async #holders(mountpoint: string): Promise<MountHolder[] | undefined> {
    try {
      // fuser exits 1 when it finds no process: not an error here.
      const { stdout, stderr } = await this.#exec(this.#bins.fuser, ['-vm', mountpoint], { timeoutMs: 10_000, okExitCodes: [1] });
      return parseFuserVerbose(stdout, stderr);
    } catch (error) {
      this.#logger.warn({ err: error }, 'could not list the processes holding the mount (is fuser from psmisc installed?)');
      return undefined;
    }
  }

  #describe(what: string, error: unknown): Error {
    if (error instanceof ExecError) {
      if (error.timedOut) return new Error(`${what} timed out after ${this.#resource.timeoutMs} ms (raise the resource's timeout)`, { cause: error });
      if (error.exitCode === undefined) return new Error(`${what} could not be run (${lastLine(error.stderr) || 'no such program?'})`, { cause: error });
      const said = error.stderr.trim().split('\n').filter(Boolean).slice(-3).join(' | ');
      return new Error(`${what} failed (exit ${error.exitCode})${said ? `: ${said}` : ''}`, { cause: error });
    }
    return new Error(`${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
