/**
 * Authenticated lease renewals (docs/security.md, "Lease renewals"): the two ends of the MAC on
 * the controller's answer to an owner's `ownership` question.
 *
 * Queries are answered by workflow code, which cannot hold the key. So the answer is signed on its
 * way out of the workflow worker, by a payload codec ({@link createOwnershipAnswerCodec}): the SDK
 * runs the worker's codecs over every payload of a workflow activation's completion, query
 * responses included, outside the sandbox, with the workflow ID Temporal gave the worker. The codec
 * signs only a payload the controller's query handler marked (workflows/ownership-answer.ts), in
 * the controller's own workflow, whose content is such an answer for this cluster; every other
 * payload passes unchanged. It strips the mark (and any MAC) from every payload it decodes, so that
 * a payload that came in (an activity's failure, which workflow code may pass on as it is) can
 * never leave marked: the only marked payloads are the ones the query handler built.
 *
 * The agent ({@link checkOwnershipAnswer}) accepts an answer only with a MAC that verifies for its
 * cluster and the controller's workflow ID, for the nonce it chose for this question, from the
 * controller run that Temporal said is running when the question was asked (an earlier run, closed
 * by a continue-as-new or a termination, still answers queries from its last state: without the run
 * check, an impostor polling the cluster queue could pass the question on to such a run).
 */
import { defaultPayloadConverter, type Payload, type PayloadCodec, type SerializationContext } from '@temporalio/common';
import { ownershipAnswerKey, ownershipAnswerMac, type MessageKey } from './messages.js';
import { ANSWER_MAC_KEY, ANSWER_MARK, ANSWER_MARK_KEY, asciiBytes, ownershipAnswerSchema } from '../../workflows/ownership-answer.js';
import { controllerWorkflowId, type Ownership } from '../../workflows/shared.js';
import { LEASE_MEMO_KEY, LEASE_MEMO_MARK, leaseClusterContentSchema, leaseMemoGroupKey, leaseGroupContentSchema, leaseMemoEntrySchema, type LeaseGroupView, type LeaseView } from '../../workflows/lease-memo.js';
import type { z } from 'zod';

function text(bytes: Uint8Array | null | undefined): string | undefined {
  return bytes ? Buffer.from(bytes).toString('utf8') : undefined;
}

/** `p` without our metadata (the same object when it has none). */
function unmarked(p: Payload): Payload {
  const metadata = p.metadata;
  if (!metadata || (metadata[ANSWER_MARK_KEY] === undefined && metadata[ANSWER_MAC_KEY] === undefined)) return p;
  const { [ANSWER_MARK_KEY]: _mark, [ANSWER_MAC_KEY]: _mac, ...rest } = metadata;
  return { ...p, metadata: rest };
}

/** `p`'s JSON content when it parses with `schema`, undefined otherwise. */
function parseJson<T>(p: Payload, schema: z.ZodType<T>): T | undefined {
  if (text(p.metadata?.encoding) !== 'json/plain' || !p.data) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(p.data).toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

/** The answer's content when `p` is a JSON payload of this shape, undefined otherwise. */
const parseAnswer = (p: Payload) => parseJson(p, ownershipAnswerSchema);
/** The lease memo entry when `p` is a JSON payload of this shape, undefined otherwise. */
const parseLeaseMemoEntry = (p: Payload) => parseJson(p, leaseMemoEntrySchema);

/**
 * The workflow worker's codec: signs the controller's marked renewal answers (see above); every
 * other payload is returned as it is. Pure apart from the HMAC; nothing is logged (a payload it
 * does not sign, the agent counts as no answer, and says so).
 */
export function createOwnershipAnswerCodec(opts: { cluster: string; key: MessageKey }): PayloadCodec {
  const { cluster, key } = opts;
  const controllerId = controllerWorkflowId(cluster);
  const sign = (p: Payload, context: SerializationContext | undefined): Payload => {
    if (p.metadata?.[ANSWER_MARK_KEY] === undefined && p.metadata?.[ANSWER_MAC_KEY] === undefined) return p;
    const bare = unmarked(p);
    // Only the controller's own answer or lease memo entry, in its own workflow, about this cluster.
    const mark = text(p.metadata?.[ANSWER_MARK_KEY]);
    if (mark !== ANSWER_MARK && mark !== LEASE_MEMO_MARK) return bare;
    if (context?.type !== 'workflow' || context.workflowId !== controllerId) return bare;
    const content = mark === ANSWER_MARK ? parseAnswer(p) : parseLeaseMemoEntry(p);
    if (!content || content.cluster !== cluster || content.workflowId !== context.workflowId) return bare;
    const mac = ownershipAnswerMac(key, { cluster, workflowId: context.workflowId, data: p.data ?? new Uint8Array() });
    return { ...p, metadata: { ...bare.metadata, [ANSWER_MARK_KEY]: asciiBytes(mark), [ANSWER_MAC_KEY]: asciiBytes(mac) } };
  };
  return {
    async encode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
      return payloads.map((p) => sign(p, context));
    },
    async decode(payloads: Payload[]): Promise<Payload[]> {
      return payloads.map(unmarked);
    },
  };
}

