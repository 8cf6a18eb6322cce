/**
 * Issue 9, item 11: the controller's `carried` input (its state over continue-as-new) has a schema
 * (workflows/inputs.ts carriedStateSchema in controllerInputSchema). Before, any value was taken
 * (`carried: z.unknown()`, then a cast): an epoch that is text, a state that is no state, from the
 * UI's "start like this one" or a controller started by hand, became the truth of who runs what.
 * The carried states of recorded histories (a controller that continued as new, before and after
 * the record of applied updates) must still parse, and keys the schema does not know are kept.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { controllerInputSchema, describeIssues } from '../../workflows/inputs.js';

const dir = fileURLToPath(new URL('../histories/', import.meta.url));

/** The input of the controller run a recorded history starts with. */
async function recordedInput(file: string): Promise<{ cluster: string; carried?: unknown }> {
  const history = JSON.parse(await readFile(dir + file, 'utf8')) as { events: { workflowExecutionStartedEventAttributes?: { input: { payloads: { data: string }[] } } }[] };
  const started = history.events[0]!.workflowExecutionStartedEventAttributes!;
  return JSON.parse(Buffer.from(started.input.payloads[0]!.data, 'base64').toString()) as { cluster: string; carried?: unknown };
}

const FULL = {
  cluster: 'c1',
  carried: {
    cluster: 'c1',
    groups: {
      web: {
        owner: 'n1', epoch: 7, state: 'moving', since: 1_796_000_000_000, renewable: false, blockedSince: 1_796_000_000_100, failbackAt: 1_795_000_000_000,
        operation: {
          workflowId: 'failover/c1/web', kind: 'node-lost', startedAt: 1_796_000_000_000, checkedAt: 1_796_000_120_000,
          blocked: { node: 'n1', epoch: 7, since: 1_796_000_000_200, detail: 'stop failed', waitingFor: ['fencing', 'confirm-down'], until: 1_796_000_060_000, confirmed: { operator: 'alice', at: 1_796_000_000_300 } },
        },
        lost: { node: 'n1', epoch: 6, at: 1_796_000_000_000, detail: 'lease lost', retryAt: 1_796_000_001_000, delayMs: 1000 },
        retry: { at: 1_796_000_010_000, delayMs: 4000 },
        deferred: { kind: 'recover', reason: 'n1 stopped it', owner: 'n1', epoch: 7, at: 1_796_000_002_000, delayMs: 2000 },
      },
      db: { owner: null, epoch: 0, state: 'unplaced', since: 1_796_000_000_000, renewable: true },
    },
    nodes: {
      n1: { state: 'suspect', since: 1_796_000_000_000, reportedBy: 'n2', answeredAt: 1_796_000_000_500 },
      n2: { state: 'up', since: 1_796_000_000_000, reportedBy: 'controller' },
    },
    falseAlarms: [{ group: 'web', node: '?', at: 1_796_000_000_000, workflowId: 'failover/c1/web', detail: 'it answered' }],
    reverify: { n1: { at: 1_796_000_005_000, delayMs: 5000 } },
    confirmedDown: [{ node: 'n1', operator: 'alice', at: 1_796_000_000_300, unblocked: [{ group: 'web', workflowId: 'failover/c1/web', epoch: 7 }] }],
    leases: { worker: { ttlMs: 600, marginMs: 100 }, nodes: { n1: { ttlMs: 3000, marginMs: 500, at: 1_796_000_000_000 } } },
    applied: [
      { id: 'failover/c1/web/run/1/claimGroup', update: 'claimGroup', at: 1_796_000_000_000, result: { epoch: 7 } },
      { id: 'failover/c1/web/run/2/endOperation', update: 'endOperation', at: 1_796_000_000_001 },
    ],
  },
};

test('the carried states of recorded histories parse, unchanged', async () => {
  for (const file of ['controller-continued-as-new-unpatched.json', 'controller-continued-as-new.json']) {
    const input = await recordedInput(file);
    assert.ok(input.carried, `${file} starts with a carried state`);
    const parsed = controllerInputSchema.safeParse(input);
    assert.ok(parsed.success, `${file}: ${parsed.success ? '' : describeIssues(parsed.error, '(input)').join('; ')}`);
    assert.deepEqual(parsed.data, input, file);
  }
});

test('every field the controller writes parses; keys the schema does not know are kept', () => {
  const parsed = controllerInputSchema.parse(FULL);
  assert.deepEqual(parsed, FULL);
  const newer = structuredClone(FULL) as typeof FULL & { carried: { fencedAt?: unknown } };
  newer.carried.fencedAt = { n1: 1_796_000_000_000 };
  (newer.carried.groups.web as Record<string, unknown>).highestSeenEpoch = 9;
  (newer.carried.nodes.n1 as Record<string, unknown>).announcedLeaseMs = 3500;
  assert.deepEqual(controllerInputSchema.parse(newer), newer, 'a newer controller\'s optional fields survive');
});

test('a malformed carried state is refused, naming the field', () => {
  const cases: [string, (c: Record<string, any>) => void, string][] = [ // eslint-disable-line @typescript-eslint/no-explicit-any
    ['an epoch that is text', (c) => { c.groups.web.epoch = '7'; }, 'carried.groups.web.epoch'],
    ['a negative epoch', (c) => { c.groups.db.epoch = -1; }, 'carried.groups.db.epoch'],
    ['a state that is no state', (c) => { c.groups.web.state = 'flying'; }, 'carried.groups.web.state'],
    ['a group without renewable', (c) => { delete c.groups.db.renewable; }, 'carried.groups.db.renewable'],
    ['an operation of an unknown kind', (c) => { c.groups.web.operation.kind = 'bogus'; }, 'carried.groups.web.operation.kind'],
    ['an operation without a workflow', (c) => { c.groups.web.operation.workflowId = ''; }, 'carried.groups.web.operation.workflowId'],
    ['a blocked operation waiting for nothing known', (c) => { c.groups.web.operation.blocked.waitingFor = ['prayer']; }, 'carried.groups.web.operation.blocked.waitingFor[0]'],
    ['a node liveness that is no state', (c) => { c.nodes.n2.state = 'dead'; }, 'carried.nodes.n2.state'],
    ['a time that is not a number', (c) => { c.reverify.n1.at = 'soon'; }, 'carried.reverify.n1.at'],
    ['groups that are a list', (c) => { c.groups = ['web']; }, 'carried.groups'],
    ['applied updates that are not a list', (c) => { c.applied = {}; }, 'carried.applied'],
    ['an applied update without an ID', (c) => { delete c.applied[1].id; }, 'carried.applied[1].id'],
    ['another cluster\'s state', (c) => { c.cluster = 'c2'; }, 'carried.cluster'],
  ];
  for (const [what, mutate, path] of cases) {
    const input = structuredClone(FULL) as { cluster: string; carried: Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
    mutate(input.carried);
    const parsed = controllerInputSchema.safeParse(input);
    assert.ok(!parsed.success, `${what}: refused`);
    const problems = describeIssues(parsed.error, '(input)');
    assert.ok(problems.some((p) => p.startsWith(`${path}: `)), `${what}: names ${path} (got ${problems.join('; ')})`);
  }
  assert.ok(!controllerInputSchema.safeParse({ cluster: 'c1', carried: 'x' }).success, 'a carried state that is text');
  assert.ok(controllerInputSchema.safeParse({ cluster: 'c1' }).success, 'no carried state (a first run)');
});
