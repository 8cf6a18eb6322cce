/**
 * The lease: an owner serves a group only while the controller confirms it. Every ttl/3 the
 * agent reads the controller's lease memo, or asks its `ownership` query when the memo cannot
 * confirm (controller-link.ts; no history is written either way); an answer naming this node under
 * the epoch it holds extends the lease to (time the question was sent) + ttl.
 *
 * - The controller names another owner or a newer epoch: the group is stopped at once.
 * - No confirmation for ttl: the group is stopped (in reverse order) — unless every peer that
 *   may run the group is heard and none claims it (or no other node may run it): then Temporal is what is unreachable, not this node, and
 *   the owner keeps serving (a control-plane outage must not become a service outage), saying
 *   so loudly. Nobody can be promoted meanwhile: that needs the controller. "Heard" is
 *   decided from recency (fail-safe.ts): what a peer's last valid packet says must be younger
 *   than the heartbeat deadtime, counting the length of a stall of this process through which
 *   the packet may have waited unread; after a freeze, the peers' state from before says nothing.
 * - A heard peer claims the group under a newer epoch: stopped at once.
 *
 * Times are measured with this process's monotonic clock, so clock steps do not matter.
 *
 * An answer counts only when it is authentic (the agent's ControllerLink, with the cluster's
 * key): memo entries the workflow worker signed, from the run Temporal says is running, each the
 * newest of its key in that run's history; or the worker's signed answer to this very question (a
 * fresh nonce) from that run (src/auth/ownership-answer.ts). Anything else
 * (a process without the secret polling the cluster queue, a workflow worker older than the agent)
 * is no answer here: `queryOwnership` rejects, and the rules above for no confirmation apply.
 *
 * The lease is also enforced outside the agent: every hold is handed to the node's lease guard
 * as an absolute deadline on the boot clock (the send time of the confirmed question + ttl), so
 * a dead or frozen agent lets go at the same deadline (docs/guard.md). A guard that is not
 * running ends every lease at once; a group the guard released is not served again under
 * that epoch, and one it could not release stays held, in state 'failed'.
 */
import type { Logger } from '../log.js';
import type { GroupOwnership } from '../../workflows/shared.js';
import type { LeaseGroupView, LeaseView } from '../../workflows/lease-memo.js';
import { StopFailedError, type GroupRuntime } from './groups.js';
import { failSafeAllowed, stallThresholdMs, type FailSafeVerdict, type HeardPeer } from './fail-safe.js';
import { bootClockCs, GuardUnavailableError, type GuardHealth } from '../guard/guard-link.js';
import type { GuardAction } from '../guard/protocol.js';
import { Histogram } from '../metrics/exposition.js';
import { LEASE_CONFIRMATION_BUCKETS, type GuardActionSeen } from '../metrics/agent-metrics.js';

/** The node's lease guard as the lease keeper uses it (GuardLink). */
export interface LeaseGuard {
  /** @throws GuardUnavailableError when the guard cannot be told. */
  hold(group: string, epoch: number, deadlineCs: number, actions: GuardAction[]): void;
  drop(group: string, epoch: number): void;
  health(): GuardHealth;
  /** Starts the guard again (or re-opens its FIFO). */
  connect(): Promise<void>;
}

interface LeaseKeeperCommon {
  node: string;
  ttlMs: number;
  groups: GroupRuntime;
  /** Asks the controller; should give up after `timeoutMs`. */
  queryOwnership: (timeoutMs: number) => Promise<LeaseView>;
  logger: Logger;
  /** How often a fail-safe "still serving without a lease" line is repeated. */
  failSafeLogEveryMs?: number;
  /** Told after the group was stopped here (so that the controller can place it again). */
  onLost?: (group: string, epoch: number, why: string) => void;
  /** Told when stopping the group failed: it is still held here, failed (a failed stop is not a stop). */
  onStopFailed?: (group: string, epoch: number, why: string) => void;
  /** The lease guard released the group at its deadline (ok) or failed to (docs/alerts.md). */
  onGuardReleased?: (group: string, epoch: number, ok: boolean, detail: string) => void;
  /** The node's lease guard; absent where none runs (a one-node cluster). */
  guard?: LeaseGuard;
}

