/**
 * The groups this node holds, and the epochs it has seen. Every start and stop of a group's
 * resources goes through here, so that one rule holds everywhere: an ownership change that
 * carries an epoch older than one this node has seen (from the controller, a peer's heartbeat
 * or an earlier activity) is refused; and so is a start under an epoch at which this node has
 * let go of the group already (a new attempt gets a new epoch).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config, GroupSpec } from '../config/types.js';
import type { Logger } from '../log.js';
import type { GroupRunState, HeartbeatView } from '../heartbeat/packet.js';
import type { ResourceMonitor } from '../monitor/monitor.js';
import type { ManagedService, ServiceRegistry } from './services.js';
import type { GuardAction } from '../guard/protocol.js';

export interface HeldGroup {
  epoch: number;
  state: GroupRunState;
  /** Why a stop (or the guard's release) failed, in state 'failed'. */
  failure?: string;
}

/** Thrown when an activity carries an epoch older than one already seen. */
export class StaleEpochError extends Error {
  constructor(readonly group: string, readonly epoch: number, readonly known: number, node: string) {
    super(`refused: epoch ${epoch} of group '${group}' is stale on node ${node} (epoch ${known} has been seen); a newer operation owns the group`);
    this.name = 'StaleEpochError';
  }
}

/**
 * Thrown when a start carries an epoch under which this node has let go of the group already
 * (its lease was lost, the guard released it, it was stopped or its start undone): the order
 * belongs to an attempt that is over here, and taking the group again would run what is left of
 * that attempt without what was stopped (a service without its VIP). Not stale: a newer epoch
 * is accepted, and another node may take the group.
 */
export class LetGoError extends Error {
  constructor(readonly group: string, readonly epoch: number, readonly letGoAt: number, node: string) {
    super(`refused: node ${node} let go of group '${group}' at epoch ${letGoAt} (stopped, released by its lease guard, or its start undone): it does not take it again under epoch ${epoch}; only a new epoch may start it here`);
    this.name = 'LetGoError';
  }
}

/**
 * Thrown when stopping a group (or a resource of it) failed: the node still holds the group, in
 * state 'failed', until a stop succeeds, the guard releases it, or it is fenced or confirmed down.
 */
export class StopFailedError extends Error {
  constructor(readonly group: string, node: string, detail: string) {
    super(`stopping group '${group}' on node ${node} failed (${detail}): the node still holds it, in state 'failed'; a failed stop is not a stop (docs/guard.md)`);
    this.name = 'StopFailedError';
  }
}

/** Thrown when a heal is asked of a node that does not hold the group (or may no longer serve it). */
export class NotHoldingError extends Error {
  constructor(readonly group: string, node: string, why: string) {
    super(`node ${node} does not hold group '${group}' now (${why}): not touching its resources`);
    this.name = 'NotHoldingError';
  }
}

/** Thrown when a peer still claims the group under an older epoch after the wait for it to let go. */
export class PeerStillClaimsError extends Error {
  constructor(readonly group: string, peer: string, peerEpoch: number, epoch: number, waitedMs: number) {
    super(`peer ${peer} still claims group '${group}' at epoch ${peerEpoch} after ${waitedMs}ms (this node was to start it at epoch ${epoch}): not starting it, to never run it twice`);
    this.name = 'PeerStillClaimsError';
  }
}

