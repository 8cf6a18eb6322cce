/**
 * Maintenance (`haoscar maintenance on|off`), as pure functions of the controller's state: what
 * the controller, the failover and the agents may do about a group or a node in maintenance.
 *
 * - A **group** in maintenance is unmanaged (Pacemaker's `is-managed=false`): nothing is done
 *   about it by itself. No heal (the agents' monitors report and act on nothing), no failover of
 *   a node lost or a heal that gave up, no placement, no fail-back, no standby move; its resources
 *   are left exactly as they are. The controller keeps what it was asked for meanwhile (the
 *   group's `deferred` request) and does it when maintenance ends, if it still stands. An
 *   operator's failover or switchover by hand still runs. The lease is still enforced: a node
 *   that cannot confirm its lease stops the group (never two owners, maintenance or not).
 * - A **node** in maintenance is in standby (`pcs node standby`): the groups it runs are switched
 *   over to a healthy node of theirs, one not in standby (standbyMoves), and nothing is placed on it
 *   (it is left out of the nodes a placement or a failover may choose) until `off`. Without such a
 *   node for one of its groups it is refused unless forced; forced, that group stays where it is
 *   (it is not stopped, unlike Pacemaker) and moves once one of its nodes can take it.
 *
 * Workflow-safe: plain data only.
 */
import { describeIssues, setMaintenanceSchema } from './inputs.js';
import {
  ERROR_TYPES,
  type GroupOwnership,
  type MaintenanceMark,
  type MaintenanceState,
  type NodeLiveness,
  type SetMaintenance,
  type SetMaintenanceResult,
} from './shared.js';
import type { Refusal } from './controller-refusals.js';

/** A standby's switchover of a group that did not take it away is tried again after this. */
export const STANDBY_MOVE_RETRY_MS = 30_000;

/** The group's maintenance mark, if it is in maintenance. */
export function groupMaintenance(m: MaintenanceState | undefined, group: string): MaintenanceMark | undefined {
  return m?.groups[group];
}

/** Whether the node is in standby. */
export function inStandby(m: MaintenanceState | undefined, node: string): boolean {
  return m?.nodes[node] !== undefined;
}

/** What a refused automatic action says: its type, and a sentence that names the group and how to end it. */
export interface MaintenanceRefusal {
  type: typeof ERROR_TYPES.InMaintenance;
  message: string;
}

/**
 * Why `action` (a heal, a failover, a placement...) is not done on its own about `group`, or
 * undefined when the group is not in maintenance. Pure.
 */
export function maintenanceRefusal(m: MaintenanceState | undefined, group: string, action: string): MaintenanceRefusal | undefined {
  const mark = groupMaintenance(m, group);
  if (!mark) return undefined;
  return {
    type: ERROR_TYPES.InMaintenance,
    message: `group ${group} is in maintenance (set by ${mark.operator}${mark.reason ? `: ${mark.reason}` : ''}): no ${action}; \`haoscar maintenance off --group ${group}\` manages it again`,
  };
}

/** The nodes a placement or a failover may choose: those not in standby. Pure. */
export function outOfStandby<T extends string>(nodes: readonly T[], m: MaintenanceState | undefined): T[] {
  return nodes.filter((n) => !inStandby(m, n));
}

/**
 * Where a group that `owner` runs goes when `owner` is put in standby: the first of its nodes (in
 * preference order) that is up and not in standby, or undefined. Pure.
 */
export function standbyTarget(
  groupNodes: readonly string[],
  owner: string,
  liveness: Readonly<Record<string, Pick<NodeLiveness, 'state'> | undefined>>,
  m: MaintenanceState | undefined,
): string | undefined {
  return groupNodes.find((n) => n !== owner && liveness[n]?.state === 'up' && !inStandby(m, n));
}

/** What the maintenance update looks at: the controller's groups and nodes, their maintenance, and each group's nodes. */
export interface MaintenanceFacts {
  groups: Record<string, Pick<GroupOwnership, 'owner' | 'state'>>;
  nodes: Record<string, Pick<NodeLiveness, 'state'>>;
  maintenance: MaintenanceState | undefined;
  /** Each group's nodes in preference order (the configuration). */
  groupNodes: Record<string, readonly string[]>;
}

/** A node's groups (those it runs or is starting) with where each would go, or why it cannot. */
function standbyPlan(f: MaintenanceFacts, node: string, m: MaintenanceState | undefined): Pick<SetMaintenanceResult, 'moves' | 'stays'> {
  const moves: SetMaintenanceResult['moves'] = [];
  const stays: SetMaintenanceResult['stays'] = [];
  for (const [group, g] of Object.entries(f.groups)) {
    if (g.owner !== node || g.state === 'down') continue;
    const gm = groupMaintenance(m, group);
    if (gm) {
      stays.push({ group, why: `group ${group} is in maintenance: it stays on ${node} until \`haoscar maintenance off --group ${group}\`` });
      continue;
    }
    const nodes = f.groupNodes[group] ?? [];
    const to = standbyTarget(nodes, node, f.nodes, m);
    if (to) moves.push({ group, to });
    else {
      const up = nodes.filter((n) => n !== node && f.nodes[n]?.state === 'up');
      stays.push({ group, why: `no other node of group ${group} is up and out of standby (its nodes: ${nodes.join(', ')}; up: ${up.join(', ') || 'none'})` });
    }
  }
  return { moves, stays };
}