/** The workflow worker's data converter: the default one, plus the codec when the cluster has a secret. */
export function workflowWorkerDataConverter(cluster: string, key: MessageKey | undefined): { payloadCodecs: PayloadCodec[] } | undefined {
  return key === undefined ? undefined : { payloadCodecs: [createOwnershipAnswerCodec({ cluster, key })] };
}

/** What the agent expects of the answer to the question it sent. */
export interface ExpectedAnswer {
  cluster: string;
  /** The nonce it sent with this question. */
  nonce: string;
  /** The controller run Temporal said was running when the question was asked. */
  runId: string;
}

/** `otherRun`: signed and for this question, but from another controller run than the one expected. */
/** `signedWith`: the message key the answer verified under (the worker's signing key; see messageKeyOf). */
export type AnswerVerdict = { ok: true; ownership: Ownership; signedWith: Buffer } | { ok: false; why: string; otherRun?: true };

/**
 * Whether `payload` (the raw result of the `ownership` query asked with `expected.nonce`) is the
 * controller's answer to this question, signed by this cluster's workflow worker. Pure.
 */
export function checkOwnershipAnswer(key: MessageKey, expected: ExpectedAnswer, payload: Payload | null | undefined): AnswerVerdict {
  if (!payload) return { ok: false, why: 'the query returned no result' };
  if (text(payload.metadata?.[ANSWER_MARK_KEY]) !== ANSWER_MARK) {
    return { ok: false, why: 'it is not a renewal answer (a workflow worker older than this agent: upgrade `haoscar worker` first; or not this cluster\'s worker)' };
  }
  const mac = text(payload.metadata?.[ANSWER_MAC_KEY]);
  if (mac === undefined) return { ok: false, why: 'it carries no MAC (a workflow worker without this cluster\'s secret)' };
  const workflowId = controllerWorkflowId(expected.cluster);
  const signedWith = ownershipAnswerKey(key, { cluster: expected.cluster, workflowId, data: payload.data ?? new Uint8Array() }, mac);
  if (signedWith === undefined) {
    return { ok: false, why: 'its MAC does not verify under the cluster secret for this cluster\'s controller (a forged or altered answer, or another secret on the workflow worker)' };
  }
  const answer = parseAnswer(payload);
  if (!answer) return { ok: false, why: 'its content is not an ownership answer' };
  if (answer.cluster !== expected.cluster || answer.workflowId !== workflowId) return { ok: false, why: `it answers for ${answer.workflowId} of cluster ${answer.cluster}` };
  if (answer.nonce !== expected.nonce) return { ok: false, why: 'it answers another question (not this renewal\'s nonce): a replayed answer' };
  if (answer.runId !== expected.runId) return { ok: false, otherRun: true, why: `it comes from controller run ${answer.runId}, not the running one (${expected.runId}): an earlier run's answer` };
  return { ok: true, ownership: answer.ownership as unknown as Ownership, signedWith };
}

/** The nonce as the question's argument. */
export function nonceArgument(nonce: string): Payload {
  return defaultPayloadConverter.toPayload(nonce);
}

