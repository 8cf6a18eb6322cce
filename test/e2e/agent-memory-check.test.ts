/**
 * End to end on one node: the real `haoscar agent` restarts a service whose memory check fails
 * for `fall` runs in a row (Monit's `if totalmem > 120 MB for 3 cycles then restart`), exactly as
 * it heals a failing http check.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { Lab, ROOT, groupRunning, waitFor } from '../support/lab.js';
import { closeTemporal, temporalAddress, testClient, uniqueName } from '../support/temporal.js';
import { healStatusQuery, healWorkflowId } from '../../workflows/shared.js';

let lab: Lab;
let client: Client;
const cluster = uniqueName('e2e-mem');

before(async () => {
  lab = await Lab.create();
  client = await testClient();
});

after(async () => {
  await lab.close();
  await closeTemporal();
});

test('a service growing past its memory limit for 3 runs is restarted once, and healthy after', async () => {
  const starts = join(lab.dir, 'grower.starts');
  const grower = join(ROOT, 'test/fixtures/memory-grower.mjs');
  const config = await lab.writeOneNodeConfig('haoscar.yaml', {
    cluster,
    address: await temporalAddress(),
    logLevel: 'debug',
    groups: {
      g: [
        `{ type: service, name: grower, driver: process, command: [${process.execPath}, ${grower}, ${starts}, "200"], ` +
          'check: { type: memory, max: 120MB, interval: 200ms, timeout: 150ms, rise: 1, fall: 3 }, ' +
          'healing: { maxRestarts: 2, window: 1m, startTimeout: 10s } }',
      ],
    },
  });
  void lab.startAgent(config, 'n1'); // never rejects (reject: false); close() awaits it
  await groupRunning(client, cluster, 'g');

  await waitFor('the grower is restarted', async () => ((await lab.countLines(starts)) >= 2 ? true : undefined), 60_000).catch(async (err: Error) =>
    assert.fail(`${err.message}\n${await lab.agentLog('n1')}`),
  );
  const handle = client.workflow.getHandle(healWorkflowId(cluster, 'g', 'grower'));
  const status = await waitFor('the heal watches', async () => {
    const s = await handle.query(healStatusQuery).catch(() => undefined);
    return s?.phase === 'watching' ? s : undefined;
  });
  assert.equal(status.attempts.length, 1);
  assert.equal(status.attempts[0]!.outcome, 'healthy');
  assert.match(status.failures[0]!.detail, /^memory of the service: pid \d+ uses [\d.]+MB \(VmRSS\), over 120MB$/);

  // "For 3 cycles": the monitor counted exactly three failed runs in a row before the edge.
  const log = await lab.agentLog('n1');
  const lines = log.split('\n');
  const edge = lines.findIndex((l) => /"msg":"resource \S*grower is failing"/.test(l));
  assert.ok(edge > 0, `the failing edge is logged:\n${lines.filter((l) => l.includes('grower')).slice(0, 30).join('\n')}`);
  const runs = lines.slice(0, edge).filter((l) => l.includes('"msg":"check"') && l.includes('memory of the service'));
  const failedInARow = runs.reverse().findIndex((l) => !l.includes('"ok":false'));
  assert.equal(failedInARow, 3, runs.slice(0, 5).reverse().join('\n'));

  await new Promise((r) => setTimeout(r, 1500)); // a second heal would show in this time
  assert.equal(await lab.countLines(starts), 2, 'the restarted service stays small: restarted once');
});
