import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { judgeFreshness, newNonce, type Freshness, type FreshnessInput } from '../../src/heartbeat/challenge.js';
import { NONCE_PATTERN } from '../../src/heartbeat/packet.js';
import { heartbeatStateFile, HeartbeatStateError, HeartbeatStateStore, nextIncarnation, parseHeartbeatState } from '../../src/heartbeat/state.js';

const OURS = 'O'.repeat(22);
const OLD = 'P'.repeat(22);
const THEIRS = 'T'.repeat(22);

void describe('judgeFreshness', () => {
  const cases: Array<{ what: string; input: Omit<FreshnessInput, 'ownNonce'>; expected: Freshness }> = [
    { what: 'echoes our nonce: fresh', input: { nonce: THEIRS, echo: OURS, answeredBefore: false }, expected: { fresh: true, legacy: false } },
    { what: 'echoes our nonce, answered before: fresh', input: { nonce: THEIRS, echo: OURS, answeredBefore: true }, expected: { fresh: true, legacy: false } },
    { what: 'echoes an earlier run of ours (a recording, or it has not heard this run)', input: { nonce: THEIRS, echo: OLD, answeredBefore: true }, expected: { fresh: false, why: 'stale-echo' } },
    { what: 'echoes an earlier run, never answered before: still not fresh', input: { nonce: THEIRS, echo: OLD, answeredBefore: false }, expected: { fresh: false, why: 'stale-echo' } },
    { what: 'no echo (it has not heard us)', input: { nonce: THEIRS, echo: undefined, answeredBefore: false }, expected: { fresh: false, why: 'no-echo' } },
    { what: 'no echo, answered before', input: { nonce: THEIRS, echo: undefined, answeredBefore: true }, expected: { fresh: false, why: 'no-echo' } },
    { what: 'an older release (no nonce), never answered: believed as before', input: { nonce: undefined, echo: undefined, answeredBefore: false }, expected: { fresh: true, legacy: true } },
    { what: 'no nonce from a node that answered before: a recording of its older release, or a downgrade', input: { nonce: undefined, echo: undefined, answeredBefore: true }, expected: { fresh: false, why: 'no-challenge' } },
    { what: 'no nonce but our echo (not a packet any release writes): judged by the missing nonce', input: { nonce: undefined, echo: OURS, answeredBefore: true }, expected: { fresh: false, why: 'no-challenge' } },
  ];
  for (const c of cases) {
    void test(c.what, () => {
      assert.deepEqual(judgeFreshness({ ownNonce: OURS, ...c.input }), c.expected);
    });
  }

  void test('nonces are random, 16 bytes in base64url, and fit the packet schema', () => {
    const seen = new Set(Array.from({ length: 1000 }, () => newNonce()));
    assert.equal(seen.size, 1000);
    for (const n of seen) assert.match(n, NONCE_PATTERN);
  });
});

void describe('nextIncarnation', () => {
  const cases: Array<{ what: string; last: number | undefined; now: number; expected: number }> = [
    { what: 'first start: the clock (as earlier releases chose it)', last: undefined, now: 1_796_564_425_325, expected: 1_796_564_425_325 },
    { what: 'then the clock, which has moved on (what older releases sent, so they stay in order)', last: 1_796_564_425_325, now: 1_796_564_999_999, expected: 1_796_564_999_999 },
    { what: 'one more when the clock has not moved on (a restart within the same ms)', last: 1_796_564_425_325, now: 1_796_564_425_325, expected: 1_796_564_425_326 },
    { what: 'a clock set back does not make it go back', last: 1_796_564_425_325, now: 1_700_000_000_000, expected: 1_796_564_425_326 },
    { what: 'a clock at 0 (no RTC)', last: 41, now: 0, expected: 42 },
    { what: 'a fractional clock is rounded down', last: undefined, now: 1000.7, expected: 1000 },
  ];
  for (const c of cases) {
    void test(`${c.what}: ${c.last} @ ${c.now} → ${c.expected}`, () => {
      assert.equal(nextIncarnation(c.last, c.now), c.expected);
    });
  }
  void test('refuses to run out of safe integers', () => {
    assert.throws(() => nextIncarnation(Number.MAX_SAFE_INTEGER, 0), RangeError);
  });
});

