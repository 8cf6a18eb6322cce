/**
 * The controller's lease memo (issue 14 item 2; workflows/lease-memo.ts, src/auth/ownership-answer.ts):
 * what the controller publishes and when (only what changed), what the workflow worker's codec signs,
 * and what an agent accepts: every entry signed for its controller, from the running run, under its
 * own key, and the newest of its key in the run's history, so that an older entry re-published by a
 * process without the secret does not confirm a lease, however fresh the reader.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import type { Payload, SerializationContext } from '@temporalio/common';
import { deriveMessageKey } from '../../src/auth/messages.js';
import { checkLeaseMemo, createOwnershipAnswerCodec, extendLeaseMemoTrail, leaseMemoGroupEntry, type LeaseMemoTrail, type MemoEvent } from '../../src/auth/ownership-answer.js';
import { LEASE_MEMO_KEY, LEASE_MEMO_MARK, leaseMemoChanges, leaseMemoContents, leaseMemoGroupKey, leaseMemoPayload, type LeaseMemoEntry } from '../../workflows/lease-memo.js';
import { ANSWER_MAC_KEY, ANSWER_MARK_KEY } from '../../workflows/ownership-answer.js';
import { controllerWorkflowId, type GroupOwnership } from '../../workflows/shared.js';

const KEY = deriveMessageKey(randomBytes(32));
const CLUSTER = 'c1';
const RUN = 'run-1';
const WORKFLOW_ID = controllerWorkflowId(CLUSTER);
const codec = createOwnershipAnswerCodec({ cluster: CLUSTER, key: KEY });
const controllerContext: SerializationContext = { type: 'workflow', namespace: 'default', workflowId: WORKFLOW_ID };
const expected = { cluster: CLUSTER, runId: RUN };

const group = (owner: string | null, epoch: number, renewable = true): GroupOwnership => ({ owner, epoch, state: owner ? 'running' : 'down', since: 123, renewable });
const clusterContent = { leases: { worker: { ttlMs: 600, marginMs: 100 }, nodes: {} }, maintenance: null };

/** An entry as the controller builds it, through the worker's codec (or another codec: `by`). */
async function entry(key: string, version: number, content: unknown, over: Partial<LeaseMemoEntry> = {}, by = codec, context: SerializationContext = controllerContext): Promise<Payload> {
  const raw = leaseMemoPayload({ kind: LEASE_MEMO_MARK, cluster: CLUSTER, workflowId: WORKFLOW_ID, runId: RUN, key, version, content, ...over }).payload;
  const [out] = await by.encode([raw], context);
  return out!;
}

const webKey = leaseMemoGroupKey('web');
const emptyTrail: LeaseMemoTrail = { runId: RUN, upTo: 0, entries: new Map() };

/** The trail after these events (asserting it checks out), then the verdict on `memo`. */
function read(events: MemoEvent[], memo: Record<string, Payload>, trail = emptyTrail) {
  const upTo = Math.max(trail.upTo, ...events.map((e) => e.eventId));
  const extended = extendLeaseMemoTrail(KEY, expected, trail, events, upTo);
  if (!extended.ok) return extended;
  return checkLeaseMemo(KEY, expected, memo, extended.trail);
}

describe('lease memo: what the controller publishes', () => {
  const state = { groups: { web: group('n1', 3), db: group('n2', 7) }, leases: { worker: { ttlMs: 600, marginMs: 100 }, nodes: {} }, maintenance: { groups: {}, nodes: {}, moves: { web: 5 } } };

  it('one entry per group (owner, epoch, state, renewable; not `since`) and one for the cluster (maintenance without `moves`)', () => {
    const contents = leaseMemoContents(state);
    assert.deepEqual([...contents.keys()].sort(), [LEASE_MEMO_KEY, leaseMemoGroupKey('db'), webKey]);
    assert.deepEqual(contents.get(webKey), { owner: 'n1', epoch: 3, state: 'running', renewable: true });
    assert.deepEqual(contents.get(LEASE_MEMO_KEY), { leases: state.leases, maintenance: { groups: {}, nodes: {} } });
  });

  const cases: { name: string; change: (s: typeof state) => void; keys: string[] }[] = [
    { name: 'nothing changed (time passes, `since`, a maintenance move)', change: (s) => { s.groups.web.since = 999; s.maintenance.moves.web = 9; }, keys: [] },
    { name: 'a block: only that group', change: (s) => { s.groups.web.renewable = false; }, keys: [webKey] },
    { name: 'a claim: only that group', change: (s) => { s.groups.db.epoch = 8; s.groups.db.owner = 'n1'; }, keys: [leaseMemoGroupKey('db')] },
    { name: 'a node announces its lease: only the cluster entry', change: (s) => { (s.leases.nodes as Record<string, unknown>).n1 = { ttlMs: 2000, marginMs: 150, at: 1 }; }, keys: [LEASE_MEMO_KEY] },
  ];
  for (const c of cases) {
    it(`republishes ${c.name}`, () => {
      const before = structuredClone(state);
      const published = new Map(leaseMemoChanges(new Map(), leaseMemoContents(before)).map(([k, json]) => [k, json]));
      const after = structuredClone(state);
      c.change(after);
      assert.deepEqual(leaseMemoChanges(published, leaseMemoContents(after)).map(([k]) => k), c.keys);
    });
  }
});

