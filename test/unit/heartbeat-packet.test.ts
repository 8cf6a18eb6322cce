import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import {
  decodePacket,
  encodePacket,
  HeartbeatPacketError,
  MAX_PACKET_BYTES,
  PROTOCOL_VERSION,
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

/** Builds a datagram by hand (header, body, tag), so tests can sign what encodePacket refuses to write. */
function seal(body: string | Buffer, options: { key?: Buffer; header?: Buffer } = {}): Buffer {
  const signed = Buffer.concat([options.header ?? Buffer.from([0x48, 0x41, 0x4f, PROTOCOL_VERSION]), Buffer.from(body)]);
  return Buffer.concat([signed, createHmac('sha256', options.key ?? key).update(signed).digest()]);
}

void describe('heartbeat packet codec', () => {
  void test('round trip', () => {
    const data = encodePacket(packet, key);
    assert.deepEqual(decodePacket(data, key, 'lab'), { ok: true, packet });
  });

  void test('layout: "HAO", version byte, JSON body, 32-byte HMAC-SHA256 of everything before it', () => {
    const data = encodePacket(packet, key);
    assert.equal(data.subarray(0, 3).toString('latin1'), 'HAO');
    assert.equal(data[3], PROTOCOL_VERSION);
    const body = data.subarray(4, data.length - 32);
    assert.deepEqual(JSON.parse(body.toString('utf8')), packet);
    assert.deepEqual(data.subarray(data.length - 32), createHmac('sha256', key).update(data.subarray(0, data.length - 32)).digest());
  });

  void test('extra properties of the object are not sent', () => {
    const data = encodePacket({ ...packet, secret: 'do not leak' } as HeartbeatPacket, key);
    assert.ok(!data.toString('utf8').includes('do not leak'));
  });

  void test('a flipped bit anywhere is refused: forged, or bad-version for the version byte', () => {
    const data = encodePacket(packet, key);
    for (let i = 0; i < data.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const copy = Buffer.from(data);
        copy[i]! ^= 1 << bit;
        const result = decodePacket(copy, key, 'lab');
        assert.equal(result.ok, false, `byte ${i} bit ${bit}`);
        assert.equal(!result.ok && result.reason, i === 3 ? 'bad-version' : 'forged', `byte ${i} bit ${bit}`);
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

  void test('another protocol version: bad-version, before the tag is checked', () => {
    const data = encodePacket(packet, key);
    data[3] = 2;
    assert.deepEqual(decodePacket(data, key, 'lab'), { ok: false, reason: 'bad-version', detail: `protocol version 2, this node speaks ${PROTOCOL_VERSION}` });
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
    const badMagic = decodePacket(seal(JSON.stringify(good), { header: Buffer.from([0x58, 0x58, 0x58, PROTOCOL_VERSION]) }), key, 'lab');
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
    assert.deepEqual(result, { ok: true, packet });
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
    assert.deepEqual(decodePacket(encodePacket(challenged, key), key, 'lab'), { ok: true, packet: challenged });
    const body = JSON.parse(encodePacket(challenged, key).subarray(4, -32).toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body), ['cluster', 'node', 'incarnation', 'seq', 'sentAt', 'to', 'view', 'nonce', 'echo'], 'after the fields older releases know');
    // What the release before the challenge sends: no nonce, no echo.
    const old = decodePacket(seal(JSON.stringify(packet)), key, 'lab');
    assert.deepEqual(old, { ok: true, packet });
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
      else if (i % 3 === 1) data = Buffer.concat([Buffer.from([0x48, 0x41, 0x4f, PROTOCOL_VERSION]), randomBytes(length)]);
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