export type LeaseKeeperOptions = LeaseKeeperCommon & (
  | { peers?: undefined; heartbeatDeadtimeMs?: undefined }
  | {
      /** Peers as the heartbeats hear them now (absent in a one-node cluster): for the fail-safe. */
      peers: () => HeardPeer[];
      /** The heartbeat deadtime: a peer silent this long is not heard; a stall of half of it may have let peers suspect this node. */
      heartbeatDeadtimeMs: number;
    }
);

/** How often the guard's health is read, and how often a hold is repeated even when unchanged. */
const GUARD_CHECK_MS = 200;
const GUARD_REPEAT_MS = 1000;
const GUARD_REPAIR_EVERY_MS = 2000;

interface Lease {
  epoch: number;
  /** performance.now() until which the lease holds. */
  expiresAt: number;
  /** The same deadline on the boot clock, in centiseconds, for the guard. */
  deadlineCs: number;
  /** In fail-safe (no controller, every peer heard, none claims it): performance.now() until which serving on is allowed. */
  failSafeUntil?: number;
  failSafeLoggedAt?: number;
  /** What the guard was last told, and when. */
  told?: { line: string; at: number };
}

export class LeaseKeeper {
  private readonly leases = new Map<string, Lease>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  /** performance.now() when the question in flight was sent. */
  private inFlightSince: number | undefined;
  /** Whether the last question failed (no answer from the controller). */
  private lastRoundFailed = false;
  private stopped = false;
  private lastAnswer: { ownership: LeaseView; at: number } | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private readonly losing = new Set<string>();
  /** performance.now() of the last answer by a controller behind this node, by group. */
  private readonly behindSince = new Map<string, number>();
  private slowLoggedAt = -Infinity;
  private guardCheckedAt = -Infinity;
  private guardRepairAt = -Infinity;
  private guardDown: string | undefined;
  /** performance.now() when this keeper last ran (a timer or an evaluation); undefined until started. */
  private lastRanAt: number | undefined;
  /** The last stall (longer than stallThresholdMs): how long, and performance.now() when it ran again. */
  private lastStall: { lengthMs: number; endedAt: number } | undefined;
  private readonly log: Logger;
  /** Seconds from each question to the controller's answer (answered questions only), for metrics. */
  readonly confirmationLatency = new Histogram(LEASE_CONFIRMATION_BUCKETS);
  /** Questions without an answer, and what the guard was seen to do: for metrics (docs/metrics.md). */
  readonly counts = { confirmationFailures: 0, guardActions: { released: 0, 'release-failed': 0 } as Record<GuardActionSeen, number> };

  constructor(private readonly opts: LeaseKeeperOptions) {
    this.log = opts.logger.child({ lease: true });
  }

