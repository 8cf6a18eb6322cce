/**
 * Fencing inside the failover saga (docs/failover.md, step 5; docs/configuration.md#fencing),
 * against a real Temporal dev server, the real controller and failover workflows and the real
 * `fence` activity running a real fence agent: a small executable following the fence-agents
 * convention (key=value lines on stdin, exit 0 = the node is off) that records how it was
 * called. The owner dies (its worker stops: nothing answers the verification); its lease is long
 * (LEASE.ttlMs), so a failover that waited it out would start the group on the other node only
 * after it, and one that fenced may start it long before.
 *
 * - A fence agent that succeeds: run once, by the taking-over node, with action=off against the
 *   old owner; no lease wait; the group starts on the other node well before the old lease ends.
 * - A fence agent that fails: run once, then the lease is waited out (nothing starts before
 *   ttl + margin from the suspicion).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeTemporal } from '../support/temporal.js';
import { WorkflowCluster } from '../support/workflow-cluster.js';
import { waitFor } from '../support/wait.js';

/**
 * Long: the new owner starting well before it shows that the fence, not the lease, made it
 * safe. Not longer: the failing fence's case waits all of it out (a lease over 10 s is
 * failover-long-lease.test.ts's).
 */
const LEASE = { ttlMs: 9000, marginMs: 100 };
/** The verification of the silent owner: long enough that a loaded machine's round trip fits. */
const VERIFY_TIMEOUT_MS = 2000;
const WAIT_MS = 60_000;

