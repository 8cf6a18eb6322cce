/**
 * MACs of the safety-critical messages that go through Temporal (docs/security.md): a node's
 * answer to "are you there?", the orders a workflow gives a node (start, stop, fence, pull), and
 * the controller's answer to a node's lease renewal (signed by the workflow worker's payload
 * codec, src/auth/ownership-answer.ts).
 *
 * Anyone who reaches Temporal can read every history, replay what is in it, and poll any task
 * queue; so each message carries an HMAC-SHA256 under a key derived from the cluster secret
 * (`heartbeat.secretFile`, src/heartbeat/secret.ts), bound to what the receiving side chose or
 * checks itself: the failover's fresh nonce and workflow ID for an answer; the action (the
 * activity's type), target node, workflow ID and run ID (as Temporal tells the node) and epoch
 * for an order. The secret itself never leaves the processes that load it: workflow code cannot
 * hold it (no I/O, and its inputs and results are in the history), so MACs are made and checked
 * in activities (local ones on the workflow worker, the node's own on the node).
 *
 * Pure functions over Node's crypto; nothing here logs.
 */
import { createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';

/** What a message's MAC is computed under: derived from the cluster secret, never the secret itself. */
export interface MessageKey {
  /** Makes every MAC, and checks them. */
  readonly bytes: Buffer;
  /**
   * Keys of a cluster secret being rotated in or out: a MAC under one of them is accepted too,
   * and none is ever made with them (docs/reload.md#rotating-the-cluster-secret).
   */
  readonly accepted?: readonly Buffer[];
}

/**
 * The message key: HKDF-SHA256 of the cluster secret with its own label, so that a MAC made here
 * can never be a valid heartbeat packet tag (which is keyed with the secret itself) or the
 * reverse.
 */
export function deriveMessageKey(secret: Buffer, acceptedSecrets: readonly Buffer[] = []): MessageKeyring {
  return new MessageKeyring(secret, acceptedSecrets);
}

/** The message key of one secret (what MessageKey.bytes is for it): to tell which secret a MAC was made under. */
export const messageKeyOf = (secret: Buffer): Buffer => deriveKey(secret);

const deriveKey = (secret: Buffer) => Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'haoscar temporal messages v1', 32));

/**
 * A message key that a reload can change in place (a step of a secret rotation,
 * docs/reload.md#rotating-the-cluster-secret): everything that signs or checks holds this one
 * object and reads its keys at each use, so no holder keeps a stale copy.
 */
export class MessageKeyring implements MessageKey {
  private current: { bytes: Buffer; accepted?: readonly Buffer[] };

  constructor(secret: Buffer, acceptedSecrets: readonly Buffer[] = []) {
    this.current = MessageKeyring.derive(secret, acceptedSecrets);
  }

  get bytes(): Buffer {
    return this.current.bytes;
  }

  get accepted(): readonly Buffer[] | undefined {
    return this.current.accepted;
  }

  /** From now on, MACs are made under `secret`'s key and accepted under it or those of `acceptedSecrets`. */
  update(secret: Buffer, acceptedSecrets: readonly Buffer[] = []): void {
    this.current = MessageKeyring.derive(secret, acceptedSecrets);
  }

  private static derive(secret: Buffer, acceptedSecrets: readonly Buffer[]) {
    return { bytes: deriveKey(secret), ...(acceptedSecrets.length > 0 ? { accepted: acceptedSecrets.map(deriveKey) } : {}) };
  }
}

/** A fresh, unpredictable nonce (128 bits, base64url). */
export function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

/**
 * JSON with object keys sorted, `undefined` members left out (as JSON.stringify does): the same
 * content gives the same bytes whatever order its fields were written in, so that a field added
 * to a message later is covered without a format change.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    const text = JSON.stringify(value);
    return text === undefined ? 'null' : text;
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

function mac(key: MessageKey, purpose: string, fields: unknown[]): string {
  return createHmac('sha256', key.bytes).update(canonicalJson(['haoscar', purpose, ...fields])).digest('base64url');
}

/** Whether `given` is the MAC `macOf` makes under the key, or under one of the keys it also accepts. */
function verifiedUnderAny(key: MessageKey, macOf: (key: MessageKey) => string, given: unknown): boolean {
  return verifyingKey(key, macOf, given) !== undefined;
}

