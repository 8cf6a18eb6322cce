/**
 * switchover: a planned move of a group to a node (`haoscar switchover GROUP --to NODE`, the
 * UI, or the controller's automatic fail-back).
 *
 * 1. resync (child workflow): the target pulls the group's data from the owner while the
 *    group keeps running there; no lock is held, so a failover is never held up by it.
 * 2. failover (child workflow, kind `switchover`): under the group's lock, the owner stops
 *    the group in reverse order, the target pulls once more (only what changed since), epoch+1,
 *    the target starts and verifies the resources; if anything fails there, what was started
 *    is undone and the group is started on its old owner again.
 *
 * The switchover fails (`SwitchoverFailed`) when the group did not end up on the target,
 * saying where it is; a resync failure fails it before anything was stopped.
 */
import { ApplicationFailure, ChildWorkflowFailure, executeChild, log, ParentClosePolicy, patched, WorkflowIdReusePolicy } from '@temporalio/workflow';
import { parseWorkflowInput, switchoverInputSchema, type FailoverInput, type ResyncInput } from './inputs.js';
import { groupAndOwner, tagIfUntagged } from './layout.js';
import { haTags } from './search-attributes.js';
import { PATCH_STORY, tellOutcome, tellTrigger } from './story.js';
import { ERROR_TYPES, failoverWorkflowId, resyncWorkflowId, type FailoverResult, type ResyncResult, type SwitchoverResult } from './shared.js';

export async function switchover(rawInput: unknown): Promise<SwitchoverResult> {
  const input = parseWorkflowInput(switchoverInputSchema, rawInput, 'switchover');
  // HaTrigger now, HaOutcome at the end (story.ts); asked before the first await.
  const story = patched(PATCH_STORY);
  tellTrigger(story, input.trigger === 'failback' ? 'failback' : input.trigger === 'standby' ? 'standby' : 'operator');
  try {
    const result = await move(input);
    tellOutcome(story, result.outcome);
    return result;
  } catch (err) {
    tellOutcome(story, 'failed');
    throw err;
  }
}

async function move(input: ReturnType<typeof switchoverInputSchema.parse>): Promise<SwitchoverResult> {
  tagIfUntagged({ cluster: input.cluster, group: input.group, node: input.to, operation: 'switchover' });
  const { group, owner: before } = await groupAndOwner(input.cluster, input.group, input.to);
  if (before.owner === input.to) {
    log.info('the group already runs on the target', { group: group.name, node: input.to });
    return { outcome: 'already-there', group: group.name, from: before.owner, to: input.to };
  }
  const reason = input.reason ?? `${input.trigger === 'failback' ? 'fail-back' : 'switchover'} to ${input.to}`;
  const hasData = (group.fileSets?.length ?? 0) > 0 || group.resources.some((r) => r.type === 'drbd');

  let resynced: ResyncResult | undefined;
  if (before.owner !== null && hasData) {
    try {
      resynced = await executeChild('resync', {
        workflowId: resyncWorkflowId(input.cluster, group.name, input.to),
        args: [{ cluster: input.cluster, group: group.name, node: input.to, reason } satisfies ResyncInput],
        workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
        typedSearchAttributes: haTags({ cluster: input.cluster, group: group.name, node: input.to, operation: 'resync' }),
        staticSummary: `resync: ${input.to} pulls ${group.name}'s data from ${before.owner} before the switchover`,
      });
    } catch (err) {
      throw ApplicationFailure.create({
        type: ERROR_TYPES.SwitchoverFailed,
        nonRetryable: true,
        message: `could not bring ${input.to} up to date for group '${group.name}': ${causeText(err)}; nothing was stopped, the group stays on ${before.owner}`,
      });
    }
  }

  let moved: FailoverResult;
  try {
    moved = await executeChild('failover', {
      workflowId: failoverWorkflowId(input.cluster, group.name),
      args: [{ cluster: input.cluster, group: group.name, to: input.to, kind: 'switchover', reason } satisfies FailoverInput],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      // The move finishes even if this workflow is terminated half-way: it holds the group's lock.
      parentClosePolicy: ParentClosePolicy.ABANDON,
      typedSearchAttributes: haTags({ cluster: input.cluster, group: group.name, operation: 'failover' }),
      memo: { trigger: 'switchover', detail: reason },
      staticSummary: `switchover: move ${group.name} from ${before.owner ?? 'nowhere'} to ${input.to}`,
    });
  } catch (err) {
    throw ApplicationFailure.create({ type: ERROR_TYPES.SwitchoverFailed, nonRetryable: true, message: `switchover of group '${group.name}' to ${input.to} failed: ${causeText(err)}` });
  }
  if (moved.to !== input.to) {
    const why = moved.attempts.filter((a) => a.outcome === 'failed').map((a) => `${a.node}: ${a.detail}`).join('; ');
    throw ApplicationFailure.create({
      type: ERROR_TYPES.SwitchoverFailed,
      nonRetryable: true,
      message: `switchover of group '${group.name}' to ${input.to} failed (${why || moved.outcome}); the group ${moved.to ? `runs on ${moved.to} again` : 'is down'} (epoch ${moved.epoch})`,
      details: [moved],
    });
  }
  return { outcome: 'moved', group: group.name, from: moved.from, to: input.to, ...(resynced ? { resync: resynced } : {}), failover: moved };
}

/** The innermost failure message: a child's ApplicationFailure says what went wrong. */
function causeText(err: unknown): string {
  let e: unknown = err;
  while (e instanceof ChildWorkflowFailure || (e instanceof Error && e.cause instanceof Error && !(e instanceof ApplicationFailure))) e = (e as Error).cause;
  if (err instanceof Error && err.name === 'WorkflowExecutionAlreadyStartedError') return 'another operation of the group is running; wait for it to end';
  return e instanceof Error ? e.message : String(e);
}
