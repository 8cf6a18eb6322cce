/**
 * `haoscar status` on a node (issue 11 item 2), through bin/haoscar.js against a real agent: the
 * controller's view and the node's own (its agent's socket: leases, checks), the `--check` exit
 * codes of a monitoring plugin (0 OK; 2 CRITICAL once the group is down; 3 UNKNOWN when
 * Temporal does not answer) and what the node knows shown even when Temporal cannot be reached.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { Lab, ROOT, freePort, httpServiceYaml } from '../support/lab.js';
import { closeTemporal, temporalAddress, testClient, uniqueName } from '../support/temporal.js';
import { waitFor } from '../support/wait.js';
import { controllerWorkflowId } from '../../workflows/shared.js';

const status = (args: string[]) => execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'status', ...args], { reject: false, cwd: ROOT, timeout: 120_000 });

test('status on a one-node cluster: both views, --check codes, and the node view without Temporal', async (t) => {
  const lab = await Lab.create();
  const client = await testClient();
  const cluster = uniqueName('status');
  t.after(async () => {
    await lab.close();
    await client.workflow.getHandle(controllerWorkflowId(cluster)).terminate('test over').catch(() => undefined);
    await closeTemporal();
  });
  const port = await freePort();
  const groups = { web: [httpServiceYaml('httpd', port, { check: 'interval: 200ms, timeout: 150ms, rise: 1, fall: 1' })] };
  const config = await lab.writeOneNodeConfig('haoscar.yaml', { cluster, address: await temporalAddress(), groups });
  void lab.startAgent(config, 'n1'); // never rejects (reject: false); close() awaits it

  const ok = await waitFor('status --check says OK', async () => {
    const r = await status(['--check', '--timeout', '3s', '-c', config]);
    return r.exitCode === 0 ? r : undefined;
  }, 120_000, 500);
  assert.match(ok.stdout, /^HAOSCAR OK - web on n1; 1 node\(s\) up$/);

  const text = await status(['-c', config]);
  assert.equal(text.exitCode, 0, text.stderr);
  assert.match(text.stdout, /^cluster /m, 'the controller view');
  assert.match(text.stdout, /^this node n1 \(agent pid \d+, release [\d.]+\): serving: connected to Temporal/m, 'the node view');
  assert.match(text.stdout, /^ {2}holds web at epoch \d+: running; lease runs/m);
  assert.match(text.stdout, /^ {2}resource web\/httpd: healthy/m);

  const json = await status(['--json', '-c', config]);
  assert.equal(json.exitCode, 0, json.stderr);
  const parsed = JSON.parse(json.stdout) as { groups: Record<string, { owner: string }>; local: { node: string; held: { group: string }[] }; check: { code: number } };
  assert.equal(parsed.groups.web?.owner, 'n1');
  assert.equal(parsed.local.node, 'n1');
  assert.deepEqual(parsed.local.held.map((h) => h.group), ['web']);
  assert.equal(parsed.check.code, 0);

  // Bad input: a clear error, exit 2.
  const unknown = await status(['--node', 'nope', '-c', config]);
  assert.equal(unknown.exitCode, 2);
  assert.match(unknown.stderr, /node 'nope' is not in cluster/);

  // The node's own view without Temporal: the same node and state directory, a frontend where nothing listens.
  const away = await lab.writeConfig('away.yaml', (await readFile(config, 'utf8')).replace(/address: "[^"]+"/, `address: "127.0.0.1:${await freePort()}"`));
  const cut = await status(['--timeout', '2s', '-c', away]);
  assert.equal(cut.exitCode, 4, `${cut.stderr}\n${cut.stdout}`);
  assert.match(cut.stderr, /cannot reach Temporal at 127\.0\.0\.1:\d+/);
  assert.match(cut.stdout, /^this node n1 .*\n {2}holds web at epoch \d+: running; lease runs/m, 'what the node knows, without Temporal');
  const unknownCheck = await status(['--check', '--timeout', '2s', '-c', away]);
  assert.equal(unknownCheck.exitCode, 3, unknownCheck.stdout);
  assert.match(unknownCheck.stdout, /^HAOSCAR UNKNOWN - cannot reach Temporal/);
});
