/**
 * Names shared by workflows, activities, agents and the CLI. Workflow-safe: plain data and
 * `@temporalio/workflow` definitions only.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';

/**
 * Failure type names (ApplicationFailure.type). Retrying does not fix these, except the two
 * marked transient (which a workflow's retry policy retries, resuming where it was).
 */
export const ERROR_TYPES = {
  /** Workflow input (from the UI, the CLI or an agent) failed validation. Nothing was changed. */
  InvalidWorkflowInput: 'InvalidWorkflowInput',
  /** The workflow names a cluster other than the one whose queue it runs on. */
  WrongCluster: 'WrongCluster',
  UnknownNode: 'UnknownNode',
  UnknownGroup: 'UnknownGroup',
  UnknownResource: 'UnknownResource',
  /** The group does not list this node among those that may run it. */
  NodeNotInGroup: 'NodeNotInGroup',
  /** A service could not be started (command missing, unit not found, start failed). */
  ServiceStartFailed: 'ServiceStartFailed',
  /** A restarted service did not pass its check `rise` times within `startTimeout`. */
  ServiceNotHealthy: 'ServiceNotHealthy',
  /** healService used up its restarts (maxRestarts within window): escalate to failover. */
  HealGaveUp: 'HealGaveUp',
  /** An ownership change carried an epoch older than one this node or the controller has seen. */
  StaleEpoch: 'StaleEpoch',
  /** Another operation (failover, switchover) is running on the group. */
  OperationInProgress: 'OperationInProgress',
  /** No candidate node could start the group: it is down. */
  NoNodeCouldRunGroup: 'NoNodeCouldRunGroup',
  /** Every candidate's copy of the group's file sets is further behind than failover.maxSyncLag (no --accept-data-loss). */
  StandbyBehind: 'StandbyBehind',
  /** A resource of the group failed to start on the chosen node. */
  ResourceStartFailed: 'ResourceStartFailed',
  /** The cluster's controller workflow is not running (agents start it). */
  ControllerNotRunning: 'ControllerNotRunning',
  /** rsync could not bring a file set up to date on the node (full or read-only destination, auth, ...). */
  SyncFailed: 'SyncFailed',
  /** A resync toward the group's owner was refused: data only ever flows from the owner. */
  NodeOwnsGroup: 'NodeOwnsGroup',
  /** A clone's target runs a group (or is its owner): a clone never goes toward it. Nothing was changed. */
  TargetRunsGroup: 'TargetRunsGroup',
  /** A clone was refused before anything changed (same node, the running root, no target directory, a bad plan). */
  CloneRefused: 'CloneRefused',
  /** The clone's target cannot read the source's root over ssh. */
  SourceUnreachable: 'SourceUnreachable',
  /** rsync failed in a way retrying does not fix (no space, read-only, permissions, auth). */
  CloneCopyFailed: 'CloneCopyFailed',
  /**
   * A golden image's step was refused before anything changed (docs/clone.md#golden-images): the
   * directory is not an image (deploy) or is someone's data (capture), the capture is unfinished,
   * or no `haoscar worker` serves the witness's queue.
   */
  ImageRefused: 'ImageRefused',
  /** `image recipe`: the node's system cannot be described (no os-release, a distribution in no known family). */
  RecipeUnsupported: 'RecipeUnsupported',
  /** The group runs nowhere: there is no owner to resync from. */
  GroupRunsNowhere: 'GroupRunsNowhere',
  /** DRBD found split brain: an administrator has to choose whose changes to keep (docs/drbd.md). */
  DrbdSplitBrain: 'DrbdSplitBrain',
  /** Transient: a DRBD resource could not be brought up to date (not split brain). */
  DrbdResyncFailed: 'DrbdResyncFailed',
  /** Transient: rsync failed in a way another attempt may not (connection, timeout, vanished source). */
  RsyncTransient: 'RsyncTransient',
  /**
   * Stopping the group failed on its node (a stop script failed, a stop timed out, a VIP could
   * not be removed, the lease guard could not release it): the node still holds the group, in
   * state 'failed'. It moves only after fencing, an armed watchdog's timeout, or an operator's
   * confirm-down.
   */
  StopFailed: 'StopFailed',
  /** A switchover did not reach its target; the group was put back (or left down, see details). */
  SwitchoverFailed: 'SwitchoverFailed',
  /**
   * A confirm-down named a node no operation is blocked on now: a confirmation only unblocks
   * an operation waiting for that node at that time (it is never kept for later). Nothing was recorded.
   */
  NothingToConfirm: 'NothingToConfirm',
  /**
   * A message did not carry a valid MAC under the cluster secret (docs/security.md): an order
   * a node refused (not signed by the workflow worker for this node, action, workflow run and
   * content), or a signing asked for outside a workflow's local activity. Nothing was done.
   */
  Unauthenticated: 'Unauthenticated',
  /**
   * The group is in maintenance (`haoscar maintenance on --group`): nothing is done about it by
   * itself (no heal, no failover, no placement, no fail-back) until `off`. An operator's failover
   * or switchover by hand still runs.
   */
  InMaintenance: 'InMaintenance',
  /**
   * `haoscar maintenance on --node N` would leave a group N runs with no healthy node to move to
   * (none of its other nodes is up and out of standby). Nothing changed; `--force` puts the node
   * in standby anyway, and the group moves once one of its nodes can take it.
   */
  NoStandbyTarget: 'NoStandbyTarget',
} as const;
export type ErrorType = (typeof ERROR_TYPES)[keyof typeof ERROR_TYPES];

