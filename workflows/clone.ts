/**
 * clone: images one node's system onto a standby's offline root (the SystemImager role,
 * docs/clone.md), started by `haoscar clone` or from the UI.
 *
 * Thin over a pure planner (clone-plan.ts): look the cluster up, plan, refuse a target that
 * owns any group (asked of the controller; the target's own activities check what it holds
 * too), then on the TARGET's queue: preflight (the source answers over ssh), the copy
 * (heartbeating progress; a retry resumes), the fix-ups, the verification. Each completed step
 * is in the history, so a clone whose worker died goes on from the step it was in.
 */
import { ApplicationFailure, log, proxyActivities, proxyLocalActivities } from '@temporalio/workflow';
import type { CloneActivities, CloneCopyResult, CloneVerifyResult } from '../activities/clone.js';
import type { BootLoaderResult } from '../src/clone/boot.js';
import type { ClusterActivities } from '../activities/cluster.js';
import type { ControllerActivities } from '../activities/controller.js';
import type { FixupReport } from '../src/clone/fixups.js';
import { signed } from './auth.js';
import { planClone, type ClonePlan } from './clone-plan.js';
import { cloneInputSchema, parseWorkflowInput } from './inputs.js';
import { ERROR_TYPES, nodeTaskQueue } from './shared.js';
import { says } from './story.js';

/** A dead worker is noticed within this (the copy heartbeats twice a second), then the retry resumes. */
export const CLONE_HEARTBEAT_TIMEOUT_MS = 30_000;

export interface CloneResult {
  from: string;
  to: string;
  targetRoot: string;
  dryRun: boolean;
  plan: Pick<ClonePlan, 'excluded' | 'hostname' | 'addresses' | 'warnings'>;
  copy: CloneCopyResult;
  fixups: FixupReport;
  /** Absent on a dry run. */
  verify?: CloneVerifyResult;
  /** With a boot device only: what ran (or on a dry run, would run) for the boot loader. */
  boot?: BootLoaderResult;
}

const local = proxyLocalActivities<ClusterActivities & ControllerActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200ms', maximumInterval: '2 seconds', maximumAttempts: 10, nonRetryableErrorTypes: [ERROR_TYPES.UnknownGroup, ERROR_TYPES.WrongCluster, ERROR_TYPES.ControllerNotRunning] },
});

const NON_RETRYABLE = [ERROR_TYPES.TargetRunsGroup, ERROR_TYPES.CloneRefused, ERROR_TYPES.CloneCopyFailed, ERROR_TYPES.Unauthenticated];

/** The clone's steps on `node`'s own queue (the target's; an image's deploy uses them too). */
export function cloneOn(cluster: string, node: string) {
  return proxyActivities<CloneActivities>({
    taskQueue: nodeTaskQueue(cluster, node),
    // Nobody else can take these: a target whose worker never comes fails the clone.
    scheduleToCloseTimeout: '48 hours',
    startToCloseTimeout: '24 hours',
    heartbeatTimeout: CLONE_HEARTBEAT_TIMEOUT_MS,
    retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  });
}

/**
 * Refuses `to` if the controller records it as the owner of any group: imaging replaces its
 * system, and whatever runs there with it (the target's own activities check what it holds too).
 * @throws TargetRunsGroup
 */
export async function refuseGroupOwner(cluster: string, to: string, what: string): Promise<void> {
  const layout = await local.describeCluster.executeWithOptions({ summary: 'look up the groups' }, [{ cluster }]);
  const owners = await Promise.all(layout.groups.map((g) => local.groupOwner.executeWithOptions({ summary: `ask the controller who owns ${g.name}` }, [{ cluster, group: g.name }]).then((o) => ({ group: g.name, ...o }))));
  const owned = owners.filter((o) => o.owner === to);
  if (owned.length > 0) {
    throw ApplicationFailure.create({ type: ERROR_TYPES.TargetRunsGroup, nonRetryable: true, message: `node '${to}' owns group(s) ${owned.map((o) => `${o.group} (epoch ${o.epoch})`).join(', ')}: ${what} never goes toward the owner of a group; nothing was changed` });
  }
}

