/**
 * Workflow inputs, validated with zod at the workflow's entry: the Temporal UI lets anyone
 * type any JSON, so nothing is trusted until it has passed these schemas.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import { z } from 'zod';
import { ERROR_TYPES } from './shared.js';
import { RECIPE_FORMATS } from './recipe/common.js';

const name = (what: string) =>
  z.string({ error: `expected the ${what} name as text` }).regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, {
    error: `expected a ${what} name of lowercase letters, digits and '-'`,
  });

export const healServiceInputSchema = z.strictObject({
  cluster: name('cluster'),
  /** The node the service runs on (where it is restarted). */
  node: name('node'),
  group: name('group'),
  resource: name('resource'),
  /** Why the heal was started (shown in the history); monitors put the failing check here. */
  reason: z.string().max(1000).optional(),
  /** Restart times carried over by continue-as-new; not for people to set. */
  restarts: z.array(z.number().int().nonnegative()).max(1000).optional(),
});
export type HealServiceInput = z.infer<typeof healServiceInputSchema>;

/** Every problem of a failed parse as `path: message`; `whole` names a problem of the value itself. */
export function describeIssues(error: z.ZodError, whole: string): string[] {
  return error.issues.map((i) => {
    const path = i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    const message = i.code === 'unrecognized_keys' ? `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.join(', ')}` : i.message;
    return `${path || whole}: ${message}`;
  });
}

/**
 * Parses workflow input. @throws a non-retryable ApplicationFailure `InvalidWorkflowInput`
 * whose message lists every problem with its path, so a bad start from the UI fails at once
 * (instead of retrying its workflow task forever) and nothing is done.
 */
export function parseWorkflowInput<T>(schema: z.ZodType<T>, input: unknown, workflow: string): T {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = describeIssues(result.error, '(input)');
  throw ApplicationFailure.create({
    type: ERROR_TYPES.InvalidWorkflowInput,
    nonRetryable: true,
    message: `invalid input for ${workflow}: ${problems.join('; ')}`,
    details: [problems],
  });
}

/** The `serviceFailed` signal's argument (see ServiceFailure in shared.ts). */
export const serviceFailureSchema = z.strictObject({
  at: z.number().int().nonnegative(),
  detail: z.string().max(2000),
  source: z.string().max(200),
});

const node = name('node');
const at = z.number().int().nonnegative();

export const OPERATION_KINDS = ['operator', 'node-lost', 'heal-gave-up', 'place', 'recover', 'switchover'] as const;
const UNBLOCKERS = ['fencing', 'watchdog', 'confirm-down'] as const;

/**
 * The controller's state carried over continue-as-new (shared.ts Ownership, group-plan.ts
 * ControllerGroup, applied-updates.ts), checked field by field: "start like this one" in the UI
 * or a controller started by hand can give it anything, and a malformed one used as it is would
 * be the truth of who runs what. Lenient on what the controller itself writes (times and delays
 * are non-negative numbers, names are text) and on keys it does not know, which are kept (loose
 * objects): a newer controller's optional fields survive an older one's continue-as-new.
 */