/**
 * The refusals of each controller update (one contract per message): its validator refuses with a
 * non-retryable ApplicationFailure of one of these types and changes nothing; the activities that
 * send the update pass the type on as it is (activities/controller.ts), never read from the words.
 * - InvalidWorkflowInput: the request failed its schema (workflows/inputs.ts).
 * - UnknownGroup / UnknownNode: a group or node the controller's configuration does not have.
 * - OperationInProgress: another operation holds the group, or (for the updates of an operation)
 *   the sender does not hold it: no operation is running, or another one is.
 * - StaleEpoch: the request names an epoch that is no longer the group's.
 * - NothingToConfirm: see ERROR_TYPES.
 * - Unauthenticated: the update can move ownership (a claim, the end or block of an operation, a
 *   confirm-down) and does not carry a valid MAC under the cluster's message key for this
 *   controller, update name and ID, sending run and content (`auth`, docs/security.md); nothing
 *   changed. beginOperation is not signed (it only blocks renewals: denial of service).
 * An update sent again with the ID of one applied (a retried activity) is not refused: it gets the
 * first answer, in the run that applied it (Temporal) and in later runs (workflows/controller.ts).
 */
export const CONTROLLER_REFUSALS = {
  beginOperation: [ERROR_TYPES.InvalidWorkflowInput, ERROR_TYPES.UnknownGroup, ERROR_TYPES.OperationInProgress],
  claimGroup: [ERROR_TYPES.InvalidWorkflowInput, ERROR_TYPES.UnknownGroup, ERROR_TYPES.OperationInProgress, ERROR_TYPES.StaleEpoch, ERROR_TYPES.UnknownNode, ERROR_TYPES.Unauthenticated],
  endOperation: [ERROR_TYPES.InvalidWorkflowInput, ERROR_TYPES.UnknownGroup, ERROR_TYPES.OperationInProgress, ERROR_TYPES.Unauthenticated],
  operationBlocked: [ERROR_TYPES.InvalidWorkflowInput, ERROR_TYPES.UnknownGroup, ERROR_TYPES.OperationInProgress, ERROR_TYPES.UnknownNode, ERROR_TYPES.StaleEpoch, ERROR_TYPES.Unauthenticated],
  confirmDown: [ERROR_TYPES.InvalidWorkflowInput, ERROR_TYPES.UnknownNode, ERROR_TYPES.NothingToConfirm, ERROR_TYPES.Unauthenticated],
  setMaintenance: [ERROR_TYPES.InvalidWorkflowInput, ERROR_TYPES.UnknownGroup, ERROR_TYPES.UnknownNode, ERROR_TYPES.NoStandbyTarget, ERROR_TYPES.Unauthenticated],
} as const satisfies Record<string, readonly ErrorType[]>;
export type ControllerUpdateName = keyof typeof CONTROLLER_REFUSALS;
/** The failure types `update` may refuse with. */
export type RefusalOf<U extends ControllerUpdateName> = (typeof CONTROLLER_REFUSALS)[U][number];
/** Whether `type` is one of `update`'s refusals. Pure. */
export function isRefusalOf<U extends ControllerUpdateName>(update: U, type: string | null | undefined): type is RefusalOf<U> {
  return type !== null && type !== undefined && (CONTROLLER_REFUSALS[update] as readonly string[]).includes(type);
}

