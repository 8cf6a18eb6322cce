/**
 * Connection settings for Temporal, shared by the agent's workers (NativeConnection) and by
 * clients (Connection): address, namespace, TLS / mTLS files, API key. Files are read once at
 * start; a missing one is a clear error naming the config field.
 */
import { readFile } from 'node:fs/promises';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow/index.js';
import { Connection, Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import type { TemporalSettings } from '../config/types.js';
import { CliError, EXIT } from '../cli/errors.js';

export interface ResolvedConnection {
  address: string;
  namespace: string;
  tls?: TLSConfig | boolean;
  apiKey?: string;
}

async function readSetting(file: string, field: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    throw new CliError(`cannot read temporal.${field} '${file}': ${(err as NodeJS.ErrnoException).code ?? String(err)}`, EXIT.config);
  }
}

/** Reads the certificate and key files the settings name. @throws CliError for an unreadable file. */
export async function resolveConnection(settings: TemporalSettings): Promise<ResolvedConnection> {
  const out: ResolvedConnection = { address: settings.address, namespace: settings.namespace };
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
    `cannot reach Temporal at ${conn.address} (namespace ${conn.namespace}): ${why}. ` +
      `Start it with 'haoscar server', or fix temporal.address in the config.`,
    EXIT.unavailable,
  );
}
