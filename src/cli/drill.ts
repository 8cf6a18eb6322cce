/**
 * `haoscar drill GROUP --probe URL`: a planned move of a group on a live cluster, measured from
 * where the command runs. It refuses a cluster that `status --check` does not call OK (unless
 * --force), probes the service for a baseline, starts the switchover (or failover) as
 * `haoscar switchover`/`failover` do, keeps probing and asking ARP who holds the VIP, then reads
 * the operation's history: phases, and what the nodes reported holding. The report ends with a
 * verdict against --rto. docs/drill.md.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { loadConfig } from '../config/load.js';
import { formatDuration } from '../config/duration.js';
import type { Config } from '../config/types.js';
import { connectClient, resolveConnection } from '../temporal/connection.js';
import { queryOwnership } from '../agent/controller-link.js';
import { createExec } from '../exec.js';
import { createLogger } from '../log.js';
import { fetchRun } from '../history/fetch.js';
import { operationStory, type OperationStory } from '../history/timeline.js';
import { failoverWorkflowId, type Ownership } from '../../workflows/shared.js';
import { ArpWatch, arpInterface } from '../drill/arp.js';
import { nodeReports, type NodeReports } from '../drill/holders.js';
import { HttpProber } from '../drill/probe.js';
import { drillVerdict, renderDrillMarkdown, renderDrillText, type DrillOperation, type DrillReport } from '../drill/report.js';
import { CHECK, statusCheck } from './status-text.js';
import { checkTarget, startSwitchover } from './switchover.js';
import { startFailover } from './failover.js';
import { CliError, EXIT, ExitWith } from './errors.js';
import { printJson } from './output.js';
import { durationArgument } from './options.js';

/** Exit codes of a drill (docs/drill.md). */
export const DRILL_EXIT = { pass: EXIT.ok, fail: EXIT.failure, refused: EXIT.usage } as const;

/** The longest a drill waits for its operation to end. */
const MAX_OPERATION_MS = 10 * 60_000;
/** After the baseline, how long it waits at most for the service's first answer. */
const MAX_FIRST_ANSWER_MS = 10_000;
/** After the operation, how long it waits at most for the service to answer again. */
const MAX_RECOVERY_MS = 30_000;


function probeUrl(value: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError('expected an http:// or https:// URL, such as http://10.0.0.100/');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InvalidArgumentError('expected an http:// or https:// URL');
  return url;
}

interface DrillOptions {
  config: string;
  probe: URL;
  to?: string;
  kind: 'switchover' | 'failover';
  rto: number;
  every: number;
  probeTimeout: number;
  baseline: number;
  after: number;
  interface?: string;
  arp: boolean;
  force?: boolean;
  json?: boolean;
  report?: string;
  reason?: string;
  timeout: number;
}

const say = (line: string) => process.stderr.write(`drill: ${line}\n`);

export function drillCommand(): Command {
  return new Command('drill')
    .description('move a group on a live cluster while probing its service from here, and report the client-observed outage, the phases, whether two nodes ever held it, and a verdict against --rto (exit 0 PASS, 1 FAIL, 2 refused)')
    .argument('<group>', 'the resource group')
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .requiredOption('--probe <url>', "the service's URL as its clients use it (through the VIP): GET every --every", probeUrl)
    .option('-t, --to <node>', "the node to move it to (default: the group's first node, in preference order, that is not its owner)")
    .addOption(new Option('--kind <kind>', 'switchover (planned: resync, stop, start) or failover (the failover workflow an operator starts)').choices(['switchover', 'failover']).default('switchover'))
    .option('--rto <duration>', 'the recovery time objective: a longer client-observed outage fails the drill', durationArgument(1, 'a duration such as 2s or 500ms'), 5000)
    .option('--every <duration>', 'time between probe requests', durationArgument(5, 'a duration of at least 5ms'), 50)
    .option('--probe-timeout <duration>', 'a probe request not answered after this long fails', durationArgument(10, 'a duration of at least 10ms'), 1000)
    .option('--baseline <duration>', 'probe for this long before the move (the service must answer)', durationArgument(100, 'a duration of at least 100ms'), 2000)
    .option('--after <duration>', 'go on probing this long after the operation ended (and until the service answers, at most 30s more)', durationArgument(0, 'a duration'), 2000)
    .option('--interface <name>', 'the interface to ask ARP on (default: the one `ip route get VIP` names)')
    .option('--no-arp', 'do not ask ARP who holds the VIP')
    .option('--force', 'drill even when `haoscar status --check` does not say OK')
    .option('--json', 'print the report as JSON')
    .option('--report <file>', 'also write the report as Markdown to this file')
    .option('-r, --reason <text>', 'why (kept in the workflow history)')
    .option('--timeout <duration>', "how long to wait for Temporal's answers", durationArgument(100, 'a duration of at least 100ms'), 10_000)
    .action(async (groupName: string, opts: DrillOptions) => {
      const config = await loadConfig(opts.config);
      const group = config.groups.find((g) => g.name === groupName);
      if (!group) throw new CliError(`unknown group '${groupName}' (known: ${config.groups.map((g) => g.name).join(', ') || 'none'})`, EXIT.usage);
      if (opts.to !== undefined) checkTarget(config, groupName, opts.to);
      if (opts.interface !== undefined && !/^[\w.:@-]{1,15}$/.test(opts.interface)) throw new CliError(`--interface '${opts.interface}' is not an interface name`, EXIT.usage);
      const client = await connectClient(await resolveConnection(config.temporal));
      try {
        await drill(client, config, groupName, opts);
      } finally {
        await client.connection.close();
      }
    });
}