/** Workflows of a cluster (and cluster-wide lookups) run on this queue; every agent polls it. */
export const clusterTaskQueue = (cluster: string): string => `haoscar.${cluster}`;
/** Activities that touch one node run on that node's own queue; only its agent polls it. */
export const nodeTaskQueue = (cluster: string, node: string): string => `haoscar.${cluster}.node.${node}`;
/**
 * The witness's own activities (golden images kept in its directories): only `haoscar worker`
 * polls it, never an agent, so that an image is always written to and read from the witness.
 */
export const witnessTaskQueue = (cluster: string): string => `haoscar.${cluster}.witness`;
/** Who the witness is in its signed orders: not a node name (those have no parentheses), so no node's order fits it. */
export const WITNESS = '(witness)';

/**
 * One heal per group and resource at a time, whichever node reports: a group runs on one
 * node at a time, and two heals of the same service would fight over it.
 */
export const healWorkflowId = (cluster: string, group: string, resource: string): string =>
  `heal/${cluster}/${group}/${resource}`;

export interface ServiceFailure {
  /** When the failure was seen (ms since the epoch, the reporting node's clock). */
  at: number;
  /** What was seen, e.g. "process exited (signal SIGKILL)" or the failing check's detail. */
  detail: string;
  /** Who reported it: a node's monitor, the CLI, an operator. */
  source: string;
}

/** A monitor saw the service fail again (healthy → failing edge). */
export const serviceFailedSignal = defineSignal<[ServiceFailure]>('serviceFailed');

export interface HealAttempt {
  /** When the restart was begun (workflow time, ms since the epoch). */
  at: number;
  outcome: 'healthy' | 'failed';
  detail: string;
}

export interface HealStatus {
  phase: 'resolving' | 'backing-off' | 'restarting' | 'waiting-healthy' | 'watching' | 'healed' | 'gave-up';
  attempts: HealAttempt[];
  /** Restarts that count against maxRestarts (within the window). */
  restartsInWindow: number;
  failures: ServiceFailure[];
}
export const healStatusQuery = defineQuery<HealStatus>('healStatus');

/** What an operator's heal request (the `requestHeal` update) came to. */
export interface HealRequestOutcome {
  /** healthy: the service passed its check again; gave-up: the heal used up its restarts. */
  outcome: 'healthy' | 'gave-up';
  /** Attempts this heal has made so far (all requests together). */
  attempts: number;
  detail: string;
}
/**
 * An operator asks for a heal and gets an answer (the CLI uses this; monitors use the signal).
 * Its validator rejects a malformed failure report before anything is recorded.
 */
export const healRequestUpdate = defineUpdate<HealRequestOutcome, [ServiceFailure]>('requestHeal');

/** `haoscar cleanup GROUP [RESOURCE]`: who asks, and why (kept in the heal's history). */
export interface ResetFailCount {
  operator?: string;
  reason?: string;
}
export interface ResetFailCountResult {
  /** Restarts that counted against maxRestarts before the reset (within the window). */
  cleared: number;
  /** What the heal is doing now (a heal that has given up is closing: nothing to reset there). */
  phase: HealStatus['phase'];
}
/**
 * What `pcs resource cleanup` does to a fail count: the running heal forgets its restarts within
 * the window, so that the next failure starts from a full budget of maxRestarts.
 */
