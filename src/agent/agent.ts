/**
 * The HA-OSCAR agent of one node: a Temporal worker on the node's own queue (activities that
 * touch this node), a worker on the cluster's queue (workflows, unless `agent.workflows` is
 * false), heartbeats with its peers, the leases of the groups it holds, and a monitor per
 * resource it runs. It reports edges — a peer went silent or came back, a resource started
 * failing — never levels. What it runs is decided by the controller, not by the agent.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { NativeConnection, Worker, WorkflowBundleOption } from '@temporalio/worker';
import type { Config } from '../config/types.js';
import { createExec, type Exec } from '../exec.js';
import type { Logger } from '../log.js';
import { checkCgroupRoot, createResourceDriver, findCgroup2Mount } from '../drivers/index.js';
import { createCheck } from '../checks/check.js';
import { ResourceMonitor } from '../monitor/monitor.js';
import { ServiceRegistry, type ManagedService } from './services.js';
import { GroupRuntime } from './groups.js';
import { LeaseKeeper } from './lease.js';
import { bootClockCs, GuardLink } from '../guard/guard-link.js';
import { FileSync, type OwnerView } from './file-sync.js';
import type { HeartbeatView } from '../heartbeat/packet.js';
import { ControllerLink } from './controller-link.js';
import { AgentAlerts } from '../alerts/agent-alerts.js';
import { Announcer } from './announcer.js';
import { EpochStore } from './epoch-store.js';
import { startPlan, type StartGroupFacts, type StartPlan } from './start-plan.js';
import { Heartbeat, type HeartbeatEdge } from '../heartbeat/heartbeat.js';
import { HeartbeatSecretError, loadClusterSecrets, secretKeyId, type ClusterSecrets } from '../heartbeat/secret.js';
import { checkSecretChange, secretNames, secretNamesDiffer, type WorkerSecretView } from '../auth/secret-rotation.js';
import { configDigest } from '../config/digest.js';
import { deriveMessageKey, messageKeyOf } from '../auth/messages.js';
import { requestHealUntilDelivered, type HealRequest } from './heal-trigger.js';
import { LocalHealer } from './local-heal.js';
import { MaintenanceView } from './maintenance-view.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectClient, connectWorker, resolveConnection, type ResolvedConnection } from '../temporal/connection.js';
import type { LeaseView } from '../../workflows/lease-memo.js';
import { createNodeWorker } from '../../workers/node-worker.js';
import { cloneActivityDeps } from '../../activities/clone.js';
import { createWorkflowWorker } from '../../workers/workflow-worker.js';
import { localStatusSocket, serveLocalStatus, type LocalStatus } from './local-status.js';
import { packageVersion } from '../package-info.js';
import type { Server } from 'node:net';
import { ConfigError, loadConfig } from '../config/load.js';
import { planReload, type ReloadRefusal } from '../config/reload-plan.js';
import { applyLiveSettings, type ReloadOutcome, type ReloadStatus } from './reload.js';
import { agentFamilies, LEASE_CONFIRMATION_BUCKETS } from '../metrics/agent-metrics.js';
import { Histogram, type MetricFamily } from '../metrics/exposition.js';

/** How often a node that holds nothing checks that the controller is not behind what it has seen. */
const ANNOUNCE_CHECK_MS = 5000;

export class UnknownNodeError extends Error {
  constructor(node: string, config: Config) {
    super(`node '${node}' is not in cluster '${config.cluster}' (known nodes: ${config.nodes.map((n) => n.name).join(', ')}); nothing was started`);
    this.name = 'UnknownNodeError';
  }
}

/** How long a starting agent waits for the controller's answer (at least; a longer lease ttl is waited instead). */
const START_QUESTION_MS = 2000;
/** How long start-up waits for the first connection attempt before going on without Temporal (it goes on trying). */
const FIRST_CONNECT_WAIT_MS = 5000;
/** How long a secret rotation step waits for the workflow worker to say which secret it signs with (refreshWorkerKey). */
const WORKER_KEY_QUESTION_MS = 3000;

interface Reached {
  connection: NativeConnection;
  client: Client;
}

export interface AgentOptions {
  config: Config;
  /** The file `config` was read from (`haoscar agent -c`): a recipe's join sends it to a new node. */
  configFile?: string;
  node: string;
  logger: Logger;
  exec?: Exec;
  workflowBundle?: WorkflowBundleOption;
  /**
   * Told each time what the agent would say to its service manager changes (systemd's READY=1
   * and STATUS=: src/systemd/notify.ts, docs/packaging.md#readiness).
   */
  onStatus?: (status: AgentServiceStatus) => void;
}

/**
 * What the agent tells its service manager. `ready` becomes true once the agent does its part on
 * the node: its lease guard attached, heartbeats sent, leases kept, what ran before adopted or
 * stopped, and either its Temporal workers running (connected, ownership known) or Temporal not
 * reached within the first wait — then it serves without Temporal (heartbeats, guard, fail-safe)
 * and says in `text` what it waits for. It never goes back to false.
 */
export interface AgentServiceStatus {
  ready: boolean;
  text: string;
}

type AgentPhase =
  | { kind: 'starting'; detail: string }
  | { kind: 'waiting'; detail: string }
  | { kind: 'serving' }
  | { kind: 'stopping' };