async function askController(client: Client, cluster: string, timeoutMs: number): Promise<Ownership> {
  try {
    return await client.withDeadline(Date.now() + timeoutMs, () => queryOwnership(client, cluster));
  } catch (err) {
    throw new CliError(`the controller of cluster '${cluster}' gave no answer within ${formatDuration(timeoutMs)} (${(err as Error).message}): the drill needs it; nothing was moved`, EXIT.unavailable);
  }
}

/** The VIP of the group the drill asks ARP about (the first one), without its prefix length. */
function vipOf(config: Config, groupName: string): string | undefined {
  const r = config.groups.find((g) => g.name === groupName)?.resources.find((x) => x.type === 'vip');
  return r && r.type === 'vip' ? r.address.split('/')[0] : undefined;
}

async function drill(client: Client, config: Config, groupName: string, opts: DrillOptions): Promise<void> {
  const group = config.groups.find((g) => g.name === groupName)!;
  const state = await askController(client, config.cluster, opts.timeout);
  const before = state.groups[groupName];
  const check = statusCheck(state, undefined, { maxLagMs: 5 * 60_000 });
  if (check.code !== CHECK.ok && !opts.force) {
    throw new CliError(`refused: the cluster is not healthy (${check.line}); a drill moves a group on a live cluster and is run on a healthy one (--force to drill anyway); nothing was moved`, DRILL_EXIT.refused);
  }
  const owner = before?.owner ?? undefined;
  const target = opts.to ?? (opts.kind === 'switchover' ? group.nodes.find((n) => n !== owner && state.nodes[n]?.state === 'up') : undefined);
  if (opts.kind === 'switchover' && target === undefined) throw new CliError(`refused: no node other than ${owner ?? 'the owner'} is up to take ${groupName}; nothing was moved`, DRILL_EXIT.refused);
  if (target !== undefined && target === owner) throw new CliError(`refused: ${groupName} already runs on ${target}: a drill moves it (--to another node); nothing was moved`, DRILL_EXIT.refused);

  // What can be seen from here, decided before anything moves.
  const exec = createExec(createLogger({ level: process.env.HAOSCAR_LOG_LEVEL ?? 'warn', name: 'drill' }));
  const vip = vipOf(config, groupName);
  let arpNotChecked: string | undefined;
  let iface = opts.interface;
  if (!opts.arp) arpNotChecked = 'turned off (--no-arp)';
  else if (vip === undefined) arpNotChecked = `group ${groupName} has no VIP`;
  // IPv6 has no ARP; asking neighbour discovery who holds it is not done (yet).
  else if (vip.includes(':')) arpNotChecked = `${vip} is IPv6 (the drill asks ARP only, IPv4)`;
  else if (iface === undefined) {
    const found = await arpInterface(exec, vip);
    if ('notChecked' in found) arpNotChecked = found.notChecked;
    else iface = found.dev;
  }

  const startedAt = Date.now();
  const prober = new HttpProber(opts.probe, opts.every, opts.probeTimeout);
  const arp = arpNotChecked === undefined ? new ArpWatch(exec, vip!, iface!) : undefined;
  say(`baseline: probing ${opts.probe.href} every ${formatDuration(opts.every)} for ${formatDuration(opts.baseline)}${arp ? `; asking ARP who holds ${vip} on ${iface}` : `; ARP not checked: ${arpNotChecked}`}`);
  await sleep(opts.baseline);
  // A first answer slower than the baseline (a loaded client or service): waited for, bounded;
  // the failures before it are not an outage (probe-summary.ts failuresBeforeFirstOk).
  for (const until = Date.now() + MAX_FIRST_ANSWER_MS; prober.okCount() === 0 && Date.now() < until;) await sleep(opts.every);
  if (prober.okCount() === 0) {
    await prober.stop();
    await arp?.stop();
    const last = prober.latest();
    throw new CliError(`refused: ${opts.probe.href} gave no successful answer in the ${formatDuration(opts.baseline)} baseline and ${formatDuration(MAX_FIRST_ANSWER_MS)} more (${last ? (last.error ?? `HTTP ${last.status}`) : 'no answer'}): there is no service to measure; nothing was moved`, DRILL_EXIT.refused);
  }

  const reason = opts.reason ?? `drill by ${userInfo().username} with haoscar drill`;
  let handle: WorkflowHandleWithFirstExecutionRunId;
  try {
    handle = opts.kind === 'switchover'
      ? await startSwitchover(client, config, groupName, target!, reason)
      : await startFailover(client, config.cluster, groupName, { reason, ...(opts.reason ? { operatorReason: opts.reason } : {}), ...(target ? { to: target } : {}) });
  } catch (err) {
    await prober.stop();
    await arp?.stop();
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new CliError(`refused: an operation on group '${groupName}' is already running (${err.workflowId}); nothing was moved`, DRILL_EXIT.refused);
    throw err;
  }
  const opStartedAt = Date.now();
  say(`${opts.kind} started: workflow ${handle.workflowId}${target ? ` (to ${target})` : ''}`);
  let failure: string | undefined;
  const ended = await Promise.race([
    handle.result().then(() => true, (err: unknown) => {
      failure = err instanceof WorkflowFailedError ? innermost(err) : (err as Error).message;
      return true;
    }),
    sleep(MAX_OPERATION_MS).then(() => false),
  ]);
  if (!ended) failure = `still running after ${formatDuration(MAX_OPERATION_MS)}`;
  const opEndedAt = Date.now();
  say(`${opts.kind} ended after ${formatDuration(opEndedAt - opStartedAt)}${failure ? `: ${failure}` : ''}; probing ${formatDuration(opts.after)} more`);
  await sleep(opts.after);
  // The service not answering yet: wait for it (bounded), so that the outage is measured whole.
  for (const until = Date.now() + MAX_RECOVERY_MS; !prober.latest()?.ok && Date.now() < until;) await sleep(opts.every);
  const { summary, samples } = await prober.stop();
  const arpReport = await arp?.stop();

  const operation = await readOperation(client, handle, opts, { opStartedAt, opEndedAt, failure, epochBefore: before?.epoch });
  let nodes: NodeReports | { notChecked: string };
  try {
    const history = opts.kind === 'switchover'
      ? (await fetchRun(client, { workflowId: failoverWorkflowId(config.cluster, groupName), timeoutMs: opts.timeout })).history
      : operation.history;
    nodes = nodeReports(history, { group: groupName, ...(owner ? { owner } : {}), ...(before ? { ownerEpoch: before.epoch } : {}), since: startedAt });
  } catch (err) {
    nodes = { notChecked: `the failover's history could not be read: ${(err as Error).message}` };
  }
  const answers = new Map<string, number>();
  for (const s of samples) if (s.ok && s.body !== undefined) answers.set(s.body, (answers.get(s.body) ?? 0) + 1);
  const partial: Omit<DrillReport, 'verdict'> = {
    cluster: config.cluster,
    group: groupName,
    url: opts.probe.href,
    rtoMs: opts.rto,
    startedAt,
    endedAt: Date.now(),
    precheck: { code: check.code, line: check.line, forced: opts.force === true },
    operation: operation.report,
    outage: summary,
    answers: [...answers].map(([body, count]) => ({ body, count })),
    holders: {
      nodes,
      here: arpReport
        ? { address: arpReport.address, interface: arpReport.interface, macs: arpReport.macs, duplicates: arpReport.duplicates, errors: arpReport.errors, roundCount: arpReport.rounds.length }
        : { notChecked: arpNotChecked! },
    },
  };
  const report: DrillReport = { ...partial, verdict: drillVerdict(partial) };
  if (opts.json) printJson(report);
  else process.stdout.write(renderDrillText(report));
  if (opts.report !== undefined) {
    await writeFile(opts.report, renderDrillMarkdown(report));
    say(`report written to ${opts.report}`);
  }
  if (!report.verdict.pass) throw new ExitWith(DRILL_EXIT.fail);
}

