/**
 * Checks in a real browser (headless Chromium, Debian's `chromium` package) that the Temporal UI
 * shows the summaries of a failover's workflow and activities, and keeps a screenshot
 * (docs/postmortem-ui-failover.png). Run by hand, not in CI (Chromium is a large install):
 *
 *   apt-get install -y chromium
 *   TEMPORAL_CLI=~/.cache/haoscar/bin/temporal npx tsx test/ui/failover-summaries.ts [screenshot.png]
 *
 * It starts its own dev server with the UI, runs a dead owner's failover with the real workflows
 * (test/support/workflow-cluster.ts), loads the failover's page in Chromium, and fails unless
 * the rendered page carries the workflow's summary and the activities' summaries.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ensureTemporalCli } from '../../src/temporal/cli-binary.js';
import { startDevServer } from '../../src/temporal/dev-server.js';
import { silentLogger } from '../../src/log.js';
import { failoverWorkflowId } from '../../workflows/shared.js';

const screenshot = process.argv[2] ?? 'docs/postmortem-ui-failover.png';
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
const cli = await ensureTemporalCli({ logger: silentLogger });
const server = await startDevServer({ cli, uiPort: 0, logger: silentLogger });
process.env.HAOSCAR_TEST_TEMPORAL = server.address;
// Imported after HAOSCAR_TEST_TEMPORAL is set: the test support connects to this server.
const { WorkflowCluster } = await import('../support/workflow-cluster.js');
const { closeTemporal } = await import('../support/temporal.js');
const profile = await mkdtemp(join(tmpdir(), 'haoscar-chromium-'));
const c = await WorkflowCluster.start('ui', [
  'lease: { ttl: 2s, margin: 50ms }',
  'failover: { verifyTimeout: 1500ms }',
  'defaults:',
  '  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }',
  'nodes:',
  '  - { name: n1, addresses: [127.0.0.1], priority: 10 }',
  '  - { name: n2, addresses: [127.0.0.2] }',
  'groups:',
  '  - name: web',
  '    resources:',
  '      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }',
  '',
].join('\n'));
try {
  await c.kill('n1');
  await c.report('n1', 'suspect', 'n2', 'every link silent');
  await c.settled('n2');
  const workflowId = failoverWorkflowId(c.name, 'web');
  const { runId } = await c.client.workflow.getHandle(workflowId).describe();
  const url = `${server.uiUrl!.replace(/\/$/, '')}/namespaces/default/workflows/${encodeURIComponent(workflowId)}/${runId}/history`;
  const browser = ['--headless', '--no-sandbox', '--disable-gpu', `--user-data-dir=${profile}`, '--window-size=1500,1300', '--virtual-time-budget=20000'];
  const dom = await execa(chromium, [...browser, '--dump-dom', url], { timeout: 120_000 });
  const expected = ['failover of web (node-lost)', 'ping n1 through its task queue', 'start first on n2 and verify it'];
  const missing = expected.filter((s) => !dom.stdout.includes(s));
  await execa(chromium, [...browser, `--screenshot=${join(process.cwd(), screenshot)}`, url], { timeout: 120_000 });
  assert.deepEqual(missing, [], `the UI page ${url} lacks these summaries (screenshot: ${screenshot})`);
  process.stdout.write(`the Temporal UI shows the failover's summaries: ${expected.join('; ')}\nscreenshot: ${screenshot}\n`);
} finally {
  await c.close();
  await closeTemporal();
  await server.stop();
  await rm(profile, { recursive: true, force: true });
}
process.exit(0);