export class Agent {
  private readonly services = new ServiceRegistry();
  private readonly monitors = new Map<ManagedService, ResourceMonitor>();
  /** Groups in maintenance, as the controller's last answer said; and how each monitor reports a failure. */
  private readonly maintenance = new MaintenanceView();
  private readonly reporters = new Map<ManagedService, (at: number, detail: string) => void>();
  private groups: GroupRuntime | undefined;
  private heartbeat: Heartbeat | undefined;
  private lease: LeaseKeeper | undefined;
  private link: ControllerLink | undefined;
  private guard: GuardLink | undefined;
  private claimTimer: NodeJS.Timeout | undefined;
  private announceTimer: NodeJS.Timeout | undefined;
  private announcer: Announcer | undefined;
  private fileSync: FileSync | undefined;
  private workers: Worker[] = [];
  private running: Promise<unknown> | undefined;
  private connection: NativeConnection | undefined;
  private client: Client | undefined;
  private stopping: Promise<void> | undefined;
  /** Aborted when the agent stops: local heals end. */
  private readonly localHeals = new AbortController();
  /** Aborted when the agent stops: no more attempts to reach Temporal. */
  private readonly connecting = new AbortController();
  private exec: Exec | undefined;
  /** Signs this node's answers and checks its orders (docs/security.md); absent in a one-node cluster. */
  private key: ReturnType<typeof deriveMessageKey> | undefined;
  private readonly log: Logger;
  /** Alerts only this node sees (sync, the guard's release): docs/alerts.md. */
  private readonly alerts: AgentAlerts;
  private phase: AgentPhase = { kind: 'starting', detail: 'reading its state' };
  /** `haoscar status` on this node reads localStatus() here (local-status.ts). */
  private statusServer: Server | undefined;
  private lastStatus: string | undefined;
  /**
   * The cluster secrets in force: the one this node signs with and those it also accepts during a
   * rotation (a reload may change them, docs/reload.md#rotating-the-cluster-secret); absent in a
   * one-node cluster.
   */
  private secrets: ClusterSecrets | undefined;
  /** When the running configuration was loaded (started, or last reload that applied something). */
  private configLoadedAt = Date.now();
  /** Reloads finished, and the last one's outcome (local status: `haoscar reload` waits for `completed` to grow). */
  private reloads: ReloadStatus = { completed: 0 };
  /** Reloads run one at a time, in the order asked. */
  private reloading: Promise<unknown> = Promise.resolve();

  private constructor(private readonly opts: AgentOptions) {
    this.log = opts.logger;
    this.alerts = new AgentAlerts({ config: opts.config, node: opts.node, logger: opts.logger.child({ alerts: true }), client: () => this.client });
  }

  /**
   * Starts the agent; Temporal need not be reachable (it is retried, and the agent serves no
   * group until then). @throws UnknownNodeError before anything is done when the node is not
   * in the config; HeartbeatSecretError when the secret file is unsafe or missing; CliError
   * when a Temporal TLS or API key file cannot be read.
   */
  static async start(opts: AgentOptions): Promise<Agent> {
    if (!opts.config.nodes.some((n) => n.name === opts.node)) throw new UnknownNodeError(opts.node, opts.config);
    const agent = new Agent(opts);
    try {
      await agent.init();
    } catch (err) {
      await agent.stop();
      throw err;
    }
    return agent;
  }

  /** Resolves when the workers have stopped (after stop(), or if one fails); not before Temporal is reached. */
  get done(): Promise<unknown> {
    return this.running ?? Promise.resolve();
  }

  /** The services this agent manages (for status output and tests). */
  managed(): ManagedService[] {
    return this.services.all();
  }