/** The operation as its history tells it (phases, outcome, epochs); what the drill saw when the history cannot be read. */
async function readOperation(client: Client, handle: WorkflowHandleWithFirstExecutionRunId, opts: DrillOptions, seen: { opStartedAt: number; opEndedAt: number; failure: string | undefined; epochBefore: number | undefined }): Promise<{ report: DrillOperation; history: Awaited<ReturnType<typeof fetchRun>>['history'] }> {
  const run = await fetchRun(client, { workflowId: handle.workflowId, runId: handle.firstExecutionRunId, timeoutMs: opts.timeout });
  const story: OperationStory = operationStory(run);
  const failure = story.failure ?? seen.failure;
  return {
    history: run.history,
    report: {
      workflowId: handle.workflowId,
      runId: run.runId,
      kind: opts.kind,
      status: story.status,
      ...(story.outcome !== undefined ? { outcome: story.outcome } : {}),
      ...(failure !== undefined ? { failure } : {}),
      ...(story.from !== undefined ? { from: story.from } : {}),
      ...(story.to !== undefined ? { to: story.to } : {}),
      ...(seen.epochBefore !== undefined ? { epochBefore: seen.epochBefore } : {}),
      ...(story.epoch !== undefined ? { epoch: story.epoch } : {}),
      phases: story.phases,
      startedAt: story.startedAt || seen.opStartedAt,
      endedAt: story.endedAt ?? seen.opEndedAt,
    },
  };
}

/** The innermost failure's message. */
function innermost(err: Error): string {
  let e: Error = err;
  while (e.cause instanceof Error) e = e.cause;
  return e.message;
}