export async function clone(rawInput: unknown): Promise<CloneResult> {
  const input = parseWorkflowInput(cloneInputSchema, rawInput, 'clone');
  const facts = await local.describeCloneFacts.executeWithOptions({ summary: 'look up the nodes and clone: in the configuration' }, [{ cluster: input.cluster }]);
  let plan: ClonePlan;
  try {
    plan = planClone(facts, { from: input.from, to: input.to, ...(input.hostname ? { hostname: input.hostname } : {}) });
  } catch (err) {
    throw ApplicationFailure.create({ type: ERROR_TYPES.CloneRefused, nonRetryable: true, message: `${err instanceof Error ? err.message : String(err)}; nothing was changed` });
  }
  await refuseGroupOwner(input.cluster, input.to, 'a clone');
  const sourceHost = facts.sourceAddress[input.from];
  if (sourceHost === undefined) throw ApplicationFailure.create({ type: ERROR_TYPES.CloneRefused, nonRetryable: true, message: `node '${input.from}' has no address; nothing was changed` });
  log.info('clone', { from: input.from, to: input.to, targetRoot: input.targetRoot, dryRun: input.dryRun, reason: input.reason });

  const ends = { source: input.from, sourceHost, sourceRoot: input.sourceRoot, targetRoot: input.targetRoot };
  const target = cloneOn(input.cluster, input.to);
  await target.clonePreflight.executeWithOptions(says(`${input.to} checks its target root ${input.targetRoot} and that it can read ${input.from} over ssh`), [ends]);
  const copy = await target.cloneCopy.executeWithOptions(
    says(input.dryRun ? `${input.to} lists what a clone of ${input.from} would change in ${input.targetRoot}` : `${input.to} copies ${input.from}'s system into ${input.targetRoot}`),
    [await signed(true, input.cluster, input.to, 'cloneCopy', { ...ends, filters: plan.filters, dryRun: input.dryRun, checksum: input.checksum })],
  );
  const fixups = await target.cloneFixups.executeWithOptions(
    says(`${input.to} ${input.dryRun ? 'works out' : 'applies'} the fix-ups: host name ${plan.hostname}, machine ID, ssh host keys, addresses`),
    [await signed(true, input.cluster, input.to, 'cloneFixups', { ...ends, hostname: plan.hostname, addresses: plan.addresses, dryRun: input.dryRun })],
  );
  const summary = { excluded: plan.excluded, hostname: plan.hostname, addresses: plan.addresses, warnings: plan.warnings };
  // Opt-in (it writes a disk's boot sector): after the fix-ups, since update-grub and the
  // initramfs read the fixed fstab; on a dry run its commands are listed.
  const bootLoader = async (dryRun: boolean) => input.bootDevice === undefined ? undefined : await target.cloneBootLoader.executeWithOptions(
    says(`${input.to} ${dryRun ? 'lists the commands that would install' : 'rebuilds the initramfs and installs'} the boot loader on ${input.bootDevice} in a chroot of ${input.targetRoot}`),
    [await signed(true, input.cluster, input.to, 'cloneBootLoader', { ...ends, bootDevice: input.bootDevice, dryRun })],
  );
  if (input.dryRun) {
    const boot = await bootLoader(true);
    return { from: input.from, to: input.to, targetRoot: input.targetRoot, dryRun: true, plan: summary, copy, fixups, ...(boot ? { boot } : {}) };
  }
  const verify = await target.cloneVerify.executeWithOptions(says(`${input.to} verifies the clone (checksums, sshd -t, the package database in a chroot)`), [
    { ...ends, filters: plan.filters, sample: facts.checksumSample, checksum: input.checksum, fixedFiles: [...new Set(fixups.changes.map((c) => c.file))] },
  ]);
  // Not onto a clone that did not verify: it would make a broken copy bootable.
  const boot = verify.ok ? await bootLoader(false) : undefined;
  return { from: input.from, to: input.to, targetRoot: input.targetRoot, dryRun: false, plan: summary, copy, fixups, verify, ...(boot ? { boot } : {}) };
}
