/**
 * The files in packaging/ (docs/packaging.md): the systemd units pass `systemd-analyze verify`
 * (Debian's systemd package; it works without systemd as PID 1) and keep the choices the docs
 * explain; the firewalld service definitions load in firewalld (`firewall-offline-cmd` against a
 * configuration directory of our own) and open the product's default ports.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ROOT } from '../support/lab.js';
import { parseConfig } from '../../src/config/load.js';
import { buildProgram } from '../../src/cli/main.js';

/** Debian's python3 (with python3-firewall), not a pyenv shim that may come first on PATH. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const UNITS = join(ROOT, 'packaging/systemd');
const FIREWALLD = join(ROOT, 'packaging/firewalld');
const UNIT_NAMES = ['haoscar-agent.service', 'haoscar-guard.service', 'haoscar-server.service', 'haoscar-worker.service'];
/** Where the units expect the package's files, and the file of the checkout each one is. */
const INSTALLED = [
  { path: '/usr/bin/haoscar', file: join(ROOT, 'bin/haoscar.js') },
  { path: '/usr/lib/node_modules/ha-oscar/bin/haoscar-guard', file: join(ROOT, 'bin/haoscar-guard') },
];

/** A unit file's settings, section by section, each key with every value it is given. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    assert.ok(current && eq > 0, `a setting inside a section: ${line}`);
    const key = line.slice(0, eq);
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1)]);
  }
  return sections;
}

async function unit(name: string) {
  const s = parseUnit(await readFile(join(UNITS, name), 'utf8'));
  const get = (section: string, key: string) => s.get(section)?.get(key);
  return { s, get, one: (section: string, key: string) => get(section, key)?.at(-1) };
}

const systemdAnalyze = async (args: string[]) => execa('systemd-analyze', args, { reject: false, all: true, env: { SYSTEMD_LOG_COLOR: '0' } });
const hasSystemdAnalyze = existsSync('/usr/bin/systemd-analyze') || existsSync('/bin/systemd-analyze');
const NO_ANALYZE = !hasSystemdAnalyze && 'systemd-analyze is not installed (Debian package `systemd`; .ci/run installs it)';

describe('the systemd units', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'haoscar-units-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /**
   * `systemd-analyze verify` checks that each ExecStart= program exists (and --root does not
   * apply to that check in systemd 252), so the copies checked name the checkout's files instead
   * of the installed paths; the next test checks that those paths are the package's.
   */
  async function copiesForVerify(transform: (text: string) => string = (t) => t): Promise<string[]> {
    const files: string[] = [];
    for (const name of UNIT_NAMES) {
      let text = await readFile(join(UNITS, name), 'utf8');
      for (const i of INSTALLED) text = text.replaceAll(`${i.path} `, `${i.file} `);
      const file = join(dir, name);
      await writeFile(file, transform(text));
      files.push(file);
    }
    return files;
  }

  test('systemd-analyze verify finds nothing to say about any of them', { skip: NO_ANALYZE }, async () => {
    const result = await systemdAnalyze(['verify', ...(await copiesForVerify())]);
    assert.equal(result.all, '', 'no warning, no error');
    assert.equal(result.exitCode, 0);
  });

  test('…and the check does catch a mistake (an unknown key, a bad duration)', { skip: NO_ANALYZE }, async () => {
    const files = await copiesForVerify((t) => t.replace('WatchdogSec=10s', 'WatchdogSec=tenseconds\nWatchDogSec=10s'));
    const result = await systemdAnalyze(['verify', files[0]!]);
    // verify exits 0 on these: the words are what tells, hence the empty-output check above.
    assert.match(result.all, /Failed to parse sec value/);
    assert.match(result.all, /Unknown key 'WatchDogSec'/);
  });

  test('they run the package\'s files: haoscar (its agent, worker and server commands) and the lease guard', async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { name: string; bin: Record<string, string> };
    assert.equal(pkg.bin.haoscar, 'bin/haoscar.js', 'npm links /usr/bin/haoscar (or /usr/local/bin) to bin/haoscar.js');
    assert.ok(INSTALLED[1]!.path.includes(`/node_modules/${pkg.name}/bin/haoscar-guard`), 'the guard where npm install -g puts the package');
    for (const i of INSTALLED) assert.ok(existsSync(i.file), `${i.file} exists`);
    const commands = buildProgram().commands.map((c) => c.name());
    for (const [name, command] of [['haoscar-agent.service', 'agent'], ['haoscar-worker.service', 'worker'], ['haoscar-server.service', 'server']] as const) {
      const exec = (await unit(name)).one('Service', 'ExecStart')!;
      assert.ok(exec.startsWith(`/usr/bin/haoscar ${command}`), `${name}: ${exec}`);
      assert.ok(commands.includes(command), `haoscar has a ${command} command`);
    }
    assert.match((await unit('haoscar-guard.service')).one('Service', 'ExecStart')!, /^\/usr\/lib\/node_modules\/ha-oscar\/bin\/haoscar-guard \$\{HAOSCAR_GUARD_DIR\}\/\$\{HAOSCAR_NODE\}/);
  });

  test('readiness and the watchdog: Type=notify with NotifyAccess=all (systemd-notify is a child), the agent watched', async () => {
    for (const name of ['haoscar-agent.service', 'haoscar-worker.service', 'haoscar-server.service']) {
      const u = await unit(name);
      assert.equal(u.one('Service', 'Type'), 'notify', name);
      assert.equal(u.one('Service', 'NotifyAccess'), 'all', name);
      assert.deepEqual(u.get('Service', 'EnvironmentFile'), ['-/etc/default/haoscar', '-/etc/sysconfig/haoscar'], name);
      assert.equal(u.one('Service', 'Restart'), 'on-failure', name);
      assert.equal(u.one('Service', 'RestartPreventExitStatus'), '2 3', `${name}: usage and configuration errors are not restarted`);
      assert.equal(u.one('Service', 'StateDirectory'), 'haoscar', name);
    }
    const agent = await unit('haoscar-agent.service');
    assert.equal(agent.one('Service', 'WatchdogSec'), '10s');
    assert.equal(agent.one('Service', 'KillMode'), 'mixed', 'SIGTERM to the agent alone: it stops its groups in order');
    assert.match(agent.one('Unit', 'Wants')!, /haoscar-guard\.service/);
    assert.match(agent.one('Unit', 'After')!, /haoscar-guard\.service/);
    const guard = await unit('haoscar-guard.service');
    assert.equal(guard.one('Service', 'KillMode'), 'process');
    assert.equal(guard.one('Service', 'Restart'), 'always');
  });

  test('the agent is not sandboxed in a way that hides its mounts or limits what it starts', async () => {
    const agent = await unit('haoscar-agent.service');
    // Each would create a private mount namespace (filesystems it mounts invisible to the
    // machine) or be inherited by the services it starts (docs/packaging.md#hardening).
    const forbidden = [
      'PrivateNetwork', 'ProtectSystem', 'ProtectHome', 'PrivateTmp', 'PrivateDevices', 'PrivateMounts', 'ReadWritePaths', 'ReadOnlyPaths',
      'InaccessiblePaths', 'TemporaryFileSystem', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectControlGroups', 'ProtectProc',
      'ProtectClock', 'ProtectHostname', 'NoNewPrivileges', 'RestrictAddressFamilies', 'SystemCallFilter', 'MemoryDenyWriteExecute',
      'CapabilityBoundingSet', 'RestrictNamespaces', 'PrivateUsers', 'DynamicUser', 'User', 'IPAddressDeny',
    ];
    assert.deepEqual(forbidden.filter((k) => agent.get('Service', k) !== undefined), []);
  });

  test('systemd-analyze security --offline: the worker and the server sandboxed, the agent by design not', { skip: NO_ANALYZE }, async (t) => {
    const files = await copiesForVerify();
    const exposure: Record<string, number> = {};
    for (const file of files) {
      const result = await systemdAnalyze(['security', '--offline=true', '--no-pager', file]);
      const m = /Overall exposure level for \S+: ([\d.]+)/.exec(result.all);
      assert.ok(m, `an exposure level for ${file}: ${result.all.slice(-400)}`);
      exposure[file.split('/').pop()!] = Number(m[1]);
    }
    t.diagnostic(`exposure (0 safest, 10 unsafe): ${JSON.stringify(exposure)}`);
    assert.ok(exposure['haoscar-worker.service']! <= 3, 'the worker is sandboxed');
    assert.ok(exposure['haoscar-server.service']! <= 3, 'the server is sandboxed');
  });
});

