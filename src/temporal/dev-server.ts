/**
 * The embedded Temporal server: `temporal server start-dev` (SQLite in a file, or in memory),
 * with HA-OSCAR's search attributes registered at start. Used by `haoscar server` and by the
 * workflow tests; production runs a real Temporal cluster instead.
 */
import { mkdir } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo, type Server } from 'node:net';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common';
import { execa } from 'execa';
import type { Logger } from '../log.js';
import { SEARCH_ATTRIBUTES } from './search-attributes.js';

export interface DevServerOptions {
  /** The Temporal CLI binary (see `ensureTemporalCli`). */
  cli: string;
  /** SQLite file for persistent state; omitted = in memory, lost when the server stops. */
  dbFile?: string;
  /** Address the frontend (and UI) bind to; default 127.0.0.1. */
  ip?: string;
  /** Frontend gRPC port; 0 or omitted = a free port. */
  port?: number;
  /**
   * Web UI port; `false` = no UI (`--headless`); 0 = a free port; omitted = frontend port
   * + 1000 when the frontend port was given (the CLI's convention), else a free port.
   */
  uiPort?: number | false;
  /** A namespace to create besides `default` (which the dev server always creates). */
  namespace?: string;
  /** The server's own log level (debug, info, warn, error, never); default warn. */
  logLevel?: string;
  /** How long to wait for the frontend to answer; default 60 s. */
  readyTimeoutMs?: number;
  /** Abort the wait for readiness: the server is stopped and startDevServer throws. */
  signal?: AbortSignal;
  /** Each line the server prints (stdout and stderr); by default they are only kept for errors. */
  onOutput?: (line: string) => void;
  logger: Logger;
}

export interface DevServer {
  /** `ip:port` of the frontend, for `Connection.connect({ address })`. */
  address: string;
  uiUrl?: string;
  namespace: string;
  pid: number;
  /** Settles when the server process ends, whoever ended it. */
  exited: Promise<{ exitCode?: number; signal?: string }>;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s; safe to call twice. */
  stop(): Promise<void>;
}

export class DevServerError extends Error {
  constructor(message: string, readonly outputTail: readonly string[] = []) {
    super(outputTail.length > 0 ? `${message}; last server output:\n${outputTail.join('\n')}` : message);
    this.name = 'DevServerError';
  }
}

/**
 * Dynamic config on top of the CLI's own defaults. One partition per task queue: HA-OSCAR
 * pins activities to per-node queues polled by a single worker, and with the default four
 * partitions a task can sit in a partition nobody polls until it is forwarded, which adds
 * latency to every heal and failover step (and flakiness to tests that time them).
 */
export const DEV_SERVER_DYNAMIC_CONFIG: Readonly<Record<string, unknown>> = {
  'matching.numTaskqueueReadPartitions': 1,
  'matching.numTaskqueueWritePartitions': 1,
};

const STOP_GRACE_MS = 10_000;
const OUTPUT_TAIL_LINES = 30;

function hostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** Reserve `count` distinct free ports on `ip` (held open together so they differ). */
export async function findFreePorts(ip: string, count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((res, rej) => {
        server.once('error', rej);
        server.listen(0, ip, () => res());
      });
    }
    return servers.map((s) => (s.address() as AddressInfo).port);
  } finally {
    // Race: another process may take a port between this close and the server binding it;
    // the CLI then refuses to start ("can't set frontend port") and startDevServer fails.
    await Promise.all(servers.map((s) => new Promise<void>((res) => s.close(() => res()))));
  }
}

