/**
 * docs/migrating.md (issue 12): every haoscar.yaml it shows is a fixture under
 * test/fixtures/migrating/ (the block is the fixture, or its end from a top-level key on), and
 * every fixture is valid — through the configuration loader, with the translation it claims
 * (resource order, preferred node, fail-back, heal limits), through `haoscar validate` as a user
 * runs it, and, for the OCF variant, against the meta-data of the real resource agents. Every
 * `haoscar …` command the page names is a command of the CLI with options it has.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { ConfigError, loadConfig, parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import { ocfParamProblems } from '../../src/config/ocf-check.js';
import { readOcfMetadata } from '../../src/drivers/ocf.js';
import { buildProgram } from '../../src/cli/main.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { haoscarCli } from '../support/lab.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOC = join(ROOT, 'docs/migrating.md');
const FIXTURES = 'test/fixtures/migrating';

const doc = await readFile(DOC, 'utf8');
const fixtureNames = (await readdir(join(ROOT, FIXTURES))).filter((f) => f.endsWith('.yaml')).sort();
const fixtures = new Map(await Promise.all(fixtureNames.map(async (f) => [f, await readFile(join(ROOT, FIXTURES, f), 'utf8')] as const)));

/** Each ```yaml block of the page, with the fixture named in the `<!-- fixture: … -->` line above it. */
function yamlBlocks(text: string): { fixture?: string; body: string; line: number }[] {
  const blocks: { fixture?: string; body: string; line: number }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== '```yaml') continue;
    const end = lines.findIndex((l, j) => j > i && l.trim() === '```');
    assert.ok(end > i, `docs/migrating.md line ${i + 1}: an unclosed yaml block`);
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const marker = k >= 0 ? /^<!-- fixture: (\S+) -->$/.exec(lines[k]!.trim()) : null;
    blocks.push({ fixture: marker?.[1], body: `${lines.slice(i + 1, end).join('\n')}\n`, line: i + 1 });
    i = end;
  }
  return blocks;
}

/** A fixture through the loader `haoscar validate` and `haoscar agent` use. */
const loaded = new Map(await Promise.all(fixtureNames.map(async (f) => [f, await loadConfig(join(ROOT, FIXTURES, f)).catch((err: unknown) => err)] as const)));
function load(name: string): Config {
  const config = loaded.get(name);
  assert.ok(config !== undefined && !(config instanceof Error), `${FIXTURES}/${name}: ${config instanceof Error ? config.message : 'no such fixture'}`);
  return config as Config;
}
const kinds = (c: Config, group: string) => c.groups.find((g) => g.name === group)!.resources.map((r) => `${r.type} ${r.name}`);

test('every yaml block of docs/migrating.md is a fixture (or its end from a top-level key on), and every fixture is shown', () => {
  const blocks = yamlBlocks(doc);
  assert.ok(blocks.length >= 4, `the page shows its configurations (found ${blocks.length} yaml blocks)`);
  const shown = new Set<string>();
  for (const b of blocks) {
    assert.ok(b.fixture, `docs/migrating.md line ${b.line}: a yaml block without a <!-- fixture: ${FIXTURES}/NAME.yaml --> line above it (every configuration on the page is validated)`);
    assert.ok(b.fixture.startsWith(`${FIXTURES}/`), `line ${b.line}: ${b.fixture} is not under ${FIXTURES}`);
    const name = b.fixture.slice(FIXTURES.length + 1);
    const text = fixtures.get(name);
    assert.ok(text !== undefined, `line ${b.line}: no fixture ${b.fixture}`);
    // The whole file, or the file from one of its top-level keys to the end (a section shown alone).
    const from = text.split('\n').findIndex((l) => l === b.body.split('\n')[0] && /^[a-z]/.test(l));
    assert.ok(from >= 0, `line ${b.line}: the block's first line is not a top-level line of ${b.fixture}`);
    assert.equal(b.body, text.split('\n').slice(from).join('\n'), `line ${b.line}: the block differs from ${b.fixture} (from its line ${from + 1} on)`);
    shown.add(name);
  }
  assert.deepEqual([...shown].sort(), fixtureNames, 'every fixture is shown on the page');
});

