/**
 * A control-plane outage must not cause a service outage: with its own dev server (SQLite,
 * so that it can be stopped and started again), a real agent keeps its service running while
 * Temporal is down, and a crash during the outage is healed once Temporal is back.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Lab, freePort, httpServiceYaml, probe, waitFor } from '../support/lab.js';
import { ensureTemporalCli } from '../../src/temporal/cli-binary.js';
import { startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import { silentLogger } from '../../src/log.js';
import { uniqueName } from '../support/temporal.js';

let lab: Lab | undefined;
let server: DevServer | undefined;
after(async () => {
  await lab?.close();
  await server?.stop();
});

test('Temporal down: the agent and its service keep running; a crash meanwhile is healed when Temporal returns', async () => {
  lab = await Lab.create();
  const cli = await ensureTemporalCli({ logger: silentLogger });
  const [temporalPort, servicePort] = [await freePort(), await freePort()];
  const dbFile = join(lab.dir, 'temporal.db');
  const start = () => startDevServer({ cli, dbFile, port: temporalPort, uiPort: false, logger: silentLogger });
  server = await start();
  const config = await lab.writeOneNodeConfig('haoscar.yaml', {
    cluster: uniqueName('outage'),
    address: server.address,
    groups: { web: [httpServiceYaml('httpd', servicePort, { check: 'interval: 300ms, timeout: 200ms, rise: 1, fall: 2' })] },
  });
  const agent = lab.startAgent(config, 'n1');
  const pid = await waitFor('the service answers', () => probe(servicePort), 60_000);

  await server.stop();
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(agent.exitCode, null, 'the agent is still running');
  assert.equal(await probe(servicePort), pid, 'the service still answers, untouched');

  process.kill(pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 3000));
  assert.equal(await probe(servicePort), undefined, 'nothing restarts it without Temporal');

  server = await start();
  const newPid = await waitFor('the service is healed after Temporal returns', async () => {
    const p = await probe(servicePort);
    return p !== undefined && p !== pid ? p : undefined;
  }, 60_000);
  assert.notEqual(newPid, pid);
  // The failure was seen during the outage, and the heal went through once Temporal was back.
  const log = await lab.agentLog('n1');
  assert.ok(log.indexOf('exited (signal SIGKILL)') < log.indexOf('"heal requested"'), log);
});
