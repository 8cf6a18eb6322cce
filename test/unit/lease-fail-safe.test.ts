/**
 * The lease's fail-safe decision (src/agent/fail-safe.ts), table-tested: it is decided from how
 * recently each peer was heard on this process's monotonic clock, and a packet read in the wake
 * of a stall of this process counts as older by the stall's length (issue 9 item 5). The keeper
 * itself is in lease.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { contentAgeMs, failSafeAllowed, stallThresholdMs, type FailSafeFacts, type HeardPeer } from '../../src/agent/fail-safe.js';

const DEADTIME = 600;
const heard = (lastHeardAgoMs: number | undefined, claims: Record<string, number> = {}, node = 'n2', alive = true): HeardPeer => ({ node, alive, lastHeardAgoMs, claims });
const facts = (over: Partial<FailSafeFacts>): FailSafeFacts => ({ group: 'web', rivals: ['n2'], peers: [heard(10)], deadtimeMs: DEADTIME, lastStall: undefined, ...over });

describe('failSafeAllowed', () => {
  const table: { name: string; facts: FailSafeFacts; ok: boolean; why?: RegExp }[] = [
    { name: 'the peer heard 10 ms ago, no claim', facts: facts({}), ok: true },
    { name: 'just within the deadtime', facts: facts({ peers: [heard(DEADTIME - 1)] }), ok: true },
    { name: "alive in the tracker but last heard a deadtime ago (the tracker's timer has not run since)", facts: facts({ peers: [heard(DEADTIME)] }), ok: false, why: /peer\(s\) n2 are not heard either \(n2: last heard 600 ms ago, deadtime 600 ms\)/ },
    { name: 'after a freeze: alive, last heard 4 s ago', facts: facts({ peers: [heard(4000)] }), ok: false, why: /n2: last heard 4000 ms ago/ },
    { name: 'suspect', facts: facts({ peers: [heard(700, {}, 'n2', false)] }), ok: false, why: /n2: last heard 700 ms ago, suspect/ },
    { name: 'never heard', facts: facts({ peers: [heard(undefined, {}, 'n2', false)] }), ok: false, why: /n2: never heard/ },
    { name: 'no heartbeat at all (the peer is not in the list)', facts: facts({ peers: [] }), ok: false, why: /peer\(s\) n2 are not heard either/ },
    { name: 'the peer claims the group', facts: facts({ peers: [heard(10, { web: 2 })] }), ok: false, why: /peer n2 claims the group/ },
    { name: 'a claim of another group does not matter', facts: facts({ peers: [heard(10, { db: 2 })] }), ok: true },
    { name: 'a node that may not run the group does not matter', facts: facts({ rivals: ['n2'], peers: [heard(10), heard(5000, { web: 9 }, 'n3')] }), ok: true },
    { name: 'a one-node group: no rival, always', facts: facts({ rivals: [], peers: [] }), ok: true },
    { name: 'one of two rivals heard too long ago', facts: facts({ rivals: ['n2', 'n3'], peers: [heard(10), heard(900, {}, 'n3')] }), ok: false, why: /peer\(s\) n3 are not heard either/ },
    // A stall of this process: packets read in its wake may have waited in the socket buffer through it.
    { name: 'a 4 s freeze just ended, a packet read right after it (buffered)', facts: facts({ peers: [heard(2)], lastStall: { lengthMs: 4000, endedAgoMs: 1 } }), ok: false, why: /n2: last heard 2 ms ago, maybe read from the socket buffer after this agent did not run for 4000 ms, deadtime 600 ms/ },
    { name: 'a 4 s freeze just ended, the last packet read before it', facts: facts({ peers: [heard(4005)], lastStall: { lengthMs: 4000, endedAgoMs: 1 } }), ok: false, why: /n2: last heard 4005 ms ago, deadtime/ },
    { name: 'a 4 s freeze ended 500 ms ago, a packet read 10 ms ago (may still be a buffered one)', facts: facts({ peers: [heard(10)], lastStall: { lengthMs: 4000, endedAgoMs: 500 } }), ok: false, why: /maybe read from the socket buffer/ },
    { name: 'a 4 s freeze ended a deadtime ago, a packet read since', facts: facts({ peers: [heard(10)], lastStall: { lengthMs: 4000, endedAgoMs: 10 + DEADTIME } }), ok: true },
    { name: 'a 400 ms stall, a packet read right after it (buffered, at most 400 ms old)', facts: facts({ peers: [heard(5)], lastStall: { lengthMs: 400, endedAgoMs: 3 } }), ok: true },
    { name: 'a 400 ms stall, the last packet read just before it (450 ms ago)', facts: facts({ peers: [heard(450)], lastStall: { lengthMs: 400, endedAgoMs: 3 } }), ok: true },
    { name: 'a 400 ms stall ended 250 ms ago, nothing read since it began (the peer fell silent)', facts: facts({ peers: [heard(252)], lastStall: { lengthMs: 400, endedAgoMs: 250 } }), ok: false, why: /maybe read from the socket buffer/ },
    { name: 'a 550 ms stall (the peers may have suspected this node), a packet read 60 ms ago', facts: facts({ peers: [heard(60)], lastStall: { lengthMs: 550, endedAgoMs: 100 } }), ok: false, why: /did not run for 550 ms/ },
  ];
  for (const row of table) {
    it(`${row.name} → ${row.ok ? 'serve on' : 'stop'}`, () => {
      const verdict = failSafeAllowed(row.facts);
      assert.equal(verdict.ok, row.ok, JSON.stringify(verdict));
      if (!verdict.ok && row.why) assert.match(verdict.why, row.why);
    });
  }

  it('contentAgeMs: a packet read before the stall, in its wake, or a deadtime after it', () => {
    const stall = { lengthMs: 1000, endedAgoMs: 200 };
    assert.equal(contentAgeMs(50, undefined, DEADTIME), 50, 'no stall: its age');
    assert.equal(contentAgeMs(1200, stall, DEADTIME), 1200, 'read before the stall began: its age');
    assert.equal(contentAgeMs(1199, stall, DEADTIME), 2199, 'read in the stall (at its edge): the stall on top');
    assert.equal(contentAgeMs(150, stall, DEADTIME), 1150, 'read after it: may have waited through it');
    assert.equal(contentAgeMs(150, { lengthMs: 1000, endedAgoMs: 150 + DEADTIME }, DEADTIME), 150, 'read a deadtime after it: its age');
  });

  it('stalls of more than half the deadtime are remembered (deadtime ≥ 2 intervals)', () => {
    assert.equal(stallThresholdMs(600), 300);
    assert.equal(stallThresholdMs(500), 250);
  });
});
