/**
 * The controller's answer to a lease renewal (docs/security.md, "Lease renewals"). Workflow-safe:
 * the controller's `ownership` query handler builds it; the workflow worker's payload codec
 * (src/auth/ownership-answer.ts) signs it outside the sandbox; the agent checks it.
 *
 * An agent asks `ownership` with a fresh nonce. The handler answers with an envelope (the nonce,
 * this run's IDs and the ownership) as a payload it builds itself, marked with the metadata
 * {@link ANSWER_MARK_KEY}. Only such a payload is signed by the codec: the mark can come from
 * nowhere else, because workflow code never handles payloads, only values (the one exception,
 * failures passed on as received, is closed by the codec, which strips the mark from every payload
 * it decodes). Asked without an argument (`haoscar status`, the CLI, older agents), the handler
 * answers the plain `Ownership` as before.
 */
import { ApplicationFailure, defaultPayloadConverter, defineQuery, workflowInfo } from '@temporalio/workflow';
import { RawValue } from '@temporalio/common';
import { z } from 'zod';
import { ERROR_TYPES, type Ownership } from './shared.js';

/** Payload metadata: this payload is the controller's answer to a renewal (set by workflow code only). */
export const ANSWER_MARK_KEY = 'haoscar-answer';
export const ANSWER_MARK = 'ownership-v1';
/** Payload metadata: the workflow worker's MAC over the answer (set by its codec only). */
export const ANSWER_MAC_KEY = 'haoscar-mac';

/** A renewal's nonce as the query handler accepts it (newNonce(): 128 bits, base64url). */
export const answerNonceSchema = z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'a nonce is 16 to 64 base64url characters');

/** The answer: what it answers (nonce), from which controller run, and the ownership. */
export interface OwnershipAnswer {
  kind: typeof ANSWER_MARK;
  cluster: string;
  workflowId: string;
  runId: string;
  nonce: string;
  ownership: Ownership;
}

/** The envelope's shape as the codec and the agent check it (the ownership itself is the controller's state). */
export const ownershipAnswerSchema = z.object({
  kind: z.literal(ANSWER_MARK),
  cluster: z.string(),
  workflowId: z.string(),
  runId: z.string(),
  nonce: answerNonceSchema,
  ownership: z.object({ cluster: z.string(), groups: z.record(z.string(), z.unknown()) }).passthrough(),
});

/**
 * The `ownership` query as the agent asks it for a lease renewal (the same query name as
 * `ownershipQuery`, with a nonce): the result is the marked payload, which a client reads raw
 * (its metadata carries the MAC).
 */
export const ownershipRenewalQuery = defineQuery<Ownership | RawValue<OwnershipAnswer>, [nonce?: unknown]>('ownership');

/** The marked payload of `answer` (JSON, as the default converter writes it, plus the mark). */
export function ownershipAnswerPayload(answer: OwnershipAnswer): RawValue<OwnershipAnswer> {
  const payload = defaultPayloadConverter.toPayload(answer);
  return RawValue.fromPayload({ ...payload, metadata: { ...payload.metadata, [ANSWER_MARK_KEY]: asciiBytes(ANSWER_MARK) } }) as RawValue<OwnershipAnswer>;
}

/** The bytes of an ASCII string (no TextEncoder needed in the workflow sandbox). */
export function asciiBytes(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/**
 * The `ownership` query's handler: `state` when asked without a nonce; the marked answer to a
 * renewal otherwise (this run's IDs from Temporal, not from the question). Writes no history, so
 * no patch: an older controller answers the plain state, which an agent with a key counts as no
 * answer (docs/security.md, upgrading). @throws InvalidWorkflowInput (the query fails) for a nonce
 * that is not one.
 */
export function answerOwnership(state: Ownership, nonce: unknown): Ownership | RawValue<OwnershipAnswer> {
  if (nonce === undefined || nonce === null) return state;
  const parsed = answerNonceSchema.safeParse(nonce);
  if (!parsed.success) throw ApplicationFailure.create({ type: ERROR_TYPES.InvalidWorkflowInput, nonRetryable: true, message: `ownership query: ${parsed.error.issues[0]?.message ?? 'not a nonce'}` });
  const { workflowId, runId } = workflowInfo();
  return ownershipAnswerPayload({ kind: ANSWER_MARK, cluster: state.cluster, workflowId, runId, nonce: parsed.data, ownership: state });
}
