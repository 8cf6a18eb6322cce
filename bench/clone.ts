/**
 * Clone benchmark (issue 13 item 1): `clone` of a debootstrapped Debian root (the cached tree
 * of test/support/debootstrap.ts, ~190 MB, ~7300 entries) onto an empty target, timed from the
 * workflow's start to its result (copy, fix-ups, verification), against a plain
 * `rsync -aHAX --numeric-ids` of the same tree over the same ssh into an empty directory, in
 * the same run, alternated. Then the same again onto the already-cloned targets (nothing
 * changed: what a re-clone costs). Medians of the runs and the ratio clone/plain.
 *
 * Source and target are directories of this machine and ssh goes over the loopback (an sshd
 * on 127.0.0.1 with the key restricted to `rrsync -ro`): it measures the product's overhead
 * over rsync, not a network.
 *
 * Usage: tsx bench/clone.ts [--runs N]   (root; a Temporal dev server is started; see bench/README.md)
 */
import { parseArgs } from 'node:util';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { closeTemporal } from '../test/support/temporal.js';
import { twoNodeWeb, WorkflowCluster, type ExtraActivities } from '../test/support/workflow-cluster.js';
import { TEST_KEY } from '../test/support/cluster-key.js';
import { debootstrapTree } from '../test/support/debootstrap.js';
import { startTestSshd } from '../test/support/sshd.js';
import { createCloneActivities } from '../activities/clone.js';
import { sshShell } from '../src/clone/transfer.js';
import { createExec } from '../src/exec.js';
import { silentLogger } from '../src/log.js';
import { cloneWorkflowId, clusterTaskQueue } from '../workflows/shared.js';
import type { CloneResult } from '../workflows/clone.js';

const { values: opts } = parseArgs({ options: { runs: { type: 'string', default: '3' } } });
const runs = Math.max(1, Number(opts.runs));

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const dir = await mkdtemp(join(tmpdir(), 'haoscar-bench-clone-'));
let cluster: WorkflowCluster | undefined;
const sshd = await startTestSshd(join(dir, 'ssh'));
try {
  const source = await debootstrapTree();
  const bytes = Number((await execa('du', ['-sb', source])).stdout.split(/\s/)[0]);
  type Acts = ReturnType<typeof createCloneActivities>;
  const lab: { c?: WorkflowCluster; acts?: Acts } = {};
  const acts = () => (lab.acts ??= createCloneActivities({
    node: 'n2', cluster: lab.c!.name, key: TEST_KEY, logger: silentLogger, exec: createExec(silentLogger), rsync: '/usr/bin/rsync',
    ssh: sshd.client, heldGroups: () => [],
  }));
  cluster = await WorkflowCluster.start('bench-clone', `${twoNodeWeb({ lease: '{ ttl: 3000ms, margin: 300ms }' })}clone: { sshPort: ${sshd.port} }\n`, {
    extra: (node): ReturnType<ExtraActivities> => (node.name !== 'n2' ? {} : {
      clonePreflight: (r: Parameters<Acts['clonePreflight']>[0]) => acts().clonePreflight(r),
      cloneCopy: (r: Parameters<Acts['cloneCopy']>[0]) => acts().cloneCopy(r),
      cloneFixups: (r: Parameters<Acts['cloneFixups']>[0]) => acts().cloneFixups(r),
      cloneVerify: (r: Parameters<Acts['cloneVerify']>[0]) => acts().cloneVerify(r),
    }),
  });
  lab.c = cluster;
  await cluster.web();
  const c = cluster;
  const shell = sshShell({ host: '127.0.0.1', user: 'root', port: sshd.port, identityFile: sshd.identityFile, knownHostsFile: sshd.knownHostsFile, root: source });

  const plain = async (into: string) => {
    const t = performance.now();
    await execa('rsync', ['-aHAX', '--numeric-ids', '-e', shell, `root@127.0.0.1:${source}/`, `${into}/`]);
    return performance.now() - t;
  };
  const product = async (into: string) => {
    const t = performance.now();
    const handle = await c.client.workflow.start('clone', { workflowId: `${cloneWorkflowId(c.name, 'n2')}/${Date.now()}`, taskQueue: clusterTaskQueue(c.name), args: [{ cluster: c.name, from: 'n1', to: 'n2', targetRoot: into, sourceRoot: source }] });
    const r = (await handle.result()) as CloneResult;
    if (!r.verify?.ok) throw new Error(`the clone did not verify: ${JSON.stringify(r.verify)}`);
    return { ms: performance.now() - t, copyMs: r.copy.durationMs };
  };

  const fresh = { plain: [] as number[], clone: [] as number[], copy: [] as number[] };
  const again = { plain: [] as number[], clone: [] as number[] };
  for (let i = 0; i < runs; i++) {
    const p = join(dir, `plain-${i}`);
    const t = join(dir, `target-${i}`);
    await mkdir(p);
    await mkdir(t);
    fresh.plain.push(await plain(p));
    const r = await product(t);
    fresh.clone.push(r.ms);
    fresh.copy.push(r.copyMs);
    again.plain.push(await plain(p));
    again.clone.push((await product(t)).ms);
    process.stderr.write(`run ${i + 1}/${runs}: plain ${fresh.plain[i]!.toFixed(0)} ms, clone ${fresh.clone[i]!.toFixed(0)} ms (copy ${fresh.copy[i]} ms); again: plain ${again.plain[i]!.toFixed(0)} ms, clone ${again.clone[i]!.toFixed(0)} ms\n`);
    await rm(p, { recursive: true, force: true });
    await rm(t, { recursive: true, force: true });
  }
  const mibs = (ms: number) => (bytes / 1048576 / (ms / 1000)).toFixed(1);
  const line = (what: string, ms: number) => `  ${what.padEnd(44)} ${(ms / 1000).toFixed(2).padStart(7)} s  ${mibs(ms).padStart(7)} MiB/s`;
  process.stdout.write([
    `clone of a debootstrapped root (${(bytes / 1048576).toFixed(0)} MiB) over ssh on the loopback, medians of ${runs} runs:`,
    'onto an empty target:',
    line('plain rsync -aHAX --numeric-ids', median(fresh.plain)),
    line('haoscar clone (workflow start to result)', median(fresh.clone)),
    line('  of which the copy activity\'s rsync', median(fresh.copy)),
    `  ratio clone/plain: ${(median(fresh.clone) / median(fresh.plain)).toFixed(2)}`,
    'again, nothing changed:',
    `  ${'plain rsync -aHAX --numeric-ids'.padEnd(44)} ${(median(again.plain) / 1000).toFixed(2).padStart(7)} s`,
    `  ${'haoscar clone'.padEnd(44)} ${(median(again.clone) / 1000).toFixed(2).padStart(7)} s`,
    `  ratio clone/plain: ${(median(again.clone) / median(again.plain)).toFixed(2)}`,
    '',
  ].join('\n'));
} finally {
  await cluster?.close().catch(() => undefined);
  await sshd.stop().catch(() => undefined);
  await closeTemporal();
  await rm(dir, { recursive: true, force: true });
}
