import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { planVersion, VersionNegotiator, type VersionPlan } from '../../src/heartbeat/negotiation.js';
import { PROTOCOL_VERSIONS } from '../../src/heartbeat/packet.js';

void describe('planVersion: the version written to a peer', () => {
  const table: Array<{ own: number[]; advertised: number[] | undefined; expect: VersionPlan | { ok: false; fallback: number; says: RegExp } }> = [
    // 0.1.0, or a peer not heard yet: version 1, which every release reads.
    { own: [1, 2], advertised: undefined, expect: { ok: true, version: 1, basis: 'no-advertisement' } },
    { own: [1, 2], advertised: [1], expect: { ok: true, version: 1, basis: 'highest-common' } },
    { own: [1, 2], advertised: [1, 2], expect: { ok: true, version: 2, basis: 'highest-common' } },
    // A newer peer: the highest both speak.
    { own: [1, 2], advertised: [2, 3], expect: { ok: true, version: 2, basis: 'highest-common' } },
    { own: [1, 2], advertised: [1, 2, 3, 4], expect: { ok: true, version: 2, basis: 'highest-common' } },
    // A node of a later release speaking this one's versions and more.
    { own: [2, 3], advertised: [1, 2], expect: { ok: true, version: 2, basis: 'highest-common' } },
    { own: [1], advertised: [1, 2], expect: { ok: true, version: 1, basis: 'highest-common' } },
    // Nothing in common: a clear reason naming both lists and which side to upgrade.
    { own: [1, 2], advertised: [3, 4], expect: { ok: false, fallback: 1, says: /^no protocol version in common: this node speaks 1, 2, node2 speaks 3, 4: upgrade this node/ } },
    { own: [3, 4], advertised: [1, 2], expect: { ok: false, fallback: 3, says: /^no protocol version in common: this node speaks 3, 4, node2 speaks 1, 2: upgrade node2/ } },
    // A release that no longer speaks 1 cannot talk to one before negotiation.
    { own: [2, 3], advertised: undefined, expect: { ok: false, fallback: 2, says: /^node2 advertises no protocol versions \(a release before negotiation, which speaks only version 1\), and this node speaks 2, 3: upgrade node2$/ } },
  ];
  for (const row of table) {
    void test(`this node ${row.own.join(',')}, peer ${row.advertised === undefined ? 'advertises nothing' : `[${row.advertised.join(',')}]`}: ${row.expect.ok ? `version ${row.expect.version}` : 'nothing in common'}`, () => {
      const plan = planVersion(row.own, row.advertised, 'node2');
      if ('says' in row.expect) {
        assert.equal(plan.ok, false);
        assert.equal(!plan.ok && plan.fallback, row.expect.fallback);
        assert.match(!plan.ok ? plan.reason : '', row.expect.says);
      } else {
        assert.deepEqual(plan, row.expect);
      }
    });
  }
});

void describe('VersionNegotiator: per peer, from believed packets of its current run', () => {
  const own = PROTOCOL_VERSIONS;

  void test('a peer not heard yet is written version 1; its advertisement moves it to 2, once', () => {
    const n = new VersionNegotiator(own);
    assert.equal(n.versionFor('b'), 1);
    assert.deepEqual(n.status('b'), { version: 1 });
    assert.equal(n.sawRun('b', 100), undefined, 'still 1: nothing proven');
    const change = n.proven('b', 100, 1, [1, 2]);
    assert.deepEqual(change && { from: change.from, to: change.to, ok: change.plan.ok }, { from: 1, to: 2, ok: true });
    assert.equal(n.versionFor('b'), 2);
    assert.deepEqual(n.status('b'), { version: 2, versions: [1, 2], heardVersion: 1 });
    assert.equal(n.proven('b', 100, 2, [1, 2]), undefined, 'no change, no log line');
  });

  void test('0.1.0 (no advertisement) stays at version 1, with no change to log', () => {
    const n = new VersionNegotiator(own);
    assert.equal(n.sawRun('old', 5), undefined);
    assert.equal(n.proven('old', 5, 1, undefined), undefined);
    assert.equal(n.versionFor('old'), 1);
    assert.deepEqual(n.status('old'), { version: 1, heardVersion: 1 });
  });

  void test('a new run of the peer is written version 1 until it proves what it speaks (it may have been downgraded)', () => {
    const n = new VersionNegotiator(own);
    n.sawRun('b', 100);
    n.proven('b', 100, 2, [1, 2]);
    assert.equal(n.versionFor('b'), 2);
    const back = n.sawRun('b', 200);
    assert.deepEqual(back && { from: back.from, to: back.to }, { from: 2, to: 1 });
    assert.deepEqual(n.status('b'), { version: 1 }, 'what the old run said is forgotten');
    // The new run is 0.1.0: it stays at 1.
    assert.equal(n.proven('b', 200, 1, undefined), undefined);
    assert.equal(n.versionFor('b'), 1);
    // Upgraded again.
    n.sawRun('b', 300);
    n.proven('b', 300, 1, [1, 2]);
    assert.equal(n.versionFor('b'), 2);
  });

  void test('a peer that falls silent is written version 1 until heard again (it may be stopped to be downgraded)', () => {
    const n = new VersionNegotiator(own);
    assert.equal(n.silent('b'), undefined, 'never heard: nothing to forget');
    n.sawRun('b', 100);
    n.proven('b', 100, 2, [1, 2]);
    const change = n.silent('b');
    assert.deepEqual(change && { from: change.from, to: change.to }, { from: 2, to: 1 });
    assert.equal(n.silent('b'), undefined);
    // Heard again, the same run (a partition healed): back to 2 at its first believed packet.
    assert.equal(n.proven('b', 100, 1, [1, 2])?.to, 2);
  });

  void test('an older run (a recording) changes nothing', () => {
    const n = new VersionNegotiator(own);
    n.sawRun('b', 200);
    n.proven('b', 200, 2, [1, 2]);
    assert.equal(n.sawRun('b', 100), undefined);
    assert.equal(n.proven('b', 100, 1, undefined), undefined);
    assert.equal(n.versionFor('b'), 2);
  });

  void test('nothing in common: the lowest own version is written, and status says why', () => {
    const n = new VersionNegotiator(own);
    n.sawRun('future', 1);
    const change = n.proven('future', 1, 1, [1, 2, 3]);
    assert.equal(change?.to, 2, 'a newer peer speaking ours too: the highest in common');
    n.sawRun('far', 1);
    n.proven('far', 1, 2, [2]);
    assert.equal(n.versionFor('far'), 2);
    // (A packet advertising only versions we do not speak cannot be decoded; the planner covers it anyway.)
    n.sawRun('alien', 1);
    n.proven('alien', 1, 2, [3]);
    assert.equal(n.versionFor('alien'), 1);
    assert.match(n.status('alien').problem ?? '', /no protocol version in common: this node speaks 1, 2, alien speaks 3/);
  });

  void test('peers are independent', () => {
    const n = new VersionNegotiator(own);
    n.sawRun('b', 1);
    n.proven('b', 1, 1, [1, 2]);
    n.sawRun('c', 1);
    n.proven('c', 1, 1, undefined);
    assert.deepEqual([n.versionFor('b'), n.versionFor('c'), n.versionFor('d')], [2, 1, 1]);
  });

  void test('a node must speak something', () => {
    assert.throws(() => new VersionNegotiator([]), RangeError);
  });
});
