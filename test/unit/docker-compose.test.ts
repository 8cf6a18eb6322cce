/**
 * docker-compose.yml (the witness machine: Temporal on PostgreSQL, the UI, `haoscar worker`).
 * Container images cannot be pulled on the test machines, so it is never started here: this
 * checks what can be checked without it. Every service, port, volume, dependency and health
 * check is there; the schema and setup containers run once and come first; the search
 * attributes registered are HA-OSCAR's; the worker's command is one the CLI accepts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { buildProgram } from '../../src/cli/main.js';
import { SEARCH_ATTRIBUTES } from '../../src/temporal/search-attributes.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  ports?: string[];
  volumes?: string[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  restart?: string;
  environment?: Record<string, string>;
}

async function compose(): Promise<{ services: Record<string, Service>; volumes: Record<string, unknown>; configs?: Record<string, { content?: string }> }> {
  return parse(await readFile(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true });
}

test('docker-compose.yml: the services, their ports, volumes, dependencies and health checks', async () => {
  const c = await compose();
  const s = c.services;
  assert.deepEqual(Object.keys(s).sort(), ['haoscar-worker', 'postgresql', 'temporal', 'temporal-schema', 'temporal-setup', 'temporal-ui']);
  // Images pinned to the server version the project builds and tests (v1.29.1).
  assert.equal(s.temporal!.image, 'temporalio/server:1.29.1');
  assert.equal(s['temporal-schema']!.image, 'temporalio/admin-tools:1.29.1');
  assert.match(s.postgresql!.image ?? '', /^postgres:\d+$/);
  assert.ok(s['haoscar-worker']!.build, 'the worker is built from the repository\'s Dockerfile');

  assert.deepEqual(s.temporal!.ports, ['7233:7233']);
  assert.deepEqual(s['temporal-ui']!.ports, ['8080:8080']);
  assert.equal(s.postgresql!.ports, undefined, 'PostgreSQL is not published');

  assert.ok(s.postgresql!.volumes?.includes('postgresql-data:/var/lib/postgresql/data'), 'the database on a named volume');
  assert.ok(s['haoscar-worker']!.volumes?.includes('/etc/haoscar:/etc/haoscar:ro'), 'the worker reads /etc/haoscar');
  assert.ok(s['haoscar-worker']!.volumes?.includes('haoscar-state:/var/lib/haoscar'));
  assert.deepEqual(Object.keys(c.volumes).sort(), ['haoscar-state', 'postgresql-data']);

  const dep = (name: string) => Object.fromEntries(Object.entries(s[name]!.depends_on ?? {}).map(([k, v]) => [k, v.condition]));
  assert.deepEqual(dep('temporal-schema'), { postgresql: 'service_healthy' });
  assert.deepEqual(dep('temporal'), { 'temporal-schema': 'service_completed_successfully' });
  assert.deepEqual(dep('temporal-setup'), { temporal: 'service_healthy' });
  assert.deepEqual(dep('temporal-ui'), { temporal: 'service_healthy' });
  assert.deepEqual(dep('haoscar-worker'), { 'temporal-setup': 'service_completed_successfully' });

  for (const name of ['postgresql', 'temporal', 'temporal-ui', 'haoscar-worker']) {
    assert.ok(s[name]!.healthcheck?.test?.length, `${name} has a health check`);
    assert.equal(s[name]!.restart, 'unless-stopped', `${name} comes back after a reboot`);
  }
  for (const name of ['temporal-schema', 'temporal-setup']) assert.equal(s[name]!.restart, 'no', `${name} runs once`);
  assert.ok(c.configs?.['temporal-dynamic-config']?.content?.includes('matching.numTaskqueueReadPartitions'));
});

test('docker-compose.yml: the setup registers HA-OSCAR\'s search attributes and 30 days of history; the schemas are both set up', async () => {
  const s = (await compose()).services;
  const setup = s['temporal-setup']!.command!.join('\n');
  for (const [name, type] of Object.entries(SEARCH_ATTRIBUTES)) {
    assert.equal(type, 'Keyword', `${name}: the compose file registers Keyword attributes`);
    assert.match(setup, new RegExp(`\\b${name}\\b`), `${name} is registered`);
  }
  assert.match(setup, /--retention 720h/);
  const schema = s['temporal-schema']!.command!.join('\n');
  assert.match(schema, /postgresql\/v12\/temporal/);
  assert.match(schema, /postgresql\/v12\/visibility/);
  assert.match(schema, /temporal_visibility/);
});

test('docker-compose.yml: the worker\'s command is one the haoscar CLI accepts', async () => {
  const s = (await compose()).services;
  const [name, ...args] = s['haoscar-worker']!.command!;
  const program = buildProgram();
  const command = program.commands.find((c) => c.name() === name);
  assert.ok(command, `haoscar has a '${name}' command`);
  const parsed = command.parseOptions(args);
  assert.deepEqual(parsed.unknown, [], `every option of '${[name, ...args].join(' ')}' is known`);
  assert.deepEqual(parsed.operands, []);
  assert.equal(command.opts().config, '/etc/haoscar/worker.yaml');
  // The image installs the packed package and its entry point is the installed `haoscar`, with
  // the same default command.
  const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
  assert.match(dockerfile, /npm pack/);
  assert.match(dockerfile, /npm install -g [^\n]*ha-oscar-\*\.tgz/);
  assert.match(dockerfile, /ENTRYPOINT \["haoscar"\]/);
  assert.match(dockerfile, new RegExp(`CMD ${JSON.stringify([name, ...args]).replace(/[[\]/.]/g, '\\$&').replace(/,/g, ', ')}`));
});

test('scripts/temporal-postgres.sh registers the same search attributes as the code', async () => {
  const script = await readFile(join(ROOT, 'scripts/temporal-postgres.sh'), 'utf8');
  const m = /^SEARCH_ATTRIBUTES=\(([^)]*)\)/m.exec(script);
  assert.ok(m, 'the script lists SEARCH_ATTRIBUTES');
  assert.deepEqual(m[1]!.trim().split(/\s+/).sort(), Object.entries(SEARCH_ATTRIBUTES).map(([n, t]) => `${n}=${t}`).sort());
});
