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

/** The answer's content when `p` is a JSON payload of this shape, undefined otherwise. */
function parseAnswer(p: Payload) {
  if (text(p.metadata?.encoding) !== 'json/plain' || !p.data) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(p.data).toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = ownershipAnswerSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

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
    // Only the controller's own answer, in its own workflow, about this cluster.
    if (text(p.metadata?.[ANSWER_MARK_KEY]) !== ANSWER_MARK) return bare;
    if (context?.type !== 'workflow' || context.workflowId !== controllerId) return bare;
    const answer = parseAnswer(p);
    if (!answer || answer.cluster !== cluster || answer.workflowId !== context.workflowId) return bare;
    const mac = ownershipAnswerMac(key, { cluster, workflowId: context.workflowId, data: p.data ?? new Uint8Array() });
    return { ...p, metadata: { ...bare.metadata, [ANSWER_MARK_KEY]: asciiBytes(ANSWER_MARK), [ANSWER_MAC_KEY]: asciiBytes(mac) } };
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