/** The argument list for `temporal`, computed before anything runs (and unit-testable). */
export function devServerArgs(o: {
  dbFile?: string;
  ip: string;
  port: number;
  uiPort: number | false;
  namespace: string;
  logLevel: string;
}): string[] {
  const args = ['server', 'start-dev'];
  if (o.dbFile) args.push('--db-filename', o.dbFile);
  args.push('--ip', o.ip, '--port', String(o.port));
  if (o.uiPort === false) args.push('--headless');
  else args.push('--ui-port', String(o.uiPort));
  if (o.namespace !== 'default') args.push('--namespace', o.namespace);
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=${type}`);
  for (const [key, value] of Object.entries(DEV_SERVER_DYNAMIC_CONFIG)) {
    args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  }
  args.push('--log-level', o.logLevel, '--log-format', 'json');
  return args;
}

function tcpAccepts(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((res) => {
    const socket = createConnection({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      res(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/**
 * How long Temporal keeps the history of a closed workflow: a failover's history is its
 * postmortem, and the postmortems of the last weeks must still be there (the dev server's own
 * default is one day). Set on the namespace when the embedded server starts.
 */
export const HISTORY_RETENTION_DAYS = 30;

/** Sets the namespace's retention to at least `days` (it is never shortened). */
async function keepHistories(address: string, namespace: string, days: number): Promise<void> {
  const seconds = days * 86_400;
  const connection = Connection.lazy({ address, connectTimeout: 2_000 });
  try {
    await connection.ensureConnected();
    const { config } = await connection.workflowService.describeNamespace({ namespace });
    if (Number(config?.workflowExecutionRetentionTtl?.seconds ?? 0) >= seconds) return;
    await connection.workflowService.updateNamespace({ namespace, config: { workflowExecutionRetentionTtl: msToTs(seconds * 1000) } });
  } finally {
    await connection.close().catch(() => {});
  }
}

/**
 * One readiness probe: the frontend answers, the namespace exists and all of HA-OSCAR's
 * search attributes are registered on it. Returns what is missing, or undefined when ready.
 */
async function probe(address: string, namespace: string): Promise<string | undefined> {
  // lazy + ensureConnected rather than connect(): a failed connect() does not close its
  // gRPC channel, and the leaked channel keeps the process alive (seen with a port held by
  // something that is not Temporal).
  const connection = Connection.lazy({ address, connectTimeout: 2_000 });
  try {
    await connection.ensureConnected();
    await connection.workflowService.getSystemInfo({});
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const missing = Object.keys(SEARCH_ATTRIBUTES).filter((name) => !(name in (customAttributes ?? {})));
    return missing.length > 0 ? `search attributes not registered yet: ${missing.join(', ')}` : undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    await connection.close().catch(() => {});
  }
}

/**
 * Start `temporal server start-dev` and wait until its frontend serves the namespace with
 * HA-OSCAR's search attributes.
 *
 * @throws {DevServerError} when the process exits before it is ready (the message carries
 *   the tail of its output, e.g. "can't set frontend port"), when it is not ready within
 *   `readyTimeoutMs`, or when `signal` aborts first (in both cases the process is stopped).
 */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const { logger } = opts;
  const ip = opts.ip ?? '127.0.0.1';
  const namespace = opts.namespace ?? 'default';
  const logLevel = opts.logLevel ?? 'warn';
  const readyTimeoutMs = opts.readyTimeoutMs ?? 60_000;

  const wantFree = (opts.port ? 0 : 1) + (opts.uiPort === 0 || (opts.uiPort === undefined && !opts.port) ? 1 : 0);
  const free = wantFree > 0 ? await findFreePorts(ip, wantFree) : [];
  const port = opts.port || free.shift()!;
  const uiPort: number | false = opts.uiPort === false ? false : opts.uiPort || (opts.port ? opts.port + 1000 : free.shift()!);

  let dbFile: string | undefined;
  if (opts.dbFile) {
    dbFile = resolve(opts.dbFile);
    await mkdir(dirname(dbFile), { recursive: true });
  }

  const args = devServerArgs({ dbFile, ip, port, uiPort, namespace, logLevel });
  logger.info({ command: [opts.cli, ...args] }, 'starting Temporal dev server');
  const started = Date.now();
  const child = execa(opts.cli, args, {
    stdin: 'ignore',
    buffer: false,
    reject: false,
    // execa's default: kill the server if this process exits without stopping it.
    cleanup: true,
  });

  const tail: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream, crlfDelay: Infinity }).on('line', (line) => {
      tail.push(line);
      if (tail.length > OUTPUT_TAIL_LINES) tail.shift();
      opts.onOutput?.(line);
    });
  }

  let hasExited = false;
  const exited = child.then((r) => {
    hasExited = true;
    return { exitCode: r.exitCode, signal: r.signal };
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (hasExited) return;
      logger.info({ pid: child.pid }, 'stopping Temporal dev server');
      child.kill('SIGTERM');
      // Cancel the grace timer once it exits: a pending 10 s timer would hold the caller's
      // process open after everything else is done.
      const grace = new AbortController();
      const graceful = await Promise.race([
        exited.then(() => true),
        sleep(STOP_GRACE_MS, false, { signal: grace.signal }).catch(() => false),
      ]);
      grace.abort();
      if (!graceful) {
        logger.warn({ pid: child.pid, graceMs: STOP_GRACE_MS }, 'Temporal dev server ignored SIGTERM; killing it');
        child.kill('SIGKILL');
        await exited;
      }
    })();
    return stopping;
  };

  if (child.pid === undefined) {
    const r = await child;
    throw new DevServerError(`could not run ${opts.cli}: ${r.shortMessage ?? 'unknown error'}`);
  }

  // Probe through loopback when bound to every address.
  const probeHost = ip === '0.0.0.0' ? '127.0.0.1' : ip === '::' ? '::1' : ip;
  const address = hostPort(ip, port);
  const probeAddress = hostPort(probeHost, port);
  const deadline = started + readyTimeoutMs;
  let lastProblem = 'frontend port not open yet';
  for (;;) {
    if (hasExited) {
      const r = await exited;
      throw new DevServerError(
        `the Temporal dev server exited before it was ready (${r.signal ? `signal ${r.signal}` : `exit code ${r.exitCode}`})`,
        tail,
      );
    }
    if (opts.signal?.aborted) {
      await stop();
      throw new DevServerError('the Temporal dev server start was interrupted');
    }
    if (Date.now() > deadline) {
      await stop();
      throw new DevServerError(`the Temporal dev server was not ready within ${readyTimeoutMs} ms (${lastProblem})`, tail);
    }
    if (await tcpAccepts(probeHost, port, 1_000)) {
      // Race the exit: a probe against a port held by something else waits its full timeout.
      const problem = await Promise.race([probe(probeAddress, namespace), exited.then(() => 'exited')]);
      if (hasExited) continue;
      if (problem === undefined) break;
      lastProblem = problem;
    }
    await sleep(200);
  }

  try {
    await keepHistories(probeAddress, namespace, HISTORY_RETENTION_DAYS);
  } catch (err) {
    await stop();
    throw new DevServerError(`could not set how long the Temporal dev server keeps workflow histories (namespace ${namespace}): ${err instanceof Error ? err.message : String(err)}`, tail);
  }

  const uiUrl = uiPort === false ? undefined : `http://${hostPort(probeHost, uiPort)}`;
  logger.info({ address, uiUrl, pid: child.pid, readyMs: Date.now() - started }, 'Temporal dev server ready');
  return { address, uiUrl, namespace, pid: child.pid, exited, stop };
}