  private async init(): Promise<void> {
    const { config, node } = this.opts;
    const exec = this.opts.exec ?? createExec(this.log);
    this.exec = exec;
    const logDir = join(config.agent.stateDir, 'log');
    // Refused before anything runs: a world-readable secret lets anyone forge heartbeats.
    const hasPeers = config.nodes.length > 1;
    const secrets = hasPeers ? await loadClusterSecrets(config.heartbeat) : undefined;
    this.secrets = secrets;
    const secret = secrets?.signing;
    // Signs this node's answers and checks the orders it is given (docs/security.md).
    this.key = secrets ? deriveMessageKey(secrets.signing, secrets.accepted) : undefined;
    await mkdir(logDir, { recursive: true });
    // The highest epoch seen of each group, from earlier runs: never handed out again, even by a
    // controller that lost Temporal's data (docs/temporal.md).
    const epochStore = await EpochStore.open(config.agent.stateDir, node);

    const groups = new GroupRuntime({
      node,
      config,
      services: this.services,
      logger: this.log,
      monitorOf: (service) => this.monitors.get(service)!,
      onViewChange: (view) => {
        this.heartbeat?.setView(this.withSync(view));
        this.emitStatus();
      },
      peerClaims: (group) => this.peerClaims(group),
      // The old owner stops within ttl + margin of losing its lease, and its heartbeats say so.
      claimWaitMs: config.lease.ttlMs + config.lease.marginMs + config.heartbeat.deadtimeMs,
      // The lease guard knows a group before anything of it starts, and forgets it once stopped.
      onHold: (group, epoch) => this.lease!.granted(group, epoch),
      onLetGo: (group, epoch) => this.lease?.letGo(group, epoch),
      mayServe: (group, epoch) => this.lease?.mayServe(group, epoch) ?? { ok: false, why: 'the agent is starting' },
      seenEpochs: epochStore.all(),
      onEpochSeen: (group, epoch) => epochStore.record(group, epoch),
    });
    this.groups = groups;
    const cgroupRoot = this.cgroupRoot();
    for (const group of groups.groupsHere()) {
      for (const spec of group.resources) {
        const driver = createResourceDriver(spec, {
          exec,
          logger: this.log.child({ group: group.name, resource: spec.name }),
          logDir,
          node,
          ...(cgroupRoot ? { cgroupRoot, cluster: config.cluster, group: group.name } : {}),
        });
        const check = createCheck(spec.check, { exec, servicePid: async () => (await driver.status()).pid, resourceStatus: () => driver.status() });
        const service: ManagedService = { group, spec, driver, check };
        this.services.add(service);
        this.monitors.set(service, this.createMonitor(service));
      }
    }

    // The guard first: what it still holds from an earlier agent decides what may be adopted.
    // A one-node cluster has nobody to take a group over, and needs none.
    if (config.guard.enabled && hasPeers) {
      this.setPhase({ kind: 'starting', detail: 'attaching to the lease guard' });
      this.guard = await GuardLink.attach({
        dir: join(config.agent.stateDir, 'guard', node),
        logFile: join(logDir, `guard-${node}.log`),
        ...(config.guard.watchdog ? { watchdogDevice: config.guard.watchdog.device } : {}),
        logger: this.log,
      });
    }

    // Read once (a missing certificate is a configuration error); reaching Temporal is not
    // required to start: without it the agent runs heartbeats and its guard, serves no group
    // (a node serves one only under a lease the controller confirms), and connects when it can.
    const conn = await resolveConnection(config.temporal, { logger: this.log });
    // With the key, lease renewals are accepted only as the workflow worker's signed answers, and
    // reports are signed (with the heartbeat's incarnation, once it has started).
    const link = new ControllerLink(undefined, config.cluster, this.log, { key: this.key });
    this.link = link;
    const announcer = new Announcer({
      node,
      lease: { ttlMs: config.lease.ttlMs, marginMs: config.lease.marginMs },
      groups,
      send: (a) => link.announce(a),
      logger: this.log,
      minIntervalMs: Math.max(1000, config.lease.ttlMs),
    });
    this.announcer = announcer;
    // Not waited for long: heartbeats must start (a peer's fail-safe rests on them), and an
    // address that drops packets can keep a connection attempt waiting.
    this.setPhase({ kind: 'starting', detail: `connecting to Temporal at ${config.temporal.address}` });
    const firstTry = this.tryConnect(conn, 1, 1000);
    const waited = new AbortController();
    const reached = await Promise.race([firstTry, sleep(FIRST_CONNECT_WAIT_MS, undefined, { signal: waited.signal }).catch(() => undefined)]);
    waited.abort();
    if (reached) this.reached(reached);
    this.setPhase({ kind: 'starting', detail: reached ? 'asking the controller what this node holds' : 'Temporal not reached: stopping what ran here before' });

    // Whatever an earlier agent left running is stopped, unless the controller says this node
    // owns it and all of it still runs (an agent restart must not interrupt a healthy group).
    // The answer confirms the lease as of when the question was sent (as a renewal does).
    // A controller behind what this node held (it lost its data) has not adopted anything yet: the
    // groups are not kept on its word (they are stopped below); the "up" edge announces the epochs.
    const { answer: before, asked } = reached ? await this.askAtStart(link) : { answer: undefined, asked: undefined };
    const guarded = this.guard?.state();
    const facts: StartGroupFacts[] = [];
    for (const group of groups.groupsHere()) {
      const held = guarded?.groups.get(group.name);
      facts.push({
        name: group.name,
        ...(held ? { guarded: { epoch: held.epoch, status: held.status } } : {}),
        // Within its deadline, the guard still holds it for us; past it, the guard has let go.
        allRunning: before?.groups[group.name]?.owner === node ? await groups.allRunning(group.name) : false,
      });
    }
    const plan = startPlan({ node, answer: before, groups: facts });
    for (const d of plan.dropped) this.log.warn({ group: d.group, why: d.why }, 'not adopting a group the controller has on this node: it is stopped here, and the controller told so');
    const keep = plan.keep;
    await groups.cleanSlate(keep);

    this.fileSync = await FileSync.start({
      node,
      config,
      secret,
      acceptedSecrets: secrets?.accepted ?? [],
      logger: this.log.child({ sync: true }),
      holds: (g) => groups.holding(g) !== undefined,
      heldEpoch: (g) => groups.holding(g)?.epoch,
      ownerOf: (g) => this.ownerOf(g),
      onViewChange: () => this.heartbeat?.setView(this.withSync(groups.view())),
      onSyncEdge: (e) => this.alerts.raise({ event: e.failing ? 'sync-failing' : 'sync-recovered', node, group: e.group, resource: e.set, detail: e.detail }),
    });

    if (secret) {
      this.heartbeat = await Heartbeat.start({
        cluster: config.cluster,
        node,
        nodes: config.nodes,
        settings: config.heartbeat,
        secret,
        acceptedSecrets: secrets!.accepted,
        acceptedConfigDigests: secrets!.accepted.map((a) => configDigest(config, a)),
        logger: this.log.child({ heartbeat: true }),
        view: this.withSync(groups.view()),
        onEdge: (edge) => this.onPeerEdge(edge),
        stateDir: config.agent.stateDir,
        // Sent to peers that speak protocol 2 and compared with theirs (docs/heartbeat.md).
        configDigest: configDigest(config, secret),
      });
      // Reports to the controller are signed with this run's incarnation (they wait for it).
      link.identify(this.heartbeat.incarnation);
      // A peer claiming one of our groups under a newer epoch ends our ownership at once.
      // Standbys pull what their owner's heartbeats say changed.
      this.claimTimer = setInterval(() => {
        this.checkPeerClaims();
        this.fileSync?.tick();
      }, config.heartbeat.intervalMs);
    }
    this.lease = new LeaseKeeper({
      node,
      ttlMs: config.lease.ttlMs,
      groups,
      ...(this.guard ? { guard: this.guard } : {}),
      // Still held here, failed: the controller hears that this node is in trouble (a failover
      // then finds the group failed here and waits for fencing or an operator), not that it stopped.
      onStopFailed: (group, epoch, why) =>
        void link.report({ node, to: 'suspect', reporter: node, at: Date.now(), detail: `could not stop group ${group} (epoch ${epoch}): ${why}` }),
      // Its answers (and its absence) also tell whether the controller is behind this node.
      queryOwnership: (timeoutMs) => link.ownership(timeoutMs).then(
        (answer) => {
          announcer.answered(answer);
          this.learnMaintenance(answer);
          return answer;
        },
        (err: unknown) => {
          announcer.failed(err);
          throw err;
        },
      ),
      // If the controller still has this node as the owner under that epoch, it places the group again.
      onLost: (group, epoch, why) => void link.reportLost({ group, node, epoch, at: Date.now(), detail: why }),
      onGuardReleased: (group, epoch, ok, detail) => this.alerts.raise({ event: 'guard-released', node, group, ok, detail }),
      // The fail-safe judges each peer by how recently it was heard (monotonic), not by its state alone.
      ...(this.heartbeat
        ? {
            peers: () => this.heartbeat!.peers().map((p) => ({ node: p.node, alive: p.state === 'alive', lastHeardAgoMs: p.lastHeardAgoMs, claims: claimsOf(p.view) })),
            heartbeatDeadtimeMs: config.heartbeat.deadtimeMs,
          }
        : { peers: undefined }),
      logger: this.log,
    });
    // An adopted group's hold is handed to the guard at once, renewing the one it kept.
    for (const [group, epoch] of keep) this.lease.granted(group, epoch, asked);
    this.lease.start();

    // What this node knows by itself, for `haoscar status` on it, with or without Temporal.
    this.statusServer = await serveLocalStatus(localStatusSocket(config.agent.stateDir, node), () => this.localStatus()).catch((err: unknown) => {
      this.log.warn({ err: String(err) }, 'cannot serve the local status: `haoscar status` on this node shows only the controller\'s view');
      return undefined;
    });

    // Ready on the node's side; without Temporal it waits for it from here on (attach()).
    if (!reached) this.setPhase({ kind: 'waiting', detail: `cannot reach Temporal at ${config.temporal.address}; retrying` });
    // The workers, and "I am up", once Temporal is reached (now, or after retries).
    this.running = this.attach(conn, firstTry, plan);
    this.running.catch((err: unknown) => this.log.error({ err: String(err) }, 'a Temporal worker stopped with an error'));
  }

