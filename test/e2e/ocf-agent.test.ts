/**
 * OCF resources end to end on one node (issue 12 item 1): the real `haoscar agent` (through
 * bin/haoscar.js) runs the real `ocf:heartbeat:Dummy` of Debian's resource-agents on a real
 * Temporal dev server: it starts it with the group, its monitor sees it, a "crash" (Dummy's
 * state file removed: its monitor then exits 7) is healed by healService with the agent's start,
 * and a stopped agent stops it. An agent whose configuration names an OCF parameter the agent
 * does not take refuses to start, exit 3, with the line.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { execa } from 'execa';
import { Lab, ROOT, groupRunning, waitFor } from '../support/lab.js';
import { closeTemporal, temporalAddress, testClient, uniqueName } from '../support/temporal.js';
import { healStatusQuery, healWorkflowId } from '../../workflows/shared.js';

let lab: Lab;
let client: Client;
const cluster = uniqueName('ocf');
let state: string;
let badConfig: string;

before(async () => {
  lab = await Lab.create();
  client = await testClient();
  state = join(lab.dir, 'dummy.state');
  const configFile = await lab.writeOneNodeConfig('haoscar.yaml', {
    cluster,
    address: await temporalAddress(),
    groups: {
      web: [`{ type: ocf, name: dummy, agent: "ocf:heartbeat:Dummy", params: { state: "${state}" }, check: { type: status, interval: 1s, timeout: 1s, rise: 1, fall: 1 }, healing: { window: 1m, startTimeout: 10s } }`],
    },
  });
  badConfig = await lab.writeOneNodeConfig('bad.yaml', {
    cluster: uniqueName('ocfbad'),
    address: await temporalAddress(),
    groups: { web: [`{ type: ocf, name: dummy, agent: "heartbeat:Dummy", params: { stat: "${state}" } }`] },
  });
  void lab.startAgent(configFile, 'n1');
});

after(async () => {
  await lab.close();
  await closeTemporal();
});

test('an agent whose OCF resource names a parameter its agent does not take refuses to start: exit 3 with the line', async () => {
  const r = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'agent', '--config', badConfig, '--node', 'n1'], { reject: false, timeout: 60_000 });
  assert.equal(r.exitCode, 3, r.stderr);
  assert.match(r.stderr, /groups\[0\]\.resources\[0\]\.params\.stat \(line \d+\): heartbeat:Dummy has no parameter 'stat'/);
});

test('the agent starts the OCF resource with its group, heals it when its monitor says not running, and stops it on SIGTERM', async (t) => {
  await groupRunning(client, cluster, 'web').catch(async (err: unknown) => {
    t.diagnostic(await lab.agentLog('n1'));
    throw err;
  });
  await waitFor('Dummy started (its state file)', () => existsSync(state) || undefined, 30_000);
  // A crash as the agent's monitor sees it: Dummy's monitor exits 7 (OCF_NOT_RUNNING).
  await rm(state);
  const handle = client.workflow.getHandle(healWorkflowId(cluster, 'web', 'dummy'));
  const status = await waitFor('the heal restarted it', async () => {
    const s = await handle.query(healStatusQuery).catch(() => undefined);
    return s?.phase === 'watching' ? s : undefined;
  }, 60_000);
  assert.equal(status.attempts[0]!.outcome, 'healthy');
  assert.match(status.failures[0]!.detail, /exit 7: not running \(OCF_NOT_RUNNING\)/);
  assert.ok(existsSync(state), 'started again by the heal');
  await lab.close();
  assert.equal(existsSync(state), false, 'the agent stopped the group (Dummy stop) as it shut down');
});
