/**
 * Heartbeats across restarts, over real UDP (127.0.0.0/8 is all loopback on Linux): replayed
 * packets of a dead peer after the receiver restarted, a sender whose clock was stepped back
 * across its restart, the challenge handshake, and a rolling upgrade beside a node of the
 * release before the challenge (docs/heartbeat.md, "Restarts").
 */
import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSocket, type Socket } from 'node:dgram';
import { pino } from 'pino';
import type { NodeSpec } from '../../src/config/types.js';
import { Heartbeat, HeartbeatStartError, type HeartbeatEdge, type HeartbeatOptions } from '../../src/heartbeat/heartbeat.js';
import { decodePacket, encodePacket } from '../../src/heartbeat/packet.js';
import { waitFor as waitUntil } from '../support/wait.js';

const INTERVAL = 20;
const DEADTIME = 100;
/** Every node of these tests runs with the same cluster configuration. */
const CONFIG_DIGEST = '0123456789abcdef0123456789abcdef';
const KEY = Buffer.from('restart-test-secret-restart-test');
const waitFor = <T>(what: string, condition: () => T | undefined | false) => waitUntil(what, condition, 3000, 5);
/** Below the ephemeral range (32768+), so no client socket of this host holds it by chance. */
const randomPort = () => 20_000 + Math.floor(Math.random() * 12_000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Started {
  hb: Heartbeat;
  edges: HeartbeatEdge[];
  lines: Array<Record<string, unknown> & { msg: string }>;
}

const running: Array<{ close(): Promise<void> | void }> = [];
afterEach(async () => {
  for (const r of running.splice(0)) await r.close();
});
const root = await mkdtemp(join(tmpdir(), 'haoscar-hb-restart-'));
after(() => rm(root, { recursive: true, force: true }));

/** A state directory per test (all nodes of a test share it, as the lab's hosts do: one file per node). */
async function stateDir(): Promise<string> {
  return mkdtemp(join(root, 'state-'));
}

async function startNode(node: string, nodes: NodeSpec[], port: number, dir: string, extra: Partial<HeartbeatOptions> = {}): Promise<Started> {
  const edges: HeartbeatEdge[] = [];
  const lines: Started['lines'] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Started['lines'][number]) });
  const hb = await Heartbeat.start({
    cluster: 'lab',
    node,
    nodes,
    settings: { port, intervalMs: INTERVAL, deadtimeMs: DEADTIME, secretFile: '(given directly)', acceptSecretFiles: [] },
    secret: KEY,
    logger,
    onEdge: (edge) => void edges.push(edge),
    configDigest: CONFIG_DIGEST,
    stateDir: dir,
    ...extra,
  });
  running.push(hb);
  return { hb, edges, lines };
}

async function udp(address: string, port = 0, onMessage?: (data: Buffer) => void): Promise<Socket> {
  const socket = createSocket('udp4');
  if (onMessage) socket.on('message', (data) => onMessage(data));
  await new Promise<void>((resolve) => socket.bind({ address, port }, resolve));
  running.push({ close: () => new Promise<void>((resolve) => socket.close(() => resolve())) });
  return socket;
}

const names = (edges: HeartbeatEdge[]) => edges.map((e) => `${e.node}:${e.to}`);
/** Whether this process stalled longer than the deadtime (both "nodes" live in it: a stall silences the sender too). */
const stalled = (...nodes: Started[]) => nodes.some((n) => n.lines.some((l) => typeof l.stalledMs === 'number'));

