/**
 * A two-node cluster for workflow tests: the real controller, failover and switchover
 * workflows on a real Temporal dev server, the real cluster and controller activities, and two
 * "nodes" in this process (n1 preferred, n2), each its own GroupRuntime with scripted resources
 * and the real node activities on its own task queue, as in failover.test.ts. A node "dies"
 * when its worker is shut down (nothing answers on its queue any more) and "comes back" holding
 * nothing, as a rebooted node would. What the nodes are ordered to do is recorded with the time
 * it arrived, so that a test can check *when* something happened, not only that it did.
 */
import assert from 'node:assert/strict';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { ServiceRegistry } from '../../src/agent/services.js';
import { GroupRuntime } from '../../src/agent/groups.js';
import type { ControllerLink } from '../../src/agent/controller-link.js';
import { ResourceMonitor } from '../../src/monitor/monitor.js';
import { createServiceActivities } from '../../activities/service.js';
import { TEST_KEY, testAuthActivities, testLink } from './cluster-key.js';
import { createNodeAuth, type AuthActivities } from '../../activities/auth.js';
import { workflowWorkerDataConverter } from '../../src/auth/ownership-answer.js';
import { createOwnershipActivities } from '../../activities/ownership.js';
import { createClusterActivities, type ClusterActivities } from '../../activities/cluster.js';
import { createControllerActivities, type ControllerActivities } from '../../activities/controller.js';
import { createExec } from '../../src/exec.js';
import { createAlertActivities } from '../../activities/alerts.js';
import { silentLogger } from '../../src/log.js';
import { clusterTaskQueue, controllerWorkflowId, failoverWorkflowId, nodeTaskQueue, ownershipQuery, switchoverWorkflowId, type CandidateSyncState, type FailoverResult, type GroupOwnership, type NodeEdge, type Ownership } from '../../workflows/shared.js';
import { ScriptedService } from './scripted-service.js';
import { waitFor } from './wait.js';
import { testClient, testWorkerConnection, testWorkflowBundle, uniqueName } from './temporal.js';

export const NODES = ['n1', 'n2'] as const;

/** `state` as node `node`'s agent answers `syncState` (call it inside that activity): signed over the failover's nonce. */
export function signedSyncState(cluster: string, node: string, state: CandidateSyncState, nonce: string | undefined): CandidateSyncState {
  return createNodeAuth({ cluster, node, key: TEST_KEY, logger: silentLogger }).signAnswer(state, nonce);
}

/** Activities a test adds to (or puts in place of) a node's real ones, e.g. a scripted `resyncGroup`. */
export type ExtraActivities = (node: WorkflowTestNode) => Record<string, (...args: never[]) => Promise<unknown>>;
/**
 * Activities a test puts in place of the workflow worker's real cluster, controller and auth ones,
 * given the real ones, e.g. an `endOperation` that returns late or a slow report check.
 */
export type WorkflowWorkerActivities = (real: ClusterActivities & ControllerActivities & AuthActivities) => Partial<ClusterActivities & ControllerActivities & AuthActivities>;

export interface WorkflowTestNode {
  name: string;
  groups: GroupRuntime;
  services: Map<string, ScriptedService>;
  /** When each `startResource` order arrived here (ms since the epoch). */
  startOrders: number[];
  /** Each `fence` activity this node ran: against whom, when it began, what the agent answered. */
  fenceRuns: { victim: string; at: number; fenced?: boolean }[];
  worker?: Worker;
  running?: Promise<void>;
}

export class WorkflowCluster {
  readonly nodes = new Map<string, WorkflowTestNode>();
  readonly link: ControllerLink;
  private readonly workers: Worker[] = [];
  private readonly runs: Promise<void>[] = [];

  private constructor(readonly name: string, readonly config: Config, readonly client: Client, private readonly extra?: ExtraActivities) {
    // An agent that holds the cluster secret: its reports are signed (docs/security.md).
    this.link = testLink(client, name);
  }