export const resetFailCountUpdate = defineUpdate<ResetFailCountResult, [ResetFailCount]>('resetFailCount');

// ------------------------------------------------------------------------------ ownership

/** The one controller of a cluster: it owns the truth of who runs each group, under which epoch. */
export const controllerWorkflowId = (cluster: string): string => `controller/${cluster}`;
/** Failovers started by the controller or the CLI; Temporal itself keeps one running per group. */
export const failoverWorkflowId = (cluster: string, group: string): string => `failover/${cluster}/${group}`;

export type OperationKind = 'operator' | 'node-lost' | 'heal-gave-up' | 'place' | 'recover' | 'switchover';

/** One resync of a node per group at a time. */
export const resyncWorkflowId = (cluster: string, group: string, node: string): string => `resync/${cluster}/${group}/${node}`;
/** One clone per target node at a time. */
export const cloneWorkflowId = (cluster: string, to: string): string => `clone/${cluster}/${to}`;
/** One capture into an image directory at a time (a deploy onto a node is a clone: {@link cloneWorkflowId}). */
export const imageCaptureWorkflowId = (cluster: string, dir: string): string => `image-capture/${cluster}${dir}`;
/** `image recipe` only reads: each run is its own workflow. */
export const recipeWorkflowId = (cluster: string, node: string, at: number): string => `image-recipe/${cluster}/${node}/${at}`;
/** One switchover per group at a time (operator's or automatic fail-back). */
export const switchoverWorkflowId = (cluster: string, group: string): string => `switchover/${cluster}/${group}`;

/** Heartbeat details of a resync activity: its progress, and where a retried attempt resumes. */
export interface ResyncProgress {
  /** What it is doing now, e.g. "file set www (/srv/www)" or "drbd r0". */
  phase: string;
  /** Steps (file-set directories, DRBD resources) finished, by key; a retried attempt skips them. */
  done: string[];
  steps: number;
  percent: number;
  /** Bytes transferred so far by this resync (all attempts). */
  bytes: number;
  etaSeconds?: number;
  /** Attempt that reported this (1 = first). */
  attempt: number;
}

export interface ResyncStepResult {
  key: string;
  kind: 'fileset' | 'drbd';
  bytes: number;
  durationMs: number;
  /** Done by an earlier attempt (resumed from its heartbeat details). */
  resumed: boolean;
}

/**
 * What a node knows of its copy of one file set (the `syncState` activity): the series it last
 * followed, an owner under one epoch, whose change generations (raised by the owner's watcher,
 * announced in its signed heartbeats) it counts. `owner` is the node itself when it was the
 * owner (the source) last. Numbers are the owner's counter only: no clock takes part.
 */
export interface FileSetSyncRecord {
  owner: string;
  epoch: number;
  /** The highest generation that owner announced in this series. */
  announced: number;
  /** The generation of the last pull from it that completed; null: none completed in this series. */
  pulled: number | null;
}

/** A candidate's answer about a group's file sets: a record per set (none: it has not followed any owner of it). */
/** failover.maxSyncLag of a group that leaves it out (and of layouts recorded without it). */
export const DEFAULT_MAX_SYNC_LAG = 1;

export interface CandidateSyncState {
  node: string;
  group: string;
  sets: Array<{ set: string; record?: FileSetSyncRecord }>;
}

export interface ResyncResult {
  group: string;
  node: string;
  source: string;
  steps: ResyncStepResult[];
  bytes: number;
  durationMs: number;
  /** Attempts of the activity (more than 1 after a worker crash). */
  attempts: number;
}

export interface SwitchoverResult {
  outcome: 'moved' | 'already-there';
  group: string;
  from: string | null;
  to: string;
  resync?: ResyncResult;
  failover?: FailoverResult;
}