const time = z.number({ error: 'expected a time or duration in ms' }).nonnegative().finite();
const epochNumber = z.number({ error: 'expected an epoch (a whole number)' }).int().nonnegative();
const text = (max: number) => z.string().max(max);
const blockedOnSchema = z.looseObject({
  node: text(200),
  epoch: epochNumber,
  since: time,
  detail: text(10_000),
  waitingFor: z.array(z.enum(UNBLOCKERS)).max(UNBLOCKERS.length),
  until: time.optional(),
  confirmed: z.looseObject({ operator: text(200), at: time, detail: text(10_000).optional() }).optional(),
});
const carriedGroupSchema = z.looseObject({
  owner: text(200).nullable(),
  epoch: epochNumber,
  state: z.enum(['unplaced', 'moving', 'running', 'down']),
  since: time,
  renewable: z.boolean(),
  blockedSince: time.optional(),
  operation: z.looseObject({
    workflowId: z.string().min(1).max(1000),
    kind: z.enum(OPERATION_KINDS),
    startedAt: time,
    checkedAt: time.optional(),
    blocked: blockedOnSchema.optional(),
  }).optional(),
  failbackAt: time.optional(),
  lost: z.looseObject({ node: text(200), epoch: epochNumber, at: time, detail: text(10_000), retryAt: time.optional(), delayMs: time.optional() }).optional(),
  retry: z.looseObject({ at: time, delayMs: time }).optional(),
  deferred: z.looseObject({
    kind: z.enum(['node-lost', 'heal-gave-up', 'place', 'recover']),
    reason: text(10_000),
    owner: text(200).nullable(),
    epoch: epochNumber,
    at: time,
    delayMs: time,
  }).optional(),
});
const nodeLivenessSchema = z.looseObject({
  state: z.enum(['up', 'suspect', 'unknown']),
  since: time,
  reportedBy: text(200),
  answeredAt: time.optional(),
});
export const carriedStateSchema = z.looseObject({
  /** The cluster whose state it is: another cluster's is refused (controllerInputSchema). */
  cluster: z.string().optional(),
  groups: z.record(z.string(), carriedGroupSchema).optional(),
  nodes: z.record(z.string(), nodeLivenessSchema).optional(),
  falseAlarms: z.array(z.looseObject({ group: text(200), node: text(200), at: time, workflowId: text(1000), detail: text(10_000) })).max(1000).optional(),
  reverify: z.record(z.string(), z.looseObject({ at: time, delayMs: time })).optional(),
  confirmedDown: z.array(z.looseObject({
    node: text(200),
    operator: text(200),
    at: time,
    detail: text(10_000).optional(),
    unblocked: z.array(z.looseObject({ group: text(200), workflowId: text(1000), epoch: epochNumber })),
  })).max(1000).optional(),
  /** The worker's lease and the ones the nodes announced (Ownership.leases; absent from older controllers). */
  leases: z.looseObject({
    worker: z.looseObject({ ttlMs: time, marginMs: time }),
    nodes: z.record(z.string(), z.looseObject({ ttlMs: time, marginMs: time, at: time })),
  }).optional(),
  /** The agents' authenticated reports (Ownership.reports; absent from older controllers). */
  reports: z.looseObject({
    nodes: z.record(z.string(), z.looseObject({ incarnation: time, counter: time, at: time })),
    refused: time,
    lastRefused: z.array(z.looseObject({ at: time, signal: text(200), sender: text(200), why: text(10_000) })).max(1000),
  }).optional(),
  /** Groups and nodes in maintenance (Ownership.maintenance; absent from older controllers). */
  maintenance: z.looseObject({
    groups: z.record(z.string(), z.looseObject({ at: time, operator: text(200), reason: text(2000).optional() })),
    nodes: z.record(z.string(), z.looseObject({ at: time, operator: text(200), reason: text(2000).optional() })),
    moves: z.record(z.string(), time).optional(),
  }).optional(),
  /** Updates applied, with their answers (applied-updates.ts). */
  applied: z.array(z.looseObject({ id: z.string().min(1).max(2000), update: text(200), at: time, result: z.unknown().optional() })).max(10_000).optional(),
});
export type CarriedState = z.infer<typeof carriedStateSchema>;

export const controllerInputSchema = z.strictObject({
  cluster: name('cluster'),
  /** State carried over by continue-as-new; not for people to set. */
  carried: carriedStateSchema.optional(),
}).refine((i) => i.carried?.cluster === undefined || i.carried.cluster === i.cluster, {
  error: (issue) => `the carried state is another cluster's ('${String((issue.input as { carried?: { cluster?: unknown } }).carried?.cluster)}')`,
  path: ['carried', 'cluster'],
});
export type ControllerInput = z.infer<typeof controllerInputSchema>;
/** What controllers before the carried state's schema accepted (recorded histories replay with it). */
export const controllerInputSchemaV0 = z.strictObject({
  cluster: name('cluster'),
  carried: z.unknown().optional(),
});

export const failoverInputSchema = z.strictObject({
  cluster: name('cluster'),
  group: name('group'),
  /** Move to this node only; default: the group's nodes in preference order. */
  to: node.optional(),
  /** Why (shown in the history). */
  reason: z.string().max(1000).optional(),
  /** What started it; people leave it out (operator). */
  kind: z.enum(OPERATION_KINDS, { error: `expected one of ${OPERATION_KINDS.join(', ')}` }).default('operator'),
  /**
   * The operator accepts losing data: a candidate whose copy of the group's file sets is further
   * behind than the group's failover.maxSyncLag (or by an unknown amount) may take it over, the
   * least behind first (haoscar failover --accept-data-loss).
   */
  acceptDataLoss: z.boolean({ error: 'expected true or false' }).optional(),
}).refine((i) => i.kind !== 'switchover' || i.to !== undefined, { error: "a 'switchover' needs 'to' (the target node)", path: ['to'] });
export type FailoverInput = z.input<typeof failoverInputSchema>;