void describe('heartbeats across restarts', () => {
  void test('after the receiver restarts, packets captured from a peer that has since died do not make it alive', async () => {
    const port = randomPort();
    // One link each. a's configured address is the wire: a test socket that records what b
    // sends to a and passes it on to where a really listens (its bind address).
    const A = { name: 'a', addresses: ['127.0.0.51'], priority: 0 } satisfies NodeSpec;
    const B = { name: 'b', addresses: ['127.0.0.52'], priority: 0 } satisfies NodeSpec;
    const dir = await stateDir();
    const captured: Buffer[] = [];
    let tapping = true;
    const wire = await udp('127.0.0.51', port, (data) => {
      if (!tapping) return;
      captured.push(data);
      wire.send(data, port, '127.0.0.61');
    });
    const a = await startNode('a', [A, B], port, dir, { bindAddress: '127.0.0.61' });
    const b = await startNode('b', [A, B], port, dir);
    await waitFor('a and b alive to each other', () => a.hb.peerState('b') === 'alive' && b.hb.peerState('a') === 'alive');
    const from = captured.length;
    await waitFor('40 more packets of b captured', () => captured.length >= from + 40);
    tapping = false;
    const recording = captured.slice(from, from + 40);
    assert.ok(recording.every((p) => decodePacket(p, KEY, 'lab').ok), 'the recording holds real, correctly signed packets of b');

    // b dies; a's agent restarts (same state directory, as a restarted agent has).
    await b.hb.close();
    await a.hb.close();
    const a2 = await startNode('a', [A, B], port, dir, { bindAddress: '127.0.0.61' });
    // The recording, played to the new a at b's pace, for 8 deadtimes.
    const attacker = await udp('127.0.0.99');
    const received = a2.hb.stats().received;
    for (const p of recording) {
      attacker.send(p, port, '127.0.0.61');
      await sleep(INTERVAL);
    }
    await waitFor('every replayed packet read by the new a', () => a2.hb.stats().received >= received + recording.length);
    await waitFor('b suspect at the new a', () => a2.hb.peerState('b') === 'suspect');
    assert.deepEqual(names(a2.edges), ['b:suspect'], `a dead b must not look alive to a restarted receiver (edges: ${names(a2.edges).join(', ')})`);
    assert.equal(a2.hb.stats().accepted, 0, 'no replayed packet accepted');
    assert.equal(a2.hb.stats().rejected.unproven, recording.length, JSON.stringify(a2.hb.stats().rejected));
    assert.equal(a2.hb.peerView('b'), undefined, 'nothing learnt from the recording');
    const line = a2.lines.find((l) => l.reason === 'unproven');
    assert.equal(line?.why, 'stale-echo');
  });

  void test('a sender whose clock was stepped back across its restart is heard again at once', async (t) => {
    const port = randomPort();
    const A = { name: 'a', addresses: ['127.0.0.11', '127.0.0.21'], priority: 0 } satisfies NodeSpec;
    const B = { name: 'b', addresses: ['127.0.0.12', '127.0.0.22'], priority: 0 } satisfies NodeSpec;
    const dir = await stateDir();
    const a = await startNode('a', [A, B], port, dir);
    const b = await startNode('b', [A, B], port, dir);
    await waitFor('b alive at a', () => a.hb.peerState('b') === 'alive');
    await b.hb.close();
    await waitFor('b suspect at a', () => a.hb.peerState('b') === 'suspect');

    // b's host comes back with its clock an hour behind (an RTC that lost time, before NTP).
    const realNow = Date.now;
    Date.now = () => realNow() - 3_600_000;
    t.after(() => {
      Date.now = realNow;
    });
    const b2 = await startNode('b', [A, B], port, dir);
    const back = await waitFor('b alive again at a', () => a.edges.find((e) => e.to === 'alive' && e.incarnation === b2.hb.incarnation));
    Date.now = realNow;
    assert.equal(back.node, 'b');
    assert.ok(b2.hb.incarnation > b.hb.incarnation, `incarnation ${b.hb.incarnation} → ${b2.hb.incarnation}`);
    assert.equal(a.hb.stats().rejected.replayed, 0, JSON.stringify(a.hb.stats().rejected));
  });

  void test('the incarnation is persisted per node, larger at every start, whatever the clock says', async (t) => {
    const port = randomPort();
    const A = { name: 'a', addresses: ['127.0.0.11'], priority: 0 } satisfies NodeSpec;
    const B = { name: 'b', addresses: ['127.0.0.12'], priority: 0 } satisfies NodeSpec;
    const dir = await stateDir();
    const a = await startNode('a', [A, B], port, dir);
    const first = a.hb.incarnation;
    assert.ok(Math.abs(first - Date.now()) < 60_000, 'the first incarnation of a node is the clock (what earlier releases used)');
    const file = join(dir, 'heartbeat', 'a.json');
    assert.equal((JSON.parse(await readFile(file, 'utf8')) as { incarnation: number }).incarnation, first);
    await a.hb.close();
    // The clock set back by a day: one more than the last run.
    const realNow = Date.now;
    Date.now = () => realNow() - 86_400_000;
    t.after(() => {
      Date.now = realNow;
    });
    const a2 = await startNode('a', [A, B], port, dir);
    Date.now = realNow;
    assert.equal(a2.hb.incarnation, first + 1);
    await a2.hb.close();
    const b = await startNode('b', [A, B], port, dir);
    assert.equal((JSON.parse(await readFile(join(dir, 'heartbeat', 'b.json'), 'utf8')) as { incarnation: number }).incarnation, b.hb.incarnation);
    assert.equal((JSON.parse(await readFile(file, 'utf8')) as { incarnation: number }).incarnation, first + 1, "b has its own file: it does not count a's starts");
  });

  void test('a damaged state file is a start error that names the file and the fix', async () => {
    const port = randomPort();
    const A = { name: 'a', addresses: ['127.0.0.11'], priority: 0 } satisfies NodeSpec;
    const B = { name: 'b', addresses: ['127.0.0.12'], priority: 0 } satisfies NodeSpec;
    const dir = await stateDir();
    await mkdir(join(dir, 'heartbeat'));
    await writeFile(join(dir, 'heartbeat', 'a.json'), '{"incarnation": "soon"');
    await assert.rejects(startNode('a', [A, B], port, dir), (err: unknown) =>
      err instanceof HeartbeatStartError && err.message.includes(join(dir, 'heartbeat', 'a.json')) && /remove it/.test(err.message));
  });

  void test('a restarted receiver and a live peer prove themselves to each other within a few intervals', async () => {
    const port = randomPort();
    const A = { name: 'a', addresses: ['127.0.0.11', '127.0.0.21'], priority: 0 } satisfies NodeSpec;
    const B = { name: 'b', addresses: ['127.0.0.12', '127.0.0.22'], priority: 0 } satisfies NodeSpec;
    const dir = await stateDir();
    const a = await startNode('a', [A, B], port, dir);
    const b = await startNode('b', [A, B], port, dir);
    await waitFor('a and b alive to each other', () => a.hb.peerState('b') === 'alive' && b.hb.peerState('a') === 'alive');
    const edgesAtB = b.edges.length;
    await a.hb.close();
    const restartedAt = performance.now();
    const a2 = await startNode('a', [A, B], port, dir);
    await waitFor('b alive at the new a', () => a2.hb.peerState('b') === 'alive');
    await waitFor('the new a proven at b', () => b.hb.peers()[0]!.incarnation === a2.hb.incarnation);
    const took = performance.now() - restartedAt;
    assert.ok(took < 1000, `handshake took ${Math.round(took)} ms`);
    // A restart quicker than the deadtime is no edge at b; a slower one (a slow disk: the
    // incarnation is fsync'd first) is suspect, then alive. Never left suspect.
    const atB = names(b.edges.slice(edgesAtB));
    assert.ok(atB.length === 0 || atB.at(-1) === 'a:alive', `edges at b: ${atB.join(', ')}`);
    if (!stalled(a2, b)) assert.deepEqual(names(a2.edges), ['b:alive']);
    assert.ok(b.lines.some((l) => l.msg.includes('a restarted')), 'the restart is logged');
  });

  void test('rolling upgrade: a node of the release before the challenge is believed as before, until it has answered one', async () => {
    const port = randomPort();
    const A = { name: 'a', addresses: ['127.0.0.11'], priority: 0 } satisfies NodeSpec;
    const C = { name: 'c', addresses: ['127.0.0.13'], priority: 0 } satisfies NodeSpec;
    const dir = await stateDir();
    // c is emulated by a socket on its address: it reads a's packets and answers like the
    // older release (no nonce, no echo) or like this one (its nonce, and a's echoed).
    let style: 'old' | 'new' = 'old';
    let seq = 0;
    let echo: string | undefined;
    const incarnation = Date.now();
    const c = await udp('127.0.0.13', port, (data) => {
      const d = decodePacket(data, KEY, 'lab');
      if (!d.ok) return;
      echo = d.packet.nonce;
      const p = { cluster: 'lab', node: 'c', incarnation, seq: ++seq, sentAt: Date.now(), to: '127.0.0.11', view: { groups: {} } };
      const extra = style === 'new' && echo !== undefined ? { nonce: 'cccccccccccccccccccccc', echo } : {};
      c.send(encodePacket({ ...p, ...extra }, KEY), port, '127.0.0.11');
    });
    const a = await startNode('a', [A, C], port, dir);
    await waitFor('c (older release) alive at a', () => a.hb.peerState('c') === 'alive');
    assert.ok(a.lines.some((l) => /c sends no challenge nonce.*older release/.test(l.msg)), 'the older release is logged');
    assert.equal(a.hb.stats().rejected.unproven, 0);

    // c is upgraded (a restart with its new release): it answers a's challenge from now on, and a records that.
    style = 'new';
    await waitFor('c recorded as answering challenges', async () => {
      const text = await readFile(join(dir, 'heartbeat', 'a.json'), 'utf8').catch(() => '{}');
      return ((JSON.parse(text) as { answeredBy?: string[] }).answeredBy ?? []).includes('c');
    });
    // a restarts; a recording of c from before its upgrade (no challenge) is refused now, a's live c is not.
    await a.hb.close();
    style = 'old';
    const a2 = await startNode('a', [A, C], port, dir);
    await waitFor('old-style packets of c refused by the new a', () => a2.hb.stats().rejected.unproven >= 3);
    assert.notEqual(a2.hb.peerState('c'), 'alive');
    assert.equal(a2.lines.find((l) => l.reason === 'unproven')?.why, 'no-challenge');
    style = 'new';
    await waitFor('c alive at the new a once it answers', () => a2.hb.peerState('c') === 'alive');
  });
});
