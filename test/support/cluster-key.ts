/**
 * The message key tests give both ends of authenticated messages (the workflow worker's local
 * activities and the nodes' activities), as the agent and `haoscar worker` derive it from the
 * cluster secret (docs/security.md). One random key per test process.
 */
import { randomBytes } from 'node:crypto';
import { deriveMessageKey } from '../../src/auth/messages.js';
import { createAuthActivities } from '../../activities/auth.js';
import type { Config } from '../../src/config/types.js';

export const TEST_KEY = deriveMessageKey(randomBytes(32));

/** The workflow worker's signing and checking (local) activities, under {@link TEST_KEY}. */
export function testAuthActivities(config: Config): ReturnType<typeof createAuthActivities> {
  return createAuthActivities({ config, key: TEST_KEY });
}