describe('the firewall definitions', () => {
  const defaults = parseConfig('cluster: c\nnodes: [{ name: a, addresses: [10.0.0.1] }]\ngroups: []\n');
  const expected: Record<string, string[]> = {
    'haoscar.xml': [`${defaults.heartbeat.port}/udp`, `${defaults.sync.port}/tcp`],
    'haoscar-temporal.xml': [`${defaults.temporal.server.port}/tcp`, `${defaults.temporal.server.uiPort}/tcp`],
  };

  test('firewalld\'s own reader takes them (python3-firewall), with the configuration\'s default ports', async () => {
    assert.deepEqual((await readdir(FIREWALLD)).sort(), Object.keys(expected).sort());
    assert.deepEqual(expected['haoscar.xml'], ['694/udp', '8873/tcp']);
    assert.deepEqual(expected['haoscar-temporal.xml'], ['7233/tcp', '8233/tcp']);
    // The code firewalld and firewall-offline-cmd load service files with: well-formedness,
    // the schema, valid ports. A broken copy shows that it refuses what it should.
    const scratch = await mkdtemp(join(tmpdir(), 'haoscar-firewalld-'));
    try {
      await writeFile(join(scratch, 'broken.xml'), (await readFile(join(FIREWALLD, 'haoscar.xml'), 'utf8')).replace('port="694"', 'port="69x"'));
      const read = await execa(PYTHON, ['-c', [
        'import sys, json',
        'from firewall.core.io.service import service_reader',
        'from firewall.errors import FirewallError',
        'out = {}',
        'for d, f in zip(sys.argv[1::2], sys.argv[2::2]):',
        '    try: out[f] = [p + "/" + proto for p, proto in service_reader(f, d).ports]',
        '    except FirewallError as e: out[f] = str(e)',
        'print(json.dumps(out))',
      ].join('\n'), ...Object.keys(expected).flatMap((f) => [FIREWALLD, f]), scratch, 'broken.xml'], { reject: false, all: true });
      assert.equal(read.exitCode, 0, `python3-firewall is installed (.ci/run installs it): ${read.all}`);
      const got = JSON.parse(read.stdout) as Record<string, string[] | string>;
      for (const [file, ports] of Object.entries(expected)) assert.deepEqual(got[file], ports, file);
      assert.match(String(got['broken.xml']), /INVALID_PORT: '69x'/);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  });

  const offline = ['/usr/bin/firewall-offline-cmd', '/usr/sbin/firewall-offline-cmd'].find((p) => existsSync(p));
  // CI installs python3-firewall only: the firewalld package would start a firewall on a CI
  // machine booted with systemd, in the way of the lab's bridge.
  test('firewalld loads them (firewall-offline-cmd --check-config, against a configuration of our own)', { skip: !offline && 'firewall-offline-cmd is not installed (Debian package `firewalld`)' }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'haoscar-firewalld-'));
    try {
      await mkdir(join(dir, 'services'));
      if (existsSync('/etc/firewalld/firewalld.conf')) await copyFile('/etc/firewalld/firewalld.conf', join(dir, 'firewalld.conf'));
      for (const file of Object.keys(expected)) await copyFile(join(FIREWALLD, file), join(dir, 'services', file));
      const cmd = (args: string[]) => execa(offline!, [`--system-config=${dir}`, ...args], { reject: false, all: true });
      const check = await cmd(['--check-config']);
      assert.equal(check.exitCode, 0, check.all);
      for (const [file, ports] of Object.entries(expected)) {
        const info = await cmd([`--info-service=${file.replace(/\.xml$/, '')}`]);
        assert.equal(info.exitCode, 0, info.all);
        assert.match(info.stdout, new RegExp(`ports: ${ports.join(' ')}\\n`));
      }
      // The check is not a formality: a bad port is refused.
      await writeFile(join(dir, 'services', 'broken.xml'), (await readFile(join(FIREWALLD, 'haoscar.xml'), 'utf8')).replace('port="694"', 'port="69x"'));
      const bad = await cmd(['--check-config']);
      assert.notEqual(bad.exitCode, 0);
      assert.match(bad.all, /INVALID_PORT: '69x'/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
