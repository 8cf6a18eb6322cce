/**
 * Heartbeats between this release and the previous one (0.1.0, which speaks protocol version 1
 * only and refuses any other as `bad-version`), over real UDP on loopback: the previous
 * release's own heartbeat module, read from this repository's history (`git archive`, see
 * test/support/previous-release.ts), runs in this process beside this release's.
 *
 * Upgrade, downgrade and upgrade again of one node while the other runs this release: no packet
 * is refused for its version in either direction, this release writes version 1 to the old
 * node and version 2 (with the configuration digest) once both speak it.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import type { NodeSpec } from '../../src/config/types.js';
import { Heartbeat, type HeartbeatEdge, type HeartbeatOptions, type HeartbeatStats } from '../../src/heartbeat/heartbeat.js';
import { checkOutPreviousRelease } from '../support/previous-release.js';
import { waitFor as waitUntil } from '../support/wait.js';

const INTERVAL = 20;
const DEADTIME = 100;
const KEY = Buffer.from('interop-test-secret-interop-test-secret');
const DIGEST = 'fedcba9876543210fedcba9876543210';
const waitFor = <T>(what: string, condition: () => T | undefined | false) => waitUntil(what, condition, 5000, 5);

// Addresses of their own on loopback (heartbeat-live.test.ts uses 127.0.0.1x/2x).
const A = { name: 'a', addresses: ['127.0.0.41', '127.0.0.51'], priority: 0 } satisfies NodeSpec;
const B = { name: 'b', addresses: ['127.0.0.42', '127.0.0.52'], priority: 0 } satisfies NodeSpec;
const NODES = [A, B];
const randomPort = () => 20_000 + Math.floor(Math.random() * 12_000);

/** What both releases' Heartbeat offer that this test uses. */
interface AnyHeartbeat {
  stats(): Pick<HeartbeatStats, 'rejected' | 'accepted'> & { peers: Array<{ node: string; state: string; protocol?: number; speaks?: readonly number[]; configDigest?: string; configMatches?: boolean; heardProtocol?: number }> };
  peerState(node: string): string | undefined;
  close(): Promise<void>;
}
type OldOptions = Omit<HeartbeatOptions, 'configDigest'>;
interface OldModule { Heartbeat: { start(options: OldOptions): Promise<AnyHeartbeat> } }

interface Node {
  hb: AnyHeartbeat;
  release: 'previous' | 'this';
  lines: Array<Record<string, unknown> & { msg: string }>;
}

let previous: { dir: string; remove: () => Promise<void> };
let oldModule: OldModule;
let stateDir: string;
const port = randomPort();
const running = new Set<AnyHeartbeat>();

before(async () => {
  // Only what its heartbeat module imports.
  previous = await checkOutPreviousRelease(['src/heartbeat', 'src/config', 'src/atomic-file.ts', 'src/log.ts']);
  oldModule = await import(pathToFileURL(join(previous.dir, 'src/heartbeat/heartbeat.ts')).href) as OldModule;
  stateDir = await mkdtemp(join(tmpdir(), 'haoscar-hb-interop-'));
});
// Also after a failed test: the next one binds the same addresses.
afterEach(async () => {
  for (const hb of running) await hb.close();
  running.clear();
});
after(async () => {
  await previous?.remove();
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

async function start(node: NodeSpec, release: Node['release']): Promise<Node> {
  const lines: Node['lines'] = [];
  const logger: Logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Node['lines'][number]) });
  const options: OldOptions = {
    cluster: 'lab',
    node: node.name,
    nodes: NODES,
    settings: { port, intervalMs: INTERVAL, deadtimeMs: DEADTIME, secretFile: '(given directly)', acceptSecretFiles: [] },
    secret: KEY,
    logger,
    onEdge: (_edge: HeartbeatEdge) => undefined,
    stateDir,
  };
  const hb: AnyHeartbeat = release === 'previous' ? await oldModule.Heartbeat.start(options) : await Heartbeat.start({ ...options, configDigest: DIGEST });
  running.add(hb);
  return { hb, release, lines };
}

async function stop(node: Node): Promise<void> {
  await node.hb.close();
  running.delete(node.hb);
}

const peer = (node: Node, name: string) => node.hb.stats().peers.find((p) => p.node === name)!;
/** Refusals other than the challenge's expected `unproven` right after a start (docs/heartbeat.md). */
const refused = (node: Node) => Object.entries(node.hb.stats().rejected).filter(([reason, n]) => n > 0 && reason !== 'unproven');
const lines = (node: Node, pattern: RegExp) => node.lines.filter((l) => pattern.test(l.msg)).map((l) => l.msg);

