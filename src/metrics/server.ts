/**
 * The metrics endpoint (`agent.metrics.listen`): GET /metrics answers the Prometheus text format
 * (exposition.ts) with what `collect()` returns, followed by the Temporal SDK's own metrics read
 * from the SDK's exporter on the loopback (runtime.ts binds it there), so that one scrape target
 * per process carries both. Nothing is read from the client but the path: the endpoint changes
 * nothing. Off unless configured; bind it to 127.0.0.1 or a management address (docs/metrics.md).
 */
import { createServer, request, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import type { Logger } from '../log.js';

/** The content type of the text format, version 0.0.4. */
export const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** How long a scrape waits for the SDK's exporter before leaving its metrics out. */
const SDK_SCRAPE_TIMEOUT_MS = 2000;

export class MetricsListenError extends Error {
  constructor(listen: string, why: string) {
    super(`cannot serve metrics on ${listen} (agent.metrics.listen): ${why}`);
    this.name = 'MetricsListenError';
  }
}

/** `host:port` split; the schema has validated it (src/config/schema.ts). An IPv6 host is written in brackets. */
export function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i);
  return { host: host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host, port: Number(listen.slice(i + 1)) };
}

export interface MetricsServerOptions {
  listen: string;
  /** HA-OSCAR's own metrics, in the text format. May throw: the scrape then answers 500. */
  collect: () => Promise<string> | string;
  /** The SDK's Prometheus exporter (127.0.0.1:PORT), read and appended to every scrape. */
  sdkAddress?: string;
  logger: Logger;
}

/** Serves the metrics; resolves once listening. @throws MetricsListenError when it cannot bind (address in use, not local). */
export async function serveMetrics(opts: MetricsServerOptions): Promise<Server> {
  const log = opts.logger.child({ component: 'metrics' });
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET\n');
      return;
    }
    if (path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are on /metrics\n');
      return;
    }
    void (async () => {
      try {
        const [own, sdk] = await Promise.all([opts.collect(), opts.sdkAddress ? readSdkMetrics(opts.sdkAddress) : '']);
        res.writeHead(200, { 'content-type': CONTENT_TYPE }).end(req.method === 'HEAD' ? undefined : own + sdk);
      } catch (err) {
        log.warn({ err: String(err) }, 'collecting metrics failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${String(err)}\n`);
      }
    })();
  });
  const { host, port } = splitListen(opts.listen);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the port is in use (another agent or worker on this host? give each its own port)'
        : err.code === 'EADDRNOTAVAIL' ? 'the address is not one of this host\'s'
        : err.code === 'EACCES' ? 'not allowed to bind there'
        : err.code === 'ENOTFOUND' ? 'the host name does not resolve'
        : err.message;
      reject(new MetricsListenError(opts.listen, why));
    });
    server.listen(port, host, () => resolve());
  });
  server.unref();
  log.info({ listen: opts.listen }, 'serving metrics on /metrics');
  return server;
}

/** The SDK exporter's text, or '' (with a comment line saying why) when it does not answer in time. */
function readSdkMetrics(address: string): Promise<string> {
  const { host, port } = splitListen(address);
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/metrics', timeout: SDK_SCRAPE_TIMEOUT_MS }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve(res.statusCode === 200 ? (text.endsWith('\n') || text === '' ? text : `${text}\n`) : `# the Temporal SDK's metrics answered ${res.statusCode}\n`);
      });
      res.on('error', () => resolve("# the Temporal SDK's metrics could not be read\n"));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve(`# the Temporal SDK's metrics could not be read: ${err.message.replace(/\n/g, ' ')}\n`));
    req.end();
  });
}

/**
 * A free TCP port on 127.0.0.1 for the SDK's exporter (its bind address must be given before the
 * runtime starts, and it cannot be asked which port it took). Race: another process could take the
 * port between this check and the SDK's bind; the SDK then logs that it cannot bind and our
 * endpoint says so in a comment line, HA-OSCAR's own metrics are served regardless.
 */
export async function freeLoopbackPort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => resolve());
  });
  const address = probe.address();
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port on 127.0.0.1');
  return address.port;
}
