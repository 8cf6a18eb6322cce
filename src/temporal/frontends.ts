/**
 * Several Temporal frontends behind one local address, for the SDK's connections.
 *
 * Why a relay: `temporal.address` may list several frontends of one Temporal cluster (or name
 * a host with several addresses), and a node must go on when the frontend it talks to is gone.
 * The SDK's worker connection (NativeConnection, in the Rust core) takes exactly one target and
 * keeps redialling it; the client's (grpc-js) would need its own load-balancing settings. So
 * both connect to a relay on 127.0.0.1, which forwards each TCP connection, bytes unchanged
 * (TLS stays end to end), to the frontend in use, and to the next one in the list when that one
 * refuses or does not answer within CONNECT_TIMEOUT_MS. When the frontend in use dies, its
 * connections close, the SDK reconnects (retrying the calls that failed), and the relay sends
 * the new connections to the next frontend. A frontend that vanishes without closing its
 * connections (power loss, a partition) is noticed by a probe every PROBE_INTERVAL_MS: after
 * PROBE_FAILURES failed connection attempts in a row, the relay closes its connections to it.
 *
 * Names are resolved at every connection attempt (every address of a name is tried), so a DNS
 * name with several addresses works like a list.
 */
import { lookup } from 'node:dns/promises';
import { connect, createServer, isIP, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../log.js';

/** How long one attempt to reach a frontend may take before the next is tried. */
export const CONNECT_TIMEOUT_MS = 2_000;
/** How often the frontend in use is probed with a new TCP connection. */
export const PROBE_INTERVAL_MS = 1_000;
/** Failed probes in a row after which the frontend in use is given up. */
export const PROBE_FAILURES = 2;

export interface Frontend {
  host: string;
  port: number;
}

/** `host:port` → its parts. @throws Error on a malformed entry (the config schema rejects those first). */
export function parseFrontend(address: string): Frontend {
  const i = address.lastIndexOf(':');
  const port = Number(address.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not host:port: '${address}'`);
  return { host: address.slice(0, i), port };
}

/**
 * The order in which to try frontends: the one that worked last first, then the others in the
 * configured order after it (wrapping), so that every process settles on the same frontend
 * and walks the list the same way. Pure.
 */
export function tryOrder<T>(list: readonly T[], preferred: number): T[] {
  const start = preferred >= 0 && preferred < list.length ? preferred : 0;
  return [...list.slice(start), ...list.slice(0, start)];
}

async function addressesOf(f: Frontend): Promise<string[]> {
  if (isIP(f.host)) return [f.host];
  const all = await lookup(f.host, { all: true });
  return [...new Set(all.map((a) => a.address))];
}

function dial(host: string, port: number, timeoutMs: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
  });
}

interface Target {
  frontend: Frontend;
  /** One resolved address of it. */
  ip: string;
  label: string;
}

export class FrontendRelay {
  private server: Server | undefined;
  private preferred = 0;
  private current: Target | undefined;
  private readonly pairs = new Set<{ target: Target; client: Socket; upstream: Socket }>();
  private probeTimer: NodeJS.Timeout | undefined;
  private probing = false;
  private probeFailures = 0;
  /** `127.0.0.1:PORT` once started. */
  address = '';

  constructor(
    readonly frontends: readonly Frontend[],
    private readonly logger?: Logger,
    private readonly timing = { connectTimeoutMs: CONNECT_TIMEOUT_MS, probeIntervalMs: PROBE_INTERVAL_MS, probeFailures: PROBE_FAILURES },
  ) {
    if (frontends.length === 0) throw new Error('FrontendRelay needs at least one frontend');
  }

  /** Listens on 127.0.0.1 (a free port). Neither the relay nor its connections keep the process alive. */
  async start(): Promise<string> {
    const server = createServer((client) => void this.accept(client));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    server.unref();
    this.address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    this.probeTimer = setInterval(() => void this.probe(), this.timing.probeIntervalMs);
    this.probeTimer.unref();
    return this.address;
  }

  /** The frontend connections currently go to (`host:port (ip)`), if any. */
  get inUse(): string | undefined {
    return this.current?.label;
  }

  /** Closes the relay and every relayed connection. */
  close(): void {
    if (this.probeTimer) clearInterval(this.probeTimer);
    this.server?.close();
    for (const p of this.pairs) {
      p.client.destroy();
      p.upstream.destroy();
    }
    this.pairs.clear();
  }

  /** The first frontend (in try order) that accepts a TCP connection, with that connection. */
  private async reach(): Promise<{ target: Target; socket: Socket } | { errors: string[] }> {
    const errors: string[] = [];
    const order = tryOrder(this.frontends.map((f, i) => ({ f, i })), this.preferred);
    for (const { f, i } of order) {
      let ips: string[];
      try {
        ips = await addressesOf(f);
      } catch (err) {
        errors.push(`${f.host}:${f.port}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        continue;
      }
      // The address in use first, so that a name's connections stay together.
      if (this.current?.frontend === f) ips = [this.current.ip, ...ips.filter((x) => x !== this.current!.ip)];
      for (const ip of ips) {
        try {
          const socket = await dial(ip, f.port, this.timing.connectTimeoutMs);
          this.preferred = i;
          const label = isIP(f.host) ? `${f.host}:${f.port}` : `${f.host}:${f.port} (${ip})`;
          return { target: { frontend: f, ip, label }, socket };
        } catch (err) {
          errors.push(`${f.host}:${f.port}${isIP(f.host) ? '' : ` (${ip})`}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
    }
    return { errors };
  }

  private async accept(client: Socket): Promise<void> {
    client.unref();
    client.pause();
    client.on('error', () => client.destroy());
    const reached = await this.reach();
    if ('errors' in reached) {
      this.logger?.warn({ frontends: this.frontends.map((f) => `${f.host}:${f.port}`), errors: reached.errors }, 'no Temporal frontend answers');
      client.destroy();
      return;
    }
    const { target, socket: upstream } = reached;
    if (client.destroyed) {
      upstream.destroy();
      return;
    }
    upstream.unref();
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    if (this.current?.label !== target.label) {
      this.logger?.[this.current ? 'warn' : 'info']({ frontend: target.label, previous: this.current?.label }, this.current ? 'Temporal frontend changed' : 'Temporal frontend in use');
      this.current = target;
      this.probeFailures = 0;
    }
    const pair = { target, client, upstream };
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    upstream.on('error', end);
    client.on('error', end);
    upstream.on('close', end);
    client.on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
    client.resume();
  }

  /**
   * A new TCP connection to the frontend in use. Its process killed, the frontend's connections
   * close by themselves; its machine gone, they would hang until gRPC's keep-alive: after
   * `probeFailures` failed probes the relay closes them, so the SDK reconnects elsewhere.
   */
  private async probe(): Promise<void> {
    const target = this.current;
    if (!target || this.probing || ![...this.pairs].some((p) => p.target === target)) return;
    this.probing = true;
    try {
      const s = await dial(target.ip, target.frontend.port, this.timing.connectTimeoutMs);
      s.destroy();
      this.probeFailures = 0;
    } catch (err) {
      this.probeFailures++;
      if (this.probeFailures >= this.timing.probeFailures) {
        this.logger?.warn({ frontend: target.label, err: (err as NodeJS.ErrnoException).code ?? (err as Error).message }, 'Temporal frontend in use stopped answering: closing its connections');
        this.probeFailures = 0;
        // Try the next one first from now on.
        const i = this.frontends.indexOf(target.frontend);
        this.preferred = (i + 1) % this.frontends.length;
        for (const p of [...this.pairs]) {
          if (p.target !== target) continue;
          p.client.destroy();
          p.upstream.destroy();
        }
      }
    } finally {
      this.probing = false;
    }
  }
}
