#!/usr/bin/env node
// A tiny HTTP service for the network lab: answers "ok <pid>" on HOST:PORT. Unlike
// test/fixtures/http-service.mjs (127.0.0.1 only) it listens on every address by default, so
// it answers on a host's own address and on a VIP the host holds.
// Usage: pid-service.mjs PORT [HOST]   (HOST default 0.0.0.0; `::` for IPv6 and IPv4 alike)
import { createServer } from 'node:http';

const [portArg, host = '0.0.0.0'] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`usage: pid-service.mjs PORT [HOST]; got port '${portArg}'`);
  process.exit(2);
}
const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' });
  res.end(`ok ${process.pid}\n`);
});
server.listen(port, host, () => console.log(`listening on ${host.includes(':') ? `[${host}]` : host}:${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