/**
 * Which workflow may start a failover of each kind: the internal kinds skip safety steps that an
 * operator's failover takes (a `recover` neither stops nor waits for the owner, a `node-lost`
 * verifies instead of stopping, a `switchover` expects the switchover workflow's resync), so a
 * failover copied in the UI ("start like this one") or started by hand must not run as one.
 */
export function failoverKindStarter(kind: (typeof OPERATION_KINDS)[number]): 'anyone' | 'controller' | 'switchover' {
  if (kind === 'operator') return 'anyone';
  return kind === 'switchover' ? 'switchover' : 'controller';
}

/**
 * Why a failover of `kind` may not run when started by `parentWorkflowId` (undefined: started by
 * a client, not by a workflow), or undefined when it may. Pure.
 */
export function failoverKindRefusal(
  kind: (typeof OPERATION_KINDS)[number],
  parentWorkflowId: string | undefined,
  expected: { controller: string; switchover: string },
): string | undefined {
  const starter = failoverKindStarter(kind);
  if (starter === 'anyone' || parentWorkflowId === expected[starter]) return undefined;
  const by = parentWorkflowId === undefined ? 'it was started from outside (a client, the UI)' : `it was started by workflow ${parentWorkflowId}`;
  const instead = starter === 'switchover' ? 'start a switchover workflow (haoscar switchover GROUP --to NODE)' : "start it with kind 'operator' or without a kind (haoscar failover GROUP)";
  return `a failover of kind '${kind}' is started only by the ${starter === 'controller' ? `controller (${expected.controller})` : `switchover workflow (${expected.switchover})`}, and ${by}: to move the group yourself, ${instead}`;
}

/** A lease's timing as a node announces it: the bounds of the configuration's (src/config/schema.ts). */
export const leaseTimingSchema = z.strictObject({
  ttlMs: z.number().int().min(1).max(600_000),
  marginMs: z.number().int().min(1).max(60_000),
});
const epoch = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** NodeAnnouncement in shared.ts: what a node says about itself. */
export const nodeAnnouncementSchema = z.strictObject({
  lease: leaseTimingSchema.optional(),
  holds: z.record(name('group'), z.strictObject({ epoch, state: z.string().max(40) })).optional(),
  seen: z.record(name('group'), epoch).optional(),
});
export const nodeEdgeSchema = z.strictObject({
  node,
  to: z.enum(['suspect', 'up']),
  reporter: node,
  at,
  detail: z.string().max(2000),
  restarted: z.boolean().optional(),
  announce: nodeAnnouncementSchema.optional(),
}).refine((e) => e.announce === undefined || e.reporter === e.node, { error: 'a node announces only about itself (reporter must be node)', path: ['announce'] });
/** The `nodeAnnounce` signal (NodeAnnounce in shared.ts). */
export const nodeAnnounceSchema = z.strictObject({
  node,
  at,
  announce: nodeAnnouncementSchema,
});
export const healGaveUpSchema = z.strictObject({
  group: name('group'),
  resource: name('resource'),
  node,
  at,
  detail: z.string().max(4000),
});
export const groupLostSchema = z.strictObject({
  group: name('group'),
  node,
  epoch: z.number().int().nonnegative(),
  at,
  detail: z.string().max(4000),
});
/** ReportAuth in shared.ts: the MAC on an agent's report (a signal's second argument). */
export const reportAuthSchema = z.strictObject({
  incarnation: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  counter: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  mac: z.string().min(1).max(200),
});
/** HealGaveUpAuth in shared.ts: the MAC on a heal's "gave up" report. */
export const healGaveUpAuthSchema = z.strictObject({
  healId: z.string().min(1).max(500),
  mac: z.string().min(1).max(200),
});
/** UpdateAuth in shared.ts: the MAC on an update that can move ownership. */
const updateAuthSchema = z.strictObject({
  runId: z.string().min(1).max(200).optional(),
  mac: z.string().min(1).max(200),
});
export const beginOperationSchema = z.strictObject({
  group: name('group'),
  workflowId: z.string().min(1).max(1000),
  kind: z.enum(OPERATION_KINDS),
});
export const claimGroupSchema = z.strictObject({
  group: name('group'),
  workflowId: z.string().min(1).max(1000),
  expectEpoch: z.number().int().nonnegative(),
  owner: node.nullable(),
  auth: updateAuthSchema.optional(),
});
export const endOperationSchema = z.strictObject({
  group: name('group'),
  workflowId: z.string().min(1).max(1000),
  outcome: z.enum(['running', 'down', 'unchanged', 'false-alarm']),
  detail: z.string().max(4000),
  node: node.optional(),
  auth: updateAuthSchema.optional(),
});