export interface GroupOwnership {
  /** The node that runs (or is starting) the group; null when nobody does. */
  owner: string | null;
  /** Fencing token: raised on every change of owner. An activity carrying an older one is refused. */
  epoch: number;
  state: 'unplaced' | 'moving' | 'running' | 'down';
  /** Workflow time of the last change. */
  since: number;
  /**
   * false while an operation may move the group: the owner's lease is not extended (it keeps
   * the expiry it has), so a failover can wait out the lease from `blockedSince`.
   */
  renewable: boolean;
  blockedSince?: number;
  /** The operation holding the group; `checkedAt`: when it was last found still running. */
  /**
   * `runId`: the run of the workflow that sent the operation's first authenticated update (a
   * claim, block or end): later ones from another run of the same workflow ID are refused, so a
   * recorded update of an earlier run cannot end or move this one's (absent before that update).
   */
  operation?: { workflowId: string; kind: OperationKind; startedAt: number; checkedAt?: number; blocked?: BlockedOn; runId?: string };
  /** When an automatic fail-back of the group was last started (the next waits out `stickiness`). */
  failbackAt?: number;
  /**
   * Its owner reported that it let go of the group (`groupLost`) while an operation held it:
   * looked at when the operation ends (a `recover` if that node still owns it under that epoch),
   * kept until that `recover` has started. `at`: workflow time of the report; `retryAt`,
   * `delayMs`: a start that met the ended operation's workflow still closing is tried again then.
   */
  lost?: { node: string; epoch: number; at: number; detail: string; retryAt?: number; delayMs?: number };
  /**
   * Left down: tried again at `at` while a node of it is up; `delayMs` doubles with each
   * operation that leaves it down (workflows/group-plan.ts). Absent unless it is down.
   */
  retry?: { at: number; delayMs: number };
}

export interface NodeLiveness {
  state: 'up' | 'suspect' | 'unknown';
  since: number;
  /** Who reported the last change (a peer's agent, the node itself). */
  reportedBy: string;
  /**
   * When it last answered a verification while suspect (a false alarm): its peers cannot hear
   * it, but Temporal can reach it, so it may still be given a group (a `recover`, say).
   */
  answeredAt?: number;
}

export interface FalseAlarm {
  group: string;
  node: string;
  at: number;
  workflowId: string;
  detail: string;
}

export interface Ownership {
  cluster: string;
  groups: Record<string, GroupOwnership>;
  nodes: Record<string, NodeLiveness>;
  falseAlarms: FalseAlarm[];
  /** Owners that answered a verification while their peers still suspect them: asked again at `at`. */
  reverify: Record<string, { at: number; delayMs: number }>;
  /** The last confirm-downs, oldest first (absent from controllers older than them). */
  confirmedDown?: ConfirmedDownRecord[];
  /**
   * The lease timing the workflow worker is configured with, and what each node announced it
   * enforces (absent from controllers older than announcements; a node that has not announced is
   * not listed). A failover waits out the largest of them (old-owner-plan.ts leaseToWaitOut).
   */
  leases?: { worker: LeaseTiming; nodes: Record<string, AnnouncedLease> };
  /**
   * The agents' authenticated reports (absent from controllers older than them): the newest one
   * applied of each node, and the ones refused (no MAC, a MAC that does not verify, or not newer
   * than the node's newest: a replay). docs/security.md.
   */
  reports?: ReportsRecord;
  /**
   * Groups and nodes in maintenance (`haoscar maintenance`, workflows/maintenance-plan.ts); absent
   * from controllers older than it, and until the first `maintenance on`.
   */
  maintenance?: MaintenanceState;
}

/** Who put a group or node in maintenance, when (workflow time) and why. */
export interface MaintenanceMark {
  at: number;
  operator: string;
  reason?: string;
}

/**
 * Groups in maintenance are unmanaged: nothing is done about them by itself (their resources are
 * left as they are, monitors report and act on nothing). Nodes in maintenance are in standby: the
 * groups they run are switched over to another node, and nothing is placed on them.
 * `moves`: when the controller last started a standby's switchover of a group (tried again later).
 */
