/**
 * `sudo npm run demo:failover`: a failover, seen in one command.
 *
 * Two nodes (n1, n2), each a network namespace with its own HA-OSCAR agent and lease guard,
 * started through bin/haoscar.js as an administrator starts them; a group `web` with a virtual
 * IP and an HTTP service; the embedded Temporal dev server with its web UI on this machine's
 * 127.0.0.1; and a client namespace requesting the service through the VIP every 20 ms. The
 * demo kills the owner as a power cut would (its link down, every process in its namespace
 * SIGKILLed), waits until the client is served by the other node, prints the outage the client
 * saw and where the failover's history is, and waits for Ctrl-C, which removes everything
 * (namespaces, processes, files). `--once` exits after the failover instead of waiting;
 * `--timing lab` uses the lab tests' 2 s lease instead of the product's 600 ms, for a busy machine.
 *
 * Needs root (network namespaces), `ip`, `arping`, `nft`; the network lab's prerequisites are
 * checked first (test/lab/README.md). Addresses: a free /24 of 10.213.0.0/16, inside the lab only.
 */
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetLab } from '../test/lab/netlab.js';
import { LabPrerequisiteError } from '../test/lab/commands.js';
import { ensureTemporalCli } from '../src/temporal/cli-binary.js';
import { createLogger } from '../src/log.js';
import { LabCluster, GROUP, type ClusterTiming } from '../test/lab/cluster.js';
import { waitFor } from '../test/support/wait.js';
import { failoverWorkflowId, type FailoverResult } from '../workflows/shared.js';

const { values: opts } = parseArgs({
  options: {
    once: { type: 'boolean', default: false },
    'ui-port': { type: 'string', default: '8233' },
    timing: { type: 'string', default: 'default' },
  },
  strict: true,
});
const uiPort = Number(opts['ui-port']);
const say = (line: string) => process.stdout.write(`demo: ${line}\n`);
const fail = (line: string): never => {
  process.stderr.write(`demo:failover: ${line}\n`);
  process.exit(2);
};
if (!Number.isInteger(uiPort) || uiPort < 0 || uiPort > 65535) fail(`--ui-port must be a port number, or 0 for a free one (got '${opts['ui-port']}')`);
/**
 * `default`: the product's timing (lease 600 ms). `lab`: the lab tests' (test/lab/failover-setup.ts),
 * for a machine busy with other work, where the controller's answers to lease confirmations take
 * more than the default lease and the owner rightly lets the group go before the demo kills it.
 */
const TIMINGS: Record<string, ClusterTiming> = {
  default: {},
  lab: { heartbeat: { interval: '100ms', deadtime: '500ms' }, lease: { ttl: '2s', margin: '150ms' }, failover: { verifyTimeout: '500ms' } },
};
const timing = TIMINGS[opts.timing!] ?? fail(`--timing must be default or lab (got '${opts.timing}')`);
if (process.getuid?.() !== 0) fail('needs root to create network namespaces: run `sudo npm run demo:failover`');

let lab: NetLab | undefined;
let cluster: LabCluster | undefined;
let closing: Promise<void> | undefined;
function cleanUp(): Promise<void> {
  closing ??= (async () => {
    say('removing the nodes, the client and the Temporal server...');
    await cluster?.close().catch(() => undefined);
    await lab?.close().catch(() => undefined);
    say('everything removed');
  })();
  return closing;
}
// Not once: Ctrl-C under `npm run` arrives twice (from the terminal, and passed on by npm), and a
// second signal must not kill the demo halfway through removing what it made. For the same
// reason package.json runs this file with `node --import tsx`, not the `tsx` command: tsx's
// parent process relays a Ctrl-C to its child and SIGKILLs the child unless it acknowledges the
// signal within 30 ms, which it did not while the lab's synchronous clean-up ran (or when its
// acknowledgement of the terminal's own Ctrl-C came before the parent listened for it): the
// demo was killed halfway through removing what it made (3 of 8 runs of its test).
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    if (closing) return say('still removing everything, please wait...');
    void cleanUp().then(() => process.exit(0));
  });
}

