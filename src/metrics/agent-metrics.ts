/**
 * The agent's metrics: what `haoscar status` shows on the node (local-status.ts, one snapshot,
 * read from the same sources), plus the counters that status does not keep: lease confirmation
 * latency, guard actions. Pure: a snapshot in, metric families out (table-tested).
 *
 * Every series carries `cluster` and `node` (the agent's), so that a dashboard can name the
 * owner of a group without relabelling in Prometheus.
 */
import type { LocalStatus } from '../agent/local-status.js';
import type { HistogramSnapshot, Labels, MetricFamily, Sample } from './exposition.js';

/** What the agent counts for metrics beside its status snapshot. */
export interface AgentCounters {
  /** Seconds from a lease question to the controller's answer (answered questions only). */
  leaseConfirmation: HistogramSnapshot;
  /** Lease questions that got no answer (Temporal or the controller unreachable, a timeout). */
  leaseConfirmationFailures: number;
  /** What the agent saw its lease guard do: `released` a group at its deadline, `release-failed`. */
  guardActions: Readonly<Record<GuardActionSeen, number>>;
  /**
   * Each configured group's owner as this node knows it: itself when it holds the group, else the
   * peer its heartbeats hear running it under the newest epoch; absent when it knows of none.
   */
  owners: readonly { group: string; owner?: { node: string; epoch: number } }[];
  /**
   * Rejected heartbeat packets by reason, every reason (0 included: a series that appears only at
   * the first rejection defeats rate()); the status snapshot lists only those above 0.
   */
  heartbeatRejected?: Readonly<Record<string, number>>;
}

export const GUARD_ACTIONS_SEEN = ['released', 'release-failed'] as const;
export type GuardActionSeen = (typeof GUARD_ACTIONS_SEEN)[number];

/** Upper bounds (seconds) of the lease confirmation histogram: a ttl is 600 ms by default. */
export const LEASE_CONFIRMATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1, 2, 5] as const;

/** The group states of the agent's holds (groups.ts), each exported as a 0/1 series. */
const HELD_STATES = ['starting', 'running', 'stopping', 'failed'] as const;

const seconds = (ms: number) => ms / 1000;