export interface MaintenanceState {
  groups: Record<string, MaintenanceMark>;
  nodes: Record<string, MaintenanceMark>;
  moves?: Record<string, number>;
}

/** What the controller keeps of the agents' reports (Ownership.reports). */
export interface ReportsRecord {
  /** Per node, the incarnation and counter of the newest report applied, and when (workflow time). */
  nodes: Record<string, { incarnation: number; counter: number; at: number }>;
  /**
   * Per heal workflow (its ID), the `at` of the newest "gave up" report applied: an older or equal
   * one is a replay. Absent from controllers older than signed heal reports.
   */
  heals?: Record<string, number>;
  /** Reports refused by this controller, over every run (carried over continue-as-new). */
  refused: number;
  /** The last refusals, oldest first. */
  lastRefused: RefusedReport[];
}

export interface RefusedReport {
  at: number;
  /** nodeEdge, nodeAnnounce, groupLost. */
  signal: string;
  /** The node it says sent it. */
  sender: string;
  why: string;
}

/**
 * The MAC on an agent's report to the controller (src/auth/messages.ts controllerReportMac),
 * sent as the signal's second argument (a controller older than it ignores the argument), made by
 * an agent that holds the cluster secret: its heartbeat incarnation, a counter of that incarnation
 * (1, 2, ... in the order it sends), and the MAC. Absent in a one-node cluster (no secret).
 */
export interface ReportAuth {
  incarnation: number;
  counter: number;
  mac: string;
}
/** The signals that carry an agent's report, authenticated with a {@link ReportAuth}. */
export const REPORT_SIGNALS = ['nodeEdge', 'nodeAnnounce', 'groupLost'] as const;
export type ReportSignal = (typeof REPORT_SIGNALS)[number];

/** A lease's timing: how long a hold lasts without a confirmation, and the margin for its stop. */
export interface LeaseTiming {
  ttlMs: number;
  marginMs: number;
}

/** The lease a node announced it enforces (its agent's own configuration), and when (workflow time). */
export interface AnnouncedLease extends LeaseTiming {
  at: number;
}

/**
 * What a node announces to the controller about itself (in its own edges and in `nodeAnnounce`):
 * the lease it enforces, the groups it holds (group → epoch and state) and the highest epoch it
 * has seen of each group it may run (persisted across agent restarts). A controller that lost its
 * data rebuilds ownership from these (workflows/announce-plan.ts).
 */
export interface NodeAnnouncement {
  lease?: LeaseTiming;
  holds?: Record<string, { epoch: number; state: string }>;
  seen?: Record<string, number>;
}
/** Current ownership; costs no history, so owners ask it every ttl/3 to confirm their lease. */
export const ownershipQuery = defineQuery<Ownership>('ownership');

/** An edge seen by an agent: a peer went silent on every link, came back, or the agent (re)started. */
export interface NodeEdge {
  node: string;
  to: 'suspect' | 'up';
  /** The agent that saw it. */
  reporter: string;
  at: number;
  detail: string;
  /** Set when the node reports its own (re)start: it holds no group whatever the controller thought. */
  restarted?: boolean;
  /**
   * What the reporter announces about itself; only in a node's own edges (reporter = node). Agents
   * send `nodeAnnounce` instead (a controller older than announcements refuses an edge with it).
   */
  announce?: NodeAnnouncement;
}
export const nodeEdgeSignal = defineSignal<[NodeEdge, ReportAuth?]>('nodeEdge');

/**
 * A node announces again what it holds, has seen and enforces, without any change of liveness:
 * sent when the controller's answer is behind it (a controller that lost Temporal's data) or
 * when the controller is not running (it starts it).
 */
export interface NodeAnnounce {
  node: string;
  at: number;
  announce: NodeAnnouncement;
}
export const nodeAnnounceSignal = defineSignal<[NodeAnnounce, ReportAuth?]>('nodeAnnounce');

