/**
 * examples/hpc-head-node.yaml (issue 13 item 3; docs/hpc.md): it loads through the configuration
 * loader with what docs/hpc.md says of it, `haoscar validate --no-agents` accepts it as a user runs
 * it, and docs/hpc.md shows it whole.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import { haoscarCli } from '../support/lab.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE = join(ROOT, 'examples/hpc-head-node.yaml');

test('the head-node example loads: DRBD state first, then the VIP, slurmctld and dnsmasq; fencing on both nodes', async () => {
  const config = await loadConfig(EXAMPLE);
  assert.equal(config.groups.length, 1);
  const head = config.groups[0]!;
  assert.equal(head.name, 'head');
  assert.deepEqual(head.nodes, ['head1', 'head2'], 'head1 preferred');
  assert.deepEqual(head.resources.map((r) => `${r.type} ${r.name}`), ['drbd state-disk', 'filesystem state-fs', 'vip head-ip', 'service slurmctld', 'service dnsmasq'],
    'the state is promoted and mounted before the services start, and they stop before it is unmounted');
  const fs = head.resources.find((r) => r.name === 'state-fs');
  assert.ok(fs?.type === 'filesystem');
  assert.equal(fs.mountpoint, '/srv/slurm-state');
  const slurmctld = head.resources.find((r) => r.name === 'slurmctld');
  assert.ok(slurmctld?.type === 'service' && slurmctld.driver === 'process');
  assert.equal(slurmctld.command.at(-1), 'hostname slurm-head && exec /usr/sbin/slurmctld -D', 'in the foreground, under SlurmctldHost\'s name');
  const dnsmasq = head.resources.find((r) => r.name === 'dnsmasq');
  assert.ok(dnsmasq?.type === 'service' && dnsmasq.driver === 'process');
  assert.ok(dnsmasq.command.includes('--keep-in-foreground'));
  assert.ok(dnsmasq.command.includes('--dhcp-leasefile=/srv/slurm-state/dnsmasq.leases'), 'the leases on the replicated state');
  assert.deepEqual(head.fileSets.map((f) => [f.name, f.paths]), [['tftp', ['/srv/tftp']]]);
  assert.equal(head.failback.policy, 'manual');
  assert.deepEqual(config.nodes.map((n) => [n.name, n.fence?.command[0], n.fence?.action]), [['head1', '/usr/sbin/fence_ipmilan', 'off'], ['head2', '/usr/sbin/fence_ipmilan', 'off']]);
});

test('the loader is not lenient with it: a misspelt key is refused with its path', async () => {
  const text = await readFile(EXAMPLE, 'utf8');
  const broken = text.replace('stopTimeout: 30s', 'stopTimout: 30s');
  assert.notEqual(broken, text);
  assert.throws(() => parseConfig(broken, 'broken.yaml'), (err: unknown) => err instanceof ConfigError && err.issues.some((i) => /stopTimout/.test(i.path) && /unknown key/.test(i.message)));
});

test('haoscar validate, as a user runs it, accepts the example', async () => {
  // --no-agents: the fence agent need not be installed on the machine that runs the tests.
  const run = await haoscarCli('validate', '--no-agents', EXAMPLE);
  assert.equal(run.exitCode, 0, `${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /valid — cluster 'hpc-head', 2 node\(s\), 1 group\(s\), 5 resource\(s\)/);
});

test('docs/hpc.md shows the example whole', async () => {
  const doc = await readFile(join(ROOT, 'docs/hpc.md'), 'utf8');
  const text = await readFile(EXAMPLE, 'utf8');
  assert.ok(doc.includes(`\`\`\`yaml\n${text}\`\`\``), 'docs/hpc.md has a yaml block that is examples/hpc-head-node.yaml, byte for byte');
});