/** The `operationBlocked` update (OperationBlocked in shared.ts), sent by a failover. */
export const operationBlockedSchema = z.strictObject({
  group: name('group'),
  workflowId: z.string().min(1).max(1000),
  node,
  epoch: z.number().int().nonnegative(),
  detail: z.string().max(4000),
  waitingFor: z.array(z.enum(UNBLOCKERS)).min(1).max(UNBLOCKERS.length),
  until: at.optional(),
  auth: updateAuthSchema.optional(),
});
/** The `confirmDown` update (ConfirmDown in shared.ts): `haoscar confirm-down`, or the UI. */
export const confirmDownSchema = z.strictObject({
  node,
  operator: z.string().min(1).max(200).optional(),
  detail: z.string().max(2000).optional(),
  auth: updateAuthSchema.optional(),
});
/** The `resetFailCount` update of a heal (ResetFailCount in shared.ts): `haoscar cleanup`, or the UI. */
export const resetFailCountSchema = z.strictObject({
  operator: z.string().min(1).max(200).optional(),
  reason: z.string().max(2000).optional(),
});
/** The `setMaintenance` update (SetMaintenance in shared.ts): `haoscar maintenance`, or the UI. */
export const setMaintenanceSchema = z.strictObject({
  group: name('group').optional(),
  node: node.optional(),
  on: z.boolean({ error: 'expected on: true or false' }),
  operator: z.string().min(1).max(200).optional(),
  reason: z.string().max(2000).optional(),
  force: z.boolean().optional(),
  auth: updateAuthSchema.optional(),
}).refine((r) => (r.group === undefined) !== (r.node === undefined), { error: 'expected exactly one of group and node', path: ['group'] });
/** The `confirmedDown` signal (ConfirmedDown in shared.ts), sent by the controller to a blocked failover. */
export const confirmedDownSchema = z.strictObject({
  node,
  epoch: z.number().int().nonnegative(),
  operator: z.string().min(1).max(200),
  at,
  detail: z.string().max(2000).optional(),
});

export const resyncInputSchema = z.strictObject({
  cluster: name('cluster'),
  group: name('group'),
  /** The node brought up to date (from the group's owner). */
  node,
  reason: z.string().max(1000).optional(),
});
export type ResyncInput = z.input<typeof resyncInputSchema>;

export const SWITCHOVER_TRIGGERS = ['operator', 'failback', 'standby'] as const;
export const switchoverInputSchema = z.strictObject({
  cluster: name('cluster'),
  group: name('group'),
  /** The node the group moves to. */
  to: node,
  reason: z.string().max(1000).optional(),
  /** What started it; people leave it out (operator). */
  trigger: z.enum(SWITCHOVER_TRIGGERS, { error: `expected one of ${SWITCHOVER_TRIGGERS.join(', ')}` }).default('operator'),
});
export type SwitchoverInput = z.input<typeof switchoverInputSchema>;

export const cloneInputSchema = z.strictObject({
  cluster: name('cluster'),
  /** The node whose system is imaged (normally a group's owner: it is only read). */
  from: node,
  /** The standby whose offline root receives the image; it must run no group. */
  to: node,
  /** The standby's root file system, mounted on the target (not its running root), e.g. /mnt/target. */
  targetRoot: z.string({ error: 'expected the target root directory (an absolute path)' }).regex(/^\/[^\0\n]*[^/\0\n]$/, { error: 'expected the target root directory: an absolute path other than /, e.g. /mnt/target' }),
  /** The source's root; `/` (a directory only for tests or an image kept on the source). */
  sourceRoot: z.string().regex(/^\/[^\0\n]*$/, { error: 'expected an absolute path' }).default('/'),
  /** The clone's host name; default: the target node's name. */
  hostname: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/, { error: 'expected a host name (letters, digits, - and .)' }).optional(),
  /** List what would change, change nothing. */
  dryRun: z.boolean({ error: 'expected true or false' }).default(false),
  /** Compare every file by content (slow), for the copy and the verification. */
  checksum: z.boolean({ error: 'expected true or false' }).default(false),
  /**
   * The standby's boot disk as the target sees it: rebuild the initramfs and install the boot
   * loader there in a chroot (src/clone/boot.ts). Absent: not done (the disks are the same).
   */
  bootDevice: z.string({ error: 'expected a device path' }).regex(/^\/dev\/[A-Za-z0-9][A-Za-z0-9._/:-]*$/, { error: 'expected the boot disk, a path under /dev, e.g. /dev/sda or /dev/disk/by-id/...' }).refine((d) => !d.split('/').includes('..'), { error: 'expected a device path without ..' }).optional(),
  reason: z.string().max(1000).optional(),
});
export type CloneInput = z.input<typeof cloneInputSchema>;

