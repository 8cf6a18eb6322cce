/**
 * End to end on one node: the real `haoscar agent` command, a real HTTP service it
 * supervises, a real Temporal dev server; faults are real signals.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { execa } from 'execa';
import { Lab, ROOT, freePort, groupRunning, httpServiceYaml, probe, waitFor } from '../support/lab.js';
import { closeTemporal, temporalAddress, testClient, uniqueName } from '../support/temporal.js';
import { healStatusQuery, healWorkflowId, ERROR_TYPES } from '../../workflows/shared.js';

let lab: Lab;
let client: Client;
const cluster = uniqueName('e2e');
let webPort: number;
let flakyPort: number;
let configFile: string;

before(async () => {
  lab = await Lab.create();
  client = await testClient();
  [webPort, flakyPort] = [await freePort(), await freePort()];
  configFile = await lab.writeOneNodeConfig('haoscar.yaml', {
    cluster,
    address: await temporalAddress(),
    logLevel: 'debug',
    groups: {
      web: [
        httpServiceYaml('httpd', webPort, {
          args: ['--starts-file', `${lab.dir}/web.starts`],
          healing: 'maxRestarts: 5, window: 1m, startTimeout: 10s',
        }),
      ],
      flaky: [
        httpServiceYaml('crashy', flakyPort, {
          args: ['--starts-file', `${lab.dir}/flaky.starts`, '--die-after', '"1500"'],
          check: 'interval: 200ms, timeout: 150ms, rise: 1, fall: 1',
          healing: 'maxRestarts: 2, window: 1m, startTimeout: 5s, backoff: { initial: 200ms, max: 1s }',
        }),
      ],
    },
  });
  void lab.startAgent(configFile, 'n1'); // never rejects (reject: false); close() awaits it
});

after(async () => {
  await lab.close();
  await closeTemporal();
});

test('a service killed with SIGKILL is restarted by healService and answers HTTP again', async () => {
  await groupRunning(client, cluster, 'web');
  const firstPid = await waitFor('the web service answers', () => probe(webPort), 60_000);
  process.kill(firstPid, 'SIGKILL');
  const killedAt = Date.now();
  const newPid = await waitFor('the web service answers again', async () => {
    const pid = await probe(webPort);
    return pid !== undefined && pid !== firstPid ? pid : undefined;
  });
  const healMs = Date.now() - killedAt;
  assert.notEqual(newPid, firstPid);
  assert.ok(healMs < 10_000, `healed in ${healMs}ms (generous bound)`);
  assert.equal(await lab.countLines(join(lab.dir, 'web.starts')), 2, 'started once by the agent, once by the heal');

  // The history says what happened: a heal of web/httpd with one healthy attempt.
  const handle = client.workflow.getHandle(healWorkflowId(cluster, 'web', 'httpd'));
  const status = await waitFor('the heal watches', async () => {
    const s = await handle.query(healStatusQuery);
    return s.phase === 'watching' ? s : undefined;
  });
  assert.equal(status.attempts.length, 1);
  assert.equal(status.attempts[0]!.outcome, 'healthy');
  assert.match(status.failures[0]!.detail, /exited \(signal SIGKILL\)/);
  const description = await handle.describe();
  assert.equal(description.memo?.trigger, 'monitor@n1');
});

test('haoscar heal --wait: an operator restarts the service and is told the outcome', async () => {
  const pid = await waitFor('the web service answers', () => probe(webPort));
  const result = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'heal', 'web', 'httpd', '--config', configFile, '--wait'], { reject: false });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.match(result.stdout, /heal requested: workflow heal\/.*\/web\/httpd\nhealthy again/);
  const newPid = await waitFor('the restarted service answers', () => probe(webPort));
  assert.notEqual(newPid, pid, 'it was restarted');
  const bad = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'heal', 'web', 'nope', '--config', configFile], { reject: false });
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /unknown resource 'nope' in group 'web' \(known: httpd\)/);
});

test('a service that keeps dying: the heal gives up after maxRestarts within the window, no restart loop', async () => {
  const handle = client.workflow.getHandle(healWorkflowId(cluster, 'flaky', 'crashy'));
  const err = await waitFor('the flaky heal to close', async () => {
    try {
      const d = await handle.describe();
      if (d.status.name === 'RUNNING') return undefined;
      return await handle.result().then(() => new Error('the heal succeeded'), (e: unknown) => e);
    } catch {
      return undefined; // not started yet
    }
  }, 60_000, 100);
  assert.ok(err instanceof WorkflowFailedError, String(err));
  assert.ok(err.cause instanceof ApplicationFailure);
  assert.equal(err.cause.type, ERROR_TYPES.HealGaveUp);
  const starts = join(lab.dir, 'flaky.starts');
  assert.equal(await lab.countLines(starts), 3, 'one start by the agent, then exactly maxRestarts (2) restarts');
  await new Promise((r) => setTimeout(r, 2000)); // a restart loop would show in this time
  assert.equal(await lab.countLines(starts), 3, 'nothing restarts it after the heal gave up');
});

test('an unknown node name: a clear error, exit code 3, nothing started', async () => {
  const config = join(lab.dir, 'haoscar.yaml');
  const child = lab.startAgent(config, 'n9');
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000); // a hang fails the test, not the suite
  const result = await child;
  clearTimeout(timer);
  assert.equal(result.exitCode, 3);
  assert.match(await lab.agentLog('n9'), /node 'n9' is not in cluster '.*' \(known nodes: n1\); nothing was started/);
});

test('SIGTERM stops the agent cleanly, and its supervised services with it', async () => {
  const pid = await waitFor('the web service answers', () => probe(webPort));
  const config = await lab.writeOneNodeConfig('solo.yaml', {
    cluster: uniqueName('solo'),
    address: await temporalAddress(),
    node: 's1',
    groups: { g: ['{ type: service, name: s, driver: process, command: [sleep, "300"], check: { type: process, interval: 200ms, timeout: 100ms } }'] },
  });
  const agent = lab.startAgent(config, 's1');
  const sleepPid = await waitFor('the supervised sleep runs', async () => {
    const m = /"pid":(\d+).*"process started"/.exec(await lab.agentLog('s1'));
    return m && existsSync(`/proc/${m[1]}`) ? Number(m[1]) : undefined;
  }).catch(async (err: Error) => assert.fail(`${err.message}\n${await lab.agentLog('s1')}`));
  agent.kill('SIGTERM');
  const result = await agent;
  assert.equal(result.exitCode, 0, await lab.agentLog('s1'));
  assert.equal(existsSync(`/proc/${sleepPid}`), false, 'the supervised process was stopped');
  assert.equal(await probe(webPort), pid, 'the other agent is untouched');
});
