/**
 * The safety rule of a secret rotation step (src/auth/secret-rotation.ts), as a table: which
 * changes of this node's secrets a live peer allows, and the names the heartbeats advertise.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkSecretChange, secretNames, secretNamesDiffer, type PeerSecretView, type SecretNames } from '../../src/auth/secret-rotation.js';
import { secretKeyId } from '../../src/heartbeat/secret.js';

const OLD = 'aaaaaaaaaaaaaaaa';
const NEW = 'bbbbbbbbbbbbbbbb';
const names = (signs: string, ...accepts: string[]): SecretNames => ({ signs, accepts });
const peer = (signsWith: string, ...acceptsKeys: string[]): PeerSecretView => ({ node: 'n2', alive: true, signsWith, acceptsKeys: [signsWith, ...acceptsKeys] });

void describe('checkSecretChange: a rotation step against a live peer', () => {
  const table: Array<[string, SecretNames, SecretNames, PeerSecretView, string[]]> = [
    // [what, before, after, the peer, the refused paths]
    ['step 1, accept the new secret: always safe', names(OLD), names(OLD, NEW), peer(OLD), []],
    ['step 2, sign with the new one, the peer accepts it', names(OLD, NEW), names(NEW, OLD), peer(OLD, NEW), []],
    ['step 2 before the peer took step 1: refused', names(OLD, NEW), names(NEW, OLD), peer(OLD), ['heartbeat.secretFile']],
    ['step 2 with the peer of an older release (no advertisement): refused', names(OLD, NEW), names(NEW, OLD), { node: 'n2', alive: true, signsWith: OLD }, ['heartbeat.secretFile']],
    ['step 3, drop the old one, the peer signs with the new one', names(NEW, OLD), names(NEW), peer(NEW, OLD), []],
    ['step 3 while the peer still signs with the old one: refused', names(NEW, OLD), names(NEW), peer(OLD, NEW), ['heartbeat.acceptSecretFiles']],
    ['steps 1 to 3 at once (the file overwritten): refused twice', names(OLD), names(NEW), peer(OLD), ['heartbeat.acceptSecretFiles', 'heartbeat.secretFile']],
    ['steps 1 to 3 at once with a suspect peer: not checked', names(OLD), names(NEW), { ...peer(OLD), alive: false }, []],
    ['going back in step 2 (sign with the old one again): the peer still accepts it', names(NEW, OLD), names(OLD, NEW), peer(NEW, OLD), []],
  ];
  for (const [what, before, after, p, refused] of table) {
    void test(what, () => {
      const got = checkSecretChange(before, after, [p]);
      assert.deepEqual(got.map((r) => r.path).sort(), refused.sort());
      for (const r of got) assert.match(r.why, /n2/, 'names the peer');
    });
  }

  void test('the workflow worker: no longer accepting the secret its recent lease answers are signed with is refused; an old answer is not checked', () => {
    const worker = (signsWith: string, agoMs: number) => ({ signsWith, agoMs });
    const [refused] = checkSecretChange(names(NEW, OLD), names(NEW), [peer(NEW, OLD)], worker(OLD, 1500));
    assert.equal(refused?.path, 'heartbeat.acceptSecretFiles');
    assert.match(refused!.why, /the workflow worker still signs with secret a{16} \(its lease answer 2 s ago\).*SIGHUP/);
    assert.deepEqual(checkSecretChange(names(NEW, OLD), names(NEW), [peer(NEW, OLD)], worker(NEW, 1500)), []);
    assert.deepEqual(checkSecretChange(names(NEW, OLD), names(NEW), [peer(NEW, OLD)], worker(OLD, 120_000)), [], 'Temporal away: a two-minute-old answer says nothing');
    assert.deepEqual(checkSecretChange(names(OLD), names(OLD, NEW), [peer(OLD)], worker(OLD, 1500)), [], 'accepting more is always safe');
  });

  void test('a refusal says what to do, on which node', () => {
    const [early] = checkSecretChange(names(OLD, NEW), names(NEW, OLD), [peer(OLD)]);
    assert.match(early!.why, /does not accept secret b{16} yet.*acceptSecretFiles on n2 and reload it first/);
    const [late] = checkSecretChange(names(NEW, OLD), names(NEW), [peer(OLD, NEW)]);
    assert.match(late!.why, /n2 still signs with secret a{16}.*see it dead/);
  });
});

void describe('secret names', () => {
  const a = Buffer.from('0123456789abcdef0123456789abcdef');
  const b = Buffer.from('fedcba9876543210fedcba9876543210');
  void test('16 hex digits, the same for the same secret, different for another, not the secret', () => {
    assert.match(secretKeyId(a), /^[0-9a-f]{16}$/);
    assert.equal(secretKeyId(a), secretKeyId(Buffer.from(a)));
    assert.notEqual(secretKeyId(a), secretKeyId(b));
    assert.ok(!a.toString('hex').includes(secretKeyId(a)));
  });
  void test('secretNames and secretNamesDiffer', () => {
    const n = secretNames({ signing: a, accepted: [b] });
    assert.deepEqual(n, { signs: secretKeyId(a), accepts: [secretKeyId(b)] });
    assert.equal(secretNamesDiffer(n, { signs: n.signs, accepts: [...n.accepts] }), false);
    assert.equal(secretNamesDiffer(n, { signs: n.signs, accepts: [] }), true);
    assert.equal(secretNamesDiffer(n, { signs: secretKeyId(b), accepts: [secretKeyId(a)] }), true);
  });
});