try {
  lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true });
  say(`lab: nodes n1, n2 and a client in network namespaces on ${lab.bridgeIp.replace(/\.1$/, '.0/24')}; logs in ${lab.dir}`);
  // Started before the cluster's start() asks for it (idempotent), so that it has a UI.
  await lab.startDevServer({ uiPort });
  say(`Temporal dev server (in memory) at ${lab.temporalAddress}; web UI at ${lab.uiUrl}`);
  const started = new LabCluster(lab, timing);
  cluster = started;
  say(`starting the worker and both agents (bin/haoscar.js), group \`web\`: VIP + HTTP service${opts.timing === 'lab' ? ' (the lab tests\' timing: lease 2 s)' : ''}...`);
  await cluster.start();
  const client = await lab.probe(cluster.url, { everyMs: 20, timeoutMs: 300 });
  // Whoever owns the group when the client is served by it: on a busy machine it may move first.
  const owner = await waitFor('the client to be served by the group\'s owner', async () => {
    const g = await started.group();
    return g?.state === 'running' && g.owner !== null && client.lastOk()?.host === g.owner ? g.owner : undefined;
  }, 120_000, 50);
  const other = owner === 'n1' ? 'n2' : 'n1';
  say(`the client requests ${cluster.url} every 20 ms; ${owner} answers`);
  await sleep(1000);

  say(`killing ${owner}: link down, every process in its namespace SIGKILLed (a power cut)...`);
  const killedAt = Date.now();
  await lab.killHost(owner);
  await waitFor(`the client to be served by ${other}`, async () => (client.lastOk()?.host === other ? true : undefined), 120_000, 20);
  await sleep(300);
  const seen = await client.stop();
  const servedAt = seen.results.find((r) => r.ok && r.host === other && r.t >= killedAt)?.t;
  say(`${other} serves the VIP: the client saw an outage of ${Math.round(seen.longestGapMs)} ms (${seen.failures - seen.failuresBeforeFirstOk} failed requests of ${seen.requests}; first answer from ${other} ${servedAt === undefined ? '?' : servedAt - killedAt} ms after the kill)`);

  const id = failoverWorkflowId(cluster.cluster, GROUP);
  const handle = cluster.client.workflow.getHandle(id);
  const result = (await handle.result()) as FailoverResult;
  const p = result.phases;
  say(`the failover's phases (ms): verification ${p.verifyMs ?? '-'}, lease wait ${p.leaseWaitMs ?? '-'}, start ${p.startMs ?? '-'}, total ${p.totalMs ?? '-'}`);
  say(`its history, step by step: ${lab.uiUrl}/namespaces/default/workflows/${encodeURIComponent(id)}`);
  const cli = await ensureTemporalCli({ logger: createLogger({ level: 'warn', name: 'demo' }) });
  say(`  or: ${cli} workflow show --workflow-id '${id}' --address ${lab.temporalAddress}`);
  say(`  every operation of this cluster: ${cli} workflow list --query 'HaCluster="${cluster.cluster}"' --address ${lab.temporalAddress}`);
  if (opts.once) {
    await cleanUp();
    process.exit(0);
  }
  say('press Ctrl-C to remove everything');
  await new Promise(() => undefined);
} catch (err) {
  if (err instanceof LabPrerequisiteError) process.stderr.write(`demo:failover: ${err.message}\n`);
  else {
    process.stderr.write(`demo:failover: failed: ${err instanceof Error ? err.message : String(err)}${lab ? ` (logs in ${lab.dir})` : ''}\n`);
    if (opts.timing === 'default') process.stderr.write('demo:failover: on a machine busy with other work, try `sudo npm run demo:failover -- --timing lab` (a 2 s lease)\n');
  }
  await cleanUp();
  process.exit(1);
}
