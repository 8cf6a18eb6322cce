/**
 * Connection settings for Temporal, shared by the agent's workers (NativeConnection) and by
 * clients (Connection): address, namespace, TLS / mTLS files, API key. Files are read once at
 * start; a missing one is a clear error naming the config field. Several frontends (a list, or
 * a name with several addresses) go through a local relay that moves to the next frontend when
 * the one in use is gone (frontends.ts), for the CLI, the worker and the agent alike.
 */
import { readFile } from 'node:fs/promises';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { Connection, Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import type { TemporalSettings } from '../config/types.js';
import type { Logger } from '../log.js';
import { FrontendRelay, parseFrontend } from './frontends.js';
import { CliError, EXIT } from '../cli/errors.js';

export interface ResolvedConnection {
  /** What the SDK connects to: the frontend, or the local relay in front of several (frontends.ts). */
  address: string;
  /** The configured frontends (`temporal.address`), for messages. */
  frontends: string[];
  namespace: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
  /** The relay, when there are several frontends (or a name with several addresses). */
  relay?: FrontendRelay;
}

async function readSetting(file: string, field: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new CliError(`cannot read temporal.${field} '${file}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`, EXIT.config);
  }
}

/** Whether a lone frontend's name has several addresses (then it is relayed like a list). */
async function severalAddresses(frontend: string): Promise<boolean> {
  const { host } = parseFrontend(frontend);
  if (isIP(host)) return false;
  try {
    return new Set((await lookup(host, { all: true })).map((a) => a.address)).size > 1;
  } catch {
    return false; // Unresolvable now: connect as before, and say so when connecting fails.
  }
}

/**
 * Reads the certificate and key files the settings name, and starts the frontend relay when
 * there are several frontends. @throws CliError for an unreadable file.
 */
export async function resolveConnection(settings: TemporalSettings, opts: { logger?: Logger } = {}): Promise<ResolvedConnection> {
  const frontends = settings.frontends.length > 0 ? settings.frontends : [settings.address];
  const out: ResolvedConnection = { address: frontends[0]!, frontends, namespace: settings.namespace };
  if (settings.apiKeyFile) {
    out.apiKey = (await readSetting(settings.apiKeyFile, 'apiKeyFile')).toString('utf8').trim();
    out.tls = true; // API keys are only ever sent over TLS.
  }
  if (settings.tls === true) out.tls = true;
  else if (typeof settings.tls === 'object') {
    const t = settings.tls;
    if ((t.certFile === undefined) !== (t.keyFile === undefined)) {
      throw new CliError('temporal.tls: certFile and keyFile go together (an mTLS client certificate needs its key)', EXIT.config);
    }
    out.tls = {
      serverNameOverride: t.serverName,
      serverRootCACertificate: t.caFile ? await readSetting(t.caFile, 'tls.caFile') : undefined,
      clientCertPair:
        t.certFile && t.keyFile
          ? { crt: await readSetting(t.certFile, 'tls.certFile'), key: await readSetting(t.keyFile, 'tls.keyFile') }
          : undefined,
    };
  }
  if (frontends.length > 1 || (await severalAddresses(frontends[0]!))) {
    const relay = new FrontendRelay(frontends.map(parseFrontend), opts.logger?.child({ component: 'temporal-frontends' }));
    out.address = await relay.start();
    out.relay = relay;
    // The SDK now dials 127.0.0.1: TLS must still check the frontends' own name.
    const serverName = parseFrontend(frontends[0]!).host;
    if (out.tls === true) out.tls = { serverNameOverride: serverName };
    else if (typeof out.tls === 'object') out.tls = { ...out.tls, serverNameOverride: out.tls.serverNameOverride ?? serverName };
  }
  return out;
}

/** Connects a worker connection. @throws CliError (exit 4) when Temporal does not answer. */
export async function connectWorker(conn: ResolvedConnection): Promise<NativeConnection> {
  try {
    return await NativeConnection.connect({ address: conn.address, tls: conn.tls, apiKey: conn.apiKey });
  } catch (err) {
    throw unavailable(conn, err);
  }
}

/** Connects a client. @throws CliError (exit 4) when Temporal does not answer. */
export async function connectClient(conn: ResolvedConnection): Promise<Client> {
  try {
    const connection = await Connection.connect({ address: conn.address, tls: conn.tls, apiKey: conn.apiKey, connectTimeout: '5s' });
    return new Client({ connection, namespace: conn.namespace });
  } catch (err) {
    throw unavailable(conn, err);
  }
}

function unavailable(conn: ResolvedConnection, err: unknown): CliError {
  const why = err instanceof Error ? err.message : String(err);
  return new CliError(
    `cannot reach Temporal at ${conn.frontends.join(', ')} (namespace ${conn.namespace}): ${why}. ` +
      `Start it with 'haoscar server', or fix temporal.address in the config.`,
    EXIT.unavailable,
  );
}
