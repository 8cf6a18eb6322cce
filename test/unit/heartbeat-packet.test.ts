import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import {
  decodePacket,
  encodePacket,
  HeartbeatPacketError,
  MAX_PACKET_BYTES,
  BASE_PROTOCOL_VERSION,
  PROTOCOL_VERSIONS,
  type HeartbeatPacket,
} from '../../src/heartbeat/packet.js';

const key = Buffer.from('a-test-key-of-32-bytes-0123456789');
const packet: HeartbeatPacket = {
  cluster: 'lab',
  node: 'node1',
  incarnation: 1_760_000_000_000,
  seq: 42,
  sentAt: 1_760_000_012_345,
  to: '10.213.0.12',
  view: { groups: { web: { epoch: 7, state: 'running' }, nfs: { epoch: 2, state: 'starting' } } },
};

/** What decodePacket gives for `p` written in version 1 (it names the version). */
const asV1 = (p: HeartbeatPacket): HeartbeatPacket => ({ ...p, version: 1 });
const NONCE = 'AAAAAAAAAAAAAAAAAAAAAA';
const DIGEST = '0123456789abcdef0123456789abcdef';
const v2: HeartbeatPacket = { ...packet, version: 2, nonce: NONCE, echo: 'abc-_0123456789xyzXYZ_', versions: [1, 2], configDigest: DIGEST };

/** Builds a datagram by hand (header, body, tag), so tests can sign what encodePacket refuses to write. */
function seal(body: string | Buffer, options: { key?: Buffer; header?: Buffer } = {}): Buffer {
  const signed = Buffer.concat([options.header ?? Buffer.from([0x48, 0x41, 0x4f, BASE_PROTOCOL_VERSION]), Buffer.from(body)]);
  return Buffer.concat([signed, createHmac('sha256', options.key ?? key).update(signed).digest()]);
}

