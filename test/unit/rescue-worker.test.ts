/**
 * The rescue worker's refusal (src/rescue/rescue-worker.ts rescueRefusal): it must not start
 * for a node the controller has up (its agent runs: the two would share one task queue) or as
 * the owner of a group. The whole worker in a network lab: test/lab/clone-rescue.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RESCUE_ACTIVITIES, rescueRefusal } from '../../src/rescue/rescue-worker.js';
import { createCloneActivities } from '../../activities/clone.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import type { GroupOwnership, NodeLiveness, Ownership } from '../../workflows/shared.js';

function view(nodes: Record<string, NodeLiveness['state']>, owners: Record<string, string | null>): Ownership {
  const group = (owner: string | null): GroupOwnership => ({ owner, epoch: 4, state: owner ? 'running' : 'down', since: 0, renewable: true });
  return {
    cluster: 'prod',
    groups: Object.fromEntries(Object.entries(owners).map(([g, o]) => [g, group(o)])),
    nodes: Object.fromEntries(Object.entries(nodes).map(([n, state]) => [n, { state, since: 0, reportedBy: 'alpha' }])),
    falseAlarms: [],
    reverify: {},
  };
}

test('a rescue worker starts for a node the controller has suspect or unknown, or does not list', () => {
  assert.equal(rescueRefusal(view({ alpha: 'up', beta: 'suspect' }, { web: 'alpha' }), 'beta'), undefined);
  assert.equal(rescueRefusal(view({ alpha: 'up', beta: 'unknown' }, { web: 'alpha', db: null }), 'beta'), undefined);
  assert.equal(rescueRefusal(view({ alpha: 'up' }, {}), 'beta'), undefined);
});

test('a rescue worker refuses a node whose agent the controller has up, or that owns a group', () => {
  const up = rescueRefusal(view({ alpha: 'up', beta: 'up' }, { web: 'alpha' }), 'beta');
  assert.match(up ?? '', /has node 'beta' up .*share its task queue/);
  // Owner even while suspect (its peers lost it; the group is not moved yet).
  const owner = rescueRefusal(view({ alpha: 'up', beta: 'suspect' }, { web: 'beta', db: 'alpha' }), 'beta');
  assert.match(owner ?? '', /owner of web \(epoch 4, running\)/);
  assert.doesNotMatch(owner ?? '', /db/);
});

test('the rescue worker registers exactly the clone activities', () => {
  // RESCUE_ACTIVITIES is what the log says it serves: a clone activity added later must be listed.
  const acts = createCloneActivities({
    node: 'beta', cluster: 'prod', key: undefined, logger: silentLogger, exec: createExec(silentLogger), rsync: 'rsync',
    ssh: { user: 'root', identityFile: '/k', knownHostsFile: '/h', port: 22 }, heldGroups: () => [],
  });
  assert.deepEqual(Object.keys(acts).sort(), [...RESCUE_ACTIVITIES].sort());
});
