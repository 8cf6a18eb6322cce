/**
 * The frontend relay (src/temporal/frontends.ts) with real TCP servers standing in for Temporal
 * frontends: connections go to the first that answers, move to the next when it is gone (its
 * process dead: connections closed and port refused; or its machine silent: the probe gives up
 * on it), and a name is resolved to its addresses. resolveConnection uses it for a list only.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { FrontendRelay, parseFrontend, tryOrder } from '../../src/temporal/frontends.js';
import { resolveConnection } from '../../src/temporal/connection.js';
import { parseConfig } from '../../src/config/load.js';
import { waitFor } from '../support/wait.js';

/** A "frontend": answers every line with `NAME:line`; kill() closes it and its connections. */
async function frontend(name: string): Promise<{ port: number; stopListening(): Promise<void>; kill(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => s.destroy());
    s.on('data', (d) => s.write(`${name}:${d.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as AddressInfo).port;
  const stopListening = () => new Promise<void>((r) => server.close(() => r()));
  return {
    port,
    stopListening: async () => {
      server.close();
      await Promise.resolve();
    },
    kill: async () => {
      for (const s of sockets) s.destroy();
      await stopListening().catch(() => undefined);
    },
  };
}

/** One connection through the relay; ask() sends a line and returns the answer, or 'closed'. */
async function client(address: string) {
  const { host, port } = parseFrontend(address);
  const s = connect({ host, port });
  await new Promise<void>((r, j) => {
    s.once('connect', () => r());
    s.once('error', j);
  });
  let closed = false;
  s.on('close', () => (closed = true));
  s.on('error', () => undefined);
  return {
    get closed() {
      return closed;
    },
    ask: (line: string) =>
      new Promise<string>((r) => {
        if (closed) return r('closed');
        s.once('data', (d) => r(d.toString()));
        s.once('close', () => r('closed'));
        s.write(line);
      }),
    close: () => s.destroy(),
  };
}

test('tryOrder: the frontend that worked last first, then the others in order, wrapping', () => {
  assert.deepEqual(tryOrder(['a', 'b', 'c'], 0), ['a', 'b', 'c']);
  assert.deepEqual(tryOrder(['a', 'b', 'c'], 1), ['b', 'c', 'a']);
  assert.deepEqual(tryOrder(['a', 'b', 'c'], 2), ['c', 'a', 'b']);
  assert.deepEqual(tryOrder(['a', 'b', 'c'], 7), ['a', 'b', 'c'], 'out of range: from the start');
});

test('parseFrontend: host and port; malformed is refused', () => {
  assert.deepEqual(parseFrontend('10.0.0.5:7233'), { host: '10.0.0.5', port: 7233 });
  assert.deepEqual(parseFrontend('temporal.example:7333'), { host: 'temporal.example', port: 7333 });
  assert.throws(() => parseFrontend('temporal.example'), /not host:port/);
  assert.throws(() => parseFrontend('x:0'), /not host:port/);
});

test('relay: the first frontend serves; killed, its connections close and new ones go to the next; back, it is not preferred again', async () => {
  const a = await frontend('A');
  const b = await frontend('B');
  const relay = new FrontendRelay([{ host: '127.0.0.1', port: a.port }, { host: '127.0.0.1', port: b.port }]);
  try {
    const address = await relay.start();
    const c1 = await client(address);
    assert.equal(await c1.ask('1'), 'A:1');
    assert.equal(relay.inUse, `127.0.0.1:${a.port}`);
    await a.kill();
    await waitFor('the connection through the dead frontend closes', async () => (c1.closed ? true : undefined), 5_000, 20);
    const c2 = await client(address);
    assert.equal(await c2.ask('2'), 'B:2', 'a new connection reaches the other frontend');
    assert.equal(relay.inUse, `127.0.0.1:${b.port}`);
    c2.close();
  } finally {
    relay.close();
    await b.kill();
  }
});

test('relay: a frontend that stops answering without closing its connections is given up after the probes fail', async () => {
  const a = await frontend('A');
  const b = await frontend('B');
  const relay = new FrontendRelay([{ host: '127.0.0.1', port: a.port }, { host: '127.0.0.1', port: b.port }], undefined, { connectTimeoutMs: 500, probeIntervalMs: 100, probeFailures: 2 });
  try {
    const address = await relay.start();
    const c1 = await client(address);
    assert.equal(await c1.ask('1'), 'A:1');
    await a.stopListening(); // c1's connection stays open: only the probe can tell
    await waitFor('the relay closes the connection to the silent frontend', async () => (c1.closed ? true : undefined), 5_000, 20);
    const c2 = await client(address);
    assert.equal(await c2.ask('2'), 'B:2');
    c2.close();
  } finally {
    relay.close();
    await a.kill();
    await b.kill();
  }
});

test('relay: no frontend answers → the connection is closed (the SDK reports it cannot connect); a name is resolved', async () => {
  const a = await frontend('A');
  await a.kill();
  const relay = new FrontendRelay([{ host: '127.0.0.1', port: a.port }]);
  const address = await relay.start();
  const c = await client(address);
  assert.equal(await c.ask('x'), 'closed');
  relay.close();

  const b = await frontend('B');
  const named = new FrontendRelay([{ host: '127.0.0.1', port: a.port }, { host: 'localhost', port: b.port }]);
  try {
    const c2 = await client(await named.start());
    assert.equal(await c2.ask('y'), 'B:y');
    assert.match(named.inUse ?? '', new RegExp(`^localhost:${b.port} \\(`), 'the name and the address it resolved to');
    c2.close();
  } finally {
    named.close();
    await b.kill();
  }
});

test('resolveConnection: one frontend is connected to directly; several go through the relay, TLS keeping the frontends\' name', async () => {
  const head = 'cluster: c\nnodes: [{ name: n1, addresses: [127.0.0.1] }]\n';
  const one = await resolveConnection(parseConfig(`${head}temporal: { address: 10.0.0.5:7233 }\n`).temporal);
  assert.equal(one.address, '10.0.0.5:7233');
  assert.equal(one.relay, undefined);
  const two = await resolveConnection(parseConfig(`${head}temporal: { address: [10.0.0.5:7233, 10.0.0.6:7233], tls: true }\n`).temporal);
  try {
    assert.match(two.address, /^127\.0\.0\.1:\d+$/);
    assert.deepEqual(two.frontends, ['10.0.0.5:7233', '10.0.0.6:7233']);
    assert.deepEqual(two.tls, { serverNameOverride: '10.0.0.5' });
  } finally {
    two.relay?.close();
  }
});