/**
 * Whether the controller refuses the maintenance update, with which type: the request fails its
 * schema, names a group or node it does not know, or puts a node in standby that runs a group no
 * other node can take now (NoStandbyTarget, unless `force`; a group in maintenance itself does not
 * count: it stays by design). A refused update changes nothing. Pure.
 */
export function setMaintenanceRefusal(f: MaintenanceFacts, req: unknown): Refusal<'setMaintenance'> | undefined {
  const update = 'setMaintenance';
  const parsed = setMaintenanceSchema.safeParse(req);
  if (!parsed.success) return { update, type: ERROR_TYPES.InvalidWorkflowInput, message: `invalid setMaintenance request: ${describeIssues(parsed.error, '(request)').join('; ')}; nothing changed` };
  const r = parsed.data;
  if (r.group !== undefined && !f.groups[r.group]) {
    return { update, type: ERROR_TYPES.UnknownGroup, message: `unknown group '${r.group}' (known: ${Object.keys(f.groups).join(', ') || 'none'}); nothing changed` };
  }
  if (r.node !== undefined) {
    if (!f.nodes[r.node]) return { update, type: ERROR_TYPES.UnknownNode, message: `unknown node '${r.node}' (known: ${Object.keys(f.nodes).join(', ') || 'none'}); nothing changed` };
    if (r.on && !r.force && !inStandby(f.maintenance, r.node)) {
      const stuck = standbyPlan(f, r.node, { groups: f.maintenance?.groups ?? {}, nodes: { ...f.maintenance?.nodes, [r.node]: { at: 0, operator: '' } } }).stays
        .filter((s) => !groupMaintenance(f.maintenance, s.group));
      if (stuck.length > 0) {
        return {
          update,
          type: ERROR_TYPES.NoStandbyTarget,
          message: `node ${r.node} cannot be put in standby: ${stuck.map((s) => s.why).join('; ')}; nothing changed. With --force it is put in standby anyway: ${stuck.map((s) => s.group).join(', ')} stay${stuck.length === 1 ? 's' : ''} on ${r.node} (not stopped) until a node of ${stuck.length === 1 ? 'it' : 'them'} can take ${stuck.length === 1 ? 'it' : 'them'}`,
        };
      }
    }
  }
  return undefined;
}

/**
 * The maintenance state after an accepted update (one that setMaintenanceRefusal let through), and
 * the update's answer. Setting what already is changes nothing (`changed: false`, the first mark
 * kept). Pure: `now` is workflow time.
 */
export function applyMaintenance(f: MaintenanceFacts, req: SetMaintenance, now: number): { maintenance: MaintenanceState; result: SetMaintenanceResult } {
  const before = f.maintenance ?? { groups: {}, nodes: {} };
  const next: MaintenanceState = { groups: { ...before.groups }, nodes: { ...before.nodes }, ...(before.moves ? { moves: { ...before.moves } } : {}) };
  const mark: MaintenanceMark = { at: now, operator: req.operator ?? 'an operator', ...(req.reason !== undefined ? { reason: req.reason } : {}) };
  const none = { moves: [], stays: [] };
  if (req.group !== undefined) {
    const was = next.groups[req.group] !== undefined;
    if (req.on && !was) next.groups[req.group] = mark;
    if (!req.on) delete next.groups[req.group];
    return { maintenance: next, result: { target: { group: req.group }, on: req.on, changed: req.on !== was, ...none } };
  }
  const node = req.node!;
  const was = next.nodes[node] !== undefined;
  if (!req.on) {
    delete next.nodes[node];
    return { maintenance: next, result: { target: { node }, on: false, changed: was, ...none } };
  }
  if (!was) next.nodes[node] = mark;
  return { maintenance: next, result: { target: { node }, on: true, changed: !was, ...standbyPlan(f, node, next) } };
}

/** What standbyMoves looks at. */
export interface StandbyFacts extends MaintenanceFacts {
  /** Whether an operation holds the group or one was asked for. */
  busy: (group: string) => boolean;
  now: number;
}

/**
 * The switchovers a standby asks for now: each running group whose owner is in standby, that is
 * not itself in maintenance nor busy, to its standbyTarget, unless one was started for it within
 * STANDBY_MOVE_RETRY_MS (`maintenance.moves`). `wakeAt`: when the next retry is due. Pure.
 */
export function standbyMoves(f: StandbyFacts): { moves: { group: string; from: string; to: string }[]; wakeAt?: number } {
  const m = f.maintenance;
  const moves: { group: string; from: string; to: string }[] = [];
  let wakeAt: number | undefined;
  if (!m || Object.keys(m.nodes).length === 0) return { moves };
  for (const [group, g] of Object.entries(f.groups)) {
    if (g.owner === null || g.state !== 'running' || !inStandby(m, g.owner) || groupMaintenance(m, group) || f.busy(group)) continue;
    const to = standbyTarget(f.groupNodes[group] ?? [], g.owner, f.nodes, m);
    if (!to) continue;
    const last = m.moves?.[group];
    if (last !== undefined && f.now < last + STANDBY_MOVE_RETRY_MS) {
      wakeAt = Math.min(wakeAt ?? Infinity, last + STANDBY_MOVE_RETRY_MS);
      continue;
    }
    moves.push({ group, from: g.owner, to });
  }
  return { moves, ...(wakeAt !== undefined ? { wakeAt } : {}) };
}