export interface GroupRuntimeOptions {
  node: string;
  config: Config;
  services: ServiceRegistry;
  logger: Logger;
  /** The service's monitor (one per service; started here after its start, stopped before its stop). */
  monitorOf: (service: ManagedService) => ResourceMonitor;
  /** Called whenever what this node holds changes (heartbeats carry it). */
  onViewChange?: (view: HeartbeatView) => void;
  /** Peers heard now that claim the group, with their epoch (from their heartbeats). */
  peerClaims?: (group: string) => { node: string; epoch: number }[];
  /** How long a start waits for a peer that still claims the group to let go. */
  claimWaitMs: number;
  /**
   * A start under a new epoch is about to begin (the lease guard must know the group before
   * anything of it runs); throwing refuses the start.
   */
  onHold?: (group: string, epoch: number) => void;
  /** The node let go of the group after a successful stop. */
  onLetGo?: (group: string, epoch: number) => void;
  /** Whether this node may serve the group now: its lease is unexpired and the guard has not released it. */
  mayServe?: (group: string, epoch: number) => { ok: true } | { ok: false; why: string };
  /** The highest epoch seen of each group by earlier runs of the agent (epoch-store.ts). */
  seenEpochs?: Readonly<Record<string, number>>;
  /**
   * A higher epoch of the group was seen: keep it across restarts (epoch-store.ts). A start under a
   * new epoch waits for it, and is refused when it fails; other sightings are written behind.
   */
  onEpochSeen?: (group: string, epoch: number) => Promise<void>;
}

/** A group's epochs as this node knows them. */
interface Epochs {
  /** The newest epoch seen (controller, peers, activities): an older one is stale. */
  seen: number;
  /** The newest epoch under which this node let go of the group: no start under it or older. */
  letGo?: number;
}

export class GroupRuntime {
  private readonly held = new Map<string, HeldGroup>();
  private readonly epochs = new Map<string, Epochs>();
  /** The resources started, by group/resource: what this node runs. */
  private readonly started = new Set<string>();
  /** The monitors watching started resources (from their first verified start on). */
  private readonly monitors = new Map<string, ResourceMonitor>();
  /** Operations on one group run one at a time (a demotion must not interleave with a start). */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly log: Logger;

  constructor(private readonly opts: GroupRuntimeOptions) {
    this.log = opts.logger;
    for (const [group, seen] of Object.entries(opts.seenEpochs ?? {})) this.epochs.set(group, { seen });
  }

  /** The group as this node holds it, if it does. */
  holding(group: string): HeldGroup | undefined {
    return this.held.get(group);
  }

  heldGroups(): [string, HeldGroup][] {
    return [...this.held.entries()];
  }

  knownEpoch(group: string): number {
    return this.epochs.get(group)?.seen ?? 0;
  }

  /** An epoch seen elsewhere (controller, peer): later activities with an older one are refused. */
  seeEpoch(group: string, epoch: number): void {
    const e = this.epochsOf(group);
    if (epoch <= e.seen) return;
    e.seen = epoch;
    this.opts.onEpochSeen?.(group, epoch).catch((err: unknown) => this.log.error({ group, epoch, err: String(err) }, 'could not keep the epoch seen on disk'));
  }

  /** The highest epoch seen of each group (what the node announces to the controller). */
  seenEpochs(): Record<string, number> {
    return Object.fromEntries([...this.epochs].filter(([, e]) => e.seen > 0).map(([g, e]) => [g, e.seen]));
  }

  view(): HeartbeatView {
    return { groups: Object.fromEntries([...this.held].map(([g, h]) => [g, { epoch: h.epoch, state: h.state }])) };
  }