/** What the agent expects of the controller's lease memo: its cluster's, from the run Temporal describes as running. */
export interface ExpectedLeaseMemo {
  cluster: string;
  runId: string;
}

/**
 * Every lease memo entry the controller run wrote, as far as its history has been read: per memo
 * key, the newest entry (its version and bytes). Kept by the agent from one confirmation to the
 * next, so that only the events since are read.
 */
export interface LeaseMemoTrail {
  runId: string;
  /** The history has been read up to this event ID (0: not yet). */
  upTo: number;
  entries: ReadonlyMap<string, { version: number; data: string }>;
  /**
   * Why this run's history did not check out (an older entry re-published after a newer one): its
   * memo confirms nothing from then on, and its history is not read again.
   */
  refused?: string;
  /** The verdict accepted at `upTo`: the same as long as the history has not grown. */
  accepted?: Extract<LeaseMemoVerdict, { ok: true }>;
}

/** One WorkflowPropertiesModified event of the controller's history: its ID and the memo fields it upserted. */
export interface MemoEvent {
  eventId: number;
  fields: Record<string, Payload>;
}

const isLeaseMemoKey = (k: string) => k === LEASE_MEMO_KEY || k.startsWith(`${LEASE_MEMO_KEY}/`);
const bytesOf = (p: Payload) => Buffer.from(p.data ?? new Uint8Array()).toString('base64');

/** One entry checked: signed by this cluster's workflow worker for its controller, written by the expected run under this key. */
function checkEntry(key: MessageKey, expected: ExpectedLeaseMemo, memoKey: string, payload: Payload): { ok: true; version: number; content: unknown; signedWith: Buffer } | { ok: false; why: string } {
  const refused = (why: string) => ({ ok: false as const, why: `lease memo entry '${memoKey}': ${why}` });
  if (text(payload.metadata?.[ANSWER_MARK_KEY]) !== LEASE_MEMO_MARK) return refused('it is not a lease memo entry');
  const mac = text(payload.metadata?.[ANSWER_MAC_KEY]);
  if (mac === undefined) return refused('it carries no MAC (a workflow worker without this cluster\'s secret)');
  const workflowId = controllerWorkflowId(expected.cluster);
  const signedWith = ownershipAnswerKey(key, { cluster: expected.cluster, workflowId, data: payload.data ?? new Uint8Array() }, mac);
  if (signedWith === undefined) return refused('its MAC does not verify under the cluster secret for this cluster\'s controller');
  const entry = parseLeaseMemoEntry(payload);
  if (!entry) return refused('its content is not a lease memo entry');
  if (entry.cluster !== expected.cluster || entry.workflowId !== workflowId) return refused(`it is for ${entry.workflowId} of cluster ${entry.cluster}`);
  if (entry.runId !== expected.runId) return refused(`it was written by controller run ${entry.runId}, not the running one (${expected.runId})`);
  if (entry.key !== memoKey) return refused(`it was written under '${entry.key}'`);
  return { ok: true, version: entry.version, content: entry.content, signedWith };
}

/**
 * The trail extended by the run's memo events after `trail.upTo`, in history order: the newest
 * entry of each key among those that verify. Each key's versions must not go back: the controller
 * numbers its publications, so an older entry re-published after a newer one (by a process without
 * the secret that completed a workflow task of the controller's queue) is refused, however fresh
 * the reader. Pure.
 */
export function extendLeaseMemoTrail(key: MessageKey, expected: ExpectedLeaseMemo, trail: LeaseMemoTrail, events: MemoEvent[], upTo: number): { ok: true; trail: LeaseMemoTrail } | { ok: false; why: string } {
  if (trail.runId !== expected.runId) return { ok: false, why: `the trail is of run ${trail.runId}, not ${expected.runId}` };
  const entries = new Map(trail.entries);
  for (const event of [...events].sort((a, b) => a.eventId - b.eventId)) {
    if (event.eventId <= trail.upTo || event.eventId > upTo) continue;
    for (const [memoKey, payload] of Object.entries(event.fields)) {
      if (!isLeaseMemoKey(memoKey)) continue;
      // An entry that does not verify (signed with a secret no longer accepted after a rotation, or
      // not by the worker at all) is no version of its key: skipped. It confirms nothing either:
      // checkLeaseMemo checks the memo's own entries in full.
      const checked = checkEntry(key, expected, memoKey, payload);
      if (!checked.ok) continue;
      const before = entries.get(memoKey);
      if (before !== undefined && checked.version < before.version) {
        return { ok: false, why: `event ${event.eventId}: lease memo entry '${memoKey}' version ${checked.version} was published after version ${before.version}: an older entry re-published (a process without the secret completing the controller's workflow tasks?)` };
      }
      entries.set(memoKey, { version: checked.version, data: bytesOf(payload) });
    }
  }
  return { ok: true, trail: { runId: trail.runId, upTo, entries } };
}