export function agentFamilies(status: LocalStatus, counters: AgentCounters): MetricFamily[] {
  const base: Labels = { cluster: status.cluster, node: status.node };
  const l = (labels: Record<string, string>): Labels => ({ ...base, ...labels });
  const gauge = (name: string, help: string, samples: Sample[]): MetricFamily => ({ name, help, type: 'gauge', samples });
  const counter = (name: string, help: string, samples: Sample[]): MetricFamily => ({ name, help, type: 'counter', samples });
  const hb = status.heartbeat;
  const families: MetricFamily[] = [
    gauge('haoscar_agent_info', 'The agent: always 1; its release and whether it is connected to Temporal are labels.', [
      { labels: l({ release: status.release }), value: 1 },
    ]),
    gauge('haoscar_agent_temporal_connected', '1 while the agent is connected to Temporal and serving, 0 while it waits for it.', [
      { labels: base, value: status.temporal.connected ? 1 : 0 },
    ]),
    // --- groups
    gauge('haoscar_group_held', 'Groups this node holds, by state (1 for its state, 0 for the others). Absent: not held here.',
      status.held.flatMap((h) => HELD_STATES.map((state) => ({ labels: l({ group: h.group, state }), value: h.state === state ? 1 : 0 })))),
    gauge('haoscar_group_epoch', 'The epoch (fencing token) under which this node holds the group.',
      status.held.map((h) => ({ labels: l({ group: h.group }), value: h.epoch }))),
    gauge('haoscar_group_owner', "The group's owner as this node knows it (itself, or the peer heard running it under the newest epoch): 1, with the owner as a label.",
      counters.owners.filter((o) => o.owner).map((o) => ({ labels: l({ group: o.group, owner: o.owner!.node }), value: 1 }))),
    gauge('haoscar_group_owner_epoch', 'The epoch of the owner this node knows of (haoscar_group_owner).',
      counters.owners.filter((o) => o.owner).map((o) => ({ labels: l({ group: o.group, owner: o.owner!.node }), value: o.owner!.epoch }))),
    // --- leases
    gauge('haoscar_lease_expires_in_seconds', 'Seconds until the lease of a group held here runs out (negative: expired).',
      status.held.filter((h) => h.lease).map((h) => ({ labels: l({ group: h.group }), value: seconds(h.lease!.expiresInMs) }))),
    gauge('haoscar_lease_fail_safe', '1 while the group is served without a confirmed lease (Temporal unreachable, every peer heard).',
      status.held.filter((h) => h.lease).map((h) => ({ labels: l({ group: h.group }), value: h.lease!.failSafe ? 1 : 0 }))),
    {
      name: 'haoscar_lease_confirmation_seconds',
      help: "Time from a lease question to the controller's answer (answered questions only).",
      type: 'histogram',
      histograms: [{ labels: base, snapshot: counters.leaseConfirmation }],
    },
    counter('haoscar_lease_confirmation_failures_total', 'Lease questions the controller did not answer (Temporal unreachable, timeout).', [
      { labels: base, value: counters.leaseConfirmationFailures },
    ]),
  ];
  // --- heartbeats (absent in a one-node cluster)
  if (hb) {
    families.push(
      counter('haoscar_heartbeat_packets_total', 'Heartbeat packets: sent, received, accepted.', (['sent', 'received', 'accepted'] as const).map((kind) => ({ labels: l({ kind }), value: hb[kind] }))),
      counter('haoscar_heartbeat_rejected_total', 'Heartbeat packets rejected, by reason (bad MAC, replayed, unknown node, ...: docs/heartbeat.md).',
        Object.entries(counters.heartbeatRejected ?? hb.rejected).map(([reason, n]) => ({ labels: l({ reason }), value: n }))),
      gauge('haoscar_heartbeat_peer_up', '1 while the peer is heard (alive), 0 when suspect or not heard yet.',
        hb.peers.map((p) => ({ labels: l({ peer: p.node, state: p.state }), value: p.state === 'alive' ? 1 : 0 }))),
      gauge('haoscar_heartbeat_peer_last_heard_seconds', 'Seconds since the peer was last heard on any link.',
        hb.peers.filter((p) => p.lastHeardAgoMs !== undefined).map((p) => ({ labels: l({ peer: p.node }), value: seconds(p.lastHeardAgoMs!) }))),
      gauge('haoscar_heartbeat_link_up', '1 while the link (peer address -> own address) carries heartbeats.',
        hb.peers.flatMap((p) => p.links.map((k) => ({ labels: l({ peer: p.node, link: k.link }), value: k.alive ? 1 : 0 })))),
      gauge('haoscar_heartbeat_link_last_heard_seconds', 'Seconds since a heartbeat was last heard on the link.',
        hb.peers.flatMap((p) => p.links.filter((k) => k.lastHeardAgoMs !== undefined).map((k) => ({ labels: l({ peer: p.node, link: k.link }), value: seconds(k.lastHeardAgoMs!) })))),
      gauge('haoscar_heartbeat_peer_config_matches', "1 when the peer's configuration digest is this node's, 0 when it differs (absent: the peer does not send one).",
        hb.peers.filter((p) => p.configMatches !== undefined).map((p) => ({ labels: l({ peer: p.node }), value: p.configMatches ? 1 : 0 }))),
    );
  }
  // --- resources
  families.push(
    gauge('haoscar_resource_healthy', "1 while the resource's check passes here, 0 otherwise; the check's status is a label.",
      status.resources.map((r) => ({ labels: l({ group: r.group, resource: r.resource, status: r.status }), value: r.status === 'healthy' ? 1 : 0 }))),
    gauge('haoscar_resource_check_failures', "Consecutive failed checks of the resource (reset by a pass).",
      status.resources.map((r) => ({ labels: l({ group: r.group, resource: r.resource }), value: r.failures }))),
  );
  // --- the guard (absent where none runs)
  if (status.guard) {
    const g = status.guard;
    families.push(
      gauge('haoscar_guard_up', '1 while the lease guard runs and answers.', [{ labels: base, value: g.ok ? 1 : 0 }]),
      gauge('haoscar_guard_deadline_seconds', "Seconds until the guard's deadline for a group (it lets go of the group then).",
        g.groups.filter((x) => x.status === 'held').map((x) => ({ labels: l({ group: x.group }), value: seconds(x.deadlineInMs) }))),
    );
  }
  families.push(
    counter('haoscar_guard_actions_total', 'What the agent saw its lease guard do: released a group at its deadline, or failed to release it.',
      GUARD_ACTIONS_SEEN.map((action) => ({ labels: l({ action }), value: counters.guardActions[action] }))),
  );
  // --- file sets
  families.push(
    gauge('haoscar_sync_lag_seconds', "A standby's lag: from the owner's first change of the last pulled generation to the end of its pull.",
      status.fileSets.filter((f) => f.lagMs !== undefined).map((f) => ({ labels: l({ group: f.group, set: f.set, role: f.role }), value: seconds(f.lagMs!) }))),
    gauge('haoscar_sync_generation', 'The file set generation: raised by the owner per batch of changes; on a standby, the last pulled.',
      status.fileSets.map((f) => ({ labels: l({ group: f.group, set: f.set, role: f.role }), value: f.generation }))),
    gauge('haoscar_sync_last_success_timestamp_seconds', 'When the last pull of the file set succeeded (Unix time).',
      status.fileSets.filter((f) => f.lastSuccessAt !== undefined).map((f) => ({ labels: l({ group: f.group, set: f.set, role: f.role }), value: seconds(f.lastSuccessAt!) }))),
    counter('haoscar_sync_errors_total', 'Failed pulls of the file set since the agent started.',
      status.fileSets.map((f) => ({ labels: l({ group: f.group, set: f.set, role: f.role }), value: f.errors }))),
  );
  return families;
}