  start(): void {
    this.lastRanAt = performance.now();
    this.timer = setInterval(() => {
      this.noteRun();
      void this.round();
    }, Math.max(20, Math.floor(this.opts.ttlMs / 3)));
    // Expiry is checked on its own, finer clock: a question still in flight must not delay a stop.
    this.checkTimer = setInterval(() => void this.evaluate(undefined, 0), Math.max(10, Math.min(50, Math.floor(this.opts.ttlMs / 6))));
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.checkTimer);
  }

  /**
   * A start under `epoch` was just ordered by a failover, after the controller recorded this
   * node as owner: that counts as a confirmation (as of now, or of `confirmed`: when the
   * question whose answer confirmed it was sent, for a group adopted at agent start).
   * @throws GuardUnavailableError when the guard cannot be told: nothing may start.
   */
  granted(group: string, epoch: number, confirmed?: { at: number; atCs: number }): void {
    const lease = this.leases.get(group);
    if (lease && lease.epoch === epoch) return;
    if (this.guardDown !== undefined && this.guarded(group)) throw new GuardUnavailableError(this.guardDown);
    const fresh = this.newLease(epoch, confirmed?.at, confirmed?.atCs);
    this.leases.set(group, fresh);
    // Before anything of the group runs: a start cut short by the agent's death is released too.
    this.tellGuard(group, fresh);
  }

  /** Whether this node may serve the group now: an unexpired lease (or the fail-safe), not released by the guard. */
  mayServe(group: string, epoch: number): { ok: true } | { ok: false; why: string } {
    if (this.guardDown !== undefined && this.guarded(group)) return { ok: false, why: `the lease guard is not available: ${this.guardDown}` };
    const lease = this.leases.get(group);
    if (!lease || lease.epoch !== epoch) return { ok: false, why: `no lease at epoch ${epoch}` };
    const now = performance.now();
    if (now >= Math.max(lease.expiresAt, lease.failSafeUntil ?? -Infinity)) return { ok: false, why: 'its lease has expired' };
    const guarded = this.opts.guard?.health();
    const released = guarded?.ok ? guarded.state.groups.get(group) : undefined;
    if (released && released.epoch === epoch && released.status !== 'held') return { ok: false, why: `the lease guard ${released.status === 'failed' ? 'failed to release' : 'released'} it` };
    return { ok: true };
  }

  /** The node let go of the group itself: the guard forgets it. */
  letGo(group: string, epoch: number): void {
    const lease = this.leases.get(group);
    if (lease?.epoch === epoch) this.leases.delete(group);
    this.opts.guard?.drop(group, epoch);
  }

  private newLease(epoch: number, sentAt = performance.now(), sentAtCs = bootClockCs()): Lease {
    return { epoch, expiresAt: sentAt + this.opts.ttlMs, deadlineCs: sentAtCs + Math.floor(this.opts.ttlMs / 10) };
  }

  /** Hands the lease to the guard when it changed (or was last told a while ago). @throws GuardUnavailableError */
  private tellGuard(group: string, lease: Lease): void {
    const guard = this.opts.guard;
    if (!guard || !this.guarded(group)) return;
    const actions = this.opts.groups.releaseActions(group);
    const line = `${lease.epoch} ${lease.deadlineCs} ${JSON.stringify(actions)}`;
    const now = performance.now();
    if (lease.told && lease.told.line === line && now - lease.told.at < GUARD_REPEAT_MS) return;
    guard.hold(group, lease.epoch, lease.deadlineCs, actions);
    lease.told = { line, at: now };
  }

  /**
   * Whether the guard keeps the group's deadline. Not for a group that only this node may run:
   * no other node can take it over, so a release at the deadline (after an agent stall under
   * load, or with Temporal down) would only stop the service for nothing; the restarted agent
   * adopts what it left running.
   */
  private guarded(group: string): boolean {
    return this.opts.guard !== undefined && this.opts.groups.nodesOf(group).some((n) => n !== this.opts.node);
  }

  /**
   * The guard runs and answers, or every guarded group is let go (a node whose agent could die
   * without anyone letting go must not serve); a group it released or failed to release is
   * handled. Checked every GUARD_CHECK_MS.
   */
  private async checkGuard(): Promise<void> {
    const guard = this.opts.guard;
    if (!guard || performance.now() - this.guardCheckedAt < GUARD_CHECK_MS) return;
    this.guardCheckedAt = performance.now();
    const health = guard.health();
    if (!health.ok) {
      if (this.guardDown === undefined) this.log.error({ why: health.why }, 'the lease guard is not running: letting go of every group and serving none until it runs again');
      this.guardDown = health.why;
      for (const [group] of this.opts.groups.heldGroups()) {
        if (this.guarded(group)) await this.lose(group, `the lease guard is not running (${health.why})`);
      }
      if (performance.now() - this.guardRepairAt >= GUARD_REPAIR_EVERY_MS) {
        this.guardRepairAt = performance.now();
        await guard.connect().then(
          () => {
            this.log.warn('the lease guard runs again: this node may serve groups again');
            this.guardDown = undefined;
          },
          (err: unknown) => this.log.error({ err: String(err) }, 'the lease guard could not be started again'),
        );
      }
      return;
    }
    this.guardDown = undefined;
    for (const [group, held] of this.opts.groups.heldGroups()) {
      const seen = health.state.groups.get(group);
      if (!seen || seen.epoch !== held.epoch || seen.status === 'held') continue;
      if (seen.status === 'failed') {
        this.leases.delete(group);
        if (held.state !== 'failed') {
          this.counts.guardActions['release-failed']++;
          this.opts.groups.markFailed(group, `the lease guard could not release it: ${seen.detail ?? 'no detail'}`);
          this.opts.onStopFailed?.(group, held.epoch, `the lease guard could not release it: ${seen.detail ?? 'no detail'}`);
          this.opts.onGuardReleased?.(group, held.epoch, false, `the lease guard could not release it: ${seen.detail ?? 'no detail'}`);
        }
        continue;
      }
      if (this.losing.has(group)) continue;
      // Released at its deadline: the agent was too late (frozen, or its stop was slower).
      this.losing.add(group);
      this.leases.delete(group);
      this.counts.guardActions.released++;
      this.log.error({ group, epoch: held.epoch }, 'the lease guard released the group at its deadline: letting it go');
      this.opts.onGuardReleased?.(group, held.epoch, true, `the lease guard released it at its deadline (epoch ${held.epoch})${seen.detail ? `: ${seen.detail}` : ''}`);
      await this.opts.groups.releasedByGuard(group, held.epoch);
      this.losing.delete(group);
      this.opts.onLost?.(group, held.epoch, 'the lease guard released it at its deadline');
    }
  }

  /** A heartbeat from a peer: a claim under a newer epoch ends our ownership at once. */
  peerClaim(peer: string, group: string, epoch: number): void {
    this.opts.groups.seeEpoch(group, epoch);
    const held = this.opts.groups.holding(group);
    if (held && held.epoch < epoch) void this.lose(group, `peer ${peer} claims it at epoch ${epoch} (this node holds epoch ${held.epoch})`);
  }

  /** Each lease held: how long until it runs out (negative: expired), and whether it is served under the fail-safe. */
  status(): { group: string; epoch: number; expiresInMs: number; failSafe: boolean }[] {
    const now = performance.now();
    return [...this.leases.entries()].map(([group, lease]) => ({
      group,
      epoch: lease.epoch,
      expiresInMs: Math.round(Math.max(lease.expiresAt, lease.failSafeUntil ?? -Infinity) - now),
      failSafe: lease.failSafeUntil !== undefined && now >= lease.expiresAt,
    }));
  }

  /** One confirmation: asks the controller (unless a question is in flight) and acts on the answer. Public for tests. */
  async round(): Promise<void> {
    if (this.inFlight || this.stopped) return;
    if (this.opts.groups.heldGroups().length === 0) return;
    this.inFlight = true;
    const sentAt = performance.now();
    const sentAtCs = bootClockCs();
    this.inFlightSince = sentAt;
    let answer: LeaseView | undefined;
    try {
      // A late answer still counts from when the question was sent, so it may take up to ttl.
      answer = await this.opts.queryOwnership(this.opts.ttlMs);
      this.lastAnswer = { ownership: answer, at: performance.now() };
      this.lastRoundFailed = false;
      const tookMs = performance.now() - sentAt;
      this.confirmationLatency.observe(tookMs / 1000);
      // A confirmation that takes half the ttl leaves little room: say so before leases are lost.
      if (tookMs > this.opts.ttlMs / 2 && performance.now() - this.slowLoggedAt > 10_000) {
        this.slowLoggedAt = performance.now();
        this.log.warn({ tookMs: Math.round(tookMs), ttlMs: this.opts.ttlMs }, 'lease confirmation is slow: the controller answered in more than half the lease ttl (is Temporal or its workflow worker overloaded? consider a longer lease.ttl)');
      }
    } catch (err) {
      this.lastRoundFailed = true;
      this.counts.confirmationFailures++;
      this.log.warn({ err: String(err), tookMs: Math.round(performance.now() - sentAt) }, 'lease confirmation failed');
    } finally {
      this.inFlight = false;
      this.inFlightSince = undefined;
    }
    await this.evaluate(answer, sentAt, sentAtCs);
  }

  /**
   * Notices that this process did not run for a while (frozen, event loop blocked): called first
   * in every timer callback and evaluation, before any peer state is judged. Race: after a
   * stall, overdue timers (or a question's answer) can run before, or between, the reads of the
   * heartbeats that waited in the socket buffer meanwhile: the fail-safe counts such packets as
   * older by the stall's length (fail-safe.ts). Only while the timers run (tests drive rounds by hand).
   */
  private noteRun(): void {
    if (this.timer === undefined || this.lastRanAt === undefined) return;
    const now = performance.now();
    const gap = now - this.lastRanAt;
    this.lastRanAt = now;
    const deadtime = this.opts.heartbeatDeadtimeMs;
    if (deadtime === undefined || gap <= stallThresholdMs(deadtime)) return;
    this.lastStall = { lengthMs: gap, endedAt: now };
    if (this.opts.groups.heldGroups().length === 0) return;
    // A loaded host has such hiccups often; only one as long as the deadtime is worth a warning
    // (the heartbeat warns of it too). What it did to a fail-safe is in the "lost the lease" reason.
    const fields = { stalledMs: Math.round(gap), deadtimeMs: deadtime };
    const msg = `lease: this agent did not run for ${Math.round(gap)} ms: heartbeats read now may be that old, and the fail-safe counts them so`;
    if (gap >= deadtime) this.log.warn(fields, msg);
    else this.log.debug(fields, msg);
  }

  /** Applies an answer (if any) and stops what has expired. */
  private async evaluate(answer: LeaseView | undefined, sentAt: number, sentAtCs = 0): Promise<void> {
    if (this.stopped) return;
    this.noteRun();
    await this.checkGuard();
    const held = this.opts.groups.heldGroups();
    // Forget leases of groups no longer held.
    for (const group of this.leases.keys()) if (!held.some(([g]) => g === group)) this.leases.delete(group);
    for (const group of this.behindSince.keys()) if (!held.some(([g]) => g === group)) this.behindSince.delete(group);
    for (const [group, h] of held) {
      // A failed group is not renewed: the guard releases it at its deadline, or it stays failed.
      if (this.losing.has(group) || h.state === 'failed') continue;
      let lease = this.leases.get(group);
      if (!lease || lease.epoch !== h.epoch) {
        lease = this.newLease(h.epoch);
        this.leases.set(group, lease);
      }
      const truth: LeaseGroupView | undefined = answer?.groups[group];
      // A controller behind this node (Temporal's data lost: it knows an older epoch, or this one
      // without an owner) confirms nothing and takes nothing: the node announces what it holds
      // (announcer.ts) and the controller adopts it. Meanwhile the lease runs as without an answer,
      // and the fail-safe does not apply (that controller could place the group).
      const behind = truth !== undefined && controllerBehind(truth, h.epoch);
      if (behind) this.behindSince.set(group, performance.now());
      else if (truth) this.behindSince.delete(group);
      if (truth && !behind) {
        this.opts.groups.seeEpoch(group, truth.epoch);
        if (truth.owner !== this.opts.node || truth.epoch !== h.epoch) {
          await this.lose(group, `the controller says ${truth.owner ?? 'nobody'} owns it at epoch ${truth.epoch} (this node holds epoch ${h.epoch})`);
          continue;
        }
        // While an operation may move the group the lease is not extended (see the controller).
        if (truth.renewable) {
          lease.expiresAt = Math.max(lease.expiresAt, sentAt + this.opts.ttlMs);
          lease.deadlineCs = Math.max(lease.deadlineCs, sentAtCs + Math.floor(this.opts.ttlMs / 10));
          lease.failSafeUntil = undefined;
          this.tellGuardOrLose(group, lease);
          if (lease.failSafeLoggedAt !== undefined) {
            this.log.warn({ group, epoch: h.epoch }, 'lease confirmed again: fail-safe over');
            lease.failSafeLoggedAt = undefined;
          }
          continue;
        }
      }
      // The fail-safe is for a control plane that cannot be reached, not for one that is moving the group.
      const last = this.lastAnswer;
      const behindAt = this.behindSince.get(group);
      const moving = (last !== undefined && performance.now() - last.at < this.opts.ttlMs && last.ownership.groups[group]?.renewable === false)
        || (behindAt !== undefined && performance.now() - behindAt < this.opts.ttlMs);
      if (performance.now() < lease.expiresAt) {
        // The guard acts at the very deadline at which the fail-safe would begin: while the
        // controller does not answer and the fail-safe would apply, the guard is kept a ttl
        // ahead already (it still lets go one ttl after this agent stops judging).
        if (!moving && this.controllerSilent() && this.failSafe(group).ok) {
          lease.deadlineCs = Math.max(lease.deadlineCs, bootClockCs() + Math.floor(this.opts.ttlMs / 10));
        }
        this.tellGuardOrLose(group, lease);
        continue;
      }
      const failSafe = moving
        ? { ok: false as const, why: behindAt !== undefined && performance.now() - behindAt < this.opts.ttlMs ? 'the controller is behind this node (has it lost its data?) and has not adopted the group yet' : 'the controller is moving the group' }
        : this.failSafe(group);
      if (failSafe.ok) {
        // Nobody can be promoted without the controller; the guard still lets go one ttl after
        // this agent stops judging (dies, freezes).
        lease.failSafeUntil = performance.now() + this.opts.ttlMs;
        lease.deadlineCs = Math.max(lease.deadlineCs, bootClockCs() + Math.floor(this.opts.ttlMs / 10));
        this.tellGuardOrLose(group, lease);
        const every = this.opts.failSafeLogEveryMs ?? 5000;
        if (lease.failSafeLoggedAt === undefined || performance.now() - lease.failSafeLoggedAt >= every) {
          lease.failSafeLoggedAt = performance.now();
          this.log.error(
            { group, epoch: h.epoch, unconfirmedForMs: Math.round(performance.now() - lease.expiresAt + this.opts.ttlMs), failSafe: true },
            `FAIL-SAFE: serving group '${group}' WITHOUT A LEASE: the controller cannot be reached, but every peer that may run it is heard and none claims it. Nobody can be promoted until Temporal is back; check the connection to Temporal`,
          );
        }
        continue;
      }
      await this.lose(group, `lease not confirmed for ${this.opts.ttlMs}ms: ${moving ? failSafe.why : `the controller cannot be reached and ${failSafe.why}`}`);
    }
  }

  /** The last question failed, or the one in flight has waited a third of the ttl. */
  private controllerSilent(): boolean {
    if (this.lastRoundFailed) return true;
    return this.inFlightSince !== undefined && performance.now() - this.inFlightSince > this.opts.ttlMs / 3;
  }

  /** A guard that cannot be told ends the lease (checkGuard restarts it). */
  private tellGuardOrLose(group: string, lease: Lease): void {
    try {
      this.tellGuard(group, lease);
    } catch (err) {
      this.guardDown = err instanceof Error ? err.message : String(err);
      this.guardCheckedAt = -Infinity;
      void this.lose(group, this.guardDown);
    }
  }

  /** The fail-safe judged now, from how recently each peer was heard (fail-safe.ts). */
  private failSafe(group: string): FailSafeVerdict {
    const peers = this.opts.peers?.() ?? [];
    const now = performance.now();
    return failSafeAllowed({
      group,
      // Only the nodes that may run the group could take it over.
      rivals: this.opts.groups.nodesOf(group).filter((n) => n !== this.opts.node),
      peers,
      deadtimeMs: this.opts.heartbeatDeadtimeMs ?? 0,
      lastStall: this.lastStall && { lengthMs: this.lastStall.lengthMs, endedAgoMs: now - this.lastStall.endedAt },
    });
  }

  private async lose(group: string, why: string): Promise<void> {
    const held = this.opts.groups.holding(group);
    // Once: later rounds find it held until the stop (queued behind any start) is done. A group
    // whose stop failed is not stopped again on every heartbeat: the guard releases it at its
    // deadline, or it stays failed until it is fenced or confirmed down.
    if (!held || held.state === 'failed' || this.losing.has(group)) return;
    this.losing.add(group);
    this.leases.delete(group);
    this.log.error({ group, why }, 'lost the lease: stopping the group on this node');
    try {
      await this.opts.groups.stopGroup(group, `lease lost: ${why}`);
    } catch (err) {
      this.losing.delete(group);
      this.log.error({ group, err: String(err) }, 'stopping the group after losing the lease failed: it is still held here, failed');
      // Not "lost": the controller must not take it for stopped.
      if (err instanceof StopFailedError) this.opts.onStopFailed?.(group, held.epoch, err.message);
      return;
    }
    this.losing.delete(group);
    this.opts.onLost?.(group, held.epoch, why);
  }
}

/**
 * Whether the controller's record of a group is behind what this node holds: an older epoch, or
 * this one with no owner. Epochs are only raised by the controller, so neither happens unless it
 * lost its data (docs/temporal.md). Pure.
 */
export function controllerBehind(truth: Pick<GroupOwnership, 'owner' | 'epoch'>, heldEpoch: number): boolean {
  return truth.epoch < heldEpoch || (truth.epoch === heldEpoch && truth.owner === null);
}
