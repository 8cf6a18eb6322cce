/**
 * The lease: an owner serves a group only while the controller confirms it. Every ttl/3 the
 * agent asks the controller's `ownership` query (no history is written); an answer naming this
 * node under the epoch it holds extends the lease to (time the question was sent) + ttl.
 *
 * - The controller names another owner or a newer epoch: the group is stopped at once.
 * - No confirmation for ttl: the group is stopped (in reverse order) — unless every peer that
 *   may run the group is heard and none claims it (or no other node may run it): then Temporal is what is unreachable, not this node, and
 *   the owner keeps serving (a control-plane outage must not become a service outage), saying
 *   so loudly. Nobody can be promoted meanwhile: that needs the controller.
 * - A heard peer claims the group under a newer epoch: stopped at once.
 *
 * Times are measured with this process's monotonic clock, so clock steps do not matter.
 */
import type { Logger } from '../log.js';
import type { GroupOwnership, Ownership } from '../../workflows/shared.js';
import type { GroupRuntime } from './groups.js';

export interface LeaseKeeperOptions {
  node: string;
  ttlMs: number;
  groups: GroupRuntime;
  /** Asks the controller; should give up after `timeoutMs`. */
  queryOwnership: (timeoutMs: number) => Promise<Ownership>;
  /** Peers' liveness and claims, from the heartbeats (absent in a one-node cluster). */
  peers?: () => { node: string; alive: boolean; claims: Record<string, number> }[];
  logger: Logger;
  /** How often a fail-safe "still serving without a lease" line is repeated. */
  failSafeLogEveryMs?: number;
  /** Told after the group was stopped here (so that the controller can place it again). */
  onLost?: (group: string, epoch: number, why: string) => void;
}

interface Lease {
  epoch: number;
  /** performance.now() until which the lease holds. */
  expiresAt: number;
  failSafeLoggedAt?: number;
}

export class LeaseKeeper {
  private readonly leases = new Map<string, Lease>();
  private timer: NodeJS.Timeout | undefined;
  private inFlight = false;
  private stopped = false;
  private lastAnswer: { ownership: Ownership; at: number } | undefined;
  private checkTimer: NodeJS.Timeout | undefined;
  private readonly losing = new Set<string>();
  private slowLoggedAt = -Infinity;
  private readonly log: Logger;

  constructor(private readonly opts: LeaseKeeperOptions) {
    this.log = opts.logger.child({ lease: true });
  }

