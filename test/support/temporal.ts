/**
 * The real Temporal dev server the tests run against. `npm test` (test/run.ts) starts one
 * for the whole run and passes its address in HAOSCAR_TEST_TEMPORAL; a test file run on its
 * own starts a private one.
 *
 * Nothing here registers test hooks (a hook registered inside another hook runs when that
 * one ends): each file calls `after(closeTemporal)` at its top level.
 */
import { Connection, Client } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { bundleWorkflowCode, DefaultLogger, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { ensureTemporalCli } from '../../src/temporal/cli-binary.js';
import { startDevServer } from '../../src/temporal/dev-server.js';
import { silentLogger } from '../../src/log.js';
import { workflowsPath } from '../../workers/workflow-bundle.js';
import { installTemporalRuntime } from '../../src/temporal/runtime.js';

let address: Promise<string> | undefined;
const cleanups: (() => Promise<unknown>)[] = [];

/** Closes the connections (and the private server) this file opened, newest first. */
export async function closeTemporal(): Promise<void> {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
}

export function temporalAddress(): Promise<string> {
  address ??= (async () => {
    const shared = process.env.HAOSCAR_TEST_TEMPORAL;
    if (shared) return shared;
    const cli = await ensureTemporalCli({ logger: silentLogger, onProgress: (m) => process.stderr.write(`${m}\n`) });
    const server = await startDevServer({ cli, uiPort: false, logger: silentLogger });
    cleanups.push(() => server.stop());
    return server.address;
  })();
  return address;
}

export async function testClient(): Promise<Client> {
  const connection = await Connection.connect({ address: await temporalAddress() });
  cleanups.push(() => connection.close());
  return new Client({ connection });
}

export async function testWorkerConnection(): Promise<NativeConnection> {
  installTemporalRuntime(silentLogger);
  const connection = await NativeConnection.connect({ address: await temporalAddress() });
  cleanups.push(() => connection.close());
  return connection;
}

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;
/** The workflow bundle, built once per test process (webpack takes a few seconds). */
export function testWorkflowBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: new DefaultLogger('WARN') });
  return bundle;
}

/** A name no other test (or earlier run against the same server) uses. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}
