/**
 * Lease confirmation latency (issue 14 item 2): the controller's lease memo (what agents read now)
 * against its signed `ownership` query (what they read before, and still do when the memo cannot
 * confirm), idle and with both cores busy.
 *
 * A real Temporal dev server, the real controller run by a real workflow worker with the cluster's
 * codec, two simulated nodes (test/support/workflow-cluster.ts: node workers in this process), and
 * the agent's own code for each path: `readLeaseMemo` (DescribeWorkflowExecution plus the history
 * since the last read) and `queryOwnershipAuthenticated` (DescribeWorkflowExecution and the query
 * with a nonce, answered by the workflow worker). The workflow worker runs in this process, as in
 * an agent with `agent.workflows: true`; with the busy loops it competes for the CPU as a separate
 * `haoscar worker` would. The load is one `node -e 'for(;;){}'` per core (stress-ng is not needed).
 *
 * Each sample asks both paths one after the other (alternating which goes first), every ttl/3 of
 * the product's default lease (200 ms), and checks that both name the owner. Reported per path and
 * load: p50, p99 and max, and how many took longer than half the ttl (the agent's "slow" warning)
 * and longer than the ttl (600 ms: a lease lost, unless the next one comes in time).
 *
 * Usage: tsx bench/lease-confirmation.ts [--samples N (>= 50, default 200)] [--ttl-ms N (default 600)]
 * Needs the Temporal CLI (TEMPORAL_CLI or ~/.cache/haoscar/bin/temporal). Not run by CI.
 */
import { parseArgs } from 'node:util';
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { closeTemporal } from '../test/support/temporal.js';
import { twoNodeWeb, WorkflowCluster } from '../test/support/workflow-cluster.js';
import { TEST_KEY } from '../test/support/cluster-key.js';
import { queryOwnershipAuthenticated, readLeaseMemo } from '../src/agent/controller-link.js';
import type { LeaseMemoTrail } from '../src/auth/ownership-answer.js';

const { values: opts } = parseArgs({ options: { samples: { type: 'string', default: '200' }, 'ttl-ms': { type: 'string', default: '600' } }, strict: true });
const SAMPLES = Number(opts.samples);
const TTL_MS = Number(opts['ttl-ms']);
if (!Number.isInteger(SAMPLES) || SAMPLES < 50) throw new Error(`--samples must be an integer >= 50 (got '${opts.samples}')`);
if (!Number.isFinite(TTL_MS) || TTL_MS < 100) throw new Error(`--ttl-ms must be a number >= 100 (got '${opts['ttl-ms']}')`);

type Path = 'memo' | 'query';
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)]!;
};

function busyLoops(): ChildProcess[] {
  return Array.from({ length: availableParallelism() }, () => spawn(process.execPath, ['-e', 'for(;;){}'], { stdio: 'ignore' }));
}

const c = await WorkflowCluster.start('bench-lease', twoNodeWeb({ lease: `{ ttl: ${TTL_MS}ms, margin: 100ms }`, verifyTimeout: '300ms' }));
const loads: ChildProcess[] = [];
try {
  const owner = (await c.web()).owner;
  let trail: LeaseMemoTrail | undefined;
  const ask: Record<Path, () => Promise<string | null | undefined>> = {
    memo: async () => {
      const read = await readLeaseMemo(c.client, c.name, TEST_KEY, trail);
      trail = read.trail;
      if (!read.verdict.ok) throw new Error(`the memo did not confirm: ${read.verdict.why}`);
      return read.verdict.view.groups.web?.owner;
    },
    query: async () => (await queryOwnershipAuthenticated(c.client, c.name, TEST_KEY)).groups.web?.owner,
  };
  const rows: string[] = [];
  for (const load of ['idle', 'both cores busy'] as const) {
    if (load !== 'idle') loads.push(...busyLoops());
    await sleep(1000);
    const took: Record<Path, number[]> = { memo: [], query: [] };
    const failed: Record<Path, number> = { memo: 0, query: 0 };
    const loadAtStart = loadavg()[0]!;
    for (let i = 0; i < SAMPLES; i++) {
      const started = performance.now();
      for (const path of (i % 2 ? ['memo', 'query'] : ['query', 'memo']) as Path[]) {
        const t0 = performance.now();
        const named = await c.client.withDeadline(Date.now() + 5000, ask[path]).catch(() => undefined);
        if (named === owner) took[path].push(performance.now() - t0);
        else failed[path] += 1;
      }
      await sleep(Math.max(0, TTL_MS / 3 - (performance.now() - started)));
    }
    for (const path of ['query', 'memo'] as Path[]) {
      const xs = took[path];
      const over = (ms: number) => xs.filter((x) => x > ms).length;
      rows.push(`${load.padEnd(16)} ${path.padEnd(6)} ${String(Math.round(quantile(xs, 0.5))).padStart(6)} ${String(Math.round(quantile(xs, 0.99))).padStart(6)} ${String(Math.round(Math.max(...xs))).padStart(6)}   ${String(over(TTL_MS / 2)).padStart(4)} ${String(over(TTL_MS)).padStart(4)}   ${failed[path]}   (load ${loadAtStart.toFixed(1)})`);
    }
  }
  process.stdout.write(`\nLease confirmation latency, ${SAMPLES} samples per path and load, one every ${Math.round(TTL_MS / 3)} ms (ms; ttl ${TTL_MS} ms)\n`);
  process.stdout.write(`load             path      p50    p99    max   >ttl/2 >ttl  failed\n${rows.join('\n')}\n`);
} finally {
  for (const p of loads) p.kill('SIGKILL');
  await c.close();
  await closeTemporal();
}
