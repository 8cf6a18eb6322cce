/**
 * The `postgresql` resource's pure parts (src/drivers/postgresql-commands.ts) as tables: the
 * configuration entry, connection strings and the settings file, pg_controldata's output, and
 * what a start, a stop and a rejoin do in which state. The driver itself is exercised against
 * real servers in test/lab/postgresql-replication.test.ts; here, only its stop against a
 * recording exec (a server the lease guard stopped meanwhile is stopped: the stop succeeds).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { PostgresqlResource } from '../../src/config/types.js';
import {
  INCLUDE_LINE,
  asUser,
  confString,
  conninfo,
  dataKind,
  includesManagedFile,
  managedSettings,
  parseControlData,
  pgCommands,
  primaryConninfo,
  quoteConninfoValue,
  rejoinPlan,
  startPlan,
  stopNow,
  type DataKind,
  type ServerState,
} from '../../src/drivers/postgresql-commands.js';
import { PostgresqlDriver, PostgresqlRejoinBusyError } from '../../src/drivers/postgresql.js';
import { ExecError, type Exec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { packageFor } from '../../src/distro/packages.js';
import { requiredTools } from '../../src/doctor/prerequisites.js';

const config = (resource: string) => `cluster: c1
nodes:
  - { name: a, addresses: [10.0.0.1] }
  - { name: b, addresses: [10.0.0.2] }
groups:
  - name: web
    resources:
      - { type: vip, name: ip, address: 10.0.0.100/24, interface: eth0 }
      - ${resource}
`;

function resourceOf(text: string): PostgresqlResource {
  const r = parseConfig(config(text)).groups[0]!.resources[1]!;
  assert.equal(r.type, 'postgresql');
  return r as PostgresqlResource;
}

function issuesOf(text: string): string[] {
  try {
    parseConfig(config(text));
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues.map((i) => `${i.path} (line ${i.line}): ${i.message}`);
  }
  return assert.fail('expected a ConfigError');
}

describe('the postgresql resource in haoscar.yaml', () => {
  it('fills in the defaults', () => {
    const r = resourceOf('{ type: postgresql, name: db, dataDir: /var/lib/postgresql/15/main, configDir: /etc/postgresql/15/main, primaryHost: 10.0.0.100, passFile: /etc/haoscar/pgpass }');
    assert.deepEqual({ ...r, check: r.check.type, healing: undefined }, {
      type: 'postgresql',
      name: 'db',
      dataDir: '/var/lib/postgresql/15/main',
      configDir: '/etc/postgresql/15/main',
      bin: '/usr/lib/postgresql/15/bin',
      user: 'postgres',
      port: 5432,
      socketDir: '/var/run/postgresql',
      logFile: '/var/log/postgresql/haoscar-postgresql.log',
      primaryHost: '10.0.0.100',
      replicationUser: 'replicator',
      passFile: '/etc/haoscar/pgpass',
      synchronous: true,
      timeoutMs: 60_000,
      rejoinTimeoutMs: 3_600_000,
      rejoinIntervalMs: 5_000,
      check: 'status',
      healing: undefined,
    });
  });

  it('takes synchronous: false and durations', () => {
    const r = resourceOf('{ type: postgresql, name: db, dataDir: /srv/pg, primaryHost: db-vip.example, synchronous: false, timeout: 20s, rejoinTimeout: 10m, rejoinInterval: 1s, port: 5433 }');
    assert.equal(r.synchronous, false);
    assert.equal(r.configDir, undefined);
    assert.deepEqual([r.timeoutMs, r.rejoinTimeoutMs, r.rejoinIntervalMs, r.port], [20_000, 600_000, 1_000, 5433]);
  });

  const bad: [string, string, RegExp][] = [
    ['no dataDir', '{ type: postgresql, name: db, primaryHost: 10.0.0.100 }', /resources\[1\]\.dataDir \(line 9\): (required: )?expected the data directory/],
    ['a relative dataDir', '{ type: postgresql, name: db, dataDir: pg, primaryHost: 10.0.0.100 }', /dataDir \(line 9\): expected the data directory \(an absolute path\)/],
    ['no primaryHost', '{ type: postgresql, name: db, dataDir: /srv/pg }', /primaryHost \(line 9\): (required: )?expected a host name or IP address/],
    ['a VIP with its prefix length', '{ type: postgresql, name: db, dataDir: /srv/pg, primaryHost: 10.0.0.100/24 }', /primaryHost \(line 9\): .*without its prefix length/],
    ['a host that is an option', '{ type: postgresql, name: db, dataDir: /srv/pg, primaryHost: -h }', /primaryHost/],
    ['a role with a quote', "{ type: postgresql, name: db, dataDir: /srv/pg, primaryHost: x, replicationUser: \"a'b\" }", /replicationUser \(line 9\): expected a PostgreSQL role name/],
    ['synchronous as text', '{ type: postgresql, name: db, dataDir: /srv/pg, primaryHost: x, synchronous: "yes" }', /synchronous \(line 9\): expected true or false/],
    ['a port out of range', '{ type: postgresql, name: db, dataDir: /srv/pg, primaryHost: x, port: 70000 }', /port \(line 9\): expected an integer 1-65535/],
    ['an unknown key', '{ type: postgresql, name: db, dataDir: /srv/pg, primaryHost: x, standby: true }', /standby/],
  ];
  for (const [what, text, expected] of bad) {
    it(`refuses ${what}, naming the field and its line`, () => {
      const issues = issuesOf(text);
      assert.ok(issues.some((i) => expected.test(i)), issues.join('\n'));
    });
  }
});

const R = resourceOf('{ type: postgresql, name: db, dataDir: /srv/pg/data, primaryHost: 10.0.0.100, passFile: /etc/haoscar/pgpass, timeout: 30s }');

describe('connection strings and the settings file', () => {
  const quoting: [string, string][] = [
    ['10.0.0.100', '10.0.0.100'],
    ['', "''"],
    ['a b', "'a b'"],
    ["it's", "'it\\'s'"],
    ['back\\slash', "'back\\\\slash'"],
  ];
  for (const [value, quoted] of quoting) it(`libpq value ${JSON.stringify(value)} is written ${quoted}`, () => assert.equal(quoteConninfoValue(value), quoted));

  it('leaves out undefined keywords', () => assert.equal(conninfo({ host: 'h', passfile: undefined, port: 5432 }), 'host=h port=5432'));

  it('the standby connects to the primary host as the replication role, named after its node', () => {
    assert.equal(primaryConninfo(R, 'b'), 'host=10.0.0.100 port=5432 user=replicator passfile=/etc/haoscar/pgpass application_name=b connect_timeout=5');
    assert.equal(primaryConninfo(R, 'b', { dbname: 'postgres', connectTimeoutS: 3 }), 'host=10.0.0.100 port=5432 user=replicator dbname=postgres passfile=/etc/haoscar/pgpass application_name=b connect_timeout=3');
  });

  const strings: [string, string][] = [
    ['plain', "'plain'"],
    ["host='x y'", "'host=''x y'''"],
    ['a\\b', "'a\\\\b'"],
  ];
  for (const [value, quoted] of strings) it(`postgresql.conf value ${JSON.stringify(value)} is written ${quoted}`, () => assert.equal(confString(value), quoted));

  it('synchronous: a commit waits for any standby', () => {
    const text = managedSettings(R, 'a');
    assert.match(text, /^synchronous_standby_names = '\*'$/m);
    assert.match(text, /^synchronous_commit = on$/m);
    assert.match(text, /^primary_conninfo = 'host=10\.0\.0\.100 port=5432 user=replicator passfile=\/etc\/haoscar\/pgpass application_name=a connect_timeout=5'$/m);
    assert.match(text, /^wal_log_hints = on$/m);
    assert.match(text, /^hot_standby = on$/m);
    assert.match(text, /^port = 5432$/m);
    assert.match(text, /^unix_socket_directories = '\/var\/run\/postgresql'$/m);
  });

  it('asynchronous: no standby is waited for', () => {
    assert.match(managedSettings({ ...R, synchronous: false }, 'a'), /^synchronous_standby_names = ''$/m);
  });

  const includes: [string, string, boolean][] = [
    ['the line the driver appends', `listen_addresses = '*'\n${INCLUDE_LINE}\n`, true],
    ['an include', "include 'haoscar.conf'\n", true],
    ['an include with =', "  include = 'haoscar.conf'\n", true],
    ['a commented-out include', "#include_if_exists = 'haoscar.conf'\n", false],
    ['another file', "include_if_exists = 'haoscar.conf.bak'\n", false],
    ['nothing', "port = 5432\n", false],
  ];
  for (const [what, text, yes] of includes) it(`postgresql.conf with ${what} ${yes ? 'includes' : 'does not include'} the settings file`, () => assert.equal(includesManagedFile(text), yes));
});

describe('pg_controldata', () => {
  it('reads the state and the timeline', () => {
    const out = "pg_control version number:            1300\nDatabase cluster state:               shut down in recovery\nLatest checkpoint's TimeLineID:       3\nLatest checkpoint's PrevTimeLineID:   3\n";
    assert.deepEqual(parseControlData(out), { state: 'shut down in recovery', timeline: 3 });
  });
  it('says what it could not read', () => assert.throws(() => parseControlData('pg_controldata: fatal: could not open file'), /no "Database cluster state" line: pg_controldata: fatal/));
});

describe('what the data directory holds', () => {
  const base = { pgVersion: true, backupLabel: false, standbySignal: false };
  const table: [string, Parameters<typeof dataKind>[0], DataKind][] = [
    ['no PG_VERSION', { ...base, pgVersion: false }, 'none'],
    ['a base backup not started yet', { ...base, backupLabel: true, control: { state: 'in production', timeline: 1 } }, 'backup'],
    ['a primary shut down', { ...base, control: { state: 'shut down', timeline: 1 } }, 'primary'],
    ['a primary that crashed', { ...base, control: { state: 'in production', timeline: 2 } }, 'primary'],
    ['a primary that crashed with a standby.signal written by hand', { ...base, standbySignal: true, control: { state: 'in production', timeline: 2 } }, 'primary'],
    ['a standby shut down', { ...base, control: { state: 'shut down in recovery', timeline: 2 } }, 'standby'],
    ['a standby that crashed, or after pg_rewind', { ...base, control: { state: 'in archive recovery', timeline: 2 } }, 'standby'],
    ['a state it does not know, with standby.signal', { ...base, standbySignal: true, control: { state: 'starting up', timeline: 2 } }, 'standby'],
    ['a state it does not know, without', { ...base, control: { state: 'starting up', timeline: 2 } }, 'primary'],
  ];
  for (const [what, local, kind] of table) it(`${what}: ${kind}`, () => assert.equal(dataKind(local), kind));
});

describe('what a start, a stop and a rejoin do', () => {
  const starts: [ServerState, DataKind, ReturnType<typeof startPlan>][] = [
    ['primary', 'primary', 'none'],
    ['standby', 'standby', 'promote'],
    ['starting', 'standby', 'wait'],
    ['down', 'primary', 'start-primary'],
    ['down', 'standby', 'start-standby-then-promote'],
    ['down', 'backup', 'start-standby-then-promote'],
    ['down', 'none', 'refuse-no-data'],
  ];
  for (const [server, data, step] of starts) it(`start, server ${server}, data ${data}: ${step}`, () => assert.equal(startPlan(server, data), step));

  const stops: [ServerState, ReturnType<typeof stopNow>][] = [
    ['primary', 'stop-server'],
    // It may be a primary in crash recovery, about to take writes.
    ['starting', 'stop-server'],
    ['standby', 'none'],
    ['down', 'none'],
  ];
  for (const [server, now] of stops) it(`stop, server ${server}: ${now} at once`, () => assert.equal(stopNow(server), now));

  const rejoins: [ServerState, DataKind, ReturnType<typeof rejoinPlan>][] = [
    ['standby', 'standby', { step: 'done', needsPrimary: false }],
    ['starting', 'standby', { step: 'wait', needsPrimary: false }],
    ['primary', 'primary', { step: 'wait', needsPrimary: false }],
    ['down', 'none', { step: 'base-backup', needsPrimary: true }],
    ['down', 'primary', { step: 'rewind', needsPrimary: true }],
    ['down', 'standby', { step: 'start-standby', needsPrimary: false }],
    ['down', 'backup', { step: 'start-standby', needsPrimary: false }],
  ];
  for (const [server, data, plan] of rejoins) it(`rejoin, server ${server}, data ${data}: ${plan.step}${plan.needsPrimary ? ' once the primary answers' : ''}`, () => assert.deepEqual(rejoinPlan(server, data), plan));
});

describe('commands', () => {
  it('run as the OS user through runuser when the agent is root', () => {
    assert.deepEqual(asUser('postgres', ['/x/pg_ctl', 'status'], { uid: 0, user: 'root' }), ['runuser', '-u', 'postgres', '--', '/x/pg_ctl', 'status']);
    assert.deepEqual(asUser('postgres', ['/x/pg_ctl', 'status'], { uid: 101, user: 'postgres' }), ['/x/pg_ctl', 'status']);
    assert.throws(() => asUser('postgres', ['/x/pg_ctl'], { uid: 1000, user: 'alice' }), /runs as alice.*run it as root \(or as postgres\)/);
  });

  it('pg_ctl works on the configuration directory, the rewind and backup on the data directory', () => {
    const debian = { ...R, dataDir: '/var/lib/postgresql/15/main', configDir: '/etc/postgresql/15/main' };
    assert.deepEqual(pgCommands.start(debian), ['/usr/lib/postgresql/15/bin/pg_ctl', 'start', '-D', '/etc/postgresql/15/main', '-l', '/var/log/postgresql/haoscar-postgresql.log', '-w', '-t', '30']);
    assert.deepEqual(pgCommands.stop(debian, 'fast'), ['/usr/lib/postgresql/15/bin/pg_ctl', 'stop', '-D', '/etc/postgresql/15/main', '-m', 'fast', '-w', '-t', '30']);
    assert.deepEqual(pgCommands.rewind(debian, 'b').slice(0, 4), ['/usr/lib/postgresql/15/bin/pg_rewind', '--target-pgdata', '/var/lib/postgresql/15/main', '--source-server']);
    assert.match(pgCommands.rewind(debian, 'b')[4]!, /dbname=postgres/);
    assert.deepEqual(pgCommands.rewind(debian, 'b').slice(5), ['--progress', '--config-file', '/etc/postgresql/15/main/postgresql.conf']);
    assert.deepEqual(pgCommands.rewind(R, 'b').slice(5), ['--progress']);
    assert.deepEqual(pgCommands.baseBackup(debian, 'b').slice(0, 3), ['/usr/lib/postgresql/15/bin/pg_basebackup', '-D', '/var/lib/postgresql/15/main']);
  });
});

describe('the lease guard\'s release', () => {
  const B = '/usr/lib/postgresql/15/bin';
  const driver = new PostgresqlDriver(R, { exec: async () => ({ exitCode: 0, stdout: '', stderr: '' }), logger: silentLogger, node: 'a', runningAs: { uid: 0, user: 'root' } });
  const [action] = driver.guardActions();
  it('is pg_ctl stop -m immediate as postgres, through a constant script', () => {
    assert.ok(action?.kind === 'run');
    assert.deepEqual(action.argv.slice(0, 6), ['runuser', '-u', 'postgres', '--', 'sh', '-c']);
    assert.deepEqual(action.argv.slice(7), ['haoscar-pg-stop', `${B}/pg_ctl`, '/srv/pg/data', '30']);
    assert.equal(action.timeoutMs, 35_000);
  });

  // The script itself, with a pg_ctl double: 'status' exits as told, 'stop' says it ran.
  const script = (action?.kind === 'run' ? action.argv[6] : '')!;
  const table: [string, number, number, string][] = [
    ['no server running (status 3): released already', 3, 0, ''],
    ['no data directory (status 4): released already', 4, 0, ''],
    ['a server running (status 0): stopped immediately', 0, 0, 'stop -D /srv/pg/data -m immediate -w -t 30'],
  ];
  for (const [what, status, exit, said] of table) {
    it(what, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'haoscar-pg-guard-'));
      try {
        const fake = join(dir, 'pg_ctl');
        await writeFile(fake, `#!/bin/sh\nif [ "$1" = status ]; then exit ${status}; fi\necho "$@"\n`, { mode: 0o755 });
        const { execa } = await import('execa');
        const r = await execa('sh', ['-c', script, 'haoscar-pg-stop', fake, '/srv/pg/data', '30'], { reject: false });
        assert.equal(r.exitCode, exit);
        assert.equal(r.stdout, said);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('doctor', () => {
  it('names the programs a node needs and, on Debian, their package', () => {
    const cfg = parseConfig(config('{ type: postgresql, name: db, dataDir: /srv/pg, primaryHost: 10.0.0.100 }'));
    const tools = requiredTools(cfg, 'a', { embeddedServer: false }).map((t) => t.tool).filter((t) => t.includes('postgresql') || t === 'runuser');
    assert.deepEqual(tools, ['pg_ctl', 'pg_controldata', 'pg_rewind', 'pg_basebackup', 'psql'].map((p) => `/usr/lib/postgresql/15/bin/${p}`).concat('runuser'));
    assert.equal(packageFor('/usr/lib/postgresql/15/bin/pg_rewind', { family: 'debian', flavour: 'debian' }), 'postgresql-15');
    assert.equal(packageFor('/usr/lib/postgresql/15/bin/pg_rewind', { family: 'rhel', flavour: 'rhel' }), undefined);
    assert.equal(packageFor('runuser', { family: 'debian', flavour: 'debian' }), 'util-linux');
  });
});

describe('the driver\'s stop', () => {
  /** A server the lease guard stops between the driver's look and its pg_ctl stop. */
  function guardRacingExec(): { exec: Exec; ran: string[][] } {
    const ran: string[][] = [];
    let running = true;
    const exec: Exec = async (file, args) => {
      const argv = [file, ...args];
      ran.push(argv);
      const tool = args[3] ?? '';
      if (tool.endsWith('pg_ctl') && args[4] === 'status') return { exitCode: running ? 0 : 3, stdout: '', stderr: '' };
      if (tool.endsWith('psql')) return { exitCode: 0, stdout: 'f|', stderr: '' };
      if (tool.endsWith('pg_ctl') && args[4] === 'stop') {
        running = false;
        throw new ExecError(argv, 1, 'pg_ctl: PID file "/srv/pg/data/postmaster.pid" does not exist\nIs server running?', false);
      }
      throw new Error(`unexpected ${argv.join(' ')}`);
    };
    return { exec, ran };
  }

  it('succeeds when the server was stopped by someone else meanwhile (stopped is what a stop wants)', async () => {
    const { exec, ran } = guardRacingExec();
    const driver = new PostgresqlDriver({ ...R, rejoinIntervalMs: 60_000 }, { exec, logger: silentLogger, node: 'a', runningAs: { uid: 0, user: 'root' } });
    await driver.stop();
    await driver.close();
    assert.deepEqual(ran.filter((a) => a[5] === 'stop').map((a) => a.slice(4)), [['/usr/lib/postgresql/15/bin/pg_ctl', 'stop', '-D', '/srv/pg/data', '-m', 'fast', '-w', '-t', '30']]);
  });

  it('fails when the server still runs after fast and immediate shutdowns (a failed stop is not a stop)', async () => {
    const exec: Exec = async (file, args) => {
      const argv = [file, ...args];
      if (args[4] === 'status') return { exitCode: 0, stdout: '', stderr: '' };
      if (args[3]?.endsWith('psql')) return { exitCode: 0, stdout: 'f|', stderr: '' };
      throw new ExecError(argv, 1, 'pg_ctl: server does not shut down', false);
    };
    const driver = new PostgresqlDriver(R, { exec, logger: silentLogger, node: 'a', runningAs: { uid: 0, user: 'root' } });
    await assert.rejects(driver.stop(), /stop the server \(immediate\).*server does not shut down/);
    await driver.close();
  });

  it('while a rewind runs, a start is refused at once and a stop returns at once (neither waits for it)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'haoscar-pg-unit-'));
    // The driver's rejoin timer does not keep a process alive (the agent does): this test does.
    const alive = setInterval(() => undefined, 1_000);
    try {
      // An old primary's data directory (what pg_controldata says is the fake's).
      await writeFile(join(dir, 'PG_VERSION'), '15\n');
      await writeFile(join(dir, 'postgresql.conf'), `${INCLUDE_LINE}\n`);
      let release!: () => void;
      const rewinding = new Promise<void>((resolve) => (release = resolve));
      let rewindStarted!: () => void;
      const started = new Promise<void>((resolve) => (rewindStarted = resolve));
      const ran: string[] = [];
      const exec: Exec = async (_file, args) => {
        const tool = (args[3] ?? '').split('/').pop()!;
        const sub = args[4];
        ran.push(`${tool}${tool === 'pg_ctl' ? ` ${sub}` : ''}`);
        if (tool === 'pg_ctl' && sub === 'status') return { exitCode: 3, stdout: '', stderr: '' };
        if (tool === 'pg_controldata') return { exitCode: 0, stdout: 'Database cluster state:               in production\n', stderr: '' };
        if (tool === 'psql') return { exitCode: 0, stdout: 'f', stderr: '' };
        if (tool === 'pg_rewind') {
          rewindStarted();
          await rewinding;
        }
        return { exitCode: 0, stdout: '', stderr: '' };
      };
      const driver = new PostgresqlDriver({ ...R, dataDir: dir, rejoinIntervalMs: 60_000 }, { exec, logger: silentLogger, node: 'b', runningAs: { uid: 0, user: 'root' } });
      await driver.stop();
      await started;
      await assert.rejects(driver.start(), (err: unknown) => err instanceof PostgresqlRejoinBusyError && /a rewind is rewriting its data directory/.test(err.message));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([driver.stop(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('the stop waited for the rewind')), 2_000)))]);
      clearTimeout(timer);
      assert.ok(!ran.includes('pg_ctl stop'), 'nothing to stop: the server is down');
      release();
      await waitUntil(() => ran.includes('pg_ctl start'));
      assert.deepEqual(ran.filter((c) => ['pg_rewind', 'touch', 'pg_ctl start'].includes(c)), ['pg_rewind', 'touch', 'pg_ctl start'], 'rewound, then started as a standby');
      await driver.close();
    } finally {
      clearInterval(alive);
      await rm(dir, { recursive: true, force: true });
    }
  });
});

async function waitUntil(ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