  /**
   * Starts the workflow worker and both node workers, reports n1 then n2 up, and waits until
   * the group `web` runs on n1 with no operation under way.
   * @param body the haoscar.yaml without its `cluster:` line (nodes n1 and n2, a group `web`)
   */
  static async start(prefix: string, body: string, opts: { extra?: ExtraActivities; workflowActivities?: WorkflowWorkerActivities } = {}): Promise<WorkflowCluster> {
    const name = uniqueName(prefix);
    const c = new WorkflowCluster(name, parseConfig(`cluster: ${name}\n${body}`), await testClient(), opts.extra);
    const real = { ...createClusterActivities({ config: c.config }), ...createControllerActivities({ client: c.client, key: TEST_KEY }), ...testAuthActivities(c.config), ...createAlertActivities({ config: c.config, exec: createExec(silentLogger) }) };
    const wf = await Worker.create({
      connection: await testWorkerConnection(),
      taskQueue: clusterTaskQueue(name),
      workflowBundle: await testWorkflowBundle(),
      // As createWorkflowWorker: the controller's answers to lease renewals are signed.
      dataConverter: workflowWorkerDataConverter(name, TEST_KEY),
      activities: { ...real, ...opts.workflowActivities?.(real) },
    });
    c.workers.push(wf);
    c.runs.push(wf.run());
    for (const n of NODES) c.addNode(n);
    for (const node of c.nodes.values()) await c.startNodeWorker(node);
    await c.report('n1', 'up', 'n1', 'agent started');
    await c.report('n2', 'up', 'n2', 'agent started');
    await c.settled('n1');
    return c;
  }

  private addNode(nodeName: string): void {
    const registry = new ServiceRegistry();
    const services = new Map<string, ScriptedService>();
    const monitors = new Map<unknown, ResourceMonitor>();
    for (const group of this.config.groups) {
      for (const spec of group.resources) {
        const s = new ScriptedService();
        s.running = false;
        services.set(spec.name, s);
        const managed = { group, spec, driver: s.driver, check: s.check };
        registry.add(managed);
        monitors.set(managed, new ResourceMonitor({ name: spec.name, check: s.check, timing: spec.check, logger: silentLogger, onEdge: () => undefined }));
      }
    }
    const groups = new GroupRuntime({ node: nodeName, config: this.config, services: registry, logger: silentLogger, monitorOf: (s) => monitors.get(s)!, claimWaitMs: 1000 });
    this.nodes.set(nodeName, { name: nodeName, groups, services, startOrders: [], fenceRuns: [] });
    this.registries.set(nodeName, registry);
  }

  private readonly registries = new Map<string, ServiceRegistry>();

  private async startNodeWorker(node: WorkflowTestNode): Promise<void> {
    const registry = this.registries.get(node.name)!;
    const real = createOwnershipActivities({ node: node.name, config: this.config, groups: node.groups, services: registry, exec: createExec(silentLogger), logger: silentLogger, key: TEST_KEY });
    node.worker = await Worker.create({
      connection: await testWorkerConnection(),
      taskQueue: nodeTaskQueue(this.name, node.name),
      activities: {
        ...createServiceActivities({ node: node.name, services: registry, logger: silentLogger, recoveryPollMs: 20, whileHolding: (g, fn) => node.groups.whileHolding(g, fn) }),
        ...real,
        // Observed only: when the orders arrived, and which fence agent runs this node made.
        startResource: async (req: Parameters<typeof real.startResource>[0]) => {
          node.startOrders.push(Date.now());
          return real.startResource(req);
        },
        fence: async (req: Parameters<typeof real.fence>[0]) => {
          const run: WorkflowTestNode['fenceRuns'][number] = { victim: req.victim, at: Date.now() };
          node.fenceRuns.push(run);
          const answer = await real.fence(req);
          run.fenced = answer.fenced;
          return answer;
        },
        // A standby whose copy of the group's file sets is up to date with the owner the
        // controller names (the data policy, docs/failover.md); a test that scripts it overrides.
        syncState: async (req: { group: string; nonce?: string }): Promise<CandidateSyncState> => {
          const g = (await this.ownership()).groups[req.group];
          const sets = this.config.groups.find((x) => x.name === req.group)?.fileSets ?? [];
          return signedSyncState(this.name, node.name, { node: node.name, group: req.group, sets: sets.map((f) => (g?.owner ? { set: f.name, record: { owner: g.owner, epoch: g.epoch, announced: 0, pulled: 0 } } : { set: f.name })) }, req.nonce);
        },
        ...this.extra?.(node),
      },
    });
    node.running = node.worker.run();
  }

  node(name: string): WorkflowTestNode {
    const n = this.nodes.get(name);
    assert.ok(n, `node ${name}`);
    return n;
  }

  report(node: string, to: NodeEdge['to'], reporter: string, detail: string): Promise<void> {
    return this.link.report({ node, to, reporter, at: Date.now(), detail: `test: ${detail}` });
  }

  /** The node dies: nothing answers on its queue any more (what it held, it still holds). */
  async kill(name: string): Promise<void> {
    const node = this.node(name);
    if (node.worker?.getState() === 'RUNNING') node.worker.shutdown();
    await node.running;
  }