/** The key (its bytes) under which `given` is the MAC `macOf` makes: the signing one or an accepted one; undefined when none. */
function verifyingKey(key: MessageKey, macOf: (key: MessageKey) => string, given: unknown): Buffer | undefined {
  return [key.bytes, ...(key.accepted ?? [])].find((bytes) => sameMac(macOf({ bytes }), given));
}

function sameMac(expected: string, given: unknown): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** What a ping answer's MAC binds: who answers, to which question (nonce, workflow), and what it says. */
export interface PingBinding {
  cluster: string;
  node: string;
  nonce: string;
  workflowId: string;
  /** The answer without its `mac`. */
  answer: unknown;
}

/** The MAC a node puts on its answer. */
export function pingAnswerMac(key: MessageKey, b: PingBinding): string {
  return mac(key, 'ping-answer', [b.cluster, b.node, b.nonce, b.workflowId, b.answer]);
}

/** Whether `given` is the MAC of this answer. */
export function verifyPingAnswer(key: MessageKey, b: PingBinding, given: unknown): boolean {
  return verifiedUnderAny(key, (k) => pingAnswerMac(k, b), given);
}

/** What an order's MAC binds: which action, for which node, from which workflow run, with what content (epoch included). */
export interface OrderBinding {
  cluster: string;
  node: string;
  /** The activity's type: startResource, stopResource, stopGroup, fence, resyncGroup. */
  action: string;
  workflowId: string;
  runId: string;
  /** The order without its `mac` (group, resource, epoch, ...). */
  order: unknown;
}

/** The MAC the workflow worker puts on an order. */
export function orderMac(key: MessageKey, b: OrderBinding): string {
  return mac(key, 'order', [b.cluster, b.node, b.action, b.workflowId, b.runId, b.order]);
}

/** Whether `given` is the MAC of this order. */
export function verifyOrder(key: MessageKey, b: OrderBinding, given: unknown): boolean {
  return verifiedUnderAny(key, (k) => orderMac(k, b), given);
}

/**
 * What the MAC on the controller's answer to a lease renewal binds: the cluster, the controller's
 * workflow ID (as Temporal gave it to the worker) and the answer's exact bytes (which hold the
 * renewal's nonce, the controller's run ID and the ownership).
 */
export interface OwnershipAnswerBinding {
  cluster: string;
  workflowId: string;
  data: Uint8Array;
}

/** The MAC the workflow worker's codec puts on an ownership answer. */
export function ownershipAnswerMac(key: MessageKey, b: OwnershipAnswerBinding): string {
  return mac(key, 'ownership-answer', [b.cluster, b.workflowId, Buffer.from(b.data).toString('base64')]);
}

/** Whether `given` is the MAC of this ownership answer. */
export function verifyOwnershipAnswer(key: MessageKey, b: OwnershipAnswerBinding, given: unknown): boolean {
  return ownershipAnswerKey(key, b, given) !== undefined;
}

/**
 * The message key a controller's answer was signed under (which of the keys the node accepts),
 * undefined when it verifies under none: during a secret rotation, which secret the workflow
 * worker signs with (docs/reload.md#rotating-the-cluster-secret).
 */
export function ownershipAnswerKey(key: MessageKey, b: OwnershipAnswerBinding, given: unknown): Buffer | undefined {
  return verifyingKey(key, (k) => ownershipAnswerMac(k, b), given);
}

/** `message` without its `mac` field (what the MAC covers). */
export function withoutMac<T extends { mac?: unknown }>(message: T): Omit<T, 'mac'> {
  const { mac: _mac, ...rest } = message;
  return rest;
}

/**
 * What the MAC on an update to the controller binds (claimGroup, endOperation, operationBlocked
 * from a failover; confirmDown from an operator's `haoscar confirm-down`): the receiving
 * controller (cluster and workflow ID), the update's name and ID (so a recorded one fits no other
 * update, and a repeat with its own ID is answered from the controller's record of applied
 * updates), the sending workflow's run (none for an operator), and the request's content, epochs
 * and the sender's workflow ID included. The controller checks it in a local activity of its
 * worker before the update changes anything.
 */