describe('lease memo: the worker signs, the agent checks', () => {
  it('accepts the newest signed entries of the running run, as the view', async () => {
    const c = await entry(LEASE_MEMO_KEY, 1, clusterContent);
    const w = await entry(webKey, 1, { owner: 'n1', epoch: 3, state: 'running', renewable: true });
    const verdict = read([{ eventId: 7, fields: { [LEASE_MEMO_KEY]: c, [webKey]: w } }], { [LEASE_MEMO_KEY]: c, [webKey]: w });
    assert.ok(verdict.ok, JSON.stringify(verdict));
    assert.deepEqual(verdict.view.groups.web, { owner: 'n1', epoch: 3, state: 'running', renewable: true });
    assert.deepEqual(verdict.view.leases, clusterContent.leases);
    assert.deepEqual(verdict.signedWith, KEY.bytes);
  });

  it('the codec signs an entry only in the controller\'s own workflow, for this cluster', async () => {
    const inOther = await entry(webKey, 1, {}, {}, codec, { type: 'workflow', namespace: 'default', workflowId: 'failover/c1/web' });
    assert.equal(inOther.metadata?.[ANSWER_MAC_KEY], undefined);
    assert.equal(inOther.metadata?.[ANSWER_MARK_KEY], undefined, 'and the mark is stripped');
    const otherCluster = await entry(webKey, 1, {}, { cluster: 'c2' });
    assert.equal(otherCluster.metadata?.[ANSWER_MAC_KEY], undefined);
  });

  const refusals: { name: string; build: () => Promise<{ events: MemoEvent[]; memo: Record<string, Payload> }>; why: RegExp }[] = [
    {
      name: 'no memo (a controller older than it)',
      build: async () => ({ events: [], memo: {} }),
      why: /has no lease memo/,
    },
    {
      name: 'an entry signed with another secret',
      build: async () => {
        const c = await entry(LEASE_MEMO_KEY, 1, clusterContent, {}, createOwnershipAnswerCodec({ cluster: CLUSTER, key: deriveMessageKey(randomBytes(32)) }));
        return { events: [{ eventId: 5, fields: { [LEASE_MEMO_KEY]: c } }], memo: { [LEASE_MEMO_KEY]: c } };
      },
      why: /MAC does not verify/,
    },
    {
      name: 'an entry with no MAC (a worker without the secret)',
      build: async () => {
        const c = leaseMemoPayload({ kind: LEASE_MEMO_MARK, cluster: CLUSTER, workflowId: WORKFLOW_ID, runId: RUN, key: LEASE_MEMO_KEY, version: 1, content: clusterContent }).payload;
        return { events: [{ eventId: 5, fields: { [LEASE_MEMO_KEY]: c } }], memo: { [LEASE_MEMO_KEY]: c } };
      },
      why: /no MAC/,
    },
    {
      name: 'an entry of an earlier controller run',
      build: async () => {
        const c = await entry(LEASE_MEMO_KEY, 9, clusterContent, { runId: 'run-0' });
        return { events: [{ eventId: 5, fields: { [LEASE_MEMO_KEY]: c } }], memo: { [LEASE_MEMO_KEY]: c } };
      },
      why: /controller run run-0, not the running one/,
    },
    {
      name: 'another group\'s entry moved under this group\'s key',
      build: async () => {
        const c = await entry(LEASE_MEMO_KEY, 1, clusterContent);
        const db = await entry(leaseMemoGroupKey('db'), 1, { owner: 'n1', epoch: 3, state: 'running', renewable: true });
        return { events: [{ eventId: 5, fields: { [LEASE_MEMO_KEY]: c, [webKey]: db } }], memo: { [LEASE_MEMO_KEY]: c, [webKey]: db } };
      },
      why: /written under 'haoscar-lease\/db'/,
    },
    {
      name: 'an older entry re-published after a newer one (history order)',
      build: async () => {
        const c = await entry(LEASE_MEMO_KEY, 1, clusterContent);
        const old = await entry(webKey, 1, { owner: 'n1', epoch: 3, state: 'running', renewable: true });
        const block = await entry(webKey, 2, { owner: 'n1', epoch: 3, state: 'running', renewable: false });
        return { events: [{ eventId: 5, fields: { [LEASE_MEMO_KEY]: c, [webKey]: old } }, { eventId: 9, fields: { [webKey]: block } }, { eventId: 14, fields: { [webKey]: old } }], memo: { [LEASE_MEMO_KEY]: c, [webKey]: old } };
      },
      why: /version 1 was published after version 2: an older entry re-published/,
    },
    {
      name: 'a memo value no event of the run wrote',
      build: async () => {
        const c = await entry(LEASE_MEMO_KEY, 1, clusterContent);
        const w = await entry(webKey, 1, { owner: 'n1', epoch: 3, state: 'running', renewable: true });
        return { events: [{ eventId: 5, fields: { [LEASE_MEMO_KEY]: c } }], memo: { [LEASE_MEMO_KEY]: c, [webKey]: w } };
      },
      why: /not the newest entry of its key in the controller's history \(version 1, none written\)/,
    },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name}`, async () => {
      const { events, memo } = await r.build();
      const verdict = read(events, memo);
      assert.equal(verdict.ok, false);
      assert.match((verdict as { why: string }).why, r.why);
    });
  }

  it('a replay is refused across reads: the trail keeps each key\'s newest version', async () => {
    const c = await entry(LEASE_MEMO_KEY, 1, clusterContent);
    const old = await entry(webKey, 1, { owner: 'n1', epoch: 3, state: 'running', renewable: true });
    const block = await entry(webKey, 2, { owner: 'n1', epoch: 3, state: 'running', renewable: false });
    const first = extendLeaseMemoTrail(KEY, expected, emptyTrail, [{ eventId: 5, fields: { [LEASE_MEMO_KEY]: c, [webKey]: old } }, { eventId: 9, fields: { [webKey]: block } }], 10);
    assert.ok(first.ok);
    assert.equal(checkLeaseMemo(KEY, expected, { [LEASE_MEMO_KEY]: c, [webKey]: block }, first.trail).ok, true);
    // Events already read are not read again; the re-published one comes later.
    const second = extendLeaseMemoTrail(KEY, expected, first.trail, [{ eventId: 9, fields: { [webKey]: block } }, { eventId: 12, fields: { [webKey]: old } }], 12);
    assert.equal(second.ok, false);
  });

  it('the worker\'s freshness check reads a group\'s entry without verifying it', async () => {
    const w = await entry(webKey, 4, { owner: 'n2', epoch: 8, state: 'moving', renewable: false });
    assert.deepEqual(leaseMemoGroupEntry({ [webKey]: w }, 'web'), { runId: RUN, content: { owner: 'n2', epoch: 8, state: 'moving', renewable: false } });
    assert.equal(leaseMemoGroupEntry({}, 'web'), undefined);
  });
});

describe('lease memo: after a secret rotation', () => {
  it('history entries signed with a secret no longer accepted are skipped; the memo confirms again once its entries are rewritten', async () => {
    const oldCodec = createOwnershipAnswerCodec({ cluster: CLUSTER, key: deriveMessageKey(randomBytes(32)) });
    const content = { owner: 'n1', epoch: 3, state: 'running', renewable: true };
    const cOld = await entry(LEASE_MEMO_KEY, 1, clusterContent, {}, oldCodec);
    const wOld = await entry(webKey, 1, content, {}, oldCodec);
    const events: MemoEvent[] = [{ eventId: 5, fields: { [LEASE_MEMO_KEY]: cOld, [webKey]: wOld } }];
    const stillOld = read(events, { [LEASE_MEMO_KEY]: cOld, [webKey]: wOld });
    assert.equal(stillOld.ok, false, 'entries signed with the dropped secret confirm nothing');
    assert.match((stillOld as { why: string }).why, /MAC does not verify/);
    const cNew = await entry(LEASE_MEMO_KEY, 2, clusterContent);
    const wNew = await entry(webKey, 2, content);
    const rewritten = read([...events, { eventId: 9, fields: { [LEASE_MEMO_KEY]: cNew, [webKey]: wNew } }], { [LEASE_MEMO_KEY]: cNew, [webKey]: wNew });
    assert.ok(rewritten.ok, JSON.stringify(rewritten));
  });
});
