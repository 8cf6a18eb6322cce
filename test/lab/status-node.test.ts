/**
 * `haoscar status --node` on a two-node lab cluster (issue 11 item 2), through bin/haoscar.js:
 * each node's own view (its peer heard on its link, the protocol and configuration digest its
 * heartbeats carry, the lease and guard of the group it holds), `--check` OK, then the standby's
 * host killed: the owner's view says it no longer hears n2 and `--check` exits 1 (WARNING: a
 * standby down); the dead host's agent left its socket: its view says no agent listens there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GROUP } from './cluster.js';
import { setUp } from './failover-setup.js';
import { waitFor } from '../support/wait.js';

test('status on a node: its own view beside the controller\'s, and --check WARNING once the standby is dead', async (t) => {
  const { lab, cluster } = await setUp(t);
  const status = (args: string[]) => cluster.cli(['status', '--timeout', '5s', ...args], { timeoutMs: 60_000 });

  const ok = await waitFor('status --check OK (both nodes up, group running on n1)', async () => {
    const r = await status(['--node', 'n1', '--check']);
    return r.exitCode === 0 ? r : undefined;
  }, 60_000, 500);
  assert.match(ok.stdout, new RegExp(`^HAOSCAR OK - ${GROUP} on n1; 2 node\\(s\\) up$`));

  const n1 = await status(['--node', 'n1']);
  assert.equal(n1.exitCode, 0, n1.all);
  assert.match(n1.stdout, /^this node n1 \(agent pid \d+, release [\d.]+\): serving/m);
  assert.match(n1.stdout, /^ {4}n2 +alive +last heard \d+ms ago, protocol 2, same configuration$/m);
  assert.match(n1.stdout, /^ {6}link 10\.213\.\d+\.12->10\.213\.\d+\.11 alive/m);
  assert.match(n1.stdout, new RegExp(`^  holds ${GROUP} at epoch \\d+: running; lease runs`, 'm'));
  assert.match(n1.stdout, new RegExp(`^  lease guard: running \\(pid \\d+, watchdog off\\)\\n +${GROUP} epoch \\d+: held, released in`, 'm'));
  const n2 = await status(['--node', 'n2']);
  assert.match(n2.stdout, /^this node n2 .*\n(.*\n)* {2}holds no group$/m);

  await lab.killHost('n2');
  const degraded = await waitFor('status --check WARNING on n1 once n2 is dead', async () => {
    const r = await status(['--node', 'n1', '--check']);
    return r.exitCode === 1 ? r : undefined;
  }, 60_000, 500);
  assert.match(degraded.stdout, /^HAOSCAR WARNING - .*n1 does not hear n2/);
  const dead = await status(['--node', 'n2']);
  assert.match(dead.stdout, /^this node: no agent listens on .*agent-n2\.sock: the agent of this node is not running/m);
});
