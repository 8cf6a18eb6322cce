/**
 * What a node knows by itself — its heartbeats, the leases it holds, its guard, its resources'
 * checks, its file sets — served by its agent on a Unix socket in its state directory, so that
 * `haoscar status` on the node shows it even when Temporal cannot be reached (issue 11 item 2).
 *
 * The contract is one message: a client connects, the agent writes one JSON snapshot and a
 * newline, and closes. Nothing is read from the client: the socket cannot be used to change
 * anything. It is created mode 0600 in the state directory (0700, root's): only root reads it.
 */
import { createConnection, createServer, type Server } from 'node:net';
import { chmod, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { describeIssues } from '../../workflows/inputs.js';
import { reloadStatusSchema } from './reload.js';

/** The socket of `node`'s agent in the state directory. */
export function localStatusSocket(stateDir: string, node: string): string {
  return join(stateDir, `agent-${node}.sock`);
}

const ms = z.number().finite();
const count = z.number().int().nonnegative();

const peerSchema = z.object({
  node: z.string(),
  state: z.string(),
  since: ms,
  lastHeardAgoMs: ms.optional(),
  incarnation: z.number().optional(),
  links: z.array(z.object({ link: z.string(), alive: z.boolean(), lastHeardAgoMs: ms.optional() })),
  /** The heartbeat protocol version written to the peer, and why not a higher one. */
  protocol: z.number().int().optional(),
  protocolProblem: z.string().optional(),
  /** The peer's configuration digest, and whether it is this node's (src/config/digest.ts). */
  configDigest: z.string().optional(),
  configMatches: z.boolean().optional(),
  /** The secret its heartbeats are signed with, and those it accepts (docs/reload.md#rotating-the-cluster-secret). */
  signsWith: z.string().optional(),
  acceptsKeys: z.array(z.string()).optional(),
});

const resourceSchema = z.object({
  resource: z.string(),
  status: z.string(),
  /** Consecutive failed checks (reset by a pass). */
  failures: count,
  passes: count,
  detail: z.string(),
  at: ms.optional(),
});

const heldSchema = z.object({
  group: z.string(),
  epoch: z.number().int(),
  state: z.string(),
  failure: z.string().optional(),
  lease: z
    .object({
      /** Milliseconds until the lease runs out, measured when the snapshot was taken (negative: expired). */
      expiresInMs: ms,
      /** Serving without a confirmed lease: Temporal unreachable, every peer heard (docs/failover.md#the-lease). */
      failSafe: z.boolean(),
    })
    .optional(),
});

const guardSchema = z.object({
  ok: z.boolean(),
  why: z.string().optional(),
  pid: z.number().int().optional(),
  watchdog: z.string().optional(),
  groups: z.array(z.object({ group: z.string(), epoch: z.number().int(), deadlineInMs: ms, status: z.string(), detail: z.string().optional() })),
});

const fileSetSchema = z.object({
  group: z.string(),
  set: z.string(),
  role: z.string(),
  source: z.string().optional(),
  generation: z.number(),
  lastSuccessAt: ms.optional(),
  lagMs: ms.optional(),
  errors: count,
  lastError: z.string().optional(),
  running: z.boolean(),
});

export const localStatusSchema = z.object({
  kind: z.literal('haoscar-local-status'),
  node: z.string(),
  cluster: z.string(),
  pid: z.number().int(),
  release: z.string(),
  /** When the snapshot was taken, ms since the epoch (this node's clock). */
  at: ms,
  /** What the agent does: serving, or what it waits for. */
  phase: z.string(),
  temporal: z.object({ connected: z.boolean() }),
  /**
   * The running configuration: when it was loaded (start, or the last reload that applied
   * something) and its digest (src/config/digest.ts; absent in a one-node cluster). Absent from
   * agents before reloads existed.
   */
  config: z.object({ loadedAt: ms, digest: z.string().optional() }).optional(),
  /**
   * Reloads (docs/reload.md): absent from an agent that does not handle SIGHUP (an older
   * release, which SIGHUP would kill), so `haoscar reload` sends none to it.
   */
  reload: reloadStatusSchema.optional(),
  /** Absent in a one-node cluster (no heartbeats). */
  heartbeat: z
    .object({
      sent: count,
      received: count,
      accepted: count,
      rejected: z.record(z.string(), count),
      /** This node's configuration digest, as its heartbeats carry it. */
      configDigest: z.string().optional(),
      /** The names of the secrets this node accepts, the one it signs with first (absent from older agents). */
      keys: z.array(z.string()).optional(),
      peers: z.array(peerSchema),
    })
    .optional(),
  held: z.array(heldSchema),
  resources: z.array(resourceSchema.extend({ group: z.string() })),
  /** Absent where no guard runs (a one-node cluster). */
  guard: guardSchema.optional(),
  fileSets: z.array(fileSetSchema),
});

export type LocalStatus = z.infer<typeof localStatusSchema>;

/**
 * Why there is no local status: `absent` (no agent's socket: not a node, or no agent started),
 * `ambiguous` (several agents' sockets and no node named), `unreachable` (a socket nobody answers
 * on: an agent that died or hangs), `invalid` (an answer this release cannot read).
 */
export type LocalStatusProblem = 'absent' | 'ambiguous' | 'unreachable' | 'invalid';

export class LocalStatusError extends Error {
  constructor(
    readonly problem: LocalStatusProblem,
    message: string,
  ) {
    super(message);
    this.name = 'LocalStatusError';
  }
}

/**
 * Serves `snapshot()` on `socket`. A socket file left by an agent that died is replaced: the
 * agent's lock on its state (the guard's, the epoch store's) already keeps a second agent out.
 */
export async function serveLocalStatus(socket: string, snapshot: () => LocalStatus): Promise<Server> {
  await rm(socket, { force: true });
  const server = createServer((conn) => {
    conn.on('error', () => conn.destroy());
    let text: string;
    try {
      text = JSON.stringify(snapshot());
    } catch (err) {
      text = JSON.stringify({ kind: 'haoscar-local-status-error', error: String(err) });
    }
    conn.end(`${text}\n`);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(socket, 0o600);
  // Never keeps the agent alive by itself.
  server.unref();
  return server;
}

/**
 * The snapshot of the agent of `node` (or of the one agent whose socket is in `stateDir`), within
 * `timeoutMs`. Throws LocalStatusError with what to do when there is none or it does not answer.
 */
export async function readLocalStatus(stateDir: string, node: string | undefined, timeoutMs: number): Promise<LocalStatus> {
  const socket = node ? localStatusSocket(stateDir, node) : await theOnlySocket(stateDir);
  const text = await new Promise<string>((resolve, reject) => {
    const conn = createConnection(socket);
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new LocalStatusError('unreachable', `the agent did not answer on ${socket} within ${timeoutMs} ms (is it hung? its watchdog restarts it under systemd)`));
    }, timeoutMs);
    conn.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > 4 * 1024 * 1024) {
        conn.destroy();
        clearTimeout(timer);
        reject(new LocalStatusError('invalid', `the answer on ${socket} is larger than 4 MiB: not an agent's status`));
        return;
      }
      chunks.push(chunk);
    });
    conn.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
    conn.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (err.code === 'ENOENT') reject(new LocalStatusError('absent', `no agent runs here for node '${node}' (no socket ${socket})`));
      else if (err.code === 'ECONNREFUSED') reject(new LocalStatusError('unreachable', `no agent listens on ${socket}: the agent of this node is not running (the socket is left by one that died)`));
      else if (err.code === 'EACCES') reject(new LocalStatusError('unreachable', `${socket} is root's: run status as root to see this node's own view`));
      else reject(new LocalStatusError('unreachable', `cannot read ${socket}: ${err.message}`));
    });
  });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new LocalStatusError('invalid', `the agent's answer on ${socket} is not JSON`);
  }
  const parsed = localStatusSchema.safeParse(json);
  if (!parsed.success) throw new LocalStatusError('invalid', `the agent's answer on ${socket} is not a status this release reads: ${describeIssues(parsed.error, '(status)').join('; ')}`);
  return parsed.data;
}

async function theOnlySocket(stateDir: string): Promise<string> {
  const sockets = (await readdir(stateDir).catch(() => [] as string[])).filter((f) => /^agent-.+\.sock$/.test(f));
  if (sockets.length === 0) throw new LocalStatusError('absent', `no agent runs on this node (no agent-<node>.sock in ${stateDir})`);
  if (sockets.length > 1) throw new LocalStatusError('ambiguous', `several agents' sockets in ${stateDir} (${sockets.join(', ')}): say which node with --node`);
  return join(stateDir, sockets[0]!);
}
