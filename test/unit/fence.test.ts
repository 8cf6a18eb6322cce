import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { FenceSpec } from '../../src/config/types.js';
import { createExec } from '../../src/exec.js';
import { fenceAgentInput, isSecretParam, maskFenceParams, runFenceAgent } from '../../src/fence.js';
import { silentLogger } from '../../src/log.js';

const PASSWORD = 's3cr3t-pw';

/**
 * Small real fence agents in the fence-agents manner: they read key=value lines on stdin
 * (kept in stdin.txt for the test to read) and exit 0 when the node is off.
 */
const AGENTS = {
  ok: `#!/bin/sh
cat > "$(dirname "$0")/stdin.txt"
echo "Success: Powered OFF"
exit 0
`,
  fails: `#!/bin/sh
cat > "$(dirname "$0")/stdin.txt"
# A verbose agent may echo what it sent, password included.
echo "Sent: ${PASSWORD}" >&2
echo "Failed: Unable to obtain correct plug status or plug is not available" >&2
exit 1
`,
  // What Debian 12's fence_ipmilan prints when its BMC does not answer (Python 3.11 warns about
  // fencing.py's import first; fencing.py logs with a timestamp and blank lines).
  python: `#!/bin/sh
cat > "$(dirname "$0")/stdin.txt"
cat >&2 <<'EOF'
/usr/sbin/fence_ipmilan:5: DeprecationWarning: 'pipes' is deprecated and slated for removal in Python 3.13
  from pipes import quote
2026-12-07 14:24:10,506 ERROR: Connection timed out



EOF
exit 1
`,
  hangs: `#!/bin/sh
cat > "$(dirname "$0")/stdin.txt"
# exec: the timeout's SIGKILL then hits the sleeping process itself.
exec sleep 30
`,
} as const;

function agentDir(t: TestContext): { agent: (name: keyof typeof AGENTS) => string; stdin: () => string } {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-fence-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return {
    agent: (name) => {
      const path = join(dir, `fence_${name}`);
      writeFileSync(path, AGENTS[name]);
      chmodSync(path, 0o755);
      return path;
    },
    stdin: () => readFileSync(join(dir, 'stdin.txt'), 'utf8'),
  };
}

function spec(command: string, overrides: Partial<FenceSpec> = {}): FenceSpec {
  return {
    command: [command],
    params: { ip: '10.213.250.5', username: 'admin', password: PASSWORD, lanplus: '1' },
    action: 'off',
    timeoutMs: 5_000,
    ...overrides,
  };
}

/** A logger whose every line is kept, to check that no secret is written. */
function capturingLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines };
}

void test('fenceAgentInput: params in order, then action, nodename and port', () => {
  assert.equal(
    fenceAgentInput({ params: { ip: '10.0.0.5', username: 'admin', password: 'pw' }, action: 'reboot' }, 'node2'),
    'ip=10.0.0.5\nusername=admin\npassword=pw\naction=reboot\nnodename=node2\nport=node2\n',
  );
});

void test('fenceAgentInput: a configured plug or port is kept and no port is added', () => {
  assert.equal(fenceAgentInput({ params: { ip: 'pdu1', plug: '7' }, action: 'off' }, 'node2'), 'ip=pdu1\nplug=7\naction=off\nnodename=node2\n');
  assert.equal(fenceAgentInput({ params: { port: 'vm-node2' }, action: 'off' }, 'node2'), 'port=vm-node2\naction=off\nnodename=node2\n');
});

void test('fenceAgentInput: action and nodename come from the spec and the victim only', () => {
  assert.equal(fenceAgentInput({ params: { action: 'on', nodename: 'node9' }, action: 'off' }, 'node2'), 'action=off\nnodename=node2\nport=node2\n');
});

void test('fenceAgentInput refuses a line break that would inject a line', () => {
  assert.throws(() => fenceAgentInput({ params: { ip: 'x\naction=on' }, action: 'off' }, 'node2'), /fence parameter ip contains a line break/);
  assert.throws(() => fenceAgentInput({ params: {}, action: 'off' }, 'node2\naction=on'), /fence parameter nodename contains a line break/);
});

