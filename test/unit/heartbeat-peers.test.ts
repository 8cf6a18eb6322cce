import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PeerTracker, type PeerEdge } from '../../src/heartbeat/peers.js';
import { incomingLink, incomingLinks, senderIndex } from '../../src/heartbeat/links.js';
import { LogRateLimiter } from '../../src/heartbeat/rate-limit.js';
import type { HeartbeatView } from '../../src/heartbeat/packet.js';

const DEADTIME = 100;
const empty: HeartbeatView = { groups: {} };
const held = (epoch: number): HeartbeatView => ({ groups: { web: { epoch, state: 'running' } } });

function tracker(start = 0) {
  return new PeerTracker({ deadtimeMs: DEADTIME, now: start, peers: [{ node: 'b', links: ['lan', 'cable'] }, { node: 'c', links: ['lan'] }] });
}
const short = (e: PeerEdge) => `${e.node}:${e.to}@${e.at}`;

void describe('PeerTracker', () => {
  void test('unknown until heard; the first packet is an alive edge, later ones are not', () => {
    const t = tracker();
    assert.equal(t.peerState('b'), 'unknown');
    assert.deepEqual(t.tick(50), []);
    assert.deepEqual(t.heard('b', 'lan', 60, empty, { incarnation: 1000, seq: 1 }), { node: 'b', to: 'alive', at: 60, link: 'lan', incarnation: 1000 });
    assert.equal(t.heard('b', 'lan', 70, empty, { incarnation: 1000, seq: 2 }), undefined);
    assert.equal(t.heard('b', 'cable', 71, empty, { incarnation: 1000, seq: 3 }), undefined);
    assert.equal(t.peerState('b'), 'alive');
  });

  void test('a peer never heard becomes suspect exactly at start + deadtime', () => {
    const t = tracker(1000);
    t.heard('b', 'lan', 1010, empty);
    assert.deepEqual(t.tick(1000 + DEADTIME - 1), []);
    assert.deepEqual(t.tick(1000 + DEADTIME), [{ node: 'c', to: 'suspect', at: 1100, lastHeardAt: undefined, silentLinks: ['lan'] }]);
    assert.equal(t.peerState('c'), 'suspect');
  });

  void test('suspect only when every link has been silent for the deadtime', () => {
    const t = tracker();
    t.heard('b', 'lan', 0, empty);
    t.heard('b', 'cable', 0, empty);
    t.heard('c', 'lan', 0, empty);
    // The lan link to b dies at 0; the cable keeps talking every 20 ms.
    const edges: string[] = [];
    for (let now = 20; now <= 1000; now += 20) {
      if (now <= 500) t.heard('b', 'cable', now, empty);
      if (now <= 500) t.heard('c', 'lan', now, empty);
      edges.push(...t.tick(now).map(short));
      if (now === 400) {
        assert.deepEqual(t.aliveLinks('b', now), ['cable'], 'the lan link is seen as down');
        assert.equal(t.peerState('b'), 'alive', 'one link alive keeps the peer alive');
      }
    }
    // Both stopped at 500: suspect at 600 (b's last packet, on the cable, was at 500).
    assert.deepEqual(edges, ['b:suspect@600', 'c:suspect@600']);
  });

  void test('edges only on change: one suspect edge however long the silence, one alive edge when it comes back', () => {
    const t = tracker();
    t.heard('b', 'lan', 0, empty);
    const edges: PeerEdge[] = [];
    for (let now = 10; now <= 1000; now += 10) edges.push(...t.tick(now).filter((e) => e.node === 'b'));
    assert.deepEqual(edges, [{ node: 'b', to: 'suspect', at: 100, lastHeardAt: 0, silentLinks: ['lan', 'cable'] }]);
    assert.deepEqual(t.heard('b', 'cable', 1005, held(2), { incarnation: 5000, seq: 1 }), { node: 'b', to: 'alive', at: 1005, link: 'cable', incarnation: 5000 });
    assert.equal(t.heard('b', 'lan', 1006, held(2), { incarnation: 5000, seq: 2 }), undefined);
    assert.deepEqual(t.tick(1010).filter((e) => e.node === 'b'), []);
  });

  void test('keeps the view of the latest packet in the sender\'s order, also while suspect', () => {
    const t = tracker();
    assert.equal(t.peerView('b'), undefined);
    t.heard('b', 'lan', 0, held(1), { incarnation: 10, seq: 1 });
    t.heard('b', 'lan', 1, held(2), { incarnation: 10, seq: 3 });
    assert.deepEqual(t.peerView('b'), held(2));
    t.heard('b', 'cable', 2, held(1), { incarnation: 10, seq: 2 });
    assert.deepEqual(t.peerView('b'), held(2), 'a packet overtaken on the other link does not bring the old view back');
    assert.deepEqual(t.aliveLinks('b', 3), ['lan', 'cable'], 'but it is a sign of life on its link');
    t.heard('b', 'lan', 2, held(9), { incarnation: 9, seq: 100 });
    assert.deepEqual(t.peerView('b'), held(2), 'an older incarnation does not overwrite');
    t.heard('b', 'lan', 2, { groups: {} }, { incarnation: 11, seq: 1 });
    assert.deepEqual(t.peerView('b'), { groups: {} }, 'a restart does');
    t.heard('b', 'lan', 3, held(2), { incarnation: 11, seq: 2 });
    t.tick(500);
    assert.equal(t.peerState('b'), 'suspect');
    assert.deepEqual(t.peerView('b'), held(2));
  });

  void test('status lists every peer with its links', () => {
    const t = tracker();
    t.heard('b', 'cable', 30, held(1), { incarnation: 7, seq: 1 });
    assert.deepEqual(t.status(50), [
      {
        node: 'b', state: 'alive', since: 30, lastHeardAt: 30, incarnation: 7, view: held(1),
        links: [{ link: 'lan', alive: false }, { link: 'cable', alive: true, lastHeardAt: 30 }],
      },
      { node: 'c', state: 'unknown', since: 0, links: [{ link: 'lan', alive: false }] },
    ]);
  });

  void test('a link not given at the start is added when heard; an unknown node is a RangeError', () => {
    const t = tracker();
    t.heard('c', 'wifi', 5, empty);
    assert.deepEqual(t.aliveLinks('c', 10), ['wifi']);
    assert.throws(() => t.heard('zz', 'lan', 5, empty), RangeError);
  });

  void test('a late, out-of-order time never moves last-heard backwards', () => {
    const t = tracker();
    t.heard('b', 'lan', 90, empty);
    t.heard('b', 'lan', 50, empty);
    assert.deepEqual(t.tick(150).filter((e) => e.node === 'b'), []);
    assert.equal(t.tick(190).filter((e) => e.node === 'b').length, 1);
  });
});