  /** The workflow worker stops (nothing of ours answers on the cluster queue any more). */
  async stopWorkflowWorker(): Promise<void> {
    for (const w of this.workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.all(this.runs);
  }

  /** The node comes back holding nothing (as after a reset), and its agent reports it up. */
  async revive(name: string): Promise<void> {
    const node = this.node(name);
    for (const s of node.services.values()) s.behaviour = {};
    if (node.groups.holding('web')) await node.groups.stopGroup('web', 'test: the node was reset');
    if (node.worker?.getState() !== 'RUNNING') await this.startNodeWorker(node);
    await this.report(name, 'up', name, 'agent started');
  }

  ownership(): Promise<Ownership> {
    return this.client.workflow.getHandle(controllerWorkflowId(this.name)).query(ownershipQuery);
  }

  async web(): Promise<GroupOwnership> {
    return (await this.ownership()).groups.web!;
  }

  /** Waits until `web` runs (on `owner`, if given) and no operation holds it. */
  settled(owner?: string, timeoutMs = 60_000): Promise<GroupOwnership> {
    return waitFor(`web running${owner ? ` on ${owner}` : ''} with no operation under way`, async () => {
      const g = await this.web().catch(() => undefined);
      return g?.state === 'running' && g.operation === undefined && (owner === undefined || g.owner === owner) ? g : undefined;
    }, timeoutMs, 50);
  }

  /** The result of the latest failover of `web`. */
  failoverResult(): Promise<FailoverResult> {
    return this.client.workflow.getHandle(failoverWorkflowId(this.name, 'web')).result() as Promise<FailoverResult>;
  }

  /**
   * The child workflows the controller started, of `type`, with the time each start was
   * recorded in its history (ms since the epoch), oldest first.
   */
  async childrenStarted(type: string): Promise<{ workflowId: string; at: number }[]> {
    const history = await this.client.workflow.getHandle(controllerWorkflowId(this.name)).fetchHistory();
    const out: { workflowId: string; at: number }[] = [];
    for (const e of history.events ?? []) {
      const a = e.startChildWorkflowExecutionInitiatedEventAttributes;
      if (!a || a.workflowType?.name !== type) continue;
      const seconds = Number(e.eventTime?.seconds ?? 0);
      const nanos = e.eventTime?.nanos ?? 0;
      out.push({ workflowId: a.workflowId ?? '?', at: seconds * 1000 + Math.floor(nanos / 1e6) });
    }
    return out;
  }

  private closing: Promise<void> | undefined;

  /** Terminates the controller, stops the workers; idempotent. */
  close(): Promise<void> {
    this.closing ??= this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.link.close();
    for (const id of [switchoverWorkflowId(this.name, 'web'), failoverWorkflowId(this.name, 'web'), controllerWorkflowId(this.name)]) {
      await this.client.workflow.getHandle(id).terminate('test over').catch(() => undefined);
    }
    for (const node of this.nodes.values()) if (node.worker?.getState() === 'RUNNING') node.worker.shutdown();
    for (const w of this.workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.all([...this.runs, ...[...this.nodes.values()].map((n) => n.running)]);
    for (const node of this.nodes.values()) await node.groups.close();
  }
}

/**
 * The haoscar.yaml body most of these tests use (for WorkflowCluster.start): n1 (preferred) and
 * n2, and a group `web` of `command` resources named `resources` (default: `first`); `healing`: the
 * default healing policy, if given.
 */
export function twoNodeWeb(opts: { lease: string; verifyTimeout?: string; resources?: string[]; healing?: string }): string {
  const resources = (opts.resources ?? ['first']).map((name) => `      - { type: command, name: ${name}, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }`);
  return [
    `lease: ${opts.lease}`,
    ...(opts.verifyTimeout ? [`failover: { verifyTimeout: ${opts.verifyTimeout} }`] : []),
    'defaults:',
    '  check: { interval: 100ms, timeout: 50ms, rise: 1, fall: 1 }',
    ...(opts.healing ? [`  healing: ${opts.healing}`] : []),
    'nodes:',
    '  - { name: n1, addresses: [127.0.0.1], priority: 10 }',
    '  - { name: n2, addresses: [127.0.0.2] }',
    'groups:',
    '  - name: web',
    '    resources:',
    ...resources,
    '',
  ].join('\n');
}

/**
 * How a workflow ended, as `TYPE: message` of the ApplicationFailure that failed it (found under
 * the SDK's wrapping errors), or `succeeded`. Anything else is rethrown.
 */
export async function failureType(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    let e: unknown = err;
    while (e instanceof Error && !(e instanceof ApplicationFailure) && e.cause) e = e.cause;
    if (err instanceof WorkflowFailedError && e instanceof ApplicationFailure) return `${e.type}: ${e.message}`;
    throw err;
  }
  return 'succeeded';
}
