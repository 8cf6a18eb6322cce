/**
 * A control-plane outage must not cause a service outage. With its own dev server (SQLite,
 * so that it can be stopped and started again), a real agent keeps its service running while
 * Temporal is down, heals a crash locally under the same policy, and goes back to healing
 * through workflows when Temporal returns.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Connection, Client } from '@temporalio/client';
import { Lab, freePort, groupRunning, httpServiceYaml, probe, waitFor } from '../support/lab.js';
import { ensureTemporalCli } from '../../src/temporal/cli-binary.js';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import { silentLogger } from '../../src/log.js';
import { uniqueName } from '../support/temporal.js';
import { healStatusQuery, healWorkflowId } from '../../workflows/shared.js';

let lab: Lab | undefined;
let server: DevServer | undefined;
let connection: Connection | undefined;
after(async () => {
  await connection?.close();
  await lab?.close();
  await server?.stop();
});

test('Temporal down: the service keeps running, a crash is healed locally; back up: heals go through workflows again', async () => {
  lab = await Lab.create();
  try {
    await outage(lab);
  } catch (err) {
    // Whatever failed, the agent's log says why (it is what failed this test under CI load).
    if (err instanceof Error) err.message += `\n--- agent log ---\n${await lab.agentLog('n1').catch(() => '(none)')}`;
    throw err;
  }
});

async function outage(lab: Lab): Promise<void> {
  const cli = await ensureTemporalCli({ logger: silentLogger });
  const [temporalPort, servicePort] = [await freePort(), await freePort()];
  const dbFile = join(lab.dir, 'temporal.db');
  const start = () => startDevServer({ cli, dbFile, port: temporalPort, uiPort: false, logger: silentLogger });
  server = await start();
  const cluster = uniqueName('outage');
  const config = await lab.writeOneNodeConfig('haoscar.yaml', {
    cluster,
    address: server.address,
    agentExtra: 'localHealAfter: 1s',
    groups: { web: [httpServiceYaml('httpd', servicePort, { check: 'interval: 300ms, timeout: 200ms, rise: 1, fall: 2' })] },
  });
  const agent = lab.startAgent(config, 'n1');
  {
    const placing = await Connection.connect({ address: server.address });
    await groupRunning(new Client({ connection: placing }), cluster, 'web').finally(() => placing.close());
  }
  const pid = await waitFor('the service answers', () => probe(servicePort), 60_000);

  await server.stop();
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(agent.exitCode, null, 'the agent is still running');
  assert.equal(await probe(servicePort), pid, 'the service still answers, untouched');

  process.kill(pid, 'SIGKILL');
  const localPid = await waitFor('the service is healed locally while Temporal is down', async () => {
    const p = await probe(servicePort);
    return p !== undefined && p !== pid ? p : undefined;
  }, 20_000);
  await waitFor('the agent logs the local heal', async () => /service healed locally/.test(await lab.agentLog('n1')), 10_000);

  server = await start();
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(await probe(servicePort), localPid, 'the report given up on does not restart it again');

  process.kill(localPid, 'SIGKILL');
  await waitFor('the service is healed by a workflow', async () => {
    const p = await probe(servicePort);
    return p !== undefined && p !== localPid ? p : undefined;
  }, 30_000);
  connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection });
  const handle = client.workflow.getHandle(healWorkflowId(cluster, 'web', 'httpd'));
  const status = await waitFor('the heal records its attempt', async () => {
    const s = await handle.query(healStatusQuery);
    return s.attempts.length > 0 ? s : undefined;
  });
  assert.equal(status.attempts.length, 1, 'one heal through Temporal, after it came back');
  assert.match(status.failures[0]!.detail, /exited \(signal SIGKILL\)/);
}