  /**
   * Starts one resource of the group under `epoch` (idempotent: a started resource is started
   * again, which the drivers make a no-op). The first start under a new epoch announces the
   * claim in the heartbeats and waits until no peer still claims the group.
   * @throws StaleEpochError under an epoch older than one seen; LetGoError under an epoch at
   * which this node has let go of the group already; StopFailedError while it holds the group
   * failed (nothing is started then).
   */
  startResource(groupName: string, resource: string, epoch: number): Promise<void> {
    return this.serial(groupName, async () => {
      this.assertFresh(groupName, epoch, 'start');
      const service = this.service(groupName, resource);
      const held = this.held.get(groupName);
      // What a failed stop left behind may still run: nothing is started on top of it, under any
      // epoch, until a stop succeeds or the node is fenced or confirmed down.
      if (held?.state === 'failed') throw new StopFailedError(groupName, this.opts.node, `an earlier stop failed and the group is still held here: ${held.failure ?? 'no detail'}`);
      if (!held || held.epoch !== epoch) {
        // On disk before anything runs under it: a controller that lost its data must not hand it out again.
        await this.opts.onEpochSeen?.(groupName, epoch);
        this.held.set(groupName, { epoch, state: 'starting' });
        this.seeEpoch(groupName, epoch);
        try {
          this.opts.onHold?.(groupName, epoch);
        } catch (err) {
          if (held) this.held.set(groupName, held);
          else this.held.delete(groupName);
          throw err;
        }
        this.changed();
        await this.waitForPeersToLetGo(groupName, epoch);
      }
      this.log.info({ group: groupName, resource, epoch }, 'starting resource');
      try {
        await service.driver.start();
      } catch (err) {
        // A start that failed half-way may have left something behind: stop it. If that fails
        // too, the resource may be running: the group is failed here, not let go.
        try {
          await service.driver.stop();
        } catch (stopErr) {
          const detail = `${resource} failed to start (${err instanceof Error ? err.message : String(err)}), then to stop (${stopErr instanceof Error ? stopErr.message : String(stopErr)})`;
          this.markFailed(groupName, detail);
          throw new StopFailedError(groupName, this.opts.node, detail);
        }
        if (!this.group(groupName).resources.some((r) => this.started.has(keyOf(groupName, r.name)))) this.letGo(groupName);
        throw err;
      }
      this.started.add(keyOf(groupName, resource));
      service.startedAt = Date.now();
    });
  }

  /**
   * The resource passed its check after its start: from now on its monitor watches it (a
   * failure during the start is the start's failure, for the failover to handle, not a heal's).
   * The group counts as running once every resource is watched.
   */
  watch(groupName: string, resource: string, epoch: number): Promise<void> {
    return this.serial(groupName, async () => {
      this.assertFresh(groupName, epoch);
      const key = keyOf(groupName, resource);
      if (!this.started.has(key) || this.held.get(groupName)?.epoch !== epoch) {
        throw new Error(`resource ${groupName}/${resource} was not started on node ${this.opts.node} at epoch ${epoch}`);
      }
      this.startWatching(groupName, resource);
      if (this.group(groupName).resources.every((r) => this.monitors.has(keyOf(groupName, r.name)))) {
        this.held.set(groupName, { epoch, state: 'running' });
        this.changed();
      }
    });
  }

  /** Stops one resource (undoing a start); the group is let go once none of it is started. */
  stopResource(groupName: string, resource: string, epoch: number): Promise<void> {
    return this.serial(groupName, async () => {
      this.assertFresh(groupName, epoch);
      try {
        await this.stopOne(groupName, resource);
      } catch (err) {
        const detail = `${resource}: ${err instanceof Error ? err.message : String(err)}`;
        this.markFailed(groupName, detail);
        throw new StopFailedError(groupName, this.opts.node, detail);
      }
      const group = this.group(groupName);
      if (!group.resources.some((r) => this.started.has(keyOf(groupName, r.name)))) this.letGo(groupName);
    });
  }

  /**
   * Stops the whole group in reverse order and lets it go. With an epoch (a planned move)
   * a stale one is refused; without (the lease was lost) it always stops.
   */
  stopGroup(groupName: string, reason: string, epoch?: number): Promise<void> {
    return this.serial(groupName, async () => {
      if (epoch !== undefined) this.assertFresh(groupName, epoch);
      const held = this.held.get(groupName);
      if (held) {
        held.state = 'stopping';
        this.changed();
      }
      this.log.warn({ group: groupName, reason }, 'stopping group');
      const errors: string[] = [];
      for (const r of [...this.group(groupName).resources].reverse()) {
        await this.stopOne(groupName, r.name).catch((err: unknown) => errors.push(`${r.name}: ${err instanceof Error ? err.message : String(err)}`));
      }
      if (errors.length > 0) {
        // Not let go: whatever did not stop may still serve (Pacemaker's rule).
        this.markFailed(groupName, errors.join('; '));
        throw new StopFailedError(groupName, this.opts.node, errors.join('; '));
      }
      this.letGo(groupName);
    });
  }