  /**
   * One attempt to reach Temporal (a worker connection and a client). @returns them, or
   * undefined after logging why (the caller retries).
   */
  private async tryConnect(conn: ResolvedConnection, attempt: number, retryInMs?: number): Promise<Reached | undefined> {
    let connection: NativeConnection | undefined;
    try {
      connection = await connectWorker(conn);
      const client = await connectClient(conn);
      return { connection, client };
    } catch (err) {
      await connection?.close().catch(() => undefined);
      if (this.phase.kind === 'waiting') this.setPhase({ kind: 'waiting', detail: `cannot reach Temporal at ${this.opts.config.temporal.address} (attempt ${attempt}); retrying` });
      this.log.error(
        { attempt, ...(retryInMs !== undefined ? { retryInMs } : {}), err: err instanceof Error ? err.message : String(err) },
        'cannot reach Temporal: the agent runs on (heartbeats, lease guard) and retries; no group runs on this node until the controller confirms a lease',
      );
      return undefined;
    }
  }

  /**
   * The controller's view at start, asked until it answers or START_QUESTION_MS has passed
   * (a worker that is slow to answer must not cost a running group its restart). A controller
   * that does not exist owns nothing here. @returns the answer (undefined: none came) and when
   * the answered question was sent.
   */
  private async askAtStart(link: ControllerLink): Promise<{ answer: LeaseView | undefined; asked: { at: number; atCs: number } | undefined }> {
    const windowMs = Math.max(START_QUESTION_MS, this.opts.config.lease.ttlMs);
    const until = performance.now() + windowMs;
    let last: unknown;
    for (let delay = 250; ; delay = Math.min(delay * 2, 1000)) {
      const asked = { at: performance.now(), atCs: bootClockCs() };
      try {
        const answer = await link.ownership(Math.max(200, until - asked.at));
        this.learnMaintenance(answer);
        return { answer, asked };
      } catch (err) {
        if (err instanceof WorkflowNotFoundError) return { answer: { cluster: this.opts.config.cluster, groups: {} }, asked };
        last = err;
      }
      if (performance.now() + delay >= until) break;
      await sleep(delay);
    }
    this.log.warn(
      { waitedMs: windowMs, err: last instanceof Error ? last.message : String(last) },
      'the controller did not answer at start (is `haoscar worker`, or an agent with workflows, running?): whatever ran here before is stopped, and the controller is told that this node restarted',
    );
    return { answer: undefined, asked: undefined };
  }

  /**
   * Reaches Temporal (the first attempt: `first`), retrying with backoff (1 s doubling to 5 s)
   * until it answers or the agent stops; then starts the workers and says "I am up" (and "I
   * restarted" when the controller did not answer at start: it holds nothing the controller
   * may think it holds), and reports lost each group it stopped that the controller has here
   * (start-plan.ts). That starts the controller if it is not running, lets it place groups
   * that run nowhere, and start again those it had here. @returns when the workers stop.
   */
  private async attach(conn: ResolvedConnection, first: Promise<Reached | undefined>, plan: StartPlan): Promise<unknown> {
    const { config, node } = this.opts;
    const stop = this.connecting.signal;
    let reached: Reached | undefined;
    for (let attempt = 1, delay = 1000; ; attempt++) {
      if (!reached) {
        reached = attempt === 1 ? await first : await this.tryConnect(conn, attempt, delay);
        if (reached && stop.aborted) {
          await reached.connection.close().catch(() => undefined);
          await reached.client.connection.close().catch(() => undefined);
          return;
        }
        if (reached && this.client !== reached.client) this.reached(reached);
      }
      if (stop.aborted) return;
      if (reached) {
        try {
          this.workers = await this.createWorkers(conn);
          break;
        } catch (err) {
          this.setPhase({ kind: 'waiting', detail: `connected to Temporal at ${config.temporal.address}, but its workers could not start (attempt ${attempt}); retrying` });
          this.log.error({ attempt, retryInMs: delay, err: err instanceof Error ? err.message : String(err) }, 'cannot start the Temporal workers: retrying');
        }
      }
      await sleep(delay, undefined, { signal: stop }).catch(() => undefined);
      delay = Math.min(delay * 2, 5000);
    }
    if (stop.aborted) return;
    const adopted = (this.groups?.heldGroups() ?? []).map(([g]) => g);
    const restarted = plan.restarted;
    this.log.info({ cluster: config.cluster, taskQueues: this.workers.map((w) => w.options.taskQueue), adopted, restarted }, 'agent connected to Temporal');
    this.setPhase({ kind: 'serving' });
    const link = this.link!;
    const announcer = this.announcer!;
    const groups = this.groups!;
    // First what this node holds and has seen, and the lease it enforces (announcer.ts), in order
    // before the edge: a separate signal, so that a controller older than announcements (agents
    // upgraded before the worker) ignores it and still takes the edge (its schema refuses a field
    // it does not know).
    void link.announce({ node, at: Date.now(), announce: announcer.announcement() });
    void link.report({ node, to: 'up', reporter: node, at: Date.now(), detail: 'agent started', ...(restarted ? { restarted: true } : {}) });
    // What the controller has here and this agent stopped at start: started again (start-plan.ts).
    for (const d of plan.dropped) void link.reportLost({ group: d.group, node, epoch: d.epoch, at: Date.now(), detail: `the agent restarted and did not adopt it: ${d.why}` });
    // A node that holds nothing asks no lease question: it looks now and then whether the
    // controller is behind what it has seen (or gone: Temporal's data lost), and announces.
    this.announceTimer = setInterval(() => {
      if (this.stopping || groups.heldGroups().length > 0) return;
      link.ownership(2000).then((answer) => {
        announcer.answered(answer);
        this.learnMaintenance(answer);
      }, (err: unknown) => announcer.failed(err));
    }, ANNOUNCE_CHECK_MS);
    return Promise.all(this.workers.map((w) => w.run()));
  }

