/**
 * haoscar.yaml: valid files parse to exactly the expected normalised config; invalid files
 * report every problem, each with its path, a clear message and a line.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { CHECK_DEFAULTS, ConfigError, HEALING_DEFAULTS, formatIssues, formatPath, loadConfig, parseConfig } from '../../src/config/load.js';
import type { Config, HealingPolicy, Resource } from '../../src/config/types.js';

/** Strips the common indentation so that YAML can be written indented inside the tables. */
function yaml(text: string): string {
  const lines = text.replace(/^\n/, '').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

const HEAD = yaml(`
  cluster: c1
  nodes:
    - name: a
      addresses: [10.0.0.1]
`);

/** A file with one group `g` holding the given resources (YAML list items, any indentation). */
function withResources(resources: string, groupExtra = ''): string {
  const body = yaml(resources)
    .split('\n')
    .map((l) => (l === '' ? l : `      ${l}`))
    .join('\n');
  const extra = groupExtra === '' ? '' : `${yaml(groupExtra).split('\n').map((l) => (l === '' ? l : `    ${l}`)).join('\n')}\n`;
  return `${HEAD}groups:\n  - name: g\n${extra}    resources:\n${body}\n`;
}

const SYSTEMD = yaml(`
  - type: service
    name: db
    driver: systemd
    unit: postgresql.service
`);

/** A systemd service `db` with the given check. */
function withCheck(check: string): string {
  const body = yaml(check).split('\n').map((l) => (l === '' ? l : `    ${l}`)).join('\n');
  return withResources(`${SYSTEMD}  check:\n${body}`);
}

const first = (c: Config): Resource => c.groups[0]!.resources[0]!;
const healing = (over: Partial<Omit<HealingPolicy, 'backoff'>> & { backoff?: Partial<HealingPolicy['backoff']> } = {}): HealingPolicy => ({
  ...HEALING_DEFAULTS,
  ...over,
  backoff: { ...HEALING_DEFAULTS.backoff, ...over.backoff },
});

interface ValidCase {
  name: string;
  text: string;
  expect: (c: Config) => void;
}

const VALID: ValidCase[] = [
  {
    name: 'temporal.address: a list of frontends of one Temporal cluster, tried in order',
    text: `${HEAD}temporal: { address: [10.0.0.5:7233, "10.0.0.5:7333", temporal.example.internal:7233] }\n`,
    expect: (c) => {
      assert.deepEqual(c.temporal.frontends, ['10.0.0.5:7233', '10.0.0.5:7333', 'temporal.example.internal:7233']);
      assert.equal(c.temporal.address, '10.0.0.5:7233');
    },
  },
  {
    name: 'temporal.address: one frontend',
    text: `${HEAD}temporal: { address: temporal.example.internal:7233 }\n`,
    expect: (c) => assert.deepEqual([c.temporal.address, c.temporal.frontends], ['temporal.example.internal:7233', ['temporal.example.internal:7233']]),
  },
  {
    name: 'minimal file: every default resolved',
    text: HEAD,
    expect: (c) =>
      assert.deepEqual(c, {
        cluster: 'c1',
        temporal: {
          address: '127.0.0.1:7233',
          frontends: ['127.0.0.1:7233'],
          namespace: 'default',
          tls: false,
          server: { dataDir: '/var/lib/haoscar/temporal', ip: '127.0.0.1', port: 7233, uiPort: 8233 },
        },
        agent: { stateDir: '/var/lib/haoscar', logLevel: 'info', maxCachedWorkflows: 100, localHealAfterMs: 5000, workflows: true, metrics: { temporalSdk: true } },
        heartbeat: { port: 694, intervalMs: 150, deadtimeMs: 600, secretFile: '/etc/haoscar/authkey', acceptSecretFiles: [] },
        lease: { ttlMs: 600, marginMs: 100 },
        guard: { enabled: true },
        failover: { verifyTimeoutMs: 300 },
        sync: { transport: 'daemon', port: 8873, rsync: '/usr/bin/rsync', keepBackups: 5, ssh: { user: 'root', identityFile: '/etc/haoscar/sync_ed25519', knownHostsFile: '/etc/haoscar/known_hosts' } },
        clone: { include: ['/'], exclude: [], checksumSample: 200, sshPort: 22 },
        nodes: [{ name: 'a', addresses: ['10.0.0.1'], priority: 0 }],
        groups: [],
        alerts: [],
      }),
  },
  {
    name: 'heartbeat, lease, failover, a fenced node, vip and command resources',
    text: yaml(`
      cluster: c1
      heartbeat: { port: 7694, interval: 50ms, deadtime: 250ms, secretFile: /etc/k }
      lease: { ttl: 300ms, margin: 80ms }
      failover: { verifyTimeout: 200ms }
      nodes:
        - name: a
          addresses: [10.0.0.1, 192.168.0.1]
          fence: { command: [/usr/sbin/fence_ipmilan], params: { ip: 10.1.0.1, password: secret } }
      groups:
        - name: g
          resources:
            - { type: vip, name: ip, address: 10.0.0.100/24, interface: eth0 }
            - { type: command, name: c, start: [/bin/s, start], stop: [/bin/s, stop], monitor: [/bin/s, status], timeout: 5s }
    `),
    expect: (c) => {
      assert.deepEqual(c.heartbeat, { port: 7694, intervalMs: 50, deadtimeMs: 250, secretFile: '/etc/k', acceptSecretFiles: [] });
      assert.deepEqual(c.lease, { ttlMs: 300, marginMs: 80 });
      assert.deepEqual(c.failover, { verifyTimeoutMs: 200 });
      assert.deepEqual(c.nodes[0]!.fence, { command: ['/usr/sbin/fence_ipmilan'], params: { ip: '10.1.0.1', password: 'secret' }, action: 'off', timeoutMs: 60_000 });
      const [vip, cmd] = c.groups[0]!.resources;
      assert.deepEqual(vip, { type: 'vip', name: 'ip', address: '10.0.0.100/24', interface: 'eth0', arpCount: 3, check: { type: 'status', ...CHECK_DEFAULTS }, healing: HEALING_DEFAULTS });
      assert.ok(cmd?.type === 'command' && cmd.timeoutMs === 5000 && cmd.check.type === 'status');
    },
  },
  {
    name: 'file sets, fail-back, sync transport, drbd and filesystem resources',
    text: yaml(`
      cluster: c1
      sync: { transport: ssh, port: 9873, keepBackups: 12, ssh: { user: sync, identityFile: /etc/k/id } }
      nodes:
        - { name: a, addresses: [10.0.0.1] }
        - { name: b, addresses: [10.0.0.2] }
      groups:
        - name: g
          fileSets:
            - { name: www, paths: [/srv/www, /srv/conf], excludes: ['*.tmp'], bwlimit: 2048, batch: 100ms }
            - { name: logs, paths: [/srv/logs], continuous: false, delete: false, verifyEvery: 1m, checksum: true }
          failback: { policy: auto, stableFor: 30s }
          failover: { maxSyncLag: 3 }
          resources:
            - { type: drbd, name: disk, resource: r0 }
            - { type: filesystem, name: fs, device: /dev/drbd0, mountpoint: /var/lib/db, fstype: ext4, options: [noatime], fsck: true }
    `),
    expect: (c) => {
      assert.deepEqual(c.sync, { transport: 'ssh', port: 9873, rsync: '/usr/bin/rsync', keepBackups: 12, ssh: { user: 'sync', identityFile: '/etc/k/id', knownHostsFile: '/etc/haoscar/known_hosts' } });
      const g = c.groups[0]!;
      assert.deepEqual(g.fileSets, [
        { name: 'www', paths: ['/srv/www', '/srv/conf'], excludes: ['*.tmp'], delete: true, bwlimit: 2048, continuous: true, batchMs: 100, verifyEveryMs: 300_000, checksum: false, ioTimeoutMs: 30_000 },
        { name: 'logs', paths: ['/srv/logs'], excludes: [], delete: false, bwlimit: 0, continuous: false, batchMs: 200, verifyEveryMs: 60_000, checksum: true, ioTimeoutMs: 30_000 },
      ]);
      assert.deepEqual(g.failback, { policy: 'auto', stableForMs: 30_000, stickinessMs: 600_000 });
      assert.deepEqual(g.failover, { maxSyncLag: 3 });
      const [drbd, fs] = g.resources;
      assert.ok(drbd?.type === 'drbd' && drbd.resource === 'r0' && drbd.drbdadm === '/usr/sbin/drbdadm' && drbd.timeoutMs === 30_000 && drbd.check.type === 'status');
      assert.ok(fs?.type === 'filesystem' && fs.fsck && fs.options[0] === 'noatime' && fs.timeoutMs === 60_000);
    },
  },
  {
    name: 'a group without fileSets or failback gets none and manual',
    text: withResources(SYSTEMD),
    expect: (c) => {
      assert.deepEqual(c.groups[0]!.fileSets, []);
      assert.deepEqual(c.groups[0]!.failback, { policy: 'manual', stableForMs: 60_000, stickinessMs: 600_000 });
      assert.deepEqual(c.groups[0]!.failover, { maxSyncLag: 1 }, 'the default data policy: the last batch may be missing');
    },
  },
  {
    name: 'built-in defaults are exactly: check 2s/1s/rise 2/fall 3, healing 3 in 10m, backoff 1s..30s x2, start 30s',
    text: withResources(SYSTEMD),
    expect: (c) => {
      assert.deepEqual(CHECK_DEFAULTS, { intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3 });
      assert.deepEqual(HEALING_DEFAULTS, {
        maxRestarts: 3,
        windowMs: 600_000,
        backoff: { initialMs: 1000, maxMs: 30_000, multiplier: 2 },
        startTimeoutMs: 30_000,
      });
      // A systemd service without a check is judged by its unit's status.
      assert.deepEqual(first(c), {
        type: 'service',
        name: 'db',
        driver: 'systemd',
        unit: 'postgresql.service',
        check: { type: 'process', ...CHECK_DEFAULTS },
        healing: HEALING_DEFAULTS,
      });
    },
  },
  {
    name: 'process driver: all fields, defaults for stopSignal and stopTimeout',
    text: withResources(`
      - type: service
        name: api
        driver: process
        command: [/usr/bin/node, server.js]
      - type: service
        name: worker
        driver: process
        command: [/usr/bin/worker]
        cwd: /srv/worker
        env: { MODE: fast, PORT: "8080" }
        stopSignal: SIGINT
        stopTimeout: 1m30s
        logFile: /var/log/worker.log
    `),
    expect: (c) => {
      const [api, worker] = c.groups[0]!.resources;
      assert.deepEqual(api, {
        type: 'service',
        name: 'api',
        driver: 'process',
        command: ['/usr/bin/node', 'server.js'],
        stopSignal: 'SIGTERM',
        stopTimeoutMs: 10_000,
        check: { type: 'process', ...CHECK_DEFAULTS },
        healing: HEALING_DEFAULTS,
      });
      assert.deepEqual(worker, {
        type: 'service',
        name: 'worker',
        driver: 'process',
        command: ['/usr/bin/worker'],
        cwd: '/srv/worker',
        env: { MODE: 'fast', PORT: '8080' },
        stopSignal: 'SIGINT',
        stopTimeoutMs: 90_000,
        logFile: '/var/log/worker.log',
        check: { type: 'process', ...CHECK_DEFAULTS },
        healing: HEALING_DEFAULTS,
      });
    },
  },
  {
    name: 'sysv driver',
    text: withResources(`
      - type: service
        name: web
        driver: sysv
        script: apache2
        check: { type: process, pidFile: /run/apache2.pid }
    `),
    expect: (c) => {
      const r = first(c);
      assert.ok(r.type === 'service' && r.driver === 'sysv' && r.script === 'apache2');
      assert.deepEqual(r.check, { type: 'process', pidFile: '/run/apache2.pid', ...CHECK_DEFAULTS });
    },
  },
  {
    name: 'process check by name',
    text: withCheck('{ type: process, name: postgres }'),
    expect: (c) => assert.deepEqual(first(c).check, { type: 'process', name: 'postgres', ...CHECK_DEFAULTS }),
  },
  {
    name: 'tcp check: host defaults to 127.0.0.1',
    text: withCheck('{ type: tcp, port: 5432 }'),
    expect: (c) => assert.deepEqual(first(c).check, { type: 'tcp', host: '127.0.0.1', port: 5432, ...CHECK_DEFAULTS }),
  },
  {
    name: 'http check with expected statuses',
    text: withCheck('{ type: http, url: "https://127.0.0.1:8443/healthz", expectStatus: [200, 204] }'),
    expect: (c) =>
      assert.deepEqual(first(c).check, { type: 'http', url: 'https://127.0.0.1:8443/healthz', expectStatus: [200, 204], ...CHECK_DEFAULTS }),
  },
  {
    name: 'command check',
    text: withCheck('{ type: command, command: [/usr/bin/pg_isready, -q] }'),
    expect: (c) => assert.deepEqual(first(c).check, { type: 'command', command: ['/usr/bin/pg_isready', '-q'], ...CHECK_DEFAULTS }),
  },
  ...(
    [
      ['500ms', 500],
      ['2s', 2000],
      ['1m', 60_000],
      ['1m30s', 90_000],
      ['1h', 3_600_000],
      ['1.5s', 1500],
    ] as const
  ).map(
    ([text, ms]): ValidCase => ({
      name: `duration ${text} = ${ms}ms`,
      text: withCheck(`{ type: tcp, port: 1, interval: ${text}, timeout: 10ms, rise: 1 }`),
      expect: (c) => assert.equal(first(c).check.intervalMs, ms),
    }),
  ),
  {
    name: 'check timing: defaults.check, then the check itself',
    text: yaml(`
      cluster: c1
      defaults:
        check: { interval: 5s, timeout: 2s, rise: 4, fall: 5 }
      nodes:
        - name: a
          addresses: [10.0.0.1]
      groups:
        - name: g
          resources:
            - { type: service, name: one, driver: systemd, unit: one.service }
            - type: service
              name: two
              driver: systemd
              unit: two.service
              check: { type: tcp, port: 80, interval: 10s, fall: 1 }
    `),
    expect: (c) => {
      const [one, two] = c.groups[0]!.resources;
      assert.deepEqual(one!.check, { type: 'process', intervalMs: 5000, timeoutMs: 2000, rise: 4, fall: 5 });
      assert.deepEqual(two!.check, { type: 'tcp', host: '127.0.0.1', port: 80, intervalMs: 10_000, timeoutMs: 2000, rise: 4, fall: 1 });
    },
  },
  {
    name: 'healing: per-cluster defaults, then per-group, then per-resource overrides',
    text: yaml(`
      cluster: c1
      defaults:
        healing: { maxRestarts: 5, window: 1h, backoff: { initial: 2s } }
      nodes:
        - name: a
          addresses: [10.0.0.1]
      groups:
        - name: g
          healing: { window: 30m, backoff: { max: 1m } }
          resources:
            - { type: service, name: one, driver: systemd, unit: one.service }
            - type: service
              name: two
              driver: systemd
              unit: two.service
              healing: { maxRestarts: 0, startTimeout: 2m, backoff: { multiplier: 1.5 } }
        - name: h
          resources:
            - { type: service, name: three, driver: systemd, unit: three.service }
    `),
    expect: (c) => {
      const [one, two] = c.groups[0]!.resources;
      const three = c.groups[1]!.resources[0]!;
      assert.deepEqual(one!.healing, healing({ maxRestarts: 5, windowMs: 1_800_000, backoff: { initialMs: 2000, maxMs: 60_000 } }));
      assert.deepEqual(
        two!.healing,
        healing({ maxRestarts: 0, windowMs: 1_800_000, startTimeoutMs: 120_000, backoff: { initialMs: 2000, maxMs: 60_000, multiplier: 1.5 } }),
      );
      assert.deepEqual(three.healing, healing({ maxRestarts: 5, windowMs: 3_600_000, backoff: { initialMs: 2000 } }));
    },
  },
  {
    name: 'group nodes default to all nodes by priority (desc), ties by name; an explicit list is kept in order',
    text: yaml(`
      cluster: c1
      nodes:
        - { name: node-b, addresses: [10.0.0.2], priority: 10 }
        - { name: node-c, addresses: [10.0.0.3] }
        - { name: node-a, addresses: [10.0.0.1], priority: 10 }
        - { name: node-d, addresses: [10.0.0.4], priority: 50 }
      groups:
        - name: default-order
          resources: [{ type: service, name: s, driver: systemd, unit: s.service }]
        - name: own-order
          nodes: [node-c, node-a]
          resources: [{ type: service, name: s, driver: systemd, unit: s.service }]
    `),
    expect: (c) => {
      assert.deepEqual(c.groups[0]!.nodes, ['node-d', 'node-a', 'node-b', 'node-c']);
      assert.deepEqual(c.groups[1]!.nodes, ['node-c', 'node-a']);
    },
  },
  {
    name: 'temporal: mTLS files, server settings, agent settings',
    text: yaml(`
      cluster: c1
      temporal:
        address: temporal.example.org:7233
        namespace: prod
        tls: { serverName: temporal.example.org, caFile: /etc/ca.pem, certFile: /etc/c.pem, keyFile: /etc/c.key }
        server: { dataDir: /tmp/t, ip: 0.0.0.0, port: 7300, uiPort: 8300 }
      agent: { stateDir: /srv/haoscar, logLevel: debug, maxCachedWorkflows: 20, localHealAfter: 1500ms }
      nodes:
        - name: a
          addresses: [10.0.0.1]
    `),
    expect: (c) => {
      assert.deepEqual(c.temporal, {
        address: 'temporal.example.org:7233',
        frontends: ['temporal.example.org:7233'],
        namespace: 'prod',
        tls: { serverName: 'temporal.example.org', caFile: '/etc/ca.pem', certFile: '/etc/c.pem', keyFile: '/etc/c.key' },
        server: { dataDir: '/tmp/t', ip: '0.0.0.0', port: 7300, uiPort: 8300 },
      });
      assert.deepEqual(c.agent, { stateDir: '/srv/haoscar', logLevel: 'debug', maxCachedWorkflows: 20, localHealAfterMs: 1500, workflows: true, metrics: { temporalSdk: true } });
    },
  },
  {
    name: 'temporal: tls true',
    text: `${HEAD}temporal:\n  tls: true\n`,
    expect: (c) => assert.equal(c.temporal.tls, true),
  },
  {
    name: 'temporal: an API key file turns TLS on',
    text: `${HEAD}temporal:\n  address: ns.acct.tmprl.cloud:7233\n  apiKeyFile: /etc/haoscar/api-key\n`,
    expect: (c) => {
      assert.equal(c.temporal.apiKeyFile, '/etc/haoscar/api-key');
      assert.equal(c.temporal.tls, true);
    },
  },
  {
    name: 'an empty section (every line under it commented out) is the same as leaving it out',
    text: `${HEAD}temporal:\n  # address: x:1\nagent:\ndefaults:\n  check:\ngroups:\n`,
    expect: (c) => {
      assert.equal(c.temporal.address, '127.0.0.1:7233');
      assert.equal(c.agent.logLevel, 'info');
      assert.deepEqual(c.groups, []);
    },
  },
];

interface InvalidCase {
  name: string;
  text: string;
  /** Every expected issue: [path, fragment of its message]. */
  issues: [path: string, fragment: string][];
}

const INVALID: InvalidCase[] = [
  {
    name: 'failover.maxSyncLag on a group without file sets; negative, fractional; keepBackups 0',
    text: yaml(`
      cluster: c1
      sync: { keepBackups: 0 }
      nodes:
        - { name: a, addresses: [10.0.0.1] }
      groups:
        - name: g
          failover: { maxSyncLag: 2 }
          resources:
            - { type: drbd, name: disk, resource: r0 }
        - name: h
          fileSets:
            - { name: www, paths: [/srv/www] }
          failover: { maxSyncLag: -1 }
          resources:
            - { type: drbd, name: disk, resource: r1 }
        - name: i
          fileSets:
            - { name: www, paths: [/srv/www2] }
          failover: { maxSyncLag: 1.5, maxLag: 2 }
          resources:
            - { type: drbd, name: disk, resource: r2 }
    `),
    issues: [
      ['sync.keepBackups', 'expected an integer 1-1000'],
      ['groups[1].failover.maxSyncLag', 'expected an integer 0-1000000'],
      ['groups[2].failover.maxSyncLag', 'expected an integer 0-1000000'],
      ['groups[2].failover.maxLag', "unknown key 'maxLag'"],
    ],
  },
  {
    name: 'failover.maxSyncLag on a group without file sets',
    text: yaml(`
      cluster: c1
      nodes:
        - { name: a, addresses: [10.0.0.1] }
      groups:
        - name: g
          failover: { maxSyncLag: 2 }
          resources:
            - { type: drbd, name: disk, resource: r0 }
    `),
    issues: [['groups[0].failover.maxSyncLag', "group 'g' has no fileSets"]],
  },
  {
    name: 'bad port',
    text: withCheck('{ type: tcp, port: 70000 }'),
    issues: [['groups[0].resources[0].check.port', 'expected an integer 1-65535']],
  },
  {
    name: 'port as text',
    text: withCheck('{ type: tcp, port: http }'),
    issues: [['groups[0].resources[0].check.port', 'expected an integer 1-65535']],
  },
  {
    name: 'unknown key at the top level',
    text: `${HEAD}clustre: c2\n`,
    issues: [['clustre', "unknown key 'clustre'"]],
  },
  {
    name: 'unknown keys at several depths, one issue each',
    text: yaml(`
      cluster: c1
      agent: { logLevle: debug }
      defaults:
        check: { fal: 3 }
      nodes:
        - name: a
          addresses: [10.0.0.1]
          prio: 1
      groups:
        - name: g
          resources:
            - type: service
              name: db
              driver: systemd
              unit: db.service
              check: { type: tcp, port: 1, hots: x, intreval: 1s }
              healing: { backoff: { inital: 1s } }
    `),
    issues: [
      ['agent.logLevle', "unknown key 'logLevle'"],
      ['defaults.check.fal', "unknown key 'fal'"],
      ['nodes[0].prio', "unknown key 'prio'"],
      ['groups[0].resources[0].check.hots', "unknown key 'hots'"],
      ['groups[0].resources[0].check.intreval', "unknown key 'intreval'"],
      ['groups[0].resources[0].healing.backoff.inital', "unknown key 'inital'"],
    ],
  },
  {
    name: 'a key of another driver is unknown',
    text: withResources(`
      - type: service
        name: db
        driver: systemd
        unit: db.service
        command: [/usr/bin/db]
    `),
    issues: [['groups[0].resources[0].command', "unknown key 'command'"]],
  },
  ...(
    [
      ['2', 'expected a duration with a unit, such as 2s or 2ms'],
      ['2 s', "expected a duration such as 500ms, 2s or 1m, got '2 s'"],
      ['2sec', "expected a duration such as 500ms, 2s or 1m, got '2sec'"],
      ['-1s', "got '-1s'"],
      ['1d', "got '1d'"],
      ['10ms', 'must be at least 50ms'],
    ] as const
  ).map(
    ([text, fragment]): InvalidCase => ({
      name: `bad duration '${text}'`,
      text: `${HEAD}defaults:\n  check:\n    interval: ${text}\n    timeout: 10ms\n`,
      issues: [['defaults.check.interval', fragment]],
    }),
  ),
  {
    name: 'empty file: the required fields are missing',
    text: '',
    issues: [
      ['cluster', 'required: expected a cluster name'],
      ['nodes', 'required: expected a list of nodes'],
    ],
  },
  {
    name: 'missing required fields of a node and of services',
    text: yaml(`
      cluster: c1
      nodes:
        - name: a
      groups:
        - name: g
          resources:
            - { type: service, name: p, driver: process }
            - { type: service, name: s, driver: systemd }
            - { type: service, name: v, driver: sysv }
            - { type: service, name: t, driver: systemd, unit: t.service, check: { type: tcp } }
            - { type: service, name: h, driver: systemd, unit: h.service, check: { type: http } }
    `),
    issues: [
      ['nodes[0].addresses', 'required: expected a list of addresses'],
      ['groups[0].resources[0].command', 'required: expected a command as a list of arguments'],
      ['groups[0].resources[1].unit', 'required: expected a systemd unit name'],
      ['groups[0].resources[2].script', 'required: expected an init script name'],
      ['groups[0].resources[3].check.port', 'required: expected an integer 1-65535'],
      ['groups[0].resources[4].check.url', 'required'],
    ],
  },
  {
    name: 'a group without resources, a node without addresses',
    text: yaml(`
      cluster: c1
      nodes:
        - { name: a, addresses: [] }
      groups:
        - { name: g, resources: [] }
    `),
    issues: [
      ['nodes[0].addresses', 'a node needs at least one address'],
      ['groups[0].resources', 'a group needs at least one resource'],
    ],
  },
  {
    name: 'wrong driver',
    text: withResources('- { type: service, name: db, driver: upstart, unit: db.service }'),
    issues: [['groups[0].resources[0].driver', "expected driver 'process', 'systemd' or 'sysv'"]],
  },
  {
    name: 'file sets: nested and shared directories, relative path, state directory; auto fail-back on one node; bad drbd name',
    text: yaml(`
      cluster: c1
      agent: { stateDir: /srv/state }
      nodes:
        - { name: a, addresses: [10.0.0.1] }
      groups:
        - name: g
          failback: { policy: always }
          fileSets:
            - { name: www, paths: [/srv/www, srv/rel] }
            - { name: www, paths: [/srv/www/img] }
          resources:
            - { type: drbd, name: disk, resource: "r 0" }
        - name: h
          failback: { policy: auto }
          fileSets:
            - { name: all, paths: [/srv] }
          resources:
            - { type: filesystem, name: fs, device: /dev/sdb1, mountpoint: mnt, fstype: ext4 }
    `),
    issues: [
      ['groups[0].failback.policy', 'expected one of manual, auto'],
      ['groups[0].fileSets[0].paths[1]', 'absolute path'],
      ['groups[0].resources[0].resource', 'expected a DRBD resource name'],
      ['groups[1].resources[0].mountpoint', 'absolute path'],
    ],
  },
  {
    name: 'file sets: rules across sets and groups',
    text: yaml(`
      cluster: c1
      agent: { stateDir: /srv/state }
      nodes:
        - { name: a, addresses: [10.0.0.1] }
      groups:
        - name: g
          fileSets:
            - { name: www, paths: [/srv/www] }
            - { name: www, paths: [/srv/www/img] }
          resources:
            - { type: drbd, name: disk, resource: r0 }
        - name: h
          failback: { policy: auto }
          fileSets:
            - { name: all, paths: [/srv/] }
          resources:
            - { type: drbd, name: disk, resource: r1 }
    `),
    issues: [
      ['groups[0].fileSets[1].name', "duplicate file set name 'www'"],
      ['groups[0].fileSets[0].paths[0]', 'inside groups[1].fileSets[0].paths[0]'],
      ['groups[0].fileSets[1].paths[0]', 'inside'],
      ['groups[1].failback.policy', 'at least two nodes'],
      ['groups[1].fileSets[0].paths[0]', "holds the agent's state directory"],
    ],
  },
  {
    name: 'file sets: paths are compared once normalised (.., //, trailing /)',
    text: yaml(`
      cluster: c1
      agent: { stateDir: /var/lib/haoscar }
      nodes:
        - { name: a, addresses: [10.0.0.1] }
      groups:
        - name: g
          fileSets:
            - { name: up, paths: [/var/lib/haoscar/..] }
            - { name: www, paths: [//srv//www/] }
            - { name: www2, paths: [/srv/www/./] }
          resources:
            - { type: filesystem, name: fs, device: /dev/drbd0, mountpoint: /srv/data/, fstype: ext4 }
        - name: h
          fileSets:
            - { name: data, paths: [/srv/x/../data/db] }
          resources:
            - { type: drbd, name: disk, resource: r1 }
    `),
    issues: [
      ['groups[0].fileSets[0].paths[0]', "'/var/lib' holds the agent's state directory"],
      ['groups[0].fileSets[2].paths[0]', "'/srv/www' is also groups[0].fileSets[1].paths[0]"],
    ],
  },
  {
    name: 'file sets: not on a filesystem resource of the group',
    text: yaml(`
      cluster: c1
      nodes:
        - { name: a, addresses: [10.0.0.1] }
      groups:
        - name: g
          fileSets:
            - { name: www, paths: [/srv/data/www] }
          resources:
            - { type: filesystem, name: fs, device: /dev/drbd0, mountpoint: /srv/data, fstype: ext4 }
    `),
    issues: [['groups[0].fileSets[0].paths[0]', 'on the group\'s filesystem resource mounted at /srv/data']],
  },
  {
    name: 'wrong resource type and check type',
    text: withResources(`
      - { type: disk, name: ip }
      - { type: service, name: db, driver: systemd, unit: db.service, check: { type: ping } }
    `),
    issues: [
      ['groups[0].resources[0].type', "expected a resource with type 'service', 'vip', 'command', 'drbd', 'filesystem', 'ocf' or 'postgresql'"],
      ['groups[0].resources[1].check.type', "expected a check with type 'process', 'tcp', 'http', 'command', 'status', 'disk', 'memory', 'cpu', 'file' or 'icmp'"],
    ],
  },
  {
    name: 'bad vip, command and fence settings; deadtime shorter than two intervals is a rule',
    text: withResources(`
      - { type: vip, name: ip, address: 10.0.0.300/24, interface: "eth0; reboot" }
      - { type: command, name: c, start: /bin/s, stop: [], monitor: [/bin/m] }
    `),
    issues: [
      ['groups[0].resources[0].address', 'expected an IPv4 or IPv6 address with its prefix length, e.g. 10.213.0.100/24 or fd00:213::200/64'],
      ['groups[0].resources[0].interface', 'expected an interface name such as eth0 (at most 15 characters)'],
      ['groups[0].resources[1].start', 'expected a command as a list of arguments, e.g. [/usr/bin/foo, --bar]'],
      ['groups[0].resources[1].stop', 'expected a command as a list of arguments, e.g. [/usr/bin/foo, --bar]'],
    ],
  },
  {
    name: 'heartbeat deadtime must be at least twice the interval',
    text: yaml(`
      cluster: c1
      heartbeat: { interval: 500ms, deadtime: 800ms }
      nodes:
        - { name: a, addresses: [10.0.0.1, 10.0.0.1] }
    `),
    issues: [
      ['heartbeat.deadtime', 'deadtime (800ms) must be at least twice the interval (500ms): one lost packet must not make a peer suspect'],
      ['nodes[0].addresses[1]', "address '10.0.0.1' is listed twice"],
    ],
  },
  {
    name: 'the lease guard needs a margin to act in, and feeds the watchdog',
    text: yaml(`
      cluster: c1
      lease: { margin: 20ms }
      guard: { enabled: false, watchdog: { timeout: 10s } }
      nodes:
        - { name: a, addresses: [10.0.0.1] }
        - { name: b, addresses: [10.0.0.2] }
    `),
    issues: [
      ['guard.watchdog', 'the watchdog is fed by the lease guard: enable the guard (guard.enabled: true) or remove the watchdog'],
    ],
  },
  {
    name: 'a lease margin shorter than the guard needs to act',
    text: yaml(`
      cluster: c1
      lease: { margin: 20ms }
      nodes:
        - { name: a, addresses: [10.0.0.1] }
        - { name: b, addresses: [10.0.0.2] }
    `),
    issues: [
      ['lease.margin', 'margin (20ms) must be at least 50ms: it is the time the lease guard has to delete the VIPs'],
    ],
  },
  {
    name: 'a lease margin of 0, without the guard too (issue 9 item 2)',
    text: yaml(`
      cluster: c1
      lease: { margin: 0ms }
      guard: { enabled: false }
      nodes:
        - { name: a, addresses: [10.0.0.1] }
        - { name: b, addresses: [10.0.0.2] }
    `),
    issues: [
      ['lease.margin', 'margin (0ms) must be more than 0'],
    ],
  },
  {
    name: 'a watchdog timeout shorter than a second',
    text: yaml(`
      cluster: c1
      guard: { watchdog: { device: /dev/watchdog0, timeout: 500ms } }
      nodes:
        - { name: a, addresses: [10.0.0.1] }
    `),
    issues: [
      ['guard.watchdog.timeout', "must be at least 1000ms, got '500ms'"],
    ],
  },
  {
    name: 'bad names, enum values and URL',
    text: yaml(`
      cluster: Web_Prod
      agent: { logLevel: loud }
      nodes:
        - name: a
          addresses: [10.0.0.1]
      groups:
        - name: g
          resources:
            - type: service
              name: api
              driver: process
              command: [/bin/api]
              stopSignal: SIGKILL
              env: { PORT: 8080 }
              check: { type: http, url: "ftp://x/" }
    `),
    issues: [
      ['cluster', "expected a cluster name of lowercase letters, digits and '-'"],
      ['agent.logLevel', 'expected one of trace, debug, info, warn, error'],
      ['groups[0].resources[0].env.PORT', 'expected text (quote numbers'],
      ['groups[0].resources[0].stopSignal', 'expected one of SIGTERM, SIGINT'],
      ['groups[0].resources[0].check.url', 'expected an http:// or https:// URL'],
    ],
  },
  {
    name: 'temporal.address: a list with a bad entry, a repeated one, an empty list',
    text: `${HEAD}temporal: { address: [10.0.0.5:7233, 10.0.0.6, "10.0.0.5:7233", "10.0.0.7:70000"] }\n`,
    issues: [
      ['temporal.address[1]', 'expected host:port, e.g. 127.0.0.1:7233'],
      ['temporal.address[2]', "frontend '10.0.0.5:7233' is listed twice"],
      ['temporal.address[3]', 'port 1-65535'],
    ],
  },
  {
    name: 'temporal.address: an empty list, a number',
    text: `${HEAD}temporal: { address: [] }\n`,
    issues: [['temporal.address', 'expected at least one frontend (host:port)']],
  },
  {
    name: 'temporal.address: neither text nor a list',
    text: `${HEAD}temporal: { address: 7233 }\n`,
    issues: [['temporal.address', 'expected host:port, or a list of them']],
  },
  {
    name: 'temporal settings',
    text: `${HEAD}temporal:\n  address: localhost\n  tls: yes\n  server: { port: 0 }\n`,
    issues: [
      ['temporal.address', 'expected host:port'],
      ['temporal.tls', 'expected true, false, or a mapping'],
      ['temporal.server.port', 'expected an integer 1-65535'],
    ],
  },
  {
    name: 'mTLS needs both certFile and keyFile; an API key is never sent without TLS',
    text: `${HEAD}temporal:\n  apiKeyFile: /etc/key\n  tls: false\n`,
    issues: [['temporal.tls', 'an API key is only ever sent over TLS']],
  },
  {
    name: 'mTLS certificate without its key',
    text: `${HEAD}temporal:\n  tls: { certFile: /etc/c.pem }\n`,
    issues: [['temporal.tls.keyFile', "mTLS needs both 'certFile'"]],
  },
  {
    name: 'duplicate node, group and resource names',
    text: yaml(`
      cluster: c1
      nodes:
        - { name: a, addresses: [10.0.0.1] }
        - { name: a, addresses: [10.0.0.2] }
      groups:
        - name: g
          resources:
            - { type: service, name: s, driver: systemd, unit: s.service }
            - { type: service, name: s, driver: sysv, script: s }
        - name: g
          resources:
            - { type: service, name: s, driver: systemd, unit: s.service }
    `),
    issues: [
      ['nodes[1].name', "duplicate node name 'a'"],
      ['groups[1].name', "duplicate group name 'g'"],
      ['groups[0].resources[1].name', "duplicate resource name 's' in group 'g'"],
    ],
  },
  {
    name: 'unknown node in a group, and a node listed twice',
    text: withResources('- { type: service, name: s, driver: systemd, unit: s.service }', 'nodes: [a, b, a]'),
    issues: [
      ['groups[0].nodes[1]', "unknown node 'b' (known: a)"],
      ['groups[0].nodes[2]', "node 'a' is listed twice"],
    ],
  },
  {
    name: 'check timeout longer than its interval',
    text: withCheck('{ type: tcp, port: 5432, interval: 1s, timeout: 2s }'),
    issues: [['groups[0].resources[0].check.timeout', 'the check timeout (2s) is longer than its interval (1s)']],
  },
  {
    name: 'a timeout conflict inherited from defaults is reported once, at defaults',
    text: yaml(`
      cluster: c1
      defaults:
        check: { interval: 500ms }
      nodes:
        - { name: a, addresses: [10.0.0.1] }
      groups:
        - name: g
          resources:
            - { type: service, name: s, driver: systemd, unit: s.service }
            - { type: service, name: t, driver: systemd, unit: t.service }
    `),
    issues: [['defaults.check.interval', 'the check timeout (1s) is longer than its interval (500ms)']],
  },
  {
    name: 'process check without name or pidFile on a systemd service',
    text: withCheck('{ type: process }'),
    issues: [['groups[0].resources[0].check', "a process check of a 'systemd' service needs 'name' or 'pidFile'"]],
  },
  {
    name: 'process check with both name and pidFile',
    text: withCheck('{ type: process, name: postgres, pidFile: /run/pg.pid }'),
    issues: [['groups[0].resources[0].check', "takes 'name' or 'pidFile', not both"]],
  },
  {
    name: 'process name longer than comm allows',
    text: withCheck('{ type: process, name: a-very-long-process-name }'),
    issues: [['groups[0].resources[0].check.name', 'at most 15 characters']],
  },
  {
    name: 'backoff maximum shorter than its initial delay (set on the group)',
    text: withResources('- { type: service, name: s, driver: systemd, unit: s.service }', 'healing: { backoff: { initial: 1m } }'),
    issues: [['groups[0].healing.backoff.initial', 'the backoff maximum (30s) is shorter than its initial delay (1m)']],
  },
  {
    name: 'startTimeout too short for rise passes of the check',
    text: withResources(`
      - type: service
        name: s
        driver: systemd
        unit: s.service
        check: { type: tcp, port: 1, interval: 20s, rise: 3 }
    `),
    issues: [['groups[0].resources[0].check.interval', 'passing its check 3 times in a row (rise) every 20s (interval) takes at least 40s, but startTimeout is 30s']],
  },
  {
    name: 'startTimeout set on the resource is blamed first',
    text: withResources(`
      - type: service
        name: s
        driver: systemd
        unit: s.service
        check: { type: tcp, port: 1, interval: 10s }
        healing: { startTimeout: 5s }
    `),
    issues: [['groups[0].resources[0].healing.startTimeout', 'expected startTimeout >= 10s']],
  },
  {
    name: 'YAML syntax error',
    text: 'cluster: c1\nnodes: [a\n',
    issues: [['', 'YAML syntax']],
  },
  {
    name: 'duplicate YAML keys',
    text: `${HEAD}cluster: c2\n`,
    issues: [['', 'YAML syntax']],
  },
  {
    name: 'not a mapping',
    text: '- cluster: c1\n',
    issues: [['', 'expected a configuration file (a mapping of key: value)']],
  },
  {
    name: 'several problems at once are all reported',
    text: yaml(`
      cluster: c1
      color: blue
      defaults:
        healing: { maxRestarts: -1, window: soon }
      nodes:
        - { name: a, addresses: [10.0.0.1], priority: high }
      groups:
        - name: g
          resources:
            - { type: service, name: db, driver: systemd, unit: db.service, check: { type: tcp, port: 0 } }
            - { type: service, name: web, driver: sysv }
    `),
    issues: [
      ['color', "unknown key 'color'"],
      ['defaults.healing.maxRestarts', 'expected an integer 0-1000'],
      ['defaults.healing.window', "got 'soon'"],
      ['nodes[0].priority', 'expected an integer 0-1000000'],
      ['groups[0].resources[0].check.port', 'expected an integer 1-65535'],
      ['groups[0].resources[1].script', 'required'],
    ],
  },
  {
    name: 'several rule problems at once are all reported',
    text: yaml(`
      cluster: c1
      nodes:
        - { name: a, addresses: [10.0.0.1] }
        - { name: a, addresses: [10.0.0.2] }
      groups:
        - name: g
          nodes: [z]
          resources:
            - { type: service, name: s, driver: systemd, unit: s.service, check: { type: process } }
            - { type: service, name: t, driver: systemd, unit: t.service, check: { type: tcp, port: 1, timeout: 5s } }
    `),
    issues: [
      ['nodes[1].name', 'duplicate node name'],
      ['groups[0].nodes[0]', "unknown node 'z'"],
      ['groups[0].resources[0].check', 'needs'],
      ['groups[0].resources[1].check.timeout', 'longer than its interval'],
    ],
  },
];

function issuesOf(text: string): ConfigError['issues'] {
  try {
    parseConfig(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err.issues;
  }
  assert.fail('expected the file to be rejected');
}

void describe('config: valid files', () => {
  for (const c of VALID) {
    void it(c.name, () => c.expect(parseConfig(c.text)));
  }
});

void describe('config: invalid files report every problem with its path', () => {
  for (const c of INVALID) {
    void it(c.name, () => {
      const issues = issuesOf(c.text);
      const byPath = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
      assert.deepEqual(
        issues.map((i) => i.path).sort(byPath),
        c.issues.map(([p]) => p).sort(byPath),
        `paths differ; got:\n${formatIssues(issues)}`,
      );
      for (const [path, fragment] of c.issues) {
        const found = issues.filter((i) => i.path === path);
        assert.ok(
          found.some((i) => i.message.includes(fragment)),
          `${path}: expected a message containing ${JSON.stringify(fragment)}, got ${JSON.stringify(found.map((i) => i.message))}`,
        );
      }
    });
  }
});

void describe('config: line numbers', () => {
  void it('points at the offending key, not at the value below it', () => {
    const text = yaml(`
      cluster: c1
      nodes:
        - name: a
          addresses: [10.0.0.1]
          extra:
            nested: 1
      groups:
        - name: g
          resources:
            - type: service
              name: db
              driver: systemd
              unit: db.service
              check:
                type: tcp
                port: 70000
    `);
    const issues = issuesOf(text);
    assert.deepEqual(
      issues.map((i) => [i.path, i.line]),
      [
        ['nodes[0].extra', 5],
        ['groups[0].resources[0].check.port', 16],
      ],
    );
  });

  void it('reports the line of the nearest enclosing entry for a missing key, and for rule problems', () => {
    const missing = issuesOf(`${HEAD}groups:\n  - name: g\n    resources:\n      - type: service\n        name: db\n        driver: systemd\n`);
    assert.deepEqual(missing.map((i) => [i.path, i.line]), [['groups[0].resources[0].unit', 8]]);
    const dup = issuesOf(`${HEAD}  - name: a\n    addresses: [10.0.0.2]\n`);
    assert.deepEqual(dup.map((i) => [i.path, i.line]), [['nodes[1].name', 5]]);
  });

  void it('reports the line of a YAML syntax error', () => {
    const [issue] = issuesOf('cluster: c1\nnodes:\n\t- name: a\n');
    assert.equal(issue?.line, 3);
    assert.match(issue?.message ?? '', /^YAML syntax: /);
  });

  void it('formats issues with path, line and message', () => {
    const err = (() => {
      try {
        parseConfig(withCheck('{ type: tcp, port: 0 }'), 'test.yaml');
      } catch (e) {
        return e as ConfigError;
      }
      return assert.fail('expected a ConfigError');
    })();
    assert.equal(err.message, 'test.yaml: 1 problem\n  groups[0].resources[0].check.port (line 13): expected an integer 1-65535');
  });
});

void describe('config: formatPath', () => {
  void it('writes keys with dots and indices in brackets', () => {
    assert.equal(formatPath(['groups', 0, 'resources', 1, 'check', 'port']), 'groups[0].resources[1].check.port');
    assert.equal(formatPath([]), '');
    assert.equal(formatPath([2, 'x']), '[2].x');
  });
});

void describe('config: loadConfig', () => {
  void it('a missing file is a ConfigError naming the file', async () => {
    await assert.rejects(loadConfig('/nonexistent/haoscar.yaml'), (err: unknown) => {
      assert.ok(err instanceof ConfigError);
      assert.equal(err.source, '/nonexistent/haoscar.yaml');
      assert.deepEqual(err.issues, [{ path: '', message: 'cannot read the file (ENOENT)' }]);
      return true;
    });
  });

  void it('examples/haoscar.yaml is valid and uses every feature', async () => {
    const file = fileURLToPath(new URL('../../examples/haoscar.yaml', import.meta.url));
    const c = await loadConfig(file);
    const resources = c.groups.flatMap((g) => g.resources);
    assert.deepEqual(new Set(resources.map((r) => (r.type === 'service' ? r.driver : r.type))), new Set(['process', 'systemd', 'sysv', 'vip', 'command']));
    assert.deepEqual(new Set(resources.map((r) => r.check.type)), new Set(['process', 'tcp', 'http', 'command', 'status']));
    assert.ok(c.nodes.some((n) => n.fence !== undefined));
    assert.equal(typeof c.temporal.tls, 'object');
    const web = c.groups.find((g) => g.name === 'web');
    assert.deepEqual(web?.nodes, ['alpha', 'beta']);
    const api = web?.resources.find((r) => r.name === 'api');
    assert.ok(api?.type === 'service' && api.driver === 'process');
    assert.equal(api?.check.type, 'http');
    const postgres = c.groups.find((g) => g.name === 'database')?.resources.find((r) => r.name === 'postgres');
    assert.ok(postgres?.type === 'service' && postgres.driver === 'systemd');
    assert.equal(postgres?.check.type, 'tcp');
  });
});
