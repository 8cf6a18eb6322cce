/**
 * The demo: an embedded Temporal dev server (SQLite, UI on :8233), one agent supervising a
 * small HTTP service; the service is killed with SIGKILL and healed by a healService
 * workflow, whose history the UI shows. Runs until Ctrl-C (or exits after one heal with --once).
 */
import { join } from 'node:path';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';
import { startDevServer, type DevServer } from '../src/temporal/dev-server.js';
import { createLogger } from '../src/log.js';
import { healWorkflowId } from '../workflows/shared.js';
import { Lab, ROOT, httpServiceYaml, probe, waitFor } from '../test/support/lab.js';

const once = process.argv.includes('--once');
const say = (line: string) => process.stdout.write(`demo: ${line}\n`);
const logger = createLogger({ level: 'warn', name: 'demo' });
const dir = join(ROOT, '.haoscar/demo');
const PORT = 18080;

let server: DevServer | undefined;
let lab: Lab | undefined;
async function shutdown(code: number): Promise<never> {
  say('stopping the agent and the Temporal server...');
  await lab?.close();
  await server?.stop();
  process.exit(code);
}
process.once('SIGINT', () => void shutdown(0));
process.once('SIGTERM', () => void shutdown(0));

try {
  const cli = await ensureTemporalCli({ logger, onProgress: say });
  say(`starting Temporal (${cli}) with its history in ${dir}/temporal.db`);
  server = await startDevServer({ cli, dbFile: join(dir, 'temporal.db'), port: 7233, uiPort: 8233, logger });
  say(`Temporal is up at ${server.address}; UI at ${server.uiUrl ?? 'http://localhost:8233'}`);

  lab = await Lab.create(dir);
  // The demo's cluster: one node, one group, one supervised HTTP service.
  const config = await lab.writeOneNodeConfig('haoscar.yaml', {
    cluster: 'demo',
    address: server.address,
    node: 'node1',
    groups: { web: [httpServiceYaml('httpd', PORT, { check: 'interval: 1s, timeout: 500ms, rise: 1, fall: 2', healing: 'maxRestarts: 3, window: 2m' })] },
  });
  say(`starting the agent of node1 (config ${config}, log ${dir}/agent-node1.log)`);
  void lab.startAgent(config, 'node1'); // never rejects (reject: false); close() awaits it
  const pid = await waitFor('the demo service to answer', () => probe(PORT), 90_000);
  say(`the service answers on http://127.0.0.1:${PORT}/ (pid ${pid})`);

  say(`killing it with SIGKILL...`);
  process.kill(pid, 'SIGKILL');
  const killedAt = Date.now();
  const newPid = await waitFor('the service to be healed', async () => {
    const p = await probe(PORT);
    return p !== undefined && p !== pid ? p : undefined;
  });
  say(`healed: it answers again after ${Date.now() - killedAt} ms (new pid ${newPid})`);

  const id = healWorkflowId('demo', 'web', 'httpd');
  say(`the heal's history: ${server.uiUrl ?? 'http://localhost:8233'}/namespaces/default/workflows/${encodeURIComponent(id)}`);
  say(`  or: ${cli} workflow show --workflow-id '${id}' --address ${server.address}`);
  say(`  or: ${cli} workflow list --query 'HaCluster="demo" AND HaGroup="web"' --address ${server.address}`);
  say('to see a failover (two nodes, a VIP, the owner killed): sudo npm run demo:failover');
  if (once) await shutdown(0);
  say(`kill it again yourself (kill -9 <pid from curl http://127.0.0.1:${PORT}/>), or press Ctrl-C to stop the demo`);
  await new Promise(() => undefined);
} catch (err) {
  process.stderr.write(`demo: failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await shutdown(1);
}