void describe('heartbeats between the previous release (protocol 1 only) and this one', () => {
  void test('upgrade, downgrade and upgrade again of one node: never refused for the version, version 2 once both speak it', async () => {
    // 0.1.0 on a, this release on b.
    const b = await start(B, 'this');
    let a = await start(A, 'previous');
    await waitFor('a (0.1.0) and b (this release) alive to each other', () => a.hb.peerState('b') === 'alive' && b.hb.peerState('a') === 'alive');
    // Some packets both ways after they met, then nothing refused for its version either way.
    const acceptedBy = (n: Node) => n.hb.stats().accepted;
    const [aFrom, bFrom] = [acceptedBy(a), acceptedBy(b)];
    await waitFor('ten more packets believed each way', () => acceptedBy(a) >= aFrom + 10 && acceptedBy(b) >= bFrom + 10);
    assert.deepEqual(refused(a), [], '0.1.0 refuses nothing of this release (its version-1 packets, with the advertisement it ignores)');
    assert.deepEqual(refused(b), []);
    assert.equal(peer(b, 'a').protocol, 1, 'b writes version 1 to 0.1.0');
    assert.equal(peer(b, 'a').heardProtocol, 1);
    assert.equal(peer(b, 'a').speaks, undefined, '0.1.0 advertises nothing');
    assert.equal(peer(b, 'a').configDigest, undefined, 'nor a digest');
    assert.equal(lines(b, /a advertises no protocol versions/).length, 1, 'said once for its run');
    assert.deepEqual(lines(b, /writing protocol version/), []);

    // a is upgraded: both move to version 2 and exchange digests.
    await stop(a);
    await waitFor('b sees a silent', () => b.hb.peerState('a') === 'suspect');
    a = await start(A, 'this');
    await waitFor('both write version 2 to each other, with equal digests', () => {
      const [ab, ba] = [peer(a, 'b'), peer(b, 'a')];
      return ab.protocol === 2 && ba.protocol === 2 && ab.heardProtocol === 2 && ba.heardProtocol === 2 && ab.configMatches === true && ba.configMatches === true;
    });
    assert.deepEqual(peer(b, 'a').speaks, [1, 2]);
    assert.equal(peer(b, 'a').configDigest, DIGEST);
    assert.deepEqual(refused(a), []);
    assert.deepEqual(refused(b), []);
    assert.ok(lines(b, /writing protocol version 2 to a \(was 1\): the highest version both speak \(it speaks 1, 2\)/).length >= 1);

    // Downgraded again, after a stop longer than the deadtime (b writes 1 from a's silence on).
    await stop(a);
    await waitFor('b sees a silent', () => b.hb.peerState('a') === 'suspect');
    assert.equal(peer(b, 'a').protocol, 1, 'silent: version 1 until heard again');
    a = await start(A, 'previous');
    await waitFor('alive to each other again', () => a.hb.peerState('b') === 'alive' && b.hb.peerState('a') === 'alive');
    const [aAgain, bAgain] = [acceptedBy(a), acceptedBy(b)];
    await waitFor('ten more packets believed each way', () => acceptedBy(a) >= aAgain + 10 && acceptedBy(b) >= bAgain + 10);
    assert.deepEqual(refused(a), [], 'the downgraded node refuses nothing of this release');
    assert.equal(peer(b, 'a').protocol, 1);
    assert.equal(peer(b, 'a').configDigest, undefined, 'the digest of its earlier run is forgotten');
    await stop(a);
    await stop(b);
  });

  void test('a restart into the previous release within the deadtime: this release writes version 1 from its first packet on', async (t) => {
    const b = await start(B, 'this');
    let a = await start(A, 'this');
    await waitFor('version 2 both ways', () => peer(a, 'b').protocol === 2 && peer(b, 'a').protocol === 2);
    await stop(a);
    a = await start(A, 'previous');
    await waitFor('alive to each other', () => a.hb.peerState('b') === 'alive' && b.hb.peerState('a') === 'alive' && peer(b, 'a').protocol === 1);
    const from = a.hb.stats().accepted;
    await waitFor('ten more packets believed by 0.1.0', () => a.hb.stats().accepted >= from + 10);
    // b's packets already in flight when a restarted (at most an interval's) may be refused
    // once as bad-version; none after b heard a's new run.
    const badAfter = a.hb.stats().rejected['bad-version'];
    await waitFor('ten more', () => a.hb.stats().accepted >= from + 20);
    assert.equal(a.hb.stats().rejected['bad-version'], badAfter, 'no bad-version once b has heard the new run');
    t.diagnostic(`${badAfter} bad-version refusals at 0.1.0 right after its restart (b's packets in flight before it heard the new run)`);
    await stop(a);
    await stop(b);
  });
});