/** `signedWith`: the message key of the newest entry (which secret the worker signs with). */
export type LeaseMemoVerdict = { ok: true; view: LeaseView; signedWith: Buffer } | { ok: false; why: string };

/**
 * Whether the memo `fields` (as DescribeWorkflowExecution returns them) hold the controller's
 * lease view: every entry signed by this cluster's workflow worker for this controller, written by
 * `expected.runId` under its own key, and the newest entry of its key in the run's history
 * (`trail`, read up to the same event). One entry that fails fails the whole memo: the caller asks
 * the query instead. Pure.
 */
export function checkLeaseMemo(key: MessageKey, expected: ExpectedLeaseMemo, fields: Record<string, Payload> | null | undefined, trail: LeaseMemoTrail): LeaseMemoVerdict {
  const entries = Object.entries(fields ?? {}).filter(([k]) => isLeaseMemoKey(k));
  if (!entries.some(([k]) => k === LEASE_MEMO_KEY)) return { ok: false, why: 'the controller has no lease memo (a controller older than it, or a run that has not published it yet)' };
  if (trail.runId !== expected.runId) return { ok: false, why: `the history read is of run ${trail.runId}, not ${expected.runId}` };
  const view: LeaseView = { cluster: expected.cluster, groups: {} };
  let newest: { version: number; signedWith: Buffer } | undefined;
  for (const [memoKey, payload] of entries) {
    const checked = checkEntry(key, expected, memoKey, payload);
    if (!checked.ok) return checked;
    const written = trail.entries.get(memoKey);
    if (written === undefined || written.data !== bytesOf(payload)) {
      return { ok: false, why: `lease memo entry '${memoKey}': it is not the newest entry of its key in the controller's history (version ${checked.version}${written ? `, newest ${written.version}` : ', none written'})` };
    }
    if (!newest || checked.version > newest.version) newest = { version: checked.version, signedWith: checked.signedWith };
    if (memoKey === LEASE_MEMO_KEY) {
      const content = leaseClusterContentSchema.safeParse(checked.content);
      if (!content.success) return { ok: false, why: 'the cluster\'s lease memo entry does not hold the cluster\'s lease view' };
      if (content.data.leases) view.leases = content.data.leases;
      if (content.data.maintenance) view.maintenance = content.data.maintenance as LeaseView['maintenance'];
    } else {
      const content = leaseGroupContentSchema.safeParse(checked.content);
      if (!content.success) return { ok: false, why: `lease memo entry '${memoKey}' does not hold a group's lease view` };
      view.groups[memoKey.slice(LEASE_MEMO_KEY.length + 1)] = content.data satisfies LeaseGroupView;
    }
  }
  return { ok: true, view, signedWith: newest!.signedWith };
}

/**
 * A group's lease memo entry as it is, unverified (undefined: none, or not an entry of this shape):
 * for the worker's check that a committed change shows (activities/controller.ts), which is about
 * freshness, not authenticity. Pure.
 */
export function leaseMemoGroupEntry(fields: Record<string, Payload> | null | undefined, group: string): { runId: string; content: LeaseGroupView } | undefined {
  const payload = fields?.[leaseMemoGroupKey(group)];
  const entry = payload ? parseLeaseMemoEntry(payload) : undefined;
  const content = leaseGroupContentSchema.safeParse(entry?.content);
  return entry && content.success ? { runId: entry.runId, content: content.data } : undefined;
}