  /**
   * A stop or the guard's release failed: the group stays held, in state 'failed', and nothing
   * of it is watched or healed any more.
   */
  markFailed(groupName: string, detail: string): void {
    const held = this.held.get(groupName) ?? { epoch: this.knownEpoch(groupName), state: 'failed' as const };
    if (held.state === 'failed' && held.failure === detail && this.held.has(groupName)) return;
    this.log.error({ group: groupName, epoch: held.epoch, detail }, 'the group failed to stop: this node still holds it (state failed) until a stop succeeds, the guard releases it, or it is fenced or confirmed down');
    this.held.set(groupName, { epoch: held.epoch, state: 'failed', failure: detail });
    this.changed();
  }

  /**
   * The lease guard released the group at its deadline (VIPs deleted, processes killed): what
   * is left is stopped the agent's way, best effort, and the group is let go.
   */
  releasedByGuard(groupName: string, epoch: number): Promise<void> {
    return this.serial(groupName, async () => {
      const held = this.held.get(groupName);
      if (!held || held.epoch !== epoch) return;
      for (const r of [...this.group(groupName).resources].reverse()) {
        await this.stopOne(groupName, r.name).catch((err: unknown) =>
          this.log.warn({ group: groupName, resource: r.name, err: String(err) }, 'after the guard released the group, its stop failed (the guard killed its processes already)'),
        );
      }
      this.letGo(groupName);
    });
  }

  /**
   * Runs `fn` (a heal's restart) in the group's queue, after its starts and stops, only while
   * this node holds the group, running, under an unexpired lease the guard has not released:
   * after a freeze, the agent must not restart what the guard has just killed.
   * @throws NotHoldingError otherwise.
   */
  whileHolding<T>(groupName: string, fn: () => Promise<T>): Promise<T> {
    return this.serial(groupName, async () => {
      const held = this.held.get(groupName);
      if (!held) throw new NotHoldingError(groupName, this.opts.node, 'it is not held here');
      if (held.state !== 'running') throw new NotHoldingError(groupName, this.opts.node, `it is ${held.state}`);
      const may = this.opts.mayServe?.(groupName, held.epoch) ?? { ok: true };
      if (!may.ok) throw new NotHoldingError(groupName, this.opts.node, may.why);
      return fn();
    });
  }

  /** What the lease guard does to release the group: every resource's actions, in reverse order. */
  releaseActions(groupName: string): GuardAction[] {
    return [...this.group(groupName).resources].reverse().flatMap((r) => this.service(groupName, r.name).driver.guardActions?.() ?? []);
  }

  /**
   * At agent start: whatever was left running by an earlier agent (a VIP stays on its
   * interface when the agent dies) is stopped, except the groups in `keep`, which are adopted.
   */
  async cleanSlate(keep: Map<string, number>): Promise<void> {
    for (const group of this.groupsHere()) {
      const epoch = keep.get(group.name);
      if (epoch !== undefined) {
        this.held.set(group.name, { epoch, state: 'running' });
        this.seeEpoch(group.name, epoch);
        for (const r of group.resources) {
          this.started.add(keyOf(group.name, r.name));
          this.startWatching(group.name, r.name);
        }
        this.log.info({ group: group.name, epoch }, 'adopted a running group (the controller says this node owns it)');
        continue;
      }
      for (const r of [...group.resources].reverse()) {
        await this.service(group.name, r.name).driver.stop().catch((err: unknown) =>
          this.log.error({ group: group.name, resource: r.name, err: String(err) }, 'could not stop a resource left from before'),
        );
      }
    }
    this.changed();
  }

  /** Whether every resource of the group reports running (for adoption at start). */
  async allRunning(groupName: string): Promise<boolean> {
    for (const r of this.group(groupName).resources) {
      const status = await this.service(groupName, r.name).driver.status().catch(() => ({ running: false }));
      if (!status.running) return false;
    }
    return true;
  }