void describe('heartbeat links', () => {
  void test('the k-th address sends to the k-th peer address, else the first', () => {
    assert.equal(senderIndex(['10.0.0.1', '192.168.9.1'], 0, '10.0.0.2'), 0);
    assert.equal(senderIndex(['10.0.0.1', '192.168.9.1'], 1, '192.168.9.2'), 1);
    assert.equal(senderIndex(['10.0.0.1'], 1, '192.168.9.2'), 0);
    assert.equal(senderIndex(['10.0.0.1', 'fd00::1'], 0, 'fd00::2'), 1, 'a socket of the same family');
  });

  void test('incoming links are named <peer address>-><own address>, one per own address', () => {
    assert.deepEqual(incomingLinks(['10.0.0.1', '192.168.9.1'], ['10.0.0.2', '192.168.9.2']), ['10.0.0.2->10.0.0.1', '192.168.9.2->192.168.9.1']);
    assert.deepEqual(incomingLinks(['10.0.0.1', '192.168.9.1'], ['10.0.0.2']), ['10.0.0.2->10.0.0.1', '10.0.0.2->192.168.9.1']);
    assert.deepEqual(incomingLinks(['10.0.0.1'], ['10.0.0.2', '192.168.9.2']), ['10.0.0.2->10.0.0.1']);
    assert.equal(incomingLink(['10.0.0.1'], ['10.0.0.2'], '10.0.0.9'), undefined);
  });
});

void describe('LogRateLimiter', () => {
  void test('one line per key per period, saying how many were dropped since the last', () => {
    const limiter = new LogRateLimiter(10_000);
    assert.deepEqual(limiter.allow('forged', 0), { log: true, suppressed: 0 });
    assert.deepEqual(limiter.allow('forged', 1), { log: false });
    assert.deepEqual(limiter.allow('replayed', 2), { log: true, suppressed: 0 }, 'keys are independent');
    assert.deepEqual(limiter.allow('forged', 9_999), { log: false });
    assert.deepEqual(limiter.allow('forged', 10_000), { log: true, suppressed: 2 });
    assert.deepEqual(limiter.allow('forged', 30_000), { log: true, suppressed: 0 });
  });
});