export interface ControllerUpdateBinding {
  cluster: string;
  /** The controller's workflow ID (controller/<cluster>). */
  controllerId: string;
  /** The update's name: claimGroup, endOperation, operationBlocked, confirmDown. */
  update: string;
  updateId: string;
  /** The run of the sending workflow (its ID is the request's `workflowId`); undefined for an operator's update. */
  runId: string | undefined;
  /** The request without its `auth`. */
  request: unknown;
}

/** The MAC a sender puts on an update to the controller. */
export function controllerUpdateMac(key: MessageKey, b: ControllerUpdateBinding): string {
  return mac(key, 'controller-update', [b.cluster, b.controllerId, b.update, b.updateId, b.runId ?? null, b.request]);
}

/** Whether `given` is the MAC of this update. */
export function verifyControllerUpdate(key: MessageKey, b: ControllerUpdateBinding, given: unknown): boolean {
  return verifiedUnderAny(key, (k) => controllerUpdateMac(k, b), given);
}

/** `request` without its `auth` field (what an update's MAC covers). */
export function withoutAuth<T extends { auth?: unknown }>(request: T): Omit<T, 'auth'> {
  const { auth: _auth, ...rest } = request;
  return rest;
}

/**
 * What the MAC on an agent's report to the controller binds (the `nodeEdge`, `nodeAnnounce` and
 * `groupLost` signals): the receiving controller (cluster and workflow ID), the signal's name, the
 * sending node, its heartbeat incarnation (persisted, larger at every start of its agent) and a
 * counter of that incarnation, and the report's content. The controller keeps the newest
 * (incarnation, counter) of each node and refuses anything not newer, so a report read from a
 * history and sent again changes nothing; it checks the MAC in an activity of its worker.
 */
export interface ControllerReportBinding {
  cluster: string;
  /** The controller's workflow ID (controller/<cluster>). */
  controllerId: string;
  /** The signal's name: nodeEdge, nodeAnnounce, groupLost. */
  signal: string;
  /** The node whose agent sends it (the edge's reporter; the announcing or losing node). */
  sender: string;
  incarnation: number;
  counter: number;
  /** The report as sent (its first argument). */
  report: unknown;
}

/** The MAC an agent puts on a report to the controller. */
export function controllerReportMac(key: MessageKey, b: ControllerReportBinding): string {
  return mac(key, 'controller-report', [b.cluster, b.controllerId, b.signal, b.sender, b.incarnation, b.counter, b.report]);
}

/** Whether `given` is the MAC of this report. */
export function verifyControllerReport(key: MessageKey, b: ControllerReportBinding, given: unknown): boolean {
  return verifiedUnderAny(key, (k) => controllerReportMac(k, b), given);
}

/**
 * What the MAC on a heal's "gave up" report binds (the `healGaveUp` signal, sent by the
 * `healService` workflow on the workflow worker, which signs it in a local activity): the
 * receiving controller, the heal workflow's ID (heal/<cluster>/<group>/<resource>, which the
 * activity takes from Temporal, not from the workflow's word) and the report, whose `at` (the
 * heal's workflow time) orders the reports of one heal: the controller refuses one not newer
 * than the newest it applied from that heal.
 */
export interface HealGaveUpBinding {
  cluster: string;
  controllerId: string;
  healId: string;
  report: unknown;
}

/** The MAC the workflow worker puts on a heal's "gave up" report. */
export function healGaveUpMac(key: MessageKey, b: HealGaveUpBinding): string {
  return mac(key, 'heal-gave-up', [b.cluster, b.controllerId, b.healId, b.report]);
}

/** Whether `given` is the MAC of this heal's report. */
export function verifyHealGaveUp(key: MessageKey, b: HealGaveUpBinding, given: unknown): boolean {
  return verifiedUnderAny(key, (k) => healGaveUpMac(k, b), given);
}