const dir = mkdtempSync(join(tmpdir(), 'haoscar-fence-'));
const clusters: WorkflowCluster[] = [];
after(async () => {
  for (const c of clusters) await c.close().catch(() => undefined);
  await closeTemporal();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * A fence agent that writes its standard input and its arguments to `<dir>/<name>.<pid>.call`
 * and exits `status`.
 */
function fenceAgent(name: string, status: number): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh
# Test fence agent (fence-agents convention: options as key=value lines on stdin).
out="${dir}/${name}.$$.call"
{ echo "args=$#"; cat; } > "$out.tmp" && mv "$out.tmp" "$out"
echo "${status === 0 ? 'Success: Powered OFF' : 'Failed: Unable to obtain correct plug status or plug is not available'}"
exit ${status}
`);
  chmodSync(path, 0o755);
  return path;
}

/** The calls the agent `name` recorded, each as its key=value lines. */
function calls(name: string): Record<string, string>[] {
  return readdirSync(dir)
    .filter((f) => f.startsWith(`${name}.`) && f.endsWith('.call'))
    .map((f) => Object.fromEntries(readFileSync(join(dir, f), 'utf8').split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])));
}

function yaml(agent: string): string {
  return `
lease: { ttl: ${LEASE.ttlMs}ms, margin: ${LEASE.marginMs}ms }
failover: { verifyTimeout: ${VERIFY_TIMEOUT_MS}ms }
defaults:
  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }
  healing: { startTimeout: 10s }
nodes:
  - { name: n1, addresses: [127.0.0.1], priority: 10, fence: { command: [${agent}], params: { ip: 10.9.9.1, username: admin, password: s3cret-pw }, timeout: 10s } }
  - { name: n2, addresses: [127.0.0.2], fence: { command: [${agent}], timeout: 10s } }
groups:
  - name: web
    resources:
      - { type: command, name: first, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
      - { type: command, name: second, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }
`;
}

/** n1 (the owner) dies and n2 suspects it; returns when the suspicion was sent. */
async function ownerDies(c: WorkflowCluster): Promise<number> {
  await c.kill('n1');
  const reportedAt = Date.now();
  await c.report('n1', 'suspect', 'n2', 'every link silent');
  return reportedAt;
}

test('a silent owner with a fence agent that succeeds: fenced (action=off, by the taking-over node), no lease wait, the group starts well before the old lease ends', async (t) => {
  const agent = fenceAgent('fence-ok', 0);
  const c = await WorkflowCluster.start('fence-ok', yaml(agent));
  clusters.push(c);
  const before = await c.web();
  const reportedAt = await ownerDies(c);
  const g = await c.settled('n2', WAIT_MS);
  const result = await c.failoverResult();
  assert.equal(result.outcome, 'moved');
  assert.equal(result.from, 'n1');
  assert.equal(result.to, 'n2');
  assert.equal(g.epoch, before.epoch + 1);
  assert.ok(result.phases.verifyMs! >= VERIFY_TIMEOUT_MS - 50, `the owner was verified first, and did not answer (${result.phases.verifyMs} ms)`);
  // The fence agent really ran: once, from n2 (the node taking over), against n1.
  assert.deepEqual(c.node('n2').fenceRuns.map((r) => [r.victim, r.fenced]), [['n1', true]]);
  assert.deepEqual(c.node('n1').fenceRuns, []);
  const recorded = calls('fence-ok');
  assert.equal(recorded.length, 1, 'the fence agent was run once');
  // The fence-agents convention: no arguments, the params in order, then action, nodename, port.
  assert.deepEqual(recorded[0], { args: '0', ip: '10.9.9.1', username: 'admin', password: 's3cret-pw', action: 'off', nodename: 'n1', port: 'n1' });
  assert.ok(result.phases.fenceMs !== undefined, 'the fence is a phase of the result');
  assert.ok(!result.phases.leaseWaitMs, `fenced: no lease wait (leaseWaitMs ${result.phases.leaseWaitMs})`);
  // Not only the phases: the new owner's first start came long before the old lease would end.
  assert.equal(c.node('n2').startOrders.length, 2, 'n2 was ordered to start the two resources, once');
  const firstStart = c.node('n2').startOrders[0]!;
  assert.ok(firstStart < reportedAt + LEASE.ttlMs, `n2 started ${firstStart - reportedAt} ms after the suspicion; the old lease ends ${LEASE.ttlMs + LEASE.marginMs} ms after it`);
  assert.ok(firstStart >= c.node('n2').fenceRuns[0]!.at, 'nothing started before the fence');
  t.diagnostic(`fenced in ${result.phases.fenceMs} ms; n2 started ${firstStart - reportedAt} ms after the suspicion (lease ${LEASE.ttlMs} ms)`);
  await c.close();
});

test('a silent owner with a fence agent that fails: the fence is tried, then the old lease is waited out before anything starts', async (t) => {
  const agent = fenceAgent('fence-fails', 1);
  const c = await WorkflowCluster.start('fence-fails', yaml(agent));
  clusters.push(c);
  const before = await c.web();
  const reportedAt = await ownerDies(c);
  // The fence runs right after the verification, long before the lease ends.
  await waitFor('the fence agent was run', () => calls('fence-fails').length > 0, WAIT_MS, 50);
  const g = await c.settled('n2', WAIT_MS);
  const result = await c.failoverResult();
  assert.equal(result.outcome, 'moved');
  assert.equal(g.epoch, before.epoch + 1);
  assert.deepEqual(c.node('n2').fenceRuns.map((r) => [r.victim, r.fenced]), [['n1', false]]);
  assert.equal(calls('fence-fails').length, 1, 'tried once (a silent owner is covered by its lease; only a failed stop retries the fence)');
  assert.equal(calls('fence-fails')[0]!.action, 'off');
  assert.ok(result.phases.leaseWaitMs !== undefined && result.phases.leaseWaitMs > 0, `the old lease was waited out (leaseWaitMs ${result.phases.leaseWaitMs})`);
  assert.equal(c.node('n2').startOrders.length, 2, 'n2 was ordered to start the two resources, once');
  const firstStart = c.node('n2').startOrders[0]!;
  assert.ok(firstStart >= reportedAt + LEASE.ttlMs + LEASE.marginMs, `n2 started ${firstStart - reportedAt} ms after the suspicion, not before the old lease ended (${LEASE.ttlMs + LEASE.marginMs} ms)`);
  t.diagnostic(`n2 started ${firstStart - reportedAt} ms after the suspicion; lease wait ${result.phases.leaseWaitMs} ms`);
  await c.close();
});