  /** Temporal is reached: the connections are kept (stop() closes them), queued edges go out. */
  private reached(r: Reached): void {
    this.connection = r.connection;
    this.client = r.client;
    this.link!.attach(r.client);
  }

  /** The node's worker (its queue's activities) and, unless `agent.workflows` is false, the workflow worker. */
  private createWorkers(conn: ResolvedConnection): Promise<Worker[]> {
    const { config, node } = this.opts;
    const groups = this.groups!;
    const exec = this.exec!;
    const key = this.key;
    return Promise.all([
      createNodeWorker({
        connection: this.connection!,
        namespace: conn.namespace,
        cluster: config.cluster,
        node,
        service: { node, services: this.services, logger: this.log, whileHolding: (g, fn) => groups.whileHolding(g, fn) },
        ownership: { node, config, groups, services: this.services, lease: this.lease!, exec, logger: this.log, beforeStart: (g) => this.fileSync!.halt(g), key },
        sync: { node, cluster: config.cluster, key, fileSync: this.fileSync!, services: this.services, holds: (g) => groups.holding(g) !== undefined, ownerOf: (g) => this.ownerOf(g), logger: this.log.child({ sync: true }) },
        clone: cloneActivityDeps({ config, node, key, exec, logger: this.log, heldGroups: () => config.groups.map((g) => g.name).filter((g) => groups.holding(g) !== undefined) }),
        recipe: {
          node, exec, logger: this.log.child({ recipe: true }), identityFile: config.sync.ssh.identityFile,
          // What a new node needs from this one to join (docs/clone.md#unattended-install-recipes).
          joinFiles: [...new Set([this.opts.configFile ?? '/etc/haoscar/haoscar.yaml', config.heartbeat.secretFile, config.sync.ssh.identityFile, `${config.sync.ssh.identityFile}.pub`, config.sync.ssh.knownHostsFile])],
        },
      }),
      ...(config.agent.workflows
        ? [createWorkflowWorker({ connection: this.connection!, config, client: this.client!, workflowBundle: this.opts.workflowBundle, key, logger: this.log })]
        : []),
    ]);
  }

  /**
   * Where `process` services get a cgroup of their own (so that a stop and the guard's release
   * reach daemons that leave their process group): the cgroup v2 hierarchy, when usable.
   */
  private cgroupRoot(): string | undefined {
    const mount = findCgroup2Mount();
    if (!mount) {
      this.log.warn('no cgroup v2 hierarchy is mounted: process services run in process groups only, and a daemon that leaves its group escapes stops and the lease guard (docs/guard.md)');
      return undefined;
    }
    try {
      checkCgroupRoot(mount);
      return mount;
    } catch (err) {
      this.log.warn({ err: String(err) }, 'cgroup v2 is not usable: process services run in process groups only (docs/guard.md)');
      return undefined;
    }
  }

  private onPeerEdge(edge: HeartbeatEdge): void {
    if (this.stopping) return;
    const detail = edge.to === 'suspect'
      ? `every link silent for ${this.opts.config.heartbeat.deadtimeMs}ms (${edge.silentLinks.join(', ')})`
      : `heard again on ${edge.link}`;
    void this.link?.report({ node: edge.node, to: edge.to === 'alive' ? 'up' : 'suspect', reporter: this.opts.node, at: edge.at, detail });
  }

  /** This node's heartbeat view: the groups it holds and its file-set generations. */
  private withSync(view: HeartbeatView): HeartbeatView {
    const sync = this.fileSync?.view() ?? {};
    return Object.keys(sync).length > 0 ? { ...view, sync } : view;
  }

  /** The group's owner as its heartbeats say: heard now, running it, under the newest epoch. */
  private ownerOf(group: string): OwnerView | undefined {
    let best: OwnerView | undefined;
    for (const p of this.heartbeat?.peers() ?? []) {
      const held = p.view?.groups[group];
      if (p.state !== 'alive' || held?.state !== 'running') continue;
      if (!best || held.epoch > best.epoch) best = { node: p.node, epoch: held.epoch, sync: p.view?.sync ?? {} };
    }
    return best;
  }