void describe('parseHeartbeatState', () => {
  const cases: Array<{ text: string; expected: ReturnType<typeof parseHeartbeatState> }> = [
    { text: '{"incarnation": 7}', expected: { ok: true, state: { incarnation: 7, answeredBy: [] } } },
    { text: '{"incarnation": 7, "answeredBy": ["n3", "n2", "n3"], "later": true}', expected: { ok: true, state: { incarnation: 7, answeredBy: ['n2', 'n3'] } } },
    { text: '', expected: { ok: false, why: 'not JSON' } },
    { text: '{"incarnation": 7', expected: { ok: false, why: 'not JSON' } },
    { text: '{}', expected: { ok: false, why: 'incarnation: Invalid input: expected number, received undefined' } },
    { text: '{"incarnation": -1}', expected: { ok: false, why: 'incarnation: Too small: expected number to be >=0' } },
    { text: '{"incarnation": 1.5}', expected: { ok: false, why: 'incarnation: Invalid input: expected int, received number' } },
    { text: '{"incarnation": 1, "answeredBy": ["Not A Name"]}', expected: { ok: false, why: 'answeredBy.0: Invalid string: must match pattern /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/' } },
  ];
  for (const c of cases) {
    void test(JSON.stringify(c.text), () => {
      assert.deepEqual(parseHeartbeatState(c.text), c.expected);
    });
  }
});

void describe('HeartbeatStateStore', () => {
  const root = mkdtemp(join(tmpdir(), 'haoscar-hb-state-'));
  after(async () => rm(await root, { recursive: true, force: true }));

  void test('each start writes the next incarnation before it is used; peers that answered are kept', async () => {
    const dir = await mkdtemp(join(await root, 's-'));
    const file = heartbeatStateFile(dir, 'n1');
    assert.equal(file, join(dir, 'heartbeat', 'n1.json'));
    const first = await HeartbeatStateStore.begin(dir, 'n1', 5000);
    assert.equal(first.incarnation, 5000);
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { incarnation: 5000, answeredBy: [] });
    await first.recordAnswered('n3');
    await first.recordAnswered('n2');
    await first.recordAnswered('n3');
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { incarnation: 5000, answeredBy: ['n2', 'n3'] });
    const second = await HeartbeatStateStore.begin(dir, 'n1', 10);
    assert.equal(second.incarnation, 5001, 'the clock went back; the incarnation did not');
    assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { incarnation: 5001, answeredBy: ['n2', 'n3'] });
    assert.equal((await HeartbeatStateStore.begin(dir, 'n1', 9000)).incarnation, 9000, 'the clock, when it is ahead');
    assert.deepEqual([...second.answeredBy()], ['n2', 'n3']);
    assert.deepEqual(await readdir(join(dir, 'heartbeat')), ['n1.json'], 'no temporary file left behind');
  });

  void test('a damaged file is refused and left as it is; an unwritable directory is an error naming the file', async () => {
    const dir = await mkdtemp(join(await root, 's-'));
    await mkdir(join(dir, 'heartbeat'));
    await writeFile(heartbeatStateFile(dir, 'n1'), 'garbage');
    await assert.rejects(HeartbeatStateStore.begin(dir, 'n1', 1), (err: unknown) => err instanceof HeartbeatStateError && /n1\.json is damaged \(not JSON\)/.test(err.message));
    assert.equal(await readFile(heartbeatStateFile(dir, 'n1'), 'utf8'), 'garbage');
    // A state directory that is a file: nothing can be written under it.
    const notADir = join(dir, 'plain-file');
    await writeFile(notADir, '');
    await assert.rejects(HeartbeatStateStore.begin(notADir, 'n1', 1), (err: unknown) => err instanceof HeartbeatStateError && /cannot (read|write) .*plain-file\/heartbeat\/n1\.json/.test(err.message));
  });
});