export interface HealGaveUpReport {
  group: string;
  resource: string;
  node: string;
  at: number;
  detail: string;
}
export const healGaveUpSignal = defineSignal<[HealGaveUpReport, HealGaveUpAuth?]>('healGaveUp');

/**
 * The MAC on a heal's "gave up" report (src/auth/messages.ts healGaveUpMac), made by the workflow
 * worker for the heal workflow `healId`; absent from heals older than it (refused by a controller
 * that checks them) and in a one-node cluster (no secret).
 */
export interface HealGaveUpAuth {
  healId: string;
  mac: string;
}

/** An owner stopped a group by itself (its lease was lost): it runs nowhere until it is placed again. */
export interface GroupLostReport {
  group: string;
  node: string;
  /** The epoch it held; a report about an older epoch is stale and ignored. */
  epoch: number;
  at: number;
  detail: string;
}
export const groupLostSignal = defineSignal<[GroupLostReport, ReportAuth?]>('groupLost');

/** A failover asks for the group: refused while another operation holds it. */
export interface BeginOperation {
  group: string;
  workflowId: string;
  kind: OperationKind;
}
export interface OperationBegun {
  owner: string | null;
  epoch: number;
  /** Workflow time since which the owner's lease has not been renewed. */
  blockedSince: number;
  /** Nodes whose agents are up (reported by themselves or their peers), in no order. */
  up: string[];
  /**
   * The lease to wait out: the largest of the worker's configured one and every one the group's
   * nodes announced (absent from controllers older than announcements).
   */
  lease?: LeaseTiming;
}
export const beginOperationUpdate = defineUpdate<OperationBegun, [BeginOperation]>('beginOperation');

/**
 * The MAC on an update that can move ownership (src/auth/messages.ts controllerUpdateMac): made by
 * the sender that holds the cluster's message key (the workflow worker's local activity for a
 * failover, `haoscar confirm-down` for an operator), checked by the controller before anything
 * changes. Absent in a one-node cluster (no secret).
 */
export interface UpdateAuth {
  /** The sending workflow's run (its ID is the request's `workflowId`); absent for an operator. */
  runId?: string;
  mac: string;
}

/** epoch+1 with a new owner (null: nobody); refused unless `expectEpoch` is current and the caller holds the operation. */
export interface ClaimGroup {
  group: string;
  workflowId: string;
  expectEpoch: number;
  owner: string | null;
  auth?: UpdateAuth;
}
export const claimGroupUpdate = defineUpdate<{ epoch: number }, [ClaimGroup]>('claimGroup');

export interface EndOperation {
  group: string;
  workflowId: string;
  outcome: 'running' | 'down' | 'unchanged' | 'false-alarm';
  detail: string;
  /** The node that answered when the outcome is a false alarm. */
  node?: string;
  auth?: UpdateAuth;
}
export const endOperationUpdate = defineUpdate<void, [EndOperation]>('endOperation');

// ------------------------------------------------------------------ a failed stop is not a stop

/** What may unblock an operation whose old owner failed to stop the group (docs/failover.md). */
export type Unblocker = 'fencing' | 'watchdog' | 'confirm-down';

/**
 * An operation that may not move its group: the old owner failed to stop it (`StopFailed`) or
 * answered holding it in state 'failed', so it still holds it. Kept on the group's operation.
 */
export interface BlockedOn {
  /** The node that still holds the group. */
  node: string;
  /** The group's epoch when the operation blocked: what a confirm-down is keyed on, with the operation. */
  epoch: number;
  /** Workflow time the operation reported the block. */
  since: number;
  /** Why the node is not safe (its stop's failure, the fence agent's answer). */
  detail: string;
  /** What the operation is waiting for, any one of them. */
  waitingFor: Unblocker[];
  /** With an armed watchdog: workflow time after which the node has reset (lease + margin + watchdog timeout). */
  until?: number;
  /** An operator's confirm-down of the node, recorded for this block. */
  confirmed?: { operator: string; at: number; detail?: string };
}