  /** What this node knows by itself: served to `haoscar status` on the node (local-status.ts). */
  localStatus(): LocalStatus {
    const { config, node } = this.opts;
    const now = Date.now();
    const stats = this.heartbeat?.stats();
    const leases = new Map((this.lease?.status() ?? []).map((l) => [l.group, l]));
    const guard = this.guard?.health();
    const guardState = guard?.ok ? guard.state : this.guard?.state();
    const nowCs = bootClockCs();
    return {
      kind: 'haoscar-local-status',
      node,
      cluster: config.cluster,
      pid: process.pid,
      release: packageVersion(),
      at: now,
      phase: describeStatus(this.phase, config.temporal.address, this.groups?.heldGroups() ?? [], config.nodes.length > 1).text,
      temporal: { connected: this.client !== undefined && this.phase.kind === 'serving' },
      config: { loadedAt: this.configLoadedAt, ...(this.secrets ? { digest: configDigest(config, this.secrets.signing) } : {}) },
      reload: this.reloads,
      ...(stats
        ? {
            heartbeat: {
              sent: stats.sent,
              received: stats.received,
              accepted: stats.accepted,
              rejected: Object.fromEntries(Object.entries(stats.rejected).filter(([, n]) => n > 0)),
              configDigest: stats.configDigest,
              keys: [...stats.keys],
              peers: stats.peers.map(({ view: _view, speaks: _speaks, heardProtocol: _heard, ...peer }) => peer),
            },
          }
        : {}),
      held: (this.groups?.heldGroups() ?? []).map(([group, h]) => {
        const lease = leases.get(group);
        return {
          group,
          epoch: h.epoch,
          state: h.state,
          ...(h.failure ? { failure: h.failure } : {}),
          ...(lease && lease.epoch === h.epoch ? { lease: { expiresInMs: lease.expiresInMs, failSafe: lease.failSafe } } : {}),
        };
      }),
      resources: [...this.monitors.entries()].map(([service, monitor]) => {
        const m = monitor.status();
        return { group: service.group.name, resource: service.spec.name, status: m.status, failures: m.failures, passes: m.passes, detail: m.detail, ...(m.at === undefined ? {} : { at: m.at }) };
      }),
      ...(this.guard
        ? {
            guard: {
              ok: guard?.ok ?? false,
              ...(guard && !guard.ok ? { why: guard.why } : {}),
              ...(guardState ? { pid: guardState.pid, watchdog: guardState.watchdog } : {}),
              groups: [...(guardState?.groups.values() ?? [])].map((g) => ({
                group: g.group,
                epoch: g.epoch,
                deadlineInMs: (g.deadlineCs - nowCs) * 10,
                status: g.status,
                ...(g.detail ? { detail: g.detail } : {}),
              })),
            },
          }
        : {}),
      fileSets: this.syncStatus().map((f) => ({
        group: f.group,
        set: f.set,
        role: f.role,
        ...(f.source ? { source: f.source } : {}),
        generation: f.generation,
        ...(f.lastSuccessAt === undefined ? {} : { lastSuccessAt: f.lastSuccessAt }),
        ...(f.lagMs === undefined ? {} : { lagMs: f.lagMs }),
        errors: f.errors,
        ...(f.lastError ? { lastError: f.lastError } : {}),
        running: f.running,
      })),
    };
  }

  /**
   * Reads the configuration file again and applies it live, all or nothing (docs/reload.md):
   * a change that needs a restart, a changed secret file or an invalid file changes nothing.
   * Reloads run one at a time; each outcome is logged and kept for the local status. Never throws.
   */
  reload(file: string): Promise<ReloadOutcome> {
    const run = this.reloading.then(() => this.reloadOnce(file));
    this.reloading = run.catch(() => undefined);
    return run;
  }

  private async reloadOnce(file: string): Promise<ReloadOutcome> {
    const outcome = await this.planAndApply(file).catch((err: unknown): Omit<ReloadOutcome, 'at' | 'file'> => ({
      result: 'invalid', applied: [], refused: [], error: `the reload failed: ${err instanceof Error ? err.message : String(err)}`,
    }));
    const done: ReloadOutcome = { ...outcome, at: Date.now(), file };
    this.reloads = { completed: this.reloads.completed + 1, last: done };
    const fields = { file, applied: done.applied.map((c) => c.path), refused: done.refused };
    if (done.result === 'applied') this.log.info({ ...fields, changes: done.applied }, `reload: applied ${done.applied.map((c) => c.path).join(', ')}`);
    else if (done.result === 'unchanged') this.log.info(fields, 'reload: the configuration is unchanged');
    else if (done.result === 'refused') this.log.error(fields, `reload refused, nothing changed: ${done.refused.map((r) => `${r.path} (${r.why})`).join('; ')}`);
    else this.log.error({ file, error: done.error }, `reload refused, nothing changed: ${done.error}`);
    return done;
  }

  private async planAndApply(file: string): Promise<Omit<ReloadOutcome, 'at' | 'file'>> {
    const running = this.opts.config;
    const none = { applied: [], refused: [] };
    if (this.stopping) return { result: 'invalid', ...none, error: 'the agent is stopping' };
    let next: Config;
    try {
      next = await loadConfig(file);
    } catch (err) {
      if (err instanceof ConfigError) return { result: 'invalid', ...none, error: err.message };
      throw err;
    }
    const plan = planReload(running, next);
    const refused: ReloadRefusal[] = [...plan.refuse];
    // The secret files are read again, changed in the configuration or not: a changed content is
    // a step of a rotation, taken only when no live peer would be cut off by it
    // (auth/secret-rotation.ts, docs/reload.md#rotating-the-cluster-secret).
    let secrets = this.secrets;
    if (this.secrets) {
      try {
        const loaded = await loadClusterSecrets(next.heartbeat);
        const [before, after] = [secretNames(this.secrets), secretNames(loaded)];
        if (secretNamesDiffer(before, after)) {
          const peers = (this.heartbeat?.peers() ?? []).map((p) => ({
            node: p.node, alive: p.state === 'alive', ...(p.signsWith === undefined ? {} : { signsWith: p.signsWith }), ...(p.acceptsKeys === undefined ? {} : { acceptsKeys: p.acceptsKeys }),
          }));
          // The worker's current signing secret, asked now: lease confirmations come from the
          // controller's memo, whose entries keep the secret they were written with.
          await this.link?.refreshWorkerKey(WORKER_KEY_QUESTION_MS);
          refused.push(...checkSecretChange(before, after, peers, this.workerSecret(this.secrets)));
          secrets = loaded;
        }
      } catch (err) {
        if (!(err instanceof HeartbeatSecretError)) throw err;
        refused.push({ path: err.file === next.heartbeat.secretFile ? 'heartbeat.secretFile' : 'heartbeat.acceptSecretFiles', why: `the agent could not start again with this file: ${err.message}` });
      }
    }
    if (refused.length > 0) return { result: 'refused', applied: [], refused };
    const secretsChanged = secrets !== this.secrets;
    if (plan.apply.length === 0 && !secretsChanged) return { result: 'unchanged', ...none };
    const digestBefore = this.secrets ? configDigest(running, this.secrets.signing) : undefined;
    applyLiveSettings(running, next);
    this.log.level = running.agent.logLevel;
    if (secrets && secretsChanged) await this.useSecrets(secrets);
    // Peers compare our digest with theirs: it says what we now run (a rolling reload shows as a
    // difference until every node has reloaded, as a rolling restart would).
    if (secrets && this.heartbeat) {
      const digest = configDigest(running, secrets.signing);
      if (digest !== digestBefore) this.heartbeat.setConfigDigest(digest);
    }
    for (const monitor of this.monitors.values()) monitor.retime();
    this.configLoadedAt = Date.now();
    return { result: 'applied', applied: plan.apply, refused: [] };
  }