void test('secret params: anything with pass, secret or key in its name', () => {
  const table: [string, boolean][] = [
    ['passwd', true],
    ['password', true],
    ['snmp_priv_passwd', true],
    ['passwd_script', true],
    ['client_secret', true],
    ['api_key', true],
    ['ip', false],
    ['username', false],
    ['plug', false],
    ['lanplus', false],
  ];
  for (const [key, secret] of table) assert.equal(isSecretParam(key), secret, key);
  assert.deepEqual(maskFenceParams({ ip: 'a', passwd: 'b', api_key: 'c' }), { ip: 'a', passwd: '***', api_key: '***' });
});

void test('a real agent that exits 0: fenced, with the exact stdin it was given', async (t) => {
  const dir = agentDir(t);
  const { logger, lines } = capturingLogger();
  const result = await runFenceAgent(spec(dir.agent('ok')), 'node2', { exec: createExec(logger), logger });
  assert.deepEqual(result, { fenced: true, detail: 'Success: Powered OFF' });
  assert.equal(dir.stdin(), `ip=10.213.250.5\nusername=admin\npassword=${PASSWORD}\nlanplus=1\naction=off\nnodename=node2\nport=node2\n`);
  assert.ok(lines.length > 0, 'fencing is logged');
  assert.ok(lines.every((line) => !line.includes(PASSWORD)), 'the password is never logged');
  assert.ok(lines.some((line) => line.includes('"password":"***"')), 'the params are logged masked');
});

void test('a real agent that exits 1: not fenced, with its exit code and stderr, password masked', async (t) => {
  const dir = agentDir(t);
  const { logger, lines } = capturingLogger();
  const result = await runFenceAgent(spec(dir.agent('fails'), { action: 'reboot' }), 'node2', { exec: createExec(logger), logger });
  assert.deepEqual(result, {
    fenced: false,
    detail: 'fence agent exited 1: Sent: *** | Failed: Unable to obtain correct plug status or plug is not available',
  });
  assert.match(dir.stdin(), /^action=reboot$/m);
  assert.ok(lines.every((line) => !line.includes(PASSWORD)), 'the password is never logged');
});

void test("a fencing.py agent's failure: its own error, without Python's warnings and fencing.py's timestamps", async (t) => {
  const { agent } = agentDir(t);
  const result = await runFenceAgent(spec(agent('python')), 'n1', { exec: createExec(silentLogger), logger: silentLogger });
  assert.deepEqual(result, { fenced: false, detail: 'fence agent exited 1: ERROR: Connection timed out' });
});

void test('an agent that outlives the timeout: not fenced, and the caller is not kept waiting', async (t) => {
  const dir = agentDir(t);
  const started = Date.now();
  const result = await runFenceAgent(spec(dir.agent('hangs'), { timeoutMs: 300 }), 'node2', { exec: createExec(silentLogger), logger: silentLogger });
  assert.deepEqual(result, { fenced: false, detail: 'fence agent timed out after 300 ms' });
  assert.ok(Date.now() - started < 5_000, 'the timeout cut the agent short');
  assert.match(dir.stdin(), /^nodename=node2$/m, 'the agent had read its input');
});

void test('an agent that is not installed: not fenced, no throw', async () => {
  const result = await runFenceAgent(spec('/nonexistent/fence_ipmilan'), 'node2', { exec: createExec(silentLogger), logger: silentLogger });
  assert.equal(result.fenced, false);
  assert.match(result.detail, /^fence agent could not be run/);
});

void test('a victim name with a line break is refused before anything runs', async () => {
  let ran = false;
  const result = await runFenceAgent(spec('/bin/true'), 'node2\naction=on', {
    exec: () => {
      ran = true;
      return Promise.resolve({ exitCode: 0, stdout: '', stderr: '' });
    },
    logger: silentLogger,
  });
  assert.deepEqual(result, { fenced: false, detail: 'fence parameter nodename contains a line break' });
  assert.equal(ran, false);
});
