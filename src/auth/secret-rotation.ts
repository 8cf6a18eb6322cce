/**
 * The safety rule of a cluster-secret rotation step (docs/reload.md#rotating-the-cluster-secret),
 * as a pure check: a node may change the secret it signs with, or the secrets it accepts, only
 * when no peer heard now would be cut off by the change. Secrets are compared by their names
 * (secretKeyId), which every node advertises in its heartbeats.
 *
 * - Every secret a live peer signs with must stay accepted here: otherwise this node would
 *   refuse that peer's heartbeats as forged, see it dead, and a failover could follow while it
 *   serves. Dropping the old secret therefore waits until every peer signs with the new one.
 * - The secret this node is to sign with must be accepted by every live peer: otherwise they
 *   would refuse this node's heartbeats. Signing with the new secret therefore waits until every
 *   peer accepts it. A peer that does not say what it accepts (a release before rotation) cannot
 *   be checked, and counts as not accepting it.
 *
 * Peers not heard now are not asked: when they come back with the secrets they start with, the
 * same rule holds at their side (docs/reload.md says in which order to restart a node that was down).
 */
import type { ReloadRefusal } from '../config/reload-plan.js';
import { secretKeyId, type ClusterSecrets } from '../heartbeat/secret.js';

/** A node's secrets by name: the one it signs with, and those it also accepts (without the first). */
export interface SecretNames {
  signs: string;
  accepts: readonly string[];
}

/** A peer as the heartbeats know it (HeartbeatPeerStatus). */
export interface PeerSecretView {
  node: string;
  /** Heard now (alive); a suspect or dead peer is not checked. */
  alive: boolean;
  /** The name of the secret its last believed packet was signed with. */
  signsWith?: string;
  /** The names it advertises as accepted, its signing one first; absent from an older release. */
  acceptsKeys?: readonly string[];
}

/**
 * The workflow worker as this node's lease answers show it: the secret its last authenticated
 * answer was signed with, and how long ago. Only a recent one is checked (Temporal may be away).
 */
export interface WorkerSecretView {
  signsWith: string;
  agoMs: number;
}

/** A worker's answer older than this says nothing about the secret it signs with now. */
export const WORKER_ANSWER_FRESH_MS = 60_000;

/**
 * Why changing this node's secrets from `before` to `after` would cut off a live peer, or the
 * workflow worker whose lease answers it checks; empty when it is safe. Pure.
 */
export function checkSecretChange(before: SecretNames, after: SecretNames, peers: readonly PeerSecretView[], worker?: WorkerSecretView): ReloadRefusal[] {
  const refused: ReloadRefusal[] = [];
  const acceptedAfter = new Set([after.signs, ...after.accepts]);
  if (worker !== undefined && worker.agoMs <= WORKER_ANSWER_FRESH_MS && !acceptedAfter.has(worker.signsWith)) {
    refused.push({
      path: 'heartbeat.acceptSecretFiles',
      why: `the workflow worker still signs with secret ${worker.signsWith} (its lease answer ${Math.round(worker.agoMs / 1000)} s ago), which this node would no longer accept: its lease answers and orders would be refused. ` +
        `Give the worker the new secret to sign with first (its heartbeat.secretFile, then SIGHUP), or keep accepting ${worker.signsWith} here`,
    });
  }
  const live = peers.filter((p) => p.alive);
  for (const peer of live) {
    if (peer.signsWith !== undefined && !acceptedAfter.has(peer.signsWith)) {
      refused.push({
        path: 'heartbeat.acceptSecretFiles',
        why: `${peer.node} still signs with secret ${peer.signsWith}, which this node would no longer accept: it would refuse ${peer.node}'s heartbeats and see it dead. ` +
          `Let ${peer.node} sign with the new secret first (its heartbeat.secretFile, then haoscar reload there), or keep accepting ${peer.signsWith} here`,
      });
    }
  }
  if (after.signs !== before.signs) {
    for (const peer of live) {
      if (peer.acceptsKeys === undefined) {
        refused.push({
          path: 'heartbeat.secretFile',
          why: `${peer.node} does not say which secrets it accepts (a release without secret rotation): it might refuse this node's heartbeats under secret ${after.signs}. Upgrade ${peer.node} first`,
        });
      } else if (!peer.acceptsKeys.includes(after.signs)) {
        refused.push({
          path: 'heartbeat.secretFile',
          why: `${peer.node} does not accept secret ${after.signs} yet (it accepts ${peer.acceptsKeys.join(', ')}): it would refuse this node's heartbeats and see it dead. ` +
            `Add the new secret's file to heartbeat.acceptSecretFiles on ${peer.node} and reload it first`,
        });
      }
    }
  }
  return refused;
}

/** Whether two sets of names differ (what a reload must check and apply). Pure. */
export function secretNamesDiffer(a: SecretNames, b: SecretNames): boolean {
  return a.signs !== b.signs || a.accepts.length !== b.accepts.length || a.accepts.some((k) => !b.accepts.includes(k));
}

/** The names of a node's secrets. */
export function secretNames(secrets: ClusterSecrets): SecretNames {
  return { signs: secretKeyId(secrets.signing), accepts: secrets.accepted.map(secretKeyId) };
}
