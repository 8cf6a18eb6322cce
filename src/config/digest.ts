/**
 * The configuration digest: a short fingerprint of the parts of the configuration that must be
 * equal on every node, carried in heartbeats (protocol version 2, docs/heartbeat.md) so that
 * each agent can tell when a peer runs with another configuration, and `doctor` can compare
 * every node's (issue 11).
 *
 * What it covers — the cluster-wide settings, as normalised (defaults resolved, durations in
 * ms, so `interval: 1s` and `interval: 1000ms`, or a default written out, give the same digest):
 * - `cluster`, `temporal.namespace`;
 * - `heartbeat.port`, `interval`, `deadtime`; `lease`; `failover`; `sync.transport` and `port`;
 * - every node (name, addresses, priority, fence) and every group, whole (resources, checks,
 *   healing, file sets, fail-back, data policy), each list of nodes and groups in name order
 *   (their order in the file means nothing; the order *inside* a node or group does: links,
 *   preferences, start order).
 *
 * What it leaves out, because nodes may differ there on purpose: local paths and files
 * (`heartbeat.secretFile`, `agent.stateDir`, `temporal.tls` and `apiKeyFile`, `sync.rsync`,
 * `sync.ssh`), how this node reaches Temporal (`temporal.address`/frontends, `server`), the
 * agent's own settings (`agent.*`: log level, cache, whether it runs workflows), the lease
 * guard and watchdog (hardware), and `sync.keepBackups` (local disk).
 *
 * It is an HMAC under a key derived from the cluster secret (as src/auth/messages.ts derives
 * its own), not a plain hash: heartbeat bodies are readable by anyone on the link, and the
 * configuration holds things worth guessing (fence passwords, service environments). Nodes
 * with the same secret and the same cluster-wide settings compute the same digest; nothing
 * about the configuration can be learnt or checked from it without the secret.
 */
import { createHmac, hkdfSync } from 'node:crypto';
import { canonicalJson } from '../auth/messages.js';
import type { Config } from './types.js';

/** Raised when the digest scheme changes (a field added or dropped): a node of another scheme differs. */
const DIGEST_LABEL = 'haoscar config digest v1';

const byName = <T extends { name: string }>(items: readonly T[]): T[] => [...items].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));

/** The part of `config` the digest covers (see the module comment), as plain data. */
export function clusterWideConfig(config: Config): unknown {
  return {
    cluster: config.cluster,
    temporal: { namespace: config.temporal.namespace },
    heartbeat: { port: config.heartbeat.port, intervalMs: config.heartbeat.intervalMs, deadtimeMs: config.heartbeat.deadtimeMs },
    lease: { ttlMs: config.lease.ttlMs, marginMs: config.lease.marginMs },
    failover: { verifyTimeoutMs: config.failover.verifyTimeoutMs },
    sync: { transport: config.sync.transport, port: config.sync.port },
    nodes: byName(config.nodes),
    groups: byName(config.groups),
  };
}

/** The digest of `config`'s cluster-wide part under the cluster `secret`: 32 lowercase hex digits (128 bits). */
export function configDigest(config: Config, secret: Buffer): string {
  const key = Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), DIGEST_LABEL, 32));
  return createHmac('sha256', key).update(canonicalJson(clusterWideConfig(config))).digest('hex').slice(0, 32);
}
