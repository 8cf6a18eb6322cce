/**
 * Whether the controller refuses an update, and with which type (one of the update's refusals,
 * shared.ts CONTROLLER_REFUSALS): the controller's update validators, as pure functions of its
 * state and the request, so that what each update may be refused for is read (and table-tested,
 * test/unit/controller-refusals.test.ts) here. A refused update changes nothing. Pure.
 */
import type { z } from 'zod';
import {
  beginOperationSchema,
  claimGroupSchema,
  confirmDownSchema,
  describeIssues,
  endOperationSchema,
  operationBlockedSchema,
} from './inputs.js';
import { ERROR_TYPES, type ControllerUpdateName, type GroupOwnership, type NodeLiveness, type RefusalOf } from './shared.js';

export interface Refusal<U extends ControllerUpdateName = ControllerUpdateName> {
  update: U;
  type: RefusalOf<U>;
  message: string;
}

/** What the validators look at: the controller's groups and nodes. */
export interface RefusalState {
  groups: Record<string, GroupOwnership>;
  nodes: Record<string, NodeLiveness>;
}

type Checked<T, U extends ControllerUpdateName> = { request: T; refusal?: undefined } | { request?: undefined; refusal: Refusal<U> };

function parse<T, U extends ControllerUpdateName>(schema: z.ZodType<T>, value: unknown, update: U): Checked<T, U> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { request: parsed.data };
  return { refusal: { update, type: ERROR_TYPES.InvalidWorkflowInput as RefusalOf<U>, message: `invalid ${update} request: ${describeIssues(parsed.error, '(request)').join('; ')}` } };
}

/** The group, held by `workflowId`'s operation; else UnknownGroup, or OperationInProgress when another operation or none holds it. */
function held<U extends 'claimGroup' | 'endOperation' | 'operationBlocked'>(state: RefusalState, update: U, group: string, workflowId: string): Checked<GroupOwnership, U> {
  const g = state.groups[group];
  if (!g) return { refusal: { update, type: ERROR_TYPES.UnknownGroup as RefusalOf<U>, message: `unknown group '${group}'` } };
  if (g.operation?.workflowId !== workflowId) {
    const by = g.operation ? `held by ${g.operation.workflowId}` : 'no operation is running';
    return { refusal: { update, type: ERROR_TYPES.OperationInProgress as RefusalOf<U>, message: `workflow ${workflowId} does not hold group '${group}' (${by})` } };
  }
  return { request: g };
}

/** A workflow asks for the group: refused while another workflow's operation holds it. */
export function beginOperationRefusal(state: RefusalState, req: unknown): Refusal<'beginOperation'> | undefined {
  const update = 'beginOperation';
  const { request: r, refusal } = parse(beginOperationSchema, req, update);
  if (refusal) return refusal;
  const g = state.groups[r.group];
  if (!g) return { update, type: ERROR_TYPES.UnknownGroup, message: `unknown group '${r.group}' (known: ${Object.keys(state.groups).join(', ') || 'none'})` };
  if (g.operation && g.operation.workflowId !== r.workflowId) {
    return { update, type: ERROR_TYPES.OperationInProgress, message: `group '${r.group}' is busy: ${g.operation.kind} operation ${g.operation.workflowId} is running; wait for it to end` };
  }
  return undefined;
}

/** epoch + 1 for a new owner: only by the operation holding the group, from the current epoch, for a known node (or nobody). */
export function claimGroupRefusal(state: RefusalState, req: unknown): Refusal<'claimGroup'> | undefined {
  const update = 'claimGroup';
  const { request: r, refusal } = parse(claimGroupSchema, req, update);
  if (refusal) return refusal;
  const hold = held(state, update, r.group, r.workflowId);
  if (hold.refusal) return hold.refusal;
  if (r.expectEpoch !== hold.request.epoch) return { update, type: ERROR_TYPES.StaleEpoch, message: `stale epoch ${r.expectEpoch} for group '${r.group}': the current epoch is ${hold.request.epoch}` };
  if (r.owner !== null && !state.nodes[r.owner]) return { update, type: ERROR_TYPES.UnknownNode, message: `unknown node '${r.owner}'` };
  return undefined;
}

/** The operation gives the group back: only the one holding it. */
export function endOperationRefusal(state: RefusalState, req: unknown): Refusal<'endOperation'> | undefined {
  const update = 'endOperation';
  const { request: r, refusal } = parse(endOperationSchema, req, update);
  if (refusal) return refusal;
  return held(state, update, r.group, r.workflowId).refusal;
}

/** The operation holding the group is blocked on a known node, at the current epoch. */
export function operationBlockedRefusal(state: RefusalState, req: unknown): Refusal<'operationBlocked'> | undefined {
  const update = 'operationBlocked';
  const { request: r, refusal } = parse(operationBlockedSchema, req, update);
  if (refusal) return refusal;
  const hold = held(state, update, r.group, r.workflowId);
  if (hold.refusal) return hold.refusal;
  if (!state.nodes[r.node]) return { update, type: ERROR_TYPES.UnknownNode, message: `unknown node '${r.node}'` };
  if (r.epoch !== hold.request.epoch) return { update, type: ERROR_TYPES.StaleEpoch, message: `stale epoch ${r.epoch} for group '${r.group}': the current epoch is ${hold.request.epoch}` };
  return undefined;
}

/** An operator confirms a known node down: only while an operation is blocked on it. */
export function confirmDownRefusal(state: RefusalState, req: unknown): Refusal<'confirmDown'> | undefined {
  const update = 'confirmDown';
  const { request: r, refusal } = parse(confirmDownSchema, req, update);
  if (refusal) return refusal;
  if (!state.nodes[r.node]) {
    return { update, type: ERROR_TYPES.UnknownNode, message: `unknown node '${r.node}' (known: ${Object.keys(state.nodes).join(', ') || 'none'}); nothing was recorded` };
  }
  if (!Object.values(state.groups).some((g) => g.operation?.blocked?.node === r.node)) {
    return {
      update,
      type: ERROR_TYPES.NothingToConfirm,
      message: `no operation is blocked on node '${r.node}': nothing to confirm (a confirm-down only unblocks an operation waiting for that node now); nothing was recorded`,
    };
  }
  return undefined;
}
