/**
 * Alerts on a lab failover (issue 11 item 5, docs/alerts.md): the owner dies, and Debian's own
 * Pacemaker alert agent (pacemaker-common's alert_file.sh.sample, unchanged) is run by the
 * cluster's workflow worker: the node lost, the failover begun on it, and ended with the group
 * running on the standby, in the sample's own log lines and Pacemaker's default time format.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setUp, expect } from './failover-setup.js';

const SAMPLE = '/usr/share/pacemaker/alerts/alert_file.sh.sample';

test('a lab failover runs Pacemaker\'s alert_file sample with the CRM_alert_* variables', { skip: existsSync(SAMPLE) ? false : 'apt-get install pacemaker-common' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'haoscar-lab-alerts-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const log = join(dir, 'alerts.log');
  const { lab, cluster } = await setUp(t, [], undefined, { alerts: `[{ name: file, path: ${SAMPLE}, recipients: [${log}], events: [node-suspect, failover-started, failover-ended] }]` });
  const before = await cluster.group();
  await lab.killHost('n1');
  await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running' && x.epoch === before!.epoch + 1, 'n2 owns the group');
  const ts = String.raw`\d\d:\d\d:\d\d\.\d{6}: `;
  const lines = await expect(cluster, 'the sample logged the failover\'s end on n2', async () => {
    const text = await readFile(log, 'utf8').catch(() => '');
    return /Resource operation 'failover' for 'web' on 'n2': ok/.test(text) ? text.trim().split('\n') : undefined;
  });
  t.diagnostic(lines.join('\n'));
  assert.ok(lines.some((l) => new RegExp(`^${ts}Node 'n1' is now 'lost'$`).test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => new RegExp(`^${ts}Resource operation 'failover' for 'web' on 'n1': pending$`).test(l)), lines.join('\n'));
  assert.ok(lines.some((l) => new RegExp(`^${ts}Resource operation 'failover' for 'web' on 'n2': ok$`).test(l)), lines.join('\n'));
});
