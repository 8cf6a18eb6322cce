/**
 * The network lab's system commands: `ip`, `nft` and signals, as argument arrays (never a
 * shell string), each logged before it runs; synchronous twins for process-exit handlers.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readlinkSync, statSync } from 'node:fs';
import { execa } from 'execa';
import type { Logger } from '../../src/log.js';
import { findOnPath } from '../../src/temporal/cli-binary.js';

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  /** Throw when the command fails (default true). */
  reject?: boolean;
  /** Written to its stdin (e.g. an nftables script for `nft -f -`). */
  input?: string;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export class LabCommandError extends Error {
  constructor(readonly argv: readonly string[], readonly result: CommandResult) {
    super(`\`${argv.join(' ')}\` failed (exit code ${result.exitCode}): ${result.stderr.trim() || result.stdout.trim() || 'no output'}`);
    this.name = 'LabCommandError';
  }
}

/**
 * Runs `argv` and returns its exit code and output.
 * @throws {LabCommandError} when it fails (exits non-zero, cannot run, times out) and `reject` is not false.
 */
export async function command(logger: Logger, argv: readonly string[], opts: CommandOptions = {}): Promise<CommandResult> {
  logger.debug({ command: argv }, 'lab command');
  const [file, ...args] = argv;
  const r = await execa(file!, args, {
    reject: false,
    ...(opts.input === undefined ? { stdin: 'ignore' as const } : { input: opts.input }),
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
    ...(opts.env ? { env: opts.env } : {}),
  });
  const result: CommandResult = {
    exitCode: r.exitCode ?? -1,
    stdout: typeof r.stdout === 'string' ? r.stdout : '',
    stderr: typeof r.stderr === 'string' ? r.stderr : (r.shortMessage ?? ''),
  };
  if (r.exitCode === undefined && !result.stderr) result.stderr = r.shortMessage ?? 'could not run';
  if (opts.reject !== false && result.exitCode !== 0) throw new LabCommandError(argv, result);
  return result;
}

/** Synchronous, never throws: for exit handlers. @returns stdout, or undefined when it failed. */
export function commandSync(argv: readonly string[]): string | undefined {
  const [file, ...args] = argv;
  try {
    return execFileSync(file!, args, { stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8', timeout: 5_000 });
  } catch {
    return undefined;
  }
}

/**
 * The processes in each of `namespaces`, by namespace, read from /proc (what `ip netns pids`
 * does, without one process per namespace): a process is in a namespace when its
 * /proc/PID/ns/net is the inode bound at /run/netns/NAME. Zombies have no namespace and are
 * not listed; nor are the processes of a namespace that does not exist.
 */
export function pidsByNamespace(namespaces: readonly string[]): Map<string, number[]> {
  const byInode = new Map<number, string>();
  const found = new Map<string, number[]>();
  for (const ns of namespaces) {
    found.set(ns, []);
    try {
      byInode.set(statSync(`/run/netns/${ns}`).ino, ns);
    } catch {
      // No such namespace (any more).
    }
  }
  if (byInode.size === 0) return found;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /^net:\[(\d+)\]$/.exec(readlinkSync(`/proc/${name}/ns/net`));
      const ns = m ? byInode.get(Number(m[1])) : undefined;
      if (ns) found.get(ns)!.push(Number(name));
    } catch {
      // Exited meanwhile, or a zombie.
    }
  }
  return found;
}

/** Every process in network namespace `ns`. */
export function namespacePids(ns: string): number[] {
  return pidsByNamespace([ns]).get(ns)!;
}

/** Sends `signal` to each pid; a process that is already gone is not an error. */
export function signalPids(pids: Iterable<number>, signal: NodeJS.Signals): number[] {
  const sent: number[] = [];
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
      sent.push(pid);
    } catch {
      // ESRCH: it exited meanwhile.
    }
  }
  return sent;
}

/** Names of the network namespaces (`ip netns list`). */
export async function listNamespaces(logger: Logger): Promise<string[]> {
  const r = await command(logger, ['ip', 'netns', 'list'], { reject: false });
  return r.stdout.split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
}

/** Names of the root namespace's links (`ip -o link show`), without their `@peer` part. */
export async function listLinks(logger: Logger): Promise<string[]> {
  const r = await command(logger, ['ip', '-o', 'link', 'show'], { reject: false });
  return r.stdout
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
}

/** `family name` of every nftables table of the root namespace. */
export async function listNftTables(logger: Logger): Promise<Array<{ family: string; name: string }>> {
  const r = await command(logger, ['nft', 'list', 'tables'], { reject: false });
  return r.stdout
    .split('\n')
    .map((l) => /^table\s+(\S+)\s+(\S+)/.exec(l.trim()))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ family: m[1]!, name: m[2]! }));
}

/** Parses `ip -o -4 addr show` (or `-6`: IPv6 as `ip` prints it): one `{ dev, ip, prefix }` per address. */
export function parseAddresses(out: string): Array<{ dev: string; ip: string; prefix: number }> {
  const found: Array<{ dev: string; ip: string; prefix: number }> = [];
  for (const line of out.split('\n')) {
    const m = /^\d+:\s+([^\s@]+)(?:@\S+)?\s+inet6?\s+([\d.]+|[\da-f:]+)\/(\d+)/.exec(line);
    if (m) found.push({ dev: m[1]!, ip: m[2]!, prefix: Number(m[3]) });
  }
  return found;
}

/** Commands the lab needs, and the Debian package of each. */
export const LAB_TOOLS: ReadonlyArray<{ tool: string; pkg: string }> = [
  { tool: 'ip', pkg: 'iproute2' },
  { tool: 'nft', pkg: 'nftables' },
  { tool: 'arping', pkg: 'iputils-arping' },
  { tool: 'ping', pkg: 'iputils-ping' },
];

export class LabPrerequisiteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LabPrerequisiteError';
  }
}

const INSTALL = `apt-get install ${LAB_TOOLS.map((t) => t.pkg).join(' ')}`;

/**
 * @throws {LabPrerequisiteError} naming what to install when a tool is missing, or that the
 *   lab must run as root when it does not.
 */
export function checkPrerequisites(env: NodeJS.ProcessEnv = process.env): void {
  // root's PATH has the sbin directories; a sudo'd PATH sometimes does not.
  const path = `${env.PATH ?? ''}:/usr/sbin:/sbin:/usr/bin:/bin`;
  const missing = LAB_TOOLS.filter((t) => !findOnPath(t.tool, { PATH: path }));
  if (missing.length > 0) {
    throw new LabPrerequisiteError(
      `the network lab needs ${missing.map((t) => `\`${t.tool}\` (Debian package ${t.pkg})`).join(', ')}: ` +
        `install them with \`${INSTALL}\` (Habets' \`arping\` package also works where iputils-arping is missing)`,
    );
  }
  if (process.getuid?.() !== 0) {
    throw new LabPrerequisiteError(
      'the network lab must run as root: it creates network namespaces, veth pairs, a bridge and nftables tables ' +
        '(run the tests with sudo, as .ci/run does)',
    );
  }
}

/** The error for a namespace that cannot be created although the tools are there. */
export function namespaceError(cause: unknown): LabPrerequisiteError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new LabPrerequisiteError(
    `the network lab cannot create network namespaces (${why}); it needs root with CAP_SYS_ADMIN and CAP_NET_ADMIN ` +
      `(in a container: --privileged or --cap-add SYS_ADMIN,NET_ADMIN) and ${INSTALL}`,
  );
}