  /** The nodes that may run the group. */
  nodesOf(groupName: string): string[] {
    return this.group(groupName).nodes;
  }

  groupsHere(): GroupSpec[] {
    return this.opts.config.groups.filter((g) => g.nodes.includes(this.opts.node));
  }

  /** Stops every monitor (agent shutdown); the supervised processes are closed by the agent. */
  async close(): Promise<void> {
    await Promise.all([...this.monitors.values()].map((m) => m.stop()));
    this.monitors.clear();
    this.started.clear();
  }

  private startWatching(groupName: string, resource: string): void {
    const key = keyOf(groupName, resource);
    if (this.monitors.has(key)) return;
    const monitor = this.opts.monitorOf(this.service(groupName, resource));
    this.monitors.set(key, monitor);
    monitor.start();
  }

  private async stopOne(groupName: string, resource: string): Promise<void> {
    const key = keyOf(groupName, resource);
    const monitor = this.monitors.get(key);
    this.monitors.delete(key);
    this.started.delete(key);
    // Watching stops first: a stop is not a failure to heal.
    await monitor?.stop();
    this.log.info({ group: groupName, resource }, 'stopping resource');
    await this.service(groupName, resource).driver.stop();
  }

  private letGo(groupName: string): void {
    const held = this.held.get(groupName);
    if (!held) return;
    this.held.delete(groupName);
    // Let go under this epoch: orders of it that are still on their way start nothing here.
    const e = this.epochsOf(groupName);
    e.letGo = Math.max(e.letGo ?? 0, held.epoch);
    this.opts.onLetGo?.(groupName, held.epoch);
    this.changed();
  }

  /** Refuses a stale epoch; for a start, also one under which the group was let go here. */
  private assertFresh(group: string, epoch: number, op?: 'start'): void {
    const known = this.knownEpoch(group);
    if (epoch < known) throw new StaleEpochError(group, epoch, known, this.opts.node);
    const letGo = this.epochs.get(group)?.letGo;
    if (op === 'start' && letGo !== undefined && epoch <= letGo) throw new LetGoError(group, epoch, letGo, this.opts.node);
  }

  private epochsOf(group: string): Epochs {
    let e = this.epochs.get(group);
    if (!e) this.epochs.set(group, (e = { seen: 0 }));
    return e;
  }

  private async waitForPeersToLetGo(group: string, epoch: number): Promise<void> {
    if (!this.opts.peerClaims) return;
    const started = Date.now();
    for (;;) {
      const claims = this.opts.peerClaims(group);
      // A peer holds it under a newer epoch: this order is stale (a controller behind the nodes
      // gave it out), and starting would run the group twice.
      const newer = claims.find((c) => c.epoch > epoch);
      if (newer) {
        this.seeEpoch(group, newer.epoch);
        throw new StaleEpochError(group, epoch, newer.epoch, this.opts.node);
      }
      const older = claims.filter((c) => c.epoch < epoch);
      if (older.length === 0) return;
      const waited = Date.now() - started;
      if (waited >= this.opts.claimWaitMs) throw new PeerStillClaimsError(group, older[0]!.node, older[0]!.epoch, epoch, waited);
      await sleep(10);
    }
  }

  private changed(): void {
    this.opts.onViewChange?.(this.view());
  }

  private group(name: string): GroupSpec {
    const g = this.opts.config.groups.find((x) => x.name === name);
    if (!g) throw new Error(`unknown group '${name}' on node ${this.opts.node}: make sure every node runs the same haoscar.yaml`);
    return g;
  }

  private service(group: string, resource: string): ManagedService {
    const s = this.opts.services.get(group, resource);
    if (!s) throw new Error(`resource ${group}/${resource} is not configured on node ${this.opts.node}: make sure every node runs the same haoscar.yaml`);
    return s;
  }

  private serial<T>(group: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(group) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.queues.set(group, next);
    return next;
  }
}

const keyOf = (group: string, resource: string) => `${group}/${resource}`;
