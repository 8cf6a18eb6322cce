#!/usr/bin/env node
// The lab's client: GETs URL every EVERY_MS (fixed rate: a slow request does not delay the
// next one), each on a new connection, and prints one JSON line per request on stdout:
//   {"t":<start, ms since epoch>,"end":<ms>,"ok":true,"status":200,"body":"ok 1234","pid":1234}
//   {"t":...,"end":...,"ok":false,"error":"ECONNREFUSED"}
// Runs inside the lab's client namespace (see netlab.ts); no dependencies.
// Usage: prober.mjs URL EVERY_MS TIMEOUT_MS
import { get } from 'node:http';

const [url, everyArg, timeoutArg] = process.argv.slice(2);
const everyMs = Number(everyArg);
const timeoutMs = Number(timeoutArg);
if (!url || !(everyMs > 0) || !(timeoutMs > 0)) {
  console.error(`usage: prober.mjs URL EVERY_MS TIMEOUT_MS; got ${JSON.stringify(process.argv.slice(2))}`);
  process.exit(2);
}

// The parent stopped reading: stop probing.
process.stdout.on('error', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));

function once() {
  const t = Date.now();
  let done = false;
  const finish = (fields) => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    process.stdout.write(`${JSON.stringify({ t, end: Date.now(), ...fields })}\n`);
  };
  // agent: false — a new TCP connection each time, as a new client would open after a failover.
  const req = get(url, { agent: false }, (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      if (body.length < 1024) body += chunk;
    });
    res.on('end', () => {
      body = body.trim();
      const pid = /^ok (\d+)/.exec(body);
      const ok = res.statusCode !== undefined && res.statusCode >= 200 && res.statusCode < 300;
      finish({ ok, status: res.statusCode, body, ...(pid ? { pid: Number(pid[1]) } : {}) });
    });
    res.on('error', (e) => finish({ ok: false, error: e.code ?? e.message }));
  });
  req.on('error', (e) => finish({ ok: false, error: e.code ?? e.message }));
  const timer = setTimeout(() => {
    finish({ ok: false, error: 'timeout' });
    req.destroy();
  }, timeoutMs);
}

// Drift-free schedule; if this process falls behind, it catches up without a burst.
let next = Date.now();
function tick() {
  once();
  next = Math.max(next + everyMs, Date.now());
  setTimeout(tick, next - Date.now());
}
tick();
