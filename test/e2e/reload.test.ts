/**
 * `haoscar reload` and SIGHUP on a real agent (issue 11 item 8, docs/reload.md), through
 * bin/haoscar.js: a live change is applied without a restart (the check's interval visibly
 * changes: results come every 200 ms instead of every 4 s), a change that needs a restart is
 * refused, named, and changes nothing (not even the live change beside it), an invalid file
 * changes nothing, and the agent is the same process throughout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { Lab, ROOT, freePort, httpServiceYaml } from '../support/lab.js';
import { closeTemporal, temporalAddress, testClient, uniqueName } from '../support/temporal.js';
import { waitFor } from '../support/wait.js';
import { controllerWorkflowId } from '../../workflows/shared.js';
import { readLocalStatus, type LocalStatus } from '../../src/agent/local-status.js';

const haoscar = (args: string[]) => execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), ...args], { reject: false, cwd: ROOT, timeout: 120_000 });

/** The distinct times of the resource's check results seen while polling the agent's status for `ms`. */
async function checkTimes(stateDir: string, ms: number): Promise<Set<number>> {
  const times = new Set<number>();
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const at = (await readLocalStatus(stateDir, 'n1', 2000)).resources.find((r) => r.resource === 'httpd')?.at;
    if (at !== undefined) times.add(at);
    await new Promise((r) => setTimeout(r, 50));
  }
  return times;
}

test('reload: a live change applied, a restart-only change refused and named, an invalid file refused; the same agent throughout', async (t) => {
  const lab = await Lab.create();
  const client = await testClient();
  const cluster = uniqueName('reload');
  t.after(async () => {
    await lab.close();
    await client.workflow.getHandle(controllerWorkflowId(cluster)).terminate('test over').catch(() => undefined);
    await closeTemporal();
  });
  const port = await freePort();
  const withInterval = (interval: string) => ({ web: [httpServiceYaml('httpd', port, { check: `interval: ${interval}, timeout: 150ms, rise: 1, fall: 2` })] });
  const address = await temporalAddress();
  const config = await lab.writeOneNodeConfig('haoscar.yaml', { cluster, address, groups: withInterval('4s') });
  const stateDir = join(lab.dir, 'state-haoscar');
  const status = () => readLocalStatus(stateDir, 'n1', 2000);
  void lab.startAgent(config, 'n1');

  const first: LocalStatus = await waitFor('the agent serves web with httpd healthy', async () => {
    const s = await status().catch(() => undefined);
    return s?.held.some((h) => h.group === 'web' && h.state === 'running') && s.resources.some((r) => r.resource === 'httpd' && r.status === 'healthy') ? s : undefined;
  }, 120_000, 250);
  assert.deepEqual(first.reload, { completed: 0 });
  const pid = first.pid;
  // Every 4 s: within 1.5 s at most one new result.
  assert.ok((await checkTimes(stateDir, 1500)).size <= 2, 'the check runs every 4 s before the reload');

  // 1. A live change: the check interval.
  await lab.writeOneNodeConfig('haoscar.yaml', { cluster, address, groups: withInterval('200ms') });
  const applied = await haoscar(['reload', '-c', config]);
  assert.equal(applied.exitCode, 0, `${applied.stdout}\n${applied.stderr}`);
  assert.match(applied.stdout, /^reload of node n1 \(agent pid \d+, .*haoscar\.yaml\): applied\n {2}groups\[web\]\.resources\[httpd\]\.check\.intervalMs: 4000 -> 200$/);
  const fast = await checkTimes(stateDir, 1500);
  assert.ok(fast.size >= 4, `results every 200 ms after the reload (saw ${fast.size} in 1.5 s)`);
  const afterApply = await status();
  assert.equal(afterApply.pid, pid, 'the same agent: not restarted');
  assert.equal(afterApply.reload?.last?.result, 'applied');
  assert.ok(afterApply.config!.loadedAt > first.config!.loadedAt, 'the load time moved on');

  // 2. The same file again: nothing to change.
  const same = await haoscar(['reload', '-c', config]);
  assert.equal(same.exitCode, 0, same.stderr);
  assert.match(same.stdout, /: nothing to change/);

  // 3. A restart-only change (the lease ttl) beside a live one (back to 4 s): refused whole.
  const refusedText = (await readFile(config, 'utf8')).replace('interval: 200ms', 'interval: 4s').replace(/^nodes:/m, 'lease: { ttl: 900ms }\nnodes:');
  await writeFile(config, refusedText);
  const refused = await haoscar(['reload', '-c', config, '--json']);
  assert.equal(refused.exitCode, 1, `${refused.stdout}\n${refused.stderr}`);
  const outcome = JSON.parse(refused.stdout) as { pid: number; result: string; refused: { path: string; why: string }[]; applied: unknown[] };
  assert.equal(outcome.result, 'refused');
  assert.deepEqual(outcome.refused.map((r) => r.path), ['lease.ttlMs']);
  assert.match(outcome.refused[0]!.why, /lease ttl/);
  assert.deepEqual(outcome.applied, [], 'the live change beside it is not applied either');
  assert.ok((await checkTimes(stateDir, 1500)).size >= 4, 'still checked every 200 ms: the interval change was not applied');
  const text = await haoscar(['reload', '-c', config]);
  assert.equal(text.exitCode, 1);
  assert.match(text.stdout, /: refused; nothing was changed, the agent runs on with its configuration\n {2}lease\.ttlMs needs a restart: /);
  assert.match(await lab.agentLog('n1'), /reload refused, nothing changed: lease\.ttlMs/);
  const shown = await haoscar(['status', '-c', config]);
  assert.match(shown.stdout, /^ {2}LAST RELOAD REFUSED \d+m?s ago: lease\.ttlMs needs a restart; it runs the configuration loaded \d+m?s ago$/m, `${shown.stdout}\n${shown.stderr}`);

  // 4. An invalid file: `haoscar reload` checks it first and sends nothing (exit 3) ...
  await writeFile(config, refusedText.replace('rise: 1', 'rise: zero'));
  const before = (await status()).reload!.completed;
  const invalid = await haoscar(['reload', '-c', config]);
  assert.equal(invalid.exitCode, 3, invalid.stderr);
  assert.match(invalid.stderr, /invalid configuration, no reload asked: .*rise/s);
  assert.equal((await status()).reload!.completed, before, 'nothing was sent to the agent');
  // ... and a plain SIGHUP (systemctl reload) makes the agent find it invalid and change nothing.
  process.kill(pid, 'SIGHUP');
  const invalidOutcome = await waitFor('the agent reports the SIGHUP reload', async () => {
    const s = await status();
    return s.reload!.completed > before ? s.reload!.last : undefined;
  }, 15_000, 100);
  assert.equal(invalidOutcome?.result, 'invalid');
  assert.match(invalidOutcome?.error ?? '', /rise/);
  const end = await status();
  assert.equal(end.pid, pid, 'the same agent after every reload');
  assert.ok(end.held.some((h) => h.group === 'web' && h.state === 'running'), 'web still runs');
  assert.ok((await checkTimes(stateDir, 1500)).size >= 4, 'the running configuration is unchanged');
});