  /** Which of `secrets` the workflow worker signed its last lease answer with, and how long ago (none: no answer yet). */
  private workerSecret(secrets: ClusterSecrets): WorkerSecretView | undefined {
    const last = this.link?.lastAnswerKey();
    const secret = last && [secrets.signing, ...secrets.accepted].find((s) => messageKeyOf(s).equals(last.signedWith));
    return last && secret ? { signsWith: secretKeyId(secret), agoMs: Date.now() - last.at } : undefined;
  }

  /** A rotation step: every part that signs or checks with the cluster secret takes the new secrets. */
  private async useSecrets(secrets: ClusterSecrets): Promise<void> {
    const config = this.opts.config;
    this.secrets = secrets;
    this.key?.update(secrets.signing, secrets.accepted);
    this.heartbeat?.setSecrets(secrets.signing, secrets.accepted, secrets.accepted.map((a) => configDigest(config, a)));
    await this.fileSync?.setSecrets(secrets.signing, secrets.accepted);
    const names = secretNames(secrets);
    this.log.warn({ signsWith: names.signs, accepts: names.accepts }, `cluster secret: signs with ${names.signs}${names.accepts.length > 0 ? `, also accepts ${names.accepts.join(', ')}` : ', accepts no other'} (reload)`);
  }

  /**
   * The agent's metrics (docs/metrics.md): its local status (the same snapshot `haoscar status`
   * reads on the node), the lease keeper's counters, and each group's owner as this node knows it.
   */
  metricFamilies(): MetricFamily[] {
    const { config, node } = this.opts;
    const held = new Map(this.groups?.heldGroups() ?? []);
    const lease = this.lease;
    return agentFamilies(this.localStatus(), {
      leaseConfirmation: (lease?.confirmationLatency ?? new Histogram(LEASE_CONFIRMATION_BUCKETS)).snapshot(),
      leaseConfirmationFailures: lease?.counts.confirmationFailures ?? 0,
      guardActions: lease?.counts.guardActions ?? { released: 0, 'release-failed': 0 },
      ...(this.heartbeat ? { heartbeatRejected: this.heartbeat.stats().rejected } : {}),
      owners: config.groups.map((g) => {
        const here = held.get(g.name);
        if (here?.state === 'running') return { group: g.name, owner: { node, epoch: here.epoch } };
        const peer = this.ownerOf(g.name);
        return peer ? { group: g.name, owner: { node: peer.node, epoch: peer.epoch } } : { group: g.name };
      }),
    });
  }

  /** The agent's Temporal client once connected: the metrics of a node that runs the workflows read the cluster's view with it. */
  get temporalClient(): Client | undefined {
    return this.client;
  }

  /** The state of this node's file sets (for status output and tests). */
  syncStatus() {
    return this.fileSync?.status() ?? [];
  }

  /** Peers heard now that claim the group, with their epochs. */
  private peerClaims(group: string): { node: string; epoch: number }[] {
    return (this.heartbeat?.peers() ?? [])
      .filter((p) => p.state === 'alive' && p.view?.groups[group] !== undefined)
      .map((p) => ({ node: p.node, epoch: p.view!.groups[group]!.epoch }));
  }

  private checkPeerClaims(): void {
    if (!this.groups || !this.lease) return;
    // Every epoch a peer claims is seen here (and kept): an order under an older one is stale.
    for (const group of this.groups.groupsHere()) {
      for (const claim of this.peerClaims(group.name)) this.groups.seeEpoch(group.name, claim.epoch);
    }
    for (const [group] of this.groups.heldGroups()) {
      for (const claim of this.peerClaims(group)) this.lease.peerClaim(claim.node, group, claim.epoch);
    }
  }

  /** The service's monitor; started and stopped with the resource (see GroupRuntime). */
  private createMonitor(service: ManagedService): ResourceMonitor {
    const { config, node } = this.opts;
    const { group, spec, driver, check } = service;
    const healer = new LocalHealer(service, this.log, (fn) => this.groups!.whileHolding(group.name, fn));
    const monitor = new ResourceMonitor({
      name: `${group.name}/${spec.name}`,
      check,
      timing: spec.check,
      logger: this.log.child({ group: group.name }),
      onEdge: (edge) => {
        if (edge.to !== 'failing') return;
        report(edge.at, edge.detail);
      },
    });
    const report = (at: number, detail: string) => {
      if (!this.client || this.stopping) return;
      // Unmanaged: the failure is reported (logged, and seen by status), nothing is done about it.
      const held = this.maintenance.refusal(group.name, `heal of ${group.name}/${spec.name}`);
      if (held) return this.log.warn({ group: group.name, resource: spec.name, detail, type: held.type }, `${group.name}/${spec.name} is failing (${detail}); ${held.message}`);
      // Not awaited: the monitor must keep watching while the report is retried.
      void this.reportFailure(
        { cluster: config.cluster, node, group: group.name, resource: spec.name, failure: { at, detail, source: `monitor@${node}` } },
        () => !this.stopping && monitor.status().status === 'failing' && this.groups?.holding(group.name) !== undefined && !this.maintenance.refusal(group.name, 'heal'),
        healer,
      );
    };
    this.reporters.set(service, report);
    // A supervised process's exit is a definitive failure: report it now, not at the next poll.
    driver.onExit?.((exit) => monitor.reportExit(`process ${exit.pid} exited (${exit.signal ? `signal ${exit.signal}` : `code ${exit.exitCode}`})`));
    return monitor;
  }