test('each fixture loads and says what the page says it does', () => {
  for (const f of fixtureNames) load(f);
  const pacemaker = load('pacemaker.yaml');
  const web = pacemaker.groups.find((g) => g.name === 'web')!;
  assert.deepEqual(kinds(pacemaker, 'web'), ['filesystem web-fs', 'vip web-ip', 'service web-server'], 'the group\'s order: web-fs, web-ip, web-server');
  assert.deepEqual(web.nodes, ['alpha', 'beta'], 'alpha preferred');
  assert.equal(web.failback.policy, 'manual', 'stickiness above the location score: no fail-back');
  // migration-threshold=3: two failures are recovered in place, the third moves the group.
  assert.deepEqual(web.resources.map((r) => [r.healing.maxRestarts, r.healing.windowMs]), [[2, 600_000], [2, 600_000], [2, 600_000]]);
  assert.deepEqual(pacemaker.nodes.map((n) => [n.name, n.fence?.command[0], n.fence?.params.ip, n.fence?.action]), [
    ['alpha', '/usr/sbin/fence_ipmilan', '10.0.1.11', 'off'],
    ['beta', '/usr/sbin/fence_ipmilan', '10.0.1.12', 'off'],
  ]);
  assert.deepEqual(pacemaker.alerts.map((a) => [a.name, a.target, a.recipients]), [['logfile', { type: 'command', path: '/var/lib/pacemaker/alert_file.sh' }, ['/var/log/pcmk-alerts.log']]]);

  const ocf = load('pacemaker-ocf.yaml');
  assert.deepEqual(kinds(ocf, 'web'), ['ocf web-fs', 'ocf web-ip', 'ocf web-server'], 'the same group with the agents kept');
  assert.deepEqual(ocf.nodes, pacemaker.nodes, 'the OCF variant changes the resources only');

  const heartbeat = load('heartbeat.yaml');
  const db = heartbeat.groups.find((g) => g.name === 'db')!;
  assert.deepEqual(kinds(heartbeat, 'db'), ['drbd db-disk', 'filesystem db-fs', 'vip db-ip', 'service postgres'], 'left to right, as the haresources line');
  assert.deepEqual(db.nodes, ['alpha', 'beta']);
  assert.deepEqual(db.failback, { policy: 'auto', stableForMs: 60_000, stickinessMs: 600_000 }, 'auto_failback on');
  assert.deepEqual([heartbeat.heartbeat.port, heartbeat.heartbeat.intervalMs, heartbeat.heartbeat.deadtimeMs], [694, 150, 600]);
  assert.deepEqual(heartbeat.nodes.map((n) => n.addresses.length), [2, 2], 'bcast on two interfaces: two links');

  const keepalived = load('keepalived.yaml');
  const edge = keepalived.groups.find((g) => g.name === 'web')!;
  assert.deepEqual(edge.nodes, ['alpha', 'beta'], 'no nodes list: by priority, 150 before 100');
  assert.equal(edge.failback.policy, 'manual', 'nopreempt');
  assert.deepEqual(kinds(keepalived, 'web'), ['filesystem www-fs', 'service nginx', 'vip web-ip'], 'the VIP last: it comes up once nginx answers');
  const nginx = edge.resources.find((r) => r.name === 'nginx')!;
  assert.deepEqual([nginx.check.type, nginx.check.intervalMs, nginx.check.timeoutMs, nginx.check.rise, nginx.check.fall], ['http', 2000, 1000, 2, 3], 'vrrp_script chk_web: interval 2, timeout 1, rise 2, fall 3');
});

test('the loader is not lenient: a misspelt key in a fixture is refused with its path', () => {
  const broken = fixtures.get('pacemaker.yaml')!.replace('maxRestarts: 2', 'maxRestart: 2');
  assert.notEqual(broken, fixtures.get('pacemaker.yaml'));
  assert.throws(() => parseConfig(broken, 'broken.yaml'), (err: unknown) => err instanceof ConfigError && err.issues.some((i) => i.path === 'defaults.healing.maxRestart' && /unknown key/.test(i.message)));
});

test('the OCF variant: every agent is installed and takes the parameters given, as Pacemaker passed them', async () => {
  assert.ok(existsSync('/usr/lib/ocf/resource.d/heartbeat/IPaddr2'), 'resource-agents is not installed (.ci/run installs it)');
  const exec = createExec(silentLogger);
  const resources = load('pacemaker-ocf.yaml').groups.flatMap((g) => g.resources).filter((r) => r.type === 'ocf');
  assert.equal(resources.length, 3);
  for (const r of resources) {
    const metadata = await readOcfMetadata(exec, r);
    assert.deepEqual(ocfParamProblems(r, metadata), [], `${r.name} (${r.agent})`);
  }
});

test('haoscar validate, as a user runs it, accepts the Pacemaker translation', async () => {
  // The other fixtures go through the same loader above (loadConfig is what the command runs);
  // one start of the command (2-3 s) shows the path a user takes. --no-agents: the OCF agents'
  // validate-all would look for this machine's eth0 and httpd.
  const run = await haoscarCli('validate', '--no-agents', join(ROOT, FIXTURES, 'pacemaker.yaml'));
  assert.equal(run.exitCode, 0, run.stderr);
  assert.match(run.stdout, /pacemaker\.yaml: valid — cluster 'web-prod', 2 node\(s\), 1 group\(s\), 3 resource\(s\)/);
  assert.match(run.stdout, /group web on alpha > beta/);
});

/** Splits a command line as a shell would for the simple quoting the page uses. */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

/** Every `haoscar …` the page names: in inline code, and on the lines of its sh blocks. */
function haoscarCommands(text: string): string[] {
  const found: string[] = [];
  for (const m of text.matchAll(/`((?:sudo )?haoscar [^`]+)`/g)) found.push(m[1]!);
  for (const block of text.matchAll(/```(?:sh|console)\n([\s\S]*?)```/g)) {
    for (const raw of block[1]!.split('\n')) {
      const line = raw.replace(/^\$ /, '').replace(/\s+#.*$/, '').trim();
      if (/^(sudo )?haoscar /.test(line)) found.push(line);
    }
  }
  return found.map((c) => c.replace(/^sudo /, ''));
}

test('every haoscar command the page names exists, with the options it is given', () => {
  const commands = haoscarCommands(doc);
  assert.ok(commands.length >= 15, `found ${commands.length} haoscar commands on the page`);
  for (const line of commands) {
    const [, ...args] = words(line);
    let command: Command = buildProgram();
    // The command, then its subcommands (`history show`, `sync status`) as commander finds them.
    const name = args.shift();
    const top = command.commands.find((c) => c.name() === name);
    assert.ok(top, `${line}: haoscar has no command '${name}' (it has ${command.commands.map((c) => c.name()).join(', ')})`);
    command = top;
    for (let sub = command.commands.find((c) => c.name() === args[0]); sub; sub = command.commands.find((c) => c.name() === args[0])) {
      command = sub;
      args.shift();
    }
    const parsed = command.parseOptions(args);
    assert.deepEqual(parsed.unknown, [], `${line}: options haoscar ${command.name()} does not have`);
  }
});