const imageDir = z.string({ error: 'expected the image directory on the witness (an absolute path)' }).regex(/^\/[^\0\n]*[^/\0\n]$/, { error: 'expected the image directory on the witness: an absolute path other than /, e.g. /var/lib/haoscar/images/web' });

/** `imageCapture` (docs/clone.md#golden-images): a node's system into a directory on the witness. */
export const imageCaptureInputSchema = z.strictObject({
  cluster: name('cluster'),
  /** The node whose system is captured (only read). */
  from: node,
  /** The image directory on the witness: new, empty, or an image (captured again, incrementally). */
  dir: imageDir,
  /** The source's root; `/` (a directory only for tests). */
  sourceRoot: z.string().regex(/^\/[^\0\n]*$/, { error: 'expected an absolute path' }).default('/'),
  reason: z.string().max(1000).optional(),
});
export type ImageCaptureInput = z.input<typeof imageCaptureInputSchema>;

/** `imageDeploy`: an image on the witness onto a standby's offline root, then its fix-ups. */
export const imageDeployInputSchema = z.strictObject({
  cluster: name('cluster'),
  /** The image directory on the witness. */
  dir: imageDir,
  /** The standby whose offline root receives the image; it must run no group. */
  to: node,
  /** The standby's root file system, mounted on the target (not its running root), e.g. /mnt/target. */
  targetRoot: z.string({ error: 'expected the target root directory (an absolute path)' }).regex(/^\/[^\0\n]*[^/\0\n]$/, { error: 'expected the target root directory: an absolute path other than /, e.g. /mnt/target' }),
  /** Where the target reaches the witness's sshd (clone.sshPort), e.g. its address on the nodes' network. */
  witnessHost: z.string({ error: 'expected the host name or address the target reaches the witness at' }).regex(/^[A-Za-z0-9:.[\]-]{1,253}$/, { error: 'expected a host name or an IP address' }),
  /** The host name the target gets; default: the target node's name. */
  hostname: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/, { error: 'expected a host name (letters, digits, - and .)' }).optional(),
  dryRun: z.boolean({ error: 'expected true or false' }).default(false),
  checksum: z.boolean({ error: 'expected true or false' }).default(false),
  reason: z.string().max(1000).optional(),
});
export type ImageDeployInput = z.input<typeof imageDeployInputSchema>;

export const imageRecipeInputSchema = z.strictObject({
  cluster: name('cluster'),
  /** The node whose distribution, packages and partitioning the recipe reproduces. */
  node,
  /** Which installer's file to write; absent: only the inventory is returned. */
  format: z.enum(RECIPE_FORMATS, { error: `expected one of ${RECIPE_FORMATS.join(', ')}` }).optional(),
  /** The root read on the node: `/` (a directory only for tests or a system kept there). */
  root: z.string().regex(/^\/[^\0\n]*$/, { error: 'expected an absolute path' }).default('/'),
  /** The new machine's host name. */
  hostname: z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$/, { error: 'expected a host name (letters, digits, - and .)' }).optional(),
  /** Where the first boot downloads HA-OSCAR's `npm pack` tarball from. */
  packageUrl: z.string().max(2000).regex(/^https?:\/\/[^\s'"\\]+$/, { error: 'expected an http:// or https:// URL without spaces or quotes' }).optional(),
  /** A crypt(3) hash for root's password (`openssl passwd -6`); default: locked. */
  rootPasswordHash: z.string().max(200).regex(/^\$[0-9a-z]+\$[^\s:'"\\]+$/, { error: 'expected a crypt(3) hash such as openssl passwd -6 prints ($6$...)' }).optional(),
  reason: z.string().max(1000).optional(),
});
export type ImageRecipeInput = z.input<typeof imageRecipeInputSchema>;