void describe('heartbeat packet codec', () => {
  void test('a secret rotation: the advertised secret names round trip, and a packet is believed under any of the keys given, which one said', () => {
    const other = Buffer.from('another-test-key-of-32-bytes-0123');
    const keys = ['0123456789abcdef', 'fedcba9876543210'];
    const data = encodePacket({ ...v2, keys }, other);
    assert.deepEqual(decodePacket(data, [key, other], 'lab'), { ok: true, packet: { ...v2, keys }, keyIndex: 1 });
    assert.deepEqual(decodePacket(data, [key], 'lab'), { ok: false, reason: 'forged' });
    assert.throws(() => encodePacket({ ...v2, keys: ['not-a-name'] }, key), HeartbeatPacketError);
    assert.throws(() => encodePacket({ ...v2, keys: Array.from({ length: 6 }, () => keys[0]!) }, key), HeartbeatPacketError);
  });

  void test('round trip', () => {
    const data = encodePacket(packet, key);
    assert.deepEqual(decodePacket(data, key, 'lab'), { ok: true, packet: asV1(packet), keyIndex: 0 });
  });

  void test('layout: "HAO", version byte, JSON body, 32-byte HMAC-SHA256 of everything before it', () => {
    const data = encodePacket(packet, key);
    assert.equal(data.subarray(0, 3).toString('latin1'), 'HAO');
    assert.equal(data[3], BASE_PROTOCOL_VERSION);
    const body = data.subarray(4, data.length - 32);
    assert.deepEqual(JSON.parse(body.toString('utf8')), packet);
    assert.deepEqual(data.subarray(data.length - 32), createHmac('sha256', key).update(data.subarray(0, data.length - 32)).digest());
  });

  void test('two secrets (a rotation): a packet under the old one is believed only while it is accepted; a forged one never', () => {
    const oldKey = key;
    const newKey = Buffer.from('the-new-heartbeat-secret-0123456789');
    const forger = Buffer.from('not-the-heartbeat-secret-0123456789');
    const underOld = encodePacket(v2, oldKey);
    const underNew = encodePacket(v2, newKey);
    assert.equal(decodePacket(underOld, [newKey, oldKey], 'lab').ok, true, 'old accepted beside the new');
    assert.equal(decodePacket(underNew, [newKey, oldKey], 'lab').ok, true);
    assert.equal(decodePacket(underNew, [oldKey, newKey], 'lab').ok, true, 'new accepted beside the old (the first stage)');
    const dropped = decodePacket(underOld, [newKey], 'lab');
    assert.equal(!dropped.ok && dropped.reason, 'forged', 'the old secret dropped: refused');
    for (const keys of [[newKey], [newKey, oldKey], [oldKey, newKey]]) {
      const forged = decodePacket(encodePacket(v2, forger), keys, 'lab');
      assert.equal(!forged.ok && forged.reason, 'forged');
    }
    assert.equal(decodePacket(underOld, [], 'lab').ok, false, 'no key: nothing believed');
  });

  void test('extra properties of the object are not sent', () => {
    const data = encodePacket({ ...packet, secret: 'do not leak' } as HeartbeatPacket, key);
    assert.ok(!data.toString('utf8').includes('do not leak'));
  });

  void test('a flipped bit anywhere is refused: forged, or bad-version for the version byte', () => {
    for (const data of [encodePacket(packet, key), encodePacket(v2, key)]) {
      for (let i = 0; i < data.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const copy = Buffer.from(data);
          copy[i]! ^= 1 << bit;
          const result = decodePacket(copy, key, 'lab');
          assert.equal(result.ok, false, `v${data[3]} byte ${i} bit ${bit}`);
          // (No single flipped bit turns 1 into 2 or back: a version this release speaks would be forged.)
          assert.equal(!result.ok && result.reason, i === 3 ? 'bad-version' : 'forged', `v${data[3]} byte ${i} bit ${bit}`);
        }
      }
    }
  });


  void test('every truncation is refused (truncated when too short to be a packet, forged otherwise), never thrown', () => {
    const data = encodePacket(packet, key);
    for (let length = 0; length < data.length; length++) {
      const result = decodePacket(data.subarray(0, length), key, 'lab');
      assert.equal(result.ok, false);
      assert.equal(!result.ok && result.reason, length < 4 + 2 + 32 ? 'truncated' : 'forged', `length ${length}`);
    }
  });

  void test('bytes appended to a packet make it forged', () => {
    const data = encodePacket(packet, key);
    const result = decodePacket(Buffer.concat([data, Buffer.from([0])]), key, 'lab');
    assert.equal(!result.ok && result.reason, 'forged');
  });

  void test('oversized: anything above 1400 bytes, checked before anything else', () => {
    assert.equal(MAX_PACKET_BYTES, 1400);
    for (const size of [1401, 2000, 65_000]) {
      const result = decodePacket(Buffer.alloc(size), key, 'lab');
      assert.deepEqual(result, { ok: false, reason: 'oversized', detail: `${size} bytes` });
    }
  });

  void test('wrong key: forged', () => {
    const data = encodePacket(packet, Buffer.from('another-key-another-key-another'));
    assert.equal((decodePacket(data, key, 'lab') as { reason: string }).reason, 'forged');
  });

  void test('another cluster with the same key: wrong-cluster', () => {
    const data = encodePacket({ ...packet, cluster: 'prod' }, key);
    assert.deepEqual(decodePacket(data, key, 'lab'), { ok: false, reason: 'wrong-cluster', detail: "cluster 'prod', this node is in 'lab'" });
  });

  void test('a protocol version this release does not speak: bad-version, before the tag is checked', () => {
    assert.deepEqual(PROTOCOL_VERSIONS, [1, 2]);
    for (const version of [0, 3, 9, 255]) {
      const data = encodePacket(packet, key);
      data[3] = version;
      assert.deepEqual(decodePacket(data, key, 'lab'), { ok: false, reason: 'bad-version', detail: `protocol version ${version}, this node speaks 1, 2` });
    }
  });

  void test('the tag covers the version byte: a packet moved to another version this release speaks is forged', () => {
    const one = encodePacket(packet, key);
    one[3] = 2;
    assert.equal((decodePacket(one, key, 'lab') as { reason: string }).reason, 'forged');
    const two = encodePacket(v2, key);
    two[3] = 1;
    assert.equal((decodePacket(two, key, 'lab') as { reason: string }).reason, 'forged');
  });

  void test('version 2: round trip, with the advertisement and the configuration digest after the fields 0.1.0 knows', () => {
    const data = encodePacket(v2, key);
    assert.equal(data[3], 2);
    assert.deepEqual(decodePacket(data, key, 'lab'), { ok: true, packet: v2, keyIndex: 0 });
    const body = JSON.parse(data.subarray(4, -32).toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['cluster', 'node', 'incarnation', 'seq', 'sentAt', 'to', 'view', 'nonce', 'echo', 'versions', 'configDigest']);
    assert.equal('version' in body, false, 'the version is the header byte, not a body field');
  });

  void test('version 2 requires versions, nonce and configDigest: malformed without, and refused by encode', () => {
    for (const field of ['versions', 'nonce', 'configDigest'] as const) {
      const body = { ...v2, version: undefined, [field]: undefined };
      const result = decodePacket(seal(JSON.stringify(body), { header: Buffer.from([0x48, 0x41, 0x4f, 2]) }), key, 'lab');
      assert.equal(!result.ok && result.reason, 'malformed', field);
      assert.match(!result.ok ? result.detail ?? '' : '', new RegExp(`^version 2: ${field}: `), field);
      assert.throws(() => encodePacket({ ...v2, [field]: undefined }, key), (err) => err instanceof HeartbeatPacketError && err.message.includes(field) && err.message.includes('protocol version 2'));
    }
    for (const bad of ['', 'ABCDEF0123456789abcdef0123456789', '0123456789abcdef', `${DIGEST}0`, 'g123456789abcdef0123456789abcdef']) {
      const result = decodePacket(seal(JSON.stringify({ ...v2, version: undefined, configDigest: bad }), { header: Buffer.from([0x48, 0x41, 0x4f, 2]) }), key, 'lab');
      assert.equal(!result.ok && result.reason, 'malformed', `digest ${JSON.stringify(bad)}`);
    }
  });

  void test('an advertisement must list distinct versions in order and include the packet\'s own version', () => {
    const cases: Array<[number, unknown, string]> = [
      [1, [2, 3], "does not include the packet's own version 1"],
      [2, [1], "does not include the packet's own version 2"],
      [1, [], 'versions'],
      [1, [2, 1], 'ascending'],
      [1, [1, 1], 'ascending'],
      [1, [1, 256], 'versions'],
      [1, [0, 1], 'versions'],
      [1, [1.5], 'versions'],
      [1, Array.from({ length: 17 }, (_, i) => i + 1), 'versions'],
    ];
    for (const [version, versions, says] of cases) {
      const body = { ...(version === 2 ? v2 : packet), version: undefined, versions };
      const result = decodePacket(seal(JSON.stringify(body), { header: Buffer.from([0x48, 0x41, 0x4f, version]) }), key, 'lab');
      assert.equal(!result.ok && result.reason, 'malformed', JSON.stringify(versions));
      assert.ok(!result.ok && result.detail?.includes(says), `${JSON.stringify(versions)}: ${!result.ok ? result.detail : ''}`);
      assert.throws(() => encodePacket({ ...body, version } as HeartbeatPacket, key), HeartbeatPacketError);
    }
    // Versions this release does not speak may be advertised (a newer peer's list).
    const newer = { ...v2, versions: [2, 3, 7] };
    assert.deepEqual(decodePacket(encodePacket(newer, key), key, 'lab'), { ok: true, packet: newer, keyIndex: 0 });
  });

  void test('version 1 from this release: the advertisement is carried, a digest never (version 2 only)', () => {
    const advertised = { ...packet, nonce: NONCE, versions: [1, 2] };
    assert.deepEqual(decodePacket(encodePacket(advertised, key), key, 'lab'), { ok: true, packet: asV1(advertised), keyIndex: 0 });
    const withDigest = encodePacket({ ...advertised, configDigest: DIGEST }, key);
    assert.equal(withDigest.includes(DIGEST), false, 'encode leaves the digest out of a version-1 packet');
    // Nor is one believed from a version-1 packet that carries it (hand-sealed).
    const sealed = decodePacket(seal(JSON.stringify({ ...advertised, configDigest: DIGEST })), key, 'lab');
    assert.deepEqual(sealed, { ok: true, packet: asV1(advertised), keyIndex: 0 });
  });

  void test('encode refuses a version this release does not speak', () => {
    assert.throws(() => encodePacket({ ...packet, version: 3 as 2 }, key), /version 3 is not one of 1, 2/);
  });

  void test('correctly signed but not a packet: malformed', () => {
    const good = JSON.parse(JSON.stringify(packet)) as Record<string, unknown>;
    const bodies: Array<[string, string]> = [
      ['not json', 'not json {'],
      ['array', '[]'],
      ['seq 0', JSON.stringify({ ...good, seq: 0 })],
      ['fractional seq', JSON.stringify({ ...good, seq: 1.5 })],
      ['missing view', JSON.stringify({ ...good, view: undefined })],
      ['bad group state', JSON.stringify({ ...good, view: { groups: { web: { epoch: 1, state: 'bogus' } } } })],
      ['negative epoch', JSON.stringify({ ...good, view: { groups: { web: { epoch: -1, state: 'running' } } } })],
      ['node name with spaces', JSON.stringify({ ...good, node: 'node 1' })],
    ];
    for (const [what, body] of bodies) {
      const result = decodePacket(seal(body), key, 'lab');
      assert.equal(!result.ok && result.reason, 'malformed', what);
    }
    const badMagic = decodePacket(seal(JSON.stringify(good), { header: Buffer.from([0x58, 0x58, 0x58, BASE_PROTOCOL_VERSION]) }), key, 'lab');
    assert.deepEqual(badMagic, { ok: false, reason: 'malformed', detail: 'bad magic' });
  });

  void test('a group named __proto__ is dropped, never set as a prototype', () => {
    const body = '{"cluster":"lab","node":"node1","incarnation":1,"seq":1,"sentAt":1,"to":"x","view":{"groups":{"__proto__":{"epoch":1,"state":"running"},"web":{"epoch":2,"state":"running"}}}}';
    const result = decodePacket(seal(body), key, 'lab');
    assert.equal(result.ok, true);
    const groups = result.ok ? result.packet.view.groups : {};
    assert.equal(Object.getPrototypeOf(groups), Object.prototype);
    assert.deepEqual(Object.keys(groups), ['web']);
    assert.equal(({} as Record<string, unknown>).epoch, undefined);
  });

  void test('a hand-sealed packet with unknown extra fields is accepted (forward compatible), the fields dropped', () => {
    const result = decodePacket(seal(JSON.stringify({ ...packet, future: { x: 1 } })), key, 'lab');
    assert.deepEqual(result, { ok: true, packet: asV1(packet), keyIndex: 0 });
  });

  void test('encode refuses a view that does not fit in 1400 bytes, and the largest that fits decodes', () => {
    const groups: HeartbeatPacket['view']['groups'] = {};
    let fits = 0;
    for (let i = 0; ; i++) {
      groups[`group-${String(i).padStart(3, '0')}`] = { epoch: 123_456, state: 'running' };
      try {
        const data = encodePacket({ ...packet, view: { groups } }, key);
        assert.ok(data.length <= MAX_PACKET_BYTES);
        assert.equal(decodePacket(data, key, 'lab').ok, true);
        fits = i + 1;
      } catch (err) {
        assert.ok(err instanceof HeartbeatPacketError);
        assert.match(err.message, /would be \d+ bytes, more than 1400/);
        break;
      }
    }
    assert.ok(fits > 10, `only ${fits} groups fit`);
  });

  void test('the challenge fields: nonce and echo round trip; packets without them (older releases) still decode', () => {
    const challenged: HeartbeatPacket = { ...packet, nonce: 'AAAAAAAAAAAAAAAAAAAAAA', echo: 'abc-_0123456789xyzXYZ_' };
    assert.deepEqual(decodePacket(encodePacket(challenged, key), key, 'lab'), { ok: true, packet: asV1(challenged), keyIndex: 0 });
    const body = JSON.parse(encodePacket(challenged, key).subarray(4, -32).toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['cluster', 'node', 'incarnation', 'seq', 'sentAt', 'to', 'view', 'nonce', 'echo'], 'after the fields older releases know');
    // What the release before the challenge sends: no nonce, no echo.
    const old = decodePacket(seal(JSON.stringify(packet)), key, 'lab');
    assert.deepEqual(old, { ok: true, packet: asV1(packet), keyIndex: 0 });
    assert.equal(old.ok && 'nonce' in old.packet, false);
  });

  void test('a nonce or echo that is not 22 base64url characters is malformed, and refused by encode', () => {
    for (const bad of ['', 'short', 'A'.repeat(21), 'A'.repeat(23), `${'A'.repeat(21)}=`, `${'A'.repeat(21)}+`, 42]) {
      for (const field of ['nonce', 'echo']) {
        const result = decodePacket(seal(JSON.stringify({ ...packet, [field]: bad })), key, 'lab');
        assert.equal(!result.ok && result.reason, 'malformed', `${field} ${JSON.stringify(bad)}`);
        assert.throws(() => encodePacket({ ...packet, [field]: bad } as HeartbeatPacket, key), HeartbeatPacketError);
      }
    }
  });

  void test('encode refuses invalid fields', () => {
    assert.throws(() => encodePacket({ ...packet, seq: 0 }, key), HeartbeatPacketError);
    assert.throws(() => encodePacket({ ...packet, node: 'Not A Name' }, key), /node/);
  });

  void test('fuzz: 2000 random buffers never throw and are never accepted', () => {
    const valid = encodePacket(packet, key);
    for (let i = 0; i < 2000; i++) {
      const length = Math.floor(Math.random() * 1600);
      let data: Buffer;
      if (i % 3 === 0) data = randomBytes(length);
      else if (i % 3 === 1) data = Buffer.concat([Buffer.from([0x48, 0x41, 0x4f, BASE_PROTOCOL_VERSION]), randomBytes(length)]);
      else {
        // A valid packet with a few random bytes replaced.
        data = Buffer.from(valid);
        const changes = 1 + Math.floor(Math.random() * 4);
        for (let c = 0; c < changes; c++) data[Math.floor(Math.random() * data.length)] = Math.floor(Math.random() * 256);
        if (data.equals(valid)) continue;
      }
      const result = decodePacket(data, key, 'lab');
      assert.equal(result.ok, false);
    }
  });
});
