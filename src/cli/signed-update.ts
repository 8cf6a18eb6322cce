/**
 * What a CLI command needs to send the controller a signed update (confirm-down, maintenance):
 * the cluster's message key and the request with its MAC (docs/security.md).
 */
import type { Config } from '../config/types.js';
import { controllerUpdateMac, deriveMessageKey, type MessageKey } from '../auth/messages.js';
import { HeartbeatSecretError, loadHeartbeatSecret } from '../heartbeat/secret.js';
import { controllerWorkflowId } from '../../workflows/shared.js';
import { CliError, EXIT } from './errors.js';

/**
 * The cluster's message key, from `heartbeat.secretFile`; undefined for a one-node cluster (it
 * loads no secret, and its controller checks nothing). `signs`: what the command signs and why,
 * for the error. @throws CliError (exit 3) when the file cannot be used (missing, unreadable by
 * this user, readable by everyone): nothing was sent.
 */
export async function messageKey(config: Config, signs: string): Promise<MessageKey | undefined> {
  if (config.nodes.length <= 1) return undefined;
  try {
    return deriveMessageKey(await loadHeartbeatSecret(config.heartbeat.secretFile));
  } catch (err) {
    if (err instanceof HeartbeatSecretError) {
      throw new CliError(`${err.message}. ${signs}: run it on a node or the workflow worker's host, as a user that may read that file (docs/security.md); nothing was sent`, EXIT.config);
    }
    throw err;
  }
}

/** `request` with its MAC for this cluster's controller, `update` and `updateId` (unchanged without a key). */
export function signedRequest<T extends object>(key: MessageKey | undefined, cluster: string, update: string, updateId: string, request: T): T {
  if (key === undefined) return request;
  const mac = controllerUpdateMac(key, { cluster, controllerId: controllerWorkflowId(cluster), update, updateId, runId: undefined, request });
  return { ...request, auth: { mac } };
}