  /**
   * The controller's answer says which groups are in maintenance: a group that left it has its
   * resources that are still failing reported now (their monitors report edges only, and the
   * edge came while nothing was done about it).
   */
  private learnMaintenance(answer: LeaseView): void {
    const { entered, left } = this.maintenance.learn(answer.maintenance);
    for (const g of entered) this.log.warn({ group: g, mark: answer.maintenance?.groups[g] }, `group ${g} is in maintenance: its monitors report and act on nothing (no heals) until it ends`);
    for (const g of left) {
      this.log.warn({ group: g }, `group ${g} is managed again: resources still failing are healed`);
      for (const [service, monitor] of this.monitors) {
        const status = monitor.status();
        if (service.group.name !== g || status.status !== 'failing') continue;
        this.reporters.get(service)?.(Date.now(), `still failing when maintenance ended: ${status.detail ?? 'failing'}`);
      }
    }
  }

  /**
   * Asks Temporal for a heal; if the request has not gone through after
   * `agent.localHealAfter`, cancels it and heals locally (a control-plane outage must not
   * become a service outage). A cancelled request can still reach Temporal once it is back
   * (gRPC may already have queued it); the heal it starts then finds the service restarted
   * since the failure and healthy, and leaves it alone (see restartService).
   */
  private async reportFailure(req: HealRequest, stillNeeded: () => boolean, healer: LocalHealer): Promise<void> {
    const cancel = new AbortController();
    const delivered = requestHealUntilDelivered(this.client!, req, this.log, stillNeeded, cancel.signal);
    const waited = sleep(this.opts.config.agent.localHealAfterMs, 'timeout' as const, { signal: cancel.signal }).catch(() => 'cancelled' as const);
    const first = await Promise.race([delivered.then(() => 'settled' as const), waited]);
    // Cancel whichever is left. A request cut off while gRPC waits for a connection may not
    // settle at once, so it is not awaited: its loop ends by itself (it is no longer needed).
    cancel.abort();
    if (first === 'settled') return;
    if (!stillNeeded()) return;
    this.log.error(
      { group: req.group, resource: req.resource, afterMs: this.opts.config.agent.localHealAfterMs },
      'Temporal did not take the failure report in time: healing locally',
    );
    await healer.heal(req.failure.detail, this.localHeals.signal);
  }

  private setPhase(phase: AgentPhase): void {
    if (this.phase.kind === 'stopping') return;
    this.phase = phase;
    this.emitStatus();
  }

  /** Tells onStatus what the agent does now, when that changed (a phase, or the groups it holds). */
  private emitStatus(): void {
    if (!this.opts.onStatus) return;
    const status = describeStatus(this.phase, this.opts.config.temporal.address, this.groups?.heldGroups() ?? [], this.opts.config.nodes.length > 1);
    if (status.text === this.lastStatus) return;
    this.lastStatus = status.text;
    this.opts.onStatus(status);
  }

  /** Stops monitors, workers, heartbeats and supervised processes; safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.setPhase({ kind: 'stopping' });
      this.localHeals.abort();
      this.connecting.abort();
      this.lease?.stop();
      clearInterval(this.claimTimer);
      clearInterval(this.announceTimer);
      // Its groups move away: stopped here (a VIP left behind would be held twice once a peer
      // takes over), and the controller told, while the workers still answer its questions.
      const held = this.groups?.heldGroups() ?? [];
      for (const [group] of held) {
        await this.groups!.stopGroup(group, 'the agent is stopping').catch((err: unknown) => this.log.error({ group, err: String(err) }, 'could not stop a group while stopping'));
      }
      if (held.length > 0 && this.link) {
        const told = this.link.report({ node: this.opts.node, to: 'suspect', reporter: this.opts.node, at: Date.now(), detail: `agent stopping; it stopped ${held.map(([g]) => g).join(', ')}` });
        await Promise.race([told, sleep(3000)]);
      }
      this.link?.close();
      await this.groups?.close();
      await this.fileSync?.close().catch((err: unknown) => this.log.warn({ err: String(err) }, 'stopping file sync failed'));
      await this.alerts.stop();
      for (const w of this.workers) if (w.getState() === 'RUNNING') w.shutdown();
      await this.running?.catch(() => undefined);
      // Supervised processes belong to the agent (as with supervisord): they stop with it.
      await Promise.all(this.services.all().map((s) => s.driver.close?.().catch((err: unknown) => this.log.warn({ err: String(err) }, 'stopping service failed'))));
      await this.heartbeat?.close();
      // The guard runs on (its own unit): it holds nothing once the groups were stopped.
      this.guard?.close();
      this.statusServer?.close();
      await this.connection?.close().catch(() => undefined);
      await this.client?.connection.close().catch(() => undefined);
      this.log.info('agent stopped');
    })();
    return this.stopping;
  }
}

/**
 * The agent's status line for its service manager (pure, for the table test). Readiness: once
 * it serves, or serves without Temporal and waits for it (AgentServiceStatus).
 */
export function describeStatus(phase: AgentPhase, address: string, held: readonly (readonly [string, { epoch: number; state: string }])[], hasPeers = true): AgentServiceStatus {
  const holds = held.length === 0 ? 'holds no group' : `holds ${held.map(([g, h]) => `${g} (epoch ${h.epoch}, ${h.state})`).join(', ')}`;
  switch (phase.kind) {
    case 'starting':
      return { ready: false, text: `starting: ${phase.detail}` };
    case 'waiting':
      return { ready: true, text: `without Temporal: ${phase.detail}; ${hasPeers ? 'heartbeats and the lease guard run, ' : ''}no group starts here until the controller confirms a lease; ${holds}` };
    case 'serving':
      return { ready: true, text: `serving: connected to Temporal at ${address}; ${holds}` };
    case 'stopping':
      return { ready: true, text: `stopping: letting go of its groups; ${holds}` };
  }
}

export type { AgentPhase };

function claimsOf(view: { groups: Record<string, { epoch: number }> } | undefined): Record<string, number> {
  return Object.fromEntries(Object.entries(view?.groups ?? {}).map(([g, c]) => [g, c.epoch]));
}
