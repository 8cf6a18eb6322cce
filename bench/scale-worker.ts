/**
 * The workflow worker of `npm run bench:scale` (bench/scale.ts), in a process of its own as on a
 * real node: the factory `haoscar worker` uses (workers/workflow-worker.ts), with the bundle the
 * bench built once. Runs until SIGTERM.
 *
 * Usage (by bench/scale.ts only): tsx bench/scale-worker.ts CONFIG_FILE BUNDLE_FILE, with the
 * cluster secret's text in $SCALE_SECRET.
 */
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { parseConfig } from '../src/config/load.js';
import { deriveMessageKey } from '../src/auth/messages.js';
import { silentLogger } from '../src/log.js';
import { installTemporalRuntime } from '../src/temporal/runtime.js';
import { createWorkflowWorker } from '../workers/workflow-worker.js';

const [configFile, bundleFile] = process.argv.slice(2);
const secret = process.env.SCALE_SECRET;
if (!configFile || !bundleFile || !secret) throw new Error('usage: SCALE_SECRET=... tsx bench/scale-worker.ts CONFIG_FILE BUNDLE_FILE');
const config = parseConfig(readFileSync(configFile, 'utf8'));
installTemporalRuntime(silentLogger);
const connection = await NativeConnection.connect({ address: config.temporal.frontends[0]! });
const clientConnection = await Connection.connect({ address: config.temporal.frontends[0]! });
const worker = await createWorkflowWorker({
  connection,
  config,
  client: new Client({ connection: clientConnection }),
  workflowBundle: { codePath: bundleFile },
  key: deriveMessageKey(Buffer.from(secret)),
});
process.once('SIGTERM', () => worker.shutdown());
process.stdout.write('ready\n');
await worker.run();
await clientConnection.close();
await connection.close();
