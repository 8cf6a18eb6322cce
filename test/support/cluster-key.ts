/**
 * The message key tests give both ends of authenticated messages (the workflow worker's local
 * activities and the nodes' activities), as the agent and `haoscar worker` derive it from the
 * cluster secret (docs/security.md). One random key per test process.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { controllerUpdateMac, deriveMessageKey, healGaveUpMac, type MessageKey } from '../../src/auth/messages.js';
import { controllerWorkflowId, healWorkflowId, type ControllerUpdateName, type HealGaveUpAuth, type HealGaveUpReport, type UpdateAuth } from '../../workflows/shared.js';
import { createAuthActivities } from '../../activities/auth.js';
import type { Config } from '../../src/config/types.js';
import type { Client } from '@temporalio/client';
import { ControllerLink } from '../../src/agent/controller-link.js';
import { silentLogger, type Logger } from '../../src/log.js';

/** The cluster secret of the tests' clusters, as a secret file holds it (base64 text). */
export const TEST_SECRET = randomBytes(32).toString('base64');
export const TEST_KEY = deriveMessageKey(Buffer.from(TEST_SECRET));

/**
 * Writes {@link TEST_SECRET} to `dir/authkey` (mode 0600), for a CLI run against the tests'
 * workflow worker (`heartbeat.secretFile` in its haoscar.yaml). @returns the file's path.
 */
export function writeTestSecret(dir: string): string {
  const file = join(dir, 'authkey');
  writeFileSync(file, `${TEST_SECRET}\n`, { mode: 0o600 });
  return file;
}

/** The workflow worker's signing and checking (local) activities, under {@link TEST_KEY}. */
export function testAuthActivities(config: Config): ReturnType<typeof createAuthActivities> {
  return createAuthActivities({ config, key: TEST_KEY });
}

/**
 * `req` signed for `update` to the controller of `cluster` under `updateId`, as the failover's
 * local activity (runId: its run) or `haoscar confirm-down` (no runId) signs it: what a holder of
 * the cluster secret sends.
 */
export function signedUpdate<T extends object>(cluster: string, update: ControllerUpdateName, updateId: string, runId: string | undefined, req: T, key: MessageKey = TEST_KEY): T & { auth: UpdateAuth } {
  const mac = controllerUpdateMac(key, { cluster, controllerId: controllerWorkflowId(cluster), update, updateId, runId, request: req });
  return { ...req, auth: { ...(runId !== undefined ? { runId } : {}), mac } };
}

let lastIncarnation = 0;
/**
 * A link of an agent that holds the cluster secret, under a new incarnation (larger than every
 * earlier one in this process, as a restarted agent's persisted heartbeat incarnation is).
 */
export function testLink(client: Client, cluster: string, logger: Logger = silentLogger): ControllerLink {
  lastIncarnation = Math.max(lastIncarnation + 1, Date.now());
  return new ControllerLink(client, cluster, logger, { key: TEST_KEY, incarnation: lastIncarnation });
}

/**
 * A heal's "gave up" report with the MAC the workflow worker puts on it for the heal of its group
 * and resource (heal-service.ts): the signal's arguments, as the heal workflow sends them.
 */
export function signedHealGaveUp(cluster: string, report: HealGaveUpReport, key: MessageKey = TEST_KEY): [HealGaveUpReport, HealGaveUpAuth] {
  const healId = healWorkflowId(cluster, report.group, report.resource);
  return [report, { healId, mac: healGaveUpMac(key, { cluster, controllerId: controllerWorkflowId(cluster), healId, report }) }];
}
