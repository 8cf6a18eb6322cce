/**
 * Syslog priorities under systemd (issue 11 item 9): with stderr connected to the journal
 * (`JOURNAL_STREAM` names that very stream), every line of `haoscar agent` (bin/haoscar.js)
 * starts with its priority, `<3>` for errors, `<4>` warnings, `<6>` information, which journald
 * strips and stores, so `journalctl -p err` finds the errors. PID 1 is not systemd here: the test
 * plays its part, a file as the "journal stream" and JOURNAL_STREAM set to its device and inode.
 * With the variable inherited but stderr redirected elsewhere, lines stay plain JSON.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { Lab, ROOT, freePort, httpServiceYaml } from '../support/lab.js';
import { waitFor } from '../support/wait.js';

const env = process.env as Record<string, string>;

test('agent under systemd: each log line carries its syslog priority; elsewhere plain JSON', async (t) => {
  const lab = await Lab.create();
  t.after(() => lab.close());
  // Temporal is not there: the agent logs an error at each attempt; stopped, it says so (information).
  const address = `127.0.0.1:${await freePort()}`;
  const groups = { web: [httpServiceYaml('httpd', await freePort())] };
  const journal = await lab.writeOneNodeConfig('journal.yaml', { cluster: 'journal', node: 'n1', address, groups });
  const plain = await lab.writeOneNodeConfig('plain.yaml', { cluster: 'plain', node: 'n2', address, groups });
  // The file is the agent's very stderr (as the journal's socket is under systemd), not a pipe
  // that a parent copies into it.
  const journalLog = await open(join(lab.dir, 'agent-n1.log'), 'a');
  t.after(() => journalLog.close());
  const { dev, ino } = await journalLog.stat({ bigint: true });
  const start = (config: string, node: string, stderr: number) =>
    spawn(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'agent', '--config', config, '--node', node], {
      cwd: ROOT,
      env: { ...env, JOURNAL_STREAM: `${dev}:${ino}` },
      stdio: ['ignore', 'ignore', stderr],
    });
  const plainLog = await open(join(lab.dir, 'agent-n2.log'), 'a');
  t.after(() => plainLog.close());
  const agents = [
    start(journal, 'n1', journalLog.fd),
    // The variable inherited, but stderr is another file: not the journal.
    start(plain, 'n2', plainLog.fd),
  ];
  t.after(() => {
    for (const agent of agents) agent.kill('SIGKILL');
  });

  const lines = async (node: string) => (await lab.agentLog(node)).split('\n').filter(Boolean);
  const failed = /"level":50/;
  await waitFor(
    'both agents logged an error (Temporal unreachable)',
    async () => ((await lines('n1')).some((l) => failed.test(l)) && (await lines('n2')).some((l) => failed.test(l)) ? true : undefined),
    90_000,
  );
  await Promise.all(agents.map((agent) => new Promise((resolve) => (agent.kill('SIGTERM'), agent.once('exit', resolve)))));

  const n1 = await lines('n1');
  for (const line of n1) {
    const m = /^<(\d)>(\{"level":(\d+).*)$/.exec(line);
    assert.ok(m, `a line without a priority prefix under the journal: ${line}`);
    const expected = { 30: '6', 40: '4', 50: '3', 60: '2' }[Number(m[3]) as 30 | 40 | 50 | 60] ?? '7';
    assert.equal(m[1], expected, `priority of ${line}`);
    JSON.parse(m[2]!);
  }
  assert.ok(n1.some((l) => l.startsWith('<3>')) && n1.some((l) => l.startsWith('<6>')), `errors and information:\n${n1.join('\n')}`);
  for (const line of await lines('n2')) assert.match(line, /^\{"level":/, 'plain JSON when stderr is not the journal stream');
});
