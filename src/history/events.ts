/**
 * Reading Temporal history events as plain data: payloads (JSON only; anything else is left
 * out), timestamps and durations in milliseconds. Pure; works on histories fetched through the
 * client and on recorded ones (historyFromJSON) alike.
 */
import type { temporal } from '@temporalio/proto';

export type History = temporal.api.history.v1.IHistory;
export type HistoryEvent = temporal.api.history.v1.IHistoryEvent;
type Payload = temporal.api.common.v1.IPayload;
type Timestamp = { seconds?: unknown; nanos?: number | null } | null | undefined;

const utf8 = new TextDecoder();

function text(bytes: Uint8Array | string | null | undefined): string | undefined {
  if (bytes === null || bytes === undefined) return undefined;
  return typeof bytes === 'string' ? Buffer.from(bytes, 'base64').toString('utf8') : utf8.decode(bytes);
}

/**
 * A JSON payload's value; undefined for anything else (binary, null, an encrypted or signed
 * payload): the timeline then says less, and never guesses.
 */
export function payloadValue(p: Payload | null | undefined): unknown {
  if (!p) return undefined;
  const encoding = text(p.metadata?.encoding as Uint8Array | undefined);
  if (encoding !== 'json/plain') return undefined;
  const raw = text(p.data as Uint8Array | undefined);
  if (raw === undefined) return undefined;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

/** The first payload's value of a `payloads` list. */
export function firstValue(payloads: { payloads?: Payload[] | null } | null | undefined): unknown {
  return payloadValue(payloads?.payloads?.[0]);
}

/** Milliseconds since the epoch of a protobuf Timestamp (or a `{seconds, nanos}` as core writes them in markers). */
export function timestampMs(t: Timestamp): number | undefined {
  if (!t || t.seconds === undefined || t.seconds === null) return undefined;
  const seconds = Number(String(t.seconds));
  if (!Number.isFinite(seconds)) return undefined;
  return seconds * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

/** Milliseconds of a protobuf Duration. */
export function durationMs(d: Timestamp): number | undefined {
  return timestampMs(d);
}

export function eventMs(e: HistoryEvent): number {
  return timestampMs(e.eventTime as Timestamp) ?? 0;
}

/** The user metadata's summary of an event (the line the Temporal UI shows). */
export function summaryOf(e: HistoryEvent): string | undefined {
  const v = payloadValue(e.userMetadata?.summary);
  return typeof v === 'string' ? v : undefined;
}

export function detailsOf(e: HistoryEvent): string | undefined {
  const v = payloadValue(e.userMetadata?.details);
  return typeof v === 'string' ? v : undefined;
}

/** Keyword search attributes of an indexed-fields map, as strings. */
export function keywords(fields: Record<string, Payload> | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, p] of Object.entries(fields ?? {})) {
    const v = payloadValue(p);
    const one = Array.isArray(v) ? v[0] : v;
    if (typeof one === 'string') out[k] = one;
  }
  return out;
}

/** A failure's message, innermost cause first where it says more. */
export function failureText(f: temporal.api.failure.v1.IFailure | null | undefined): string | undefined {
  if (!f) return undefined;
  let inner = f;
  while (inner.cause && (inner.activityFailureInfo || inner.childWorkflowExecutionFailureInfo)) inner = inner.cause;
  return inner.message ?? f.message ?? undefined;
}

/** The application failure type of a failure (or of its innermost cause). */
export function failureType(f: temporal.api.failure.v1.IFailure | null | undefined): string | undefined {
  for (let e = f; e; e = e.cause) if (e.applicationFailureInfo?.type) return e.applicationFailureInfo.type;
  return undefined;
}

/** The details an application failure carries (workflows put their result there when they fail). */
export function failureDetails(f: temporal.api.failure.v1.IFailure | null | undefined): unknown {
  for (let e = f; e; e = e.cause) if (e.applicationFailureInfo?.details) return firstValue(e.applicationFailureInfo.details);
  return undefined;
}
