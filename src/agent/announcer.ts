/**
 * What this node announces to the controller about itself (NodeAnnouncement): the lease it
 * enforces (its own configuration), the groups it holds with their epochs, and the highest epoch
 * it has seen of each group (kept across restarts: epoch-store.ts). Sent (`nodeAnnounce`) at
 * start, just before the node's "up" edge, and again whenever an answer of the controller shows that it
 * is behind: it has not recorded this node's lease, knows an older epoch than this node holds or
 * has seen, or is not running at all (Temporal's data was lost; the signal starts it). The
 * controller then adopts what the nodes hold and never hands out an epoch a node has seen
 * (workflows/announce-plan.ts). At most one re-announcement per `minIntervalMs`.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { Logger } from '../log.js';
import type { LeaseTiming, NodeAnnounce, NodeAnnouncement } from '../../workflows/shared.js';
import type { LeaseView } from '../../workflows/lease-memo.js';
import type { GroupRuntime } from './groups.js';

/**
 * Why the controller's answer is behind what this node announces, or undefined when it is not.
 * A controller from before announcements (no `leases` in its answer) is never asked. Pure.
 */
export function announcementDue(node: string, mine: NodeAnnouncement, answer: LeaseView): string | undefined {
  if (!answer.leases) return undefined;
  const recorded = answer.leases.nodes[node];
  if (mine.lease && (recorded?.ttlMs !== mine.lease.ttlMs || recorded.marginMs !== mine.lease.marginMs)) return 'the controller has not recorded the lease this node enforces';
  for (const [group, held] of Object.entries(mine.holds ?? {})) {
    const g = answer.groups[group];
    if (held.state !== 'running' || !g) continue;
    if (g.epoch < held.epoch || (g.epoch === held.epoch && g.owner === null)) return `the controller has group ${group} at epoch ${g.epoch} (${g.owner ?? 'no owner'}), this node holds it at epoch ${held.epoch}`;
  }
  for (const [group, seen] of Object.entries(mine.seen ?? {})) {
    const g = answer.groups[group];
    if (g && g.epoch < seen) return `the controller has group ${group} at epoch ${g.epoch}, this node has seen epoch ${seen}`;
  }
  return undefined;
}

export interface AnnouncerOptions {
  node: string;
  lease: LeaseTiming;
  groups: GroupRuntime;
  send: (a: NodeAnnounce) => Promise<void>;
  logger: Logger;
  minIntervalMs: number;
}

export class Announcer {
  private lastAt = -Infinity;
  private sending = false;

  constructor(private readonly opts: AnnouncerOptions) {}

  /** What this node announces now. */
  announcement(): NodeAnnouncement {
    const holds = Object.fromEntries(this.opts.groups.heldGroups().map(([g, h]) => [g, { epoch: h.epoch, state: h.state }]));
    return { lease: { ...this.opts.lease }, holds, seen: this.opts.groups.seenEpochs() };
  }

  /** An answer of the controller: announces again if it is behind this node. */
  answered(answer: LeaseView): void {
    const why = announcementDue(this.opts.node, this.announcement(), answer);
    if (why !== undefined) this.resend(why);
  }

  /** A question to the controller failed: if it is not running, the announcement starts it. */
  failed(err: unknown): void {
    if (err instanceof WorkflowNotFoundError) this.resend('the controller is not running');
  }

  private resend(why: string): void {
    const now = performance.now();
    if (this.sending || now - this.lastAt < this.opts.minIntervalMs) return;
    this.lastAt = now;
    this.sending = true;
    this.opts.logger.warn({ why }, 'announcing to the controller again what this node holds and has seen (has Temporal lost its data?)');
    void this.opts.send({ node: this.opts.node, at: Date.now(), announce: this.announcement() }).finally(() => {
      this.sending = false;
    });
  }
}
