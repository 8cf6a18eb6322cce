/**
 * Issue 9 item 12: Temporal's data is lost while the cluster runs (the dev server's SQLite file
 * deleted, a fresh server started on the same port). The controller's state, with every epoch, is
 * gone; the nodes still run what they ran. Before the fix a new controller started every group
 * `unplaced` at epoch 0 and placed `web` on n1 under epoch 1, which n1 (holding it at epoch 3)
 * refused as stale: the group ended `down` in the controller's view while n1 still ran it, and no
 * failover could move it. Now the nodes announce what they hold and the highest epoch they have
 * seen (src/agent/announcer.ts, the same code as the agent's, driven here as the agent's lease
 * rounds drive it), the controller adopts the holder at its epoch, and a failover afterwards
 * claims the next epoch and succeeds.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findTemporalCli } from '../../src/temporal/cli-binary.js';
import { findFreePorts, startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import { silentLogger } from '../../src/log.js';
import { Announcer } from '../../src/agent/announcer.js';
import { clusterTaskQueue, failoverWorkflowId, type FailoverResult } from '../../workflows/shared.js';
import { closeTemporal } from '../support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';

const cli = findTemporalCli();
if (!cli && process.env.CI) throw new Error('CI: no Temporal CLI found (set TEMPORAL_CLI)');

const LEASE = { ttlMs: 2000, marginMs: 200 };
let dir: string | undefined;
let server: DevServer | undefined;
let cluster: WorkflowCluster | undefined;
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('the dev server\'s database is deleted while the group runs: the new controller adopts the owner at its epoch, and a failover afterwards succeeds', { skip: cli ? false : 'no Temporal CLI', timeout: 300_000 }, async (t) => {
  // A server of this test's own, with its data in a file (the shared one of the test run is in memory).
  dir = await mkdtemp(join(tmpdir(), 'haoscar-data-lost-'));
  const dbFile = join(dir, 'temporal.db');
  const [port] = await findFreePorts('127.0.0.1', 1);
  server = await startDevServer({ cli: cli!, dbFile, port, uiPort: false, logger: silentLogger });
  process.env.HAOSCAR_TEST_TEMPORAL = server.address;

  const c = await WorkflowCluster.start('data-lost', twoNodeWeb({ lease: `{ ttl: ${LEASE.ttlMs}ms, margin: ${LEASE.marginMs}ms }`, verifyTimeout: '2s' }));
  cluster = c;
  const move = async (to: string): Promise<FailoverResult> => {
    const handle = await c.client.workflow.start('failover', { workflowId: failoverWorkflowId(c.name, 'web'), taskQueue: clusterTaskQueue(c.name), args: [{ cluster: c.name, group: 'web', to }] });
    return (await handle.result()) as FailoverResult;
  };
  // Epochs go up: placed on n1 (1), moved to n2 (2), back to n1 (3).
  assert.equal((await move('n2')).outcome, 'moved');
  assert.equal((await move('n1')).outcome, 'moved');
  const before = await c.settled('n1');
  assert.equal(before.epoch, 3);
  assert.deepEqual(c.node('n1').groups.holding('web'), { epoch: 3, state: 'running' });

  // The nodes' agents announce as they do (announcer.ts): on every answer of the controller, and when it is not running.
  const announcers = [...c.nodes.values()].map((n) => new Announcer({
    node: n.name, lease: LEASE, groups: n.groups, send: (a) => c.link.announce(a), logger: silentLogger, minIntervalMs: 1000,
  }));
  let polling = true;
  const rounds = (async () => {
    while (polling) {
      await c.link.ownership(2000).then((answer) => announcers.forEach((a) => a.answered(answer)), (err: unknown) => announcers.forEach((a) => a.failed(err)));
      await new Promise((r) => setTimeout(r, LEASE.ttlMs / 3));
    }
  })();

  // Temporal's data is lost: the server stops, its file is deleted, a fresh one starts on the same port.
  const n1Orders = c.node('n1').startOrders.length;
  const lostAt = Date.now();
  await server.stop();
  await rm(dbFile, { force: true });
  await assert.rejects(stat(dbFile));
  server = await startDevServer({ cli: cli!, dbFile, port, uiPort: false, logger: silentLogger });
  t.diagnostic(`fresh server on port ${port} after ${Date.now() - lostAt} ms`);

  // The group keeps running on n1, and the new controller has it there, at an epoch >= the old one.
  const adopted = await waitFor('the new controller has web running on n1 at epoch >= 3', async () => {
    const g = await c.web().catch(() => undefined);
    return g?.owner === 'n1' && g.state === 'running' && g.epoch >= before.epoch && g.operation === undefined ? g : undefined;
  }, 120_000, 100).catch(async (err: Error) => assert.fail(`${err.message}; the controller has: ${JSON.stringify(await c.web().catch((e: Error) => e.message))}`));
  t.diagnostic(`adopted ${Date.now() - lostAt} ms after the data was lost: ${JSON.stringify({ owner: adopted.owner, epoch: adopted.epoch, state: adopted.state })}`);
  assert.equal(c.node('n1').startOrders.length, n1Orders, `no order reached n1 (${c.node('n1').startOrders.length - n1Orders} did): the controller adopted the group, it did not place it again under an epoch it chose`);
  assert.equal(adopted.epoch, 3);
  assert.deepEqual(c.node('n1').groups.holding('web'), { epoch: 3, state: 'running' }, 'n1 never stopped it');
  assert.equal(c.node('n2').startOrders.length, 1, 'nothing was started on n2 meanwhile');

  // A failover afterwards claims the next epoch, and is not refused as stale.
  const moved = await move('n2');
  assert.equal(moved.outcome, 'moved', JSON.stringify(moved));
  assert.equal(moved.epoch, 4);
  assert.deepEqual(c.node('n2').groups.holding('web'), { epoch: 4, state: 'running' });
  assert.equal(c.node('n1').groups.holding('web'), undefined);
  polling = false;
  await rounds;
});