  start(): void {
    this.timer = setInterval(() => void this.round(), Math.max(20, Math.floor(this.opts.ttlMs / 3)));
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
   * node as owner: that counts as a confirmation.
   */
  granted(group: string, epoch: number): void {
    const lease = this.leases.get(group);
    if (lease && lease.epoch === epoch) return;
    this.leases.set(group, { epoch, expiresAt: performance.now() + this.opts.ttlMs });
  }

  /** A heartbeat from a peer: a claim under a newer epoch ends our ownership at once. */
  peerClaim(peer: string, group: string, epoch: number): void {
    this.opts.groups.seeEpoch(group, epoch);
    const held = this.opts.groups.holding(group);
    if (held && held.epoch < epoch) void this.lose(group, `peer ${peer} claims it at epoch ${epoch} (this node holds epoch ${held.epoch})`);
  }

  /** One confirmation: asks the controller (unless a question is in flight) and acts on the answer. Public for tests. */
  async round(): Promise<void> {
    if (this.inFlight || this.stopped) return;
    if (this.opts.groups.heldGroups().length === 0) return;
    this.inFlight = true;
    const sentAt = performance.now();
    let answer: Ownership | undefined;
    try {
      // A late answer still counts from when the question was sent, so it may take up to ttl.
      answer = await this.opts.queryOwnership(this.opts.ttlMs);
      this.lastAnswer = { ownership: answer, at: performance.now() };
      const tookMs = performance.now() - sentAt;
      // A confirmation that takes half the ttl leaves little room: say so before leases are lost.
      if (tookMs > this.opts.ttlMs / 2 && performance.now() - this.slowLoggedAt > 10_000) {
        this.slowLoggedAt = performance.now();
        this.log.warn({ tookMs: Math.round(tookMs), ttlMs: this.opts.ttlMs }, 'lease confirmation is slow: the controller answered in more than half the lease ttl (is Temporal or its workflow worker overloaded? consider a longer lease.ttl)');
      }
    } catch (err) {
      this.log.warn({ err: String(err), tookMs: Math.round(performance.now() - sentAt) }, 'lease confirmation failed');
    } finally {
      this.inFlight = false;
    }
    await this.evaluate(answer, sentAt);
  }

  /** Applies an answer (if any) and stops what has expired. */
  private async evaluate(answer: Ownership | undefined, sentAt: number): Promise<void> {
    if (this.stopped) return;
    const held = this.opts.groups.heldGroups();
    // Forget leases of groups no longer held.
    for (const group of this.leases.keys()) if (!held.some(([g]) => g === group)) this.leases.delete(group);
    for (const [group, h] of held) {
      if (this.losing.has(group)) continue;
      let lease = this.leases.get(group);
      if (!lease || lease.epoch !== h.epoch) {
        lease = { epoch: h.epoch, expiresAt: performance.now() + this.opts.ttlMs };
        this.leases.set(group, lease);
      }
      const truth: GroupOwnership | undefined = answer?.groups[group];
      if (truth) {
        this.opts.groups.seeEpoch(group, truth.epoch);
        if (truth.owner !== this.opts.node || truth.epoch !== h.epoch) {
          await this.lose(group, `the controller says ${truth.owner ?? 'nobody'} owns it at epoch ${truth.epoch} (this node holds epoch ${h.epoch})`);
          continue;
        }
        // While an operation may move the group the lease is not extended (see the controller).
        if (truth.renewable) {
          lease.expiresAt = Math.max(lease.expiresAt, sentAt + this.opts.ttlMs);
          if (lease.failSafeLoggedAt !== undefined) {
            this.log.warn({ group, epoch: h.epoch }, 'lease confirmed again: fail-safe over');
            lease.failSafeLoggedAt = undefined;
          }
          continue;
        }
      }
      if (performance.now() < lease.expiresAt) continue;
      // The fail-safe is for a control plane that cannot be reached, not for one that is moving the group.
      const last = this.lastAnswer;
      const moving = last !== undefined && performance.now() - last.at < this.opts.ttlMs && last.ownership.groups[group]?.renewable === false;
      const failSafe = moving ? { ok: false as const, why: 'the controller is moving the group' } : this.failSafe(group);
      if (failSafe.ok) {
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

  private failSafe(group: string): { ok: true } | { ok: false; why: string } {
    // Only the nodes that may run the group could take it over; with none (a one-node group)
    // nobody can, and serving on is always safe.
    const rivals = new Set(this.opts.groups.nodesOf(group).filter((n) => n !== this.opts.node));
    const peers = (this.opts.peers?.() ?? []).filter((p) => rivals.has(p.node));
    if (peers.length < rivals.size) return { ok: false, why: `peer(s) ${[...rivals].filter((r) => !peers.some((p) => p.node === r)).join(', ')} are not heard either` };
    const silent = peers.filter((p) => !p.alive).map((p) => p.node);
    if (silent.length > 0) return { ok: false, why: `peer(s) ${silent.join(', ')} are not heard either` };
    const claimant = peers.find((p) => p.claims[group] !== undefined);
    if (claimant) return { ok: false, why: `peer ${claimant.node} claims the group` };
    return { ok: true };
  }

  private async lose(group: string, why: string): Promise<void> {
    const held = this.opts.groups.holding(group);
    // Once: later rounds find it held until the stop (queued behind any start) is done.
    if (!held || this.losing.has(group)) return;
    this.losing.add(group);
    this.leases.delete(group);
    this.log.error({ group, why }, 'lost the lease: stopping the group on this node');
    await this.opts.groups.stopGroup(group, `lease lost: ${why}`).catch((err: unknown) =>
      this.log.error({ group, err: String(err) }, 'stopping the group after losing the lease failed'),
    );
    this.losing.delete(group);
    this.opts.onLost?.(group, held.epoch, why);
  }
}