/** A failover tells the controller it is blocked (and what it waits for); only the operation holding the group may. */
export interface OperationBlocked {
  group: string;
  workflowId: string;
  node: string;
  epoch: number;
  detail: string;
  waitingFor: Unblocker[];
  until?: number;
  auth?: UpdateAuth;
}
export const operationBlockedUpdate = defineUpdate<void, [OperationBlocked]>('operationBlocked');

/**
 * `haoscar confirm-down NODE`: an operator confirms the node is powered off or cannot run any
 * group (what `pcs stonith confirm` does). Refused (typed, nothing recorded) for an unknown node
 * (`UnknownNode`) or one no operation is blocked on now (`NothingToConfirm`).
 */
export interface ConfirmDown {
  node: string;
  /** Who confirms (kept in the controller's state and history). */
  operator?: string;
  /** Why they are sure, e.g. "powered off at the PDU". */
  detail?: string;
  auth?: UpdateAuth;
}
export interface ConfirmDownResult {
  node: string;
  /** The operations it unblocked (each keyed on its group, workflow and epoch). */
  unblocked: { group: string; workflowId: string; epoch: number }[];
}
export const confirmDownUpdate = defineUpdate<ConfirmDownResult, [ConfirmDown]>('confirmDown');

/**
 * `haoscar maintenance on|off --group G | --node N`: signed with the cluster secret like a
 * confirm-down (an unmanaged group or a node in standby changes what the cluster does by itself).
 * Exactly one of `group` and `node`. Refused (typed, nothing recorded) for an unknown group or node,
 * and (`NoStandbyTarget`) for a node whose group has nowhere to go, unless `force`.
 */
export interface SetMaintenance {
  group?: string;
  node?: string;
  on: boolean;
  operator?: string;
  reason?: string;
  force?: boolean;
  auth?: UpdateAuth;
}
export interface SetMaintenanceResult {
  /** 'group' or 'node', and its name. */
  target: { group: string } | { node: string };
  on: boolean;
  /** false: it already was (on) or was not (off) in maintenance; nothing changed. */
  changed: boolean;
  /** A node put in standby: its groups being switched over, and to where. */
  moves: { group: string; to: string }[];
  /** A node put in standby with --force: its groups that stay until a node can take them, and why. */
  stays: { group: string; why: string }[];
}
export const setMaintenanceUpdate = defineUpdate<SetMaintenanceResult, [SetMaintenance]>('setMaintenance');

export interface ConfirmedDownRecord extends ConfirmDownResult {
  operator: string;
  at: number;
  detail?: string;
}

/** Sent by the controller to a blocked failover once a confirm-down of its old owner is recorded. */
export interface ConfirmedDown {
  node: string;
  /** The epoch the failover blocked at: a confirmation for another block is ignored. */
  epoch: number;
  operator: string;
  at: number;
  detail?: string;
}
export const confirmedDownSignal = defineSignal<[ConfirmedDown]>('confirmedDown');

/** What a failover is doing now (the query `failoverStatus`; the Temporal UI shows the same as its current details). */
export interface FailoverStatus {
  phase: 'old-owner' | 'blocked' | 'starting' | 'done';
  blocked?: BlockedOn;
}
export const failoverStatusQuery = defineQuery<FailoverStatus>('failoverStatus');

/** What a failover came to (its workflow result, and so its history's last word). */
export interface FailoverResult {
  outcome: 'moved' | 'false-alarm' | 'already-there' | 'down' | 'unchanged';
  group: string;
  from: string | null;
  to: string | null;
  epoch: number;
  /** Workflow-time milliseconds spent in each phase, for the postmortem and the benchmark. */
  phases: { verifyMs?: number; stopMs?: number; syncMs?: number; syncCheckMs?: number; fenceMs?: number; blockedMs?: number; leaseWaitMs?: number; startMs?: number; totalMs: number };
  /** 'refused': not tried, its copy of the file sets is too far behind (failover.maxSyncLag). */
  attempts: { node: string; outcome: 'started' | 'failed' | 'refused'; detail: string }[];
}
