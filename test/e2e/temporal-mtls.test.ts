/**
 * mTLS end to end (issue 9 item 9; docs/security.md, docs/configuration.md `temporal.tls`).
 *
 * `temporal server start-dev` (CLI 1.5.1) has no TLS options, so this runs the real Temporal server
 * (`go install go.temporal.io/server/cmd/server@v1.29.1`, looked for as $TEMPORAL_SERVER or
 * ~/.cache/haoscar/bin/server; skipped, saying so, when it is not built, except under CI, whose
 * .ci/run builds it) with an in-memory SQLite
 * store and a frontend that requires client certificates signed by a CA made here with openssl.
 *
 * - `resolveConnection` turns `temporal.tls` into the SDK's TLS options (CA, client pair, server
 *   name), and refuses unreadable files naming the field (always run).
 * - Against the server: a client without a certificate is refused; a real agent with
 *   `temporal.tls` (CA, certificate, key, server name) connects, starts the controller and runs its
 *   group; `haoscar status` with the certificate shows it, without one exits 4 "cannot reach".
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../../src/temporal/search-attributes.js';
import { NativeConnection } from '@temporalio/worker';
import { Lab, freePort, httpServiceYaml, probe, ROOT, waitFor } from '../support/lab.js';
import { resolveConnection } from '../../src/temporal/connection.js';
import { parseConfig } from '../../src/config/load.js';
import type { TemporalSettings } from '../../src/config/types.js';
import { CliError, EXIT } from '../../src/cli/errors.js';
import { findTemporalCli } from '../../src/temporal/cli-binary.js';
import { installTemporalRuntime } from '../../src/temporal/runtime.js';
import { silentLogger } from '../../src/log.js';
import { uniqueName } from '../support/temporal.js';

const SERVER = process.env.TEMPORAL_SERVER ?? join(homedir(), '.cache/haoscar/bin/server');

let lab: Lab | undefined;
let server: ResultPromise | undefined;
after(async () => {
  await lab?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    const t = setTimeout(() => server?.kill('SIGKILL'), 10_000);
    await server.catch(() => undefined);
    clearTimeout(t);
  }
});

/** A CA, a server certificate for localhost/127.0.0.1, and a client certificate, in `dir`. */
async function makeCertificates(dir: string): Promise<{ ca: string; serverCert: string; serverKey: string; clientCert: string; clientKey: string }> {
  const f = (name: string) => join(dir, name);
  const ssl = (args: string[]) => execa('openssl', args, { cwd: dir });
  await ssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=haoscar test CA', '-keyout', f('ca.key'), '-out', f('ca.pem')]);
  for (const [name, cn, ext] of [
    ['server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n'],
    ['client', 'haoscar-node', 'extendedKeyUsage=clientAuth\n'],
  ] as const) {
    await writeFile(f(`${name}.ext`), ext);
    await ssl(['req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${cn}`, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`)]);
    await ssl(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '2', '-extfile', f(`${name}.ext`), '-out', f(`${name}.pem`)]);
  }
  return { ca: f('ca.pem'), serverCert: f('server.pem'), serverKey: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key') };
}

/** Temporal settings as the config gives them, with these fields. */
function settings(over: Partial<TemporalSettings>): TemporalSettings {
  const base = parseConfig('cluster: c\nnodes: [{ name: n1, addresses: [127.0.0.1] }]\ngroups:\n  - name: g\n    resources:\n      - { type: command, name: r, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true] }\n').temporal;
  return { ...base, ...(over.address ? { frontends: [over.address] } : {}), ...over };
}

test('temporal.tls becomes the SDK\'s TLS options; unreadable files are refused naming the field', async () => {
  lab = await Lab.create();
  const dir = join(lab.dir, 'unit-certs');
  await mkdir(dir, { recursive: true });
  const certs = await makeCertificates(dir);
  const conn = await resolveConnection(settings({ address: 'temporal.example:7233', namespace: 'ha', tls: { serverName: 'temporal.internal', caFile: certs.ca, certFile: certs.clientCert, keyFile: certs.clientKey } }));
  assert.equal(conn.address, 'temporal.example:7233');
  assert.equal(conn.namespace, 'ha');
  assert.ok(typeof conn.tls === 'object');
  assert.equal(conn.tls.serverNameOverride, 'temporal.internal');
  assert.deepEqual(conn.tls.serverRootCACertificate, await readFile(certs.ca));
  assert.deepEqual(conn.tls.clientCertPair, { crt: await readFile(certs.clientCert), key: await readFile(certs.clientKey) });
  assert.equal((await resolveConnection(settings({ tls: true }))).tls, true);
  assert.equal((await resolveConnection(settings({ tls: false }))).tls, undefined);
  await assert.rejects(resolveConnection(settings({ tls: { caFile: join(dir, 'missing.pem') } })), (err: unknown) =>
    err instanceof CliError && err.exitCode === EXIT.config && /temporal\.tls\.caFile/.test(err.message));
  await assert.rejects(resolveConnection(settings({ tls: { certFile: certs.clientCert } })), (err: unknown) =>
    err instanceof CliError && /certFile and keyFile go together/.test(err.message));
});

test('a Temporal server requiring client certificates: refused without one; an agent and haoscar status with temporal.tls work', { skip: existsSync(SERVER) || process.env.CI ? false : `no Temporal server binary at ${SERVER} (build it: GOBIN=~/.cache/haoscar/bin go install go.temporal.io/server/cmd/server@v1.29.1)` }, async (t) => {
  lab ??= await Lab.create();
  const l = lab;
  const cli = findTemporalCli();
  assert.ok(cli, 'the Temporal CLI (namespace and search attributes)');
  const dir = join(l.dir, 'mtls');
  await mkdir(join(dir, 'config', 'dynamicconfig'), { recursive: true });
  const certs = await makeCertificates(dir);
  const ports = { grpc: await freePort(), http: await freePort(), fm: await freePort(), hg: await freePort(), hm: await freePort(), mg: await freePort(), mm: await freePort(), wg: await freePort(), wm: await freePort(), metrics: await freePort(), pprof: await freePort() };
  await writeFile(join(dir, 'config', 'dynamicconfig', 'dc.yaml'), 'system.forceSearchAttributesCacheRefreshOnRead:\n  - value: true\n    constraints: {}\n');
  const sqlite = (name: string) => `    ${name}:\n      sql:\n        pluginName: sqlite\n        databaseName: ${name}\n        connectAddr: localhost\n        connectProtocol: tcp\n        connectAttributes: { mode: memory, cache: private }\n        maxConns: 1\n        maxIdleConns: 1\n        maxConnLifetime: 1h\n`;
  const service = (grpc: number, membership: number, http?: number) => `    rpc:\n      grpcPort: ${grpc}\n      membershipPort: ${membership}\n      bindOnLocalHost: true\n${http ? `      httpPort: ${http}\n` : ''}`;
  await writeFile(join(dir, 'config', 'development.yaml'), `log: { stdout: true, level: warn }
persistence:
  defaultStore: sqlite-default
  visibilityStore: sqlite-visibility
  numHistoryShards: 1
  datastores:
${sqlite('sqlite-default')}${sqlite('sqlite-visibility')}global:
  membership: { maxJoinDuration: 30s, broadcastAddress: 127.0.0.1 }
  pprof: { port: ${ports.pprof} }
  metrics: { prometheus: { framework: tally, timerType: histogram, listenAddress: "127.0.0.1:${ports.metrics}" } }
  tls:
    frontend:
      server: { certFile: ${certs.serverCert}, keyFile: ${certs.serverKey}, requireClientAuth: true, clientCaFiles: [${certs.ca}] }
      client: { serverName: localhost, rootCaFiles: [${certs.ca}] }
    systemWorker:
      certFile: ${certs.clientCert}
      keyFile: ${certs.clientKey}
      client: { serverName: localhost, rootCaFiles: [${certs.ca}] }
services:
  frontend:
${service(ports.grpc, ports.fm, ports.http)}  matching:
${service(ports.mg, ports.mm)}  history:
${service(ports.hg, ports.hm)}  worker:
${service(ports.wg, ports.wm)}clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active: { enabled: true, initialFailoverVersion: 1, rpcName: frontend, rpcAddress: "localhost:${ports.grpc}", httpAddress: "localhost:${ports.http}" }
dcRedirectionPolicy: { policy: noop }
dynamicConfigClient: { filepath: ${join(dir, 'config', 'dynamicconfig', 'dc.yaml')}, pollInterval: 10s }
`);
  const serverLog = join(dir, 'server.log');
  server = execa(SERVER, ['--root', dir, '--config', 'config', '--env', 'development', '--allow-no-auth', 'start'], { reject: false, stdin: 'ignore', stdout: { file: serverLog }, stderr: { file: serverLog } });
  const address = `127.0.0.1:${ports.grpc}`;
  const tlsFlags = ['--address', address, '--tls-ca-path', certs.ca, '--tls-cert-path', certs.clientCert, '--tls-key-path', certs.clientKey, '--tls-server-name', 'localhost'];
  const t0 = Date.now();
  await waitFor('the TLS frontend answers', async () => {
    if (server!.exitCode !== null) assert.fail(`the server exited (${server!.exitCode}): ${(await readFile(serverLog, 'utf8')).slice(-2000)}`);
    const r = await execa(cli, ['operator', 'namespace', 'create', '--namespace', 'default', ...tlsFlags], { reject: false });
    return r.exitCode === 0 || /already exists|AlreadyExists/i.test(r.stderr) ? true : undefined;
  }, 120_000, 500);
  for (const name of Object.keys(SEARCH_ATTRIBUTES)) {
    await execa(cli, ['operator', 'search-attribute', 'create', '--namespace', 'default', '--name', name, '--type', 'Keyword', ...tlsFlags]);
  }
  t.diagnostic(`Temporal server with mTLS ready (namespace, search attributes) in ${Date.now() - t0} ms`);

  // No client certificate (the server's CA trusted, so only the missing certificate is the reason).
  const ca = await readFile(certs.ca);
  await assert.rejects(
    (async () => {
      const c = await Connection.connect({ address, tls: { serverRootCACertificate: ca, serverNameOverride: 'localhost' }, connectTimeout: '5s' });
      try {
        await c.workflowService.getSystemInfo({});
      } finally {
        await c.close();
      }
    })(),
    'a client without a certificate is refused',
  );
  installTemporalRuntime(silentLogger);
  await assert.rejects(NativeConnection.connect({ address, tls: { serverRootCACertificate: ca, serverNameOverride: 'localhost' } }), 'a worker connection without a certificate is refused');
  // Plain text to a TLS port: refused too.
  await assert.rejects((async () => {
    const c = await Connection.connect({ address, connectTimeout: '3s' });
    await c.close();
  })());

  // A real agent (its node worker and its workflow worker) and the CLI, with temporal.tls.
  const cluster = uniqueName('mtls');
  const servicePort = await freePort();
  const tls = `tls: { caFile: ${certs.ca}, certFile: ${certs.clientCert}, keyFile: ${certs.clientKey}, serverName: localhost }`;
  const body = (tlsLine: string) => `cluster: ${cluster}
temporal: { address: "${address}", ${tlsLine} }
agent: { stateDir: ${join(l.dir, 'state-mtls')}, logLevel: info }
nodes: [{ name: n1, addresses: [127.0.0.1] }]
groups:
  - name: web
    resources:
      - ${httpServiceYaml('httpd', servicePort)}
`;
  const withCert = await l.writeConfig('mtls.yaml', body(tls));
  const withoutCert = await l.writeConfig('mtls-nocert.yaml', body(`tls: { caFile: ${certs.ca}, serverName: localhost }`));
  const agent = l.startAgent(withCert, 'n1');
  await waitFor('the agent, over mTLS, runs its group', async () => {
    if (agent.exitCode !== null) assert.fail(`the agent exited (${agent.exitCode}): ${(await l.agentLog('n1')).slice(-3000)}`);
    return probe(servicePort);
  }, 120_000, 200);
  const status = await waitFor('haoscar status (over mTLS) shows web running on n1', async () => {
    const r = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'status', '--json', '-c', withCert], { reject: false });
    if (r.exitCode !== 0) return undefined;
    const s = JSON.parse(r.stdout) as { groups: Record<string, { owner: string | null; state: string }> };
    return s.groups.web?.owner === 'n1' && s.groups.web.state === 'running' ? s : undefined;
  }, 60_000, 500);
  assert.equal(status.groups.web!.owner, 'n1');
  const refused = await execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), 'status', '--json', '-c', withoutCert], { reject: false });
  assert.equal(refused.exitCode, EXIT.unavailable, `haoscar status without a client certificate: ${refused.stderr}`);
  assert.match(refused.stderr, /cannot reach Temporal/);
  t.diagnostic(`without a certificate: ${refused.stderr.trim().split('\n')[0]}`);
});
