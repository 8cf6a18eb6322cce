/**
 * haoscar.yaml: the resource checks (disk, memory, cpu, file, icmp) parse their units once —
 * sizes (1024-based, as Monit's), percentages, durations — and a bad value is an error naming
 * the field.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfig } from '../../src/config/load.js';
import type { CheckSpec } from '../../src/config/types.js';
import { parsePercent, parseSize } from '../../src/config/size.js';
import { requiredTools } from '../../src/doctor/prerequisites.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** One process service `app` (or the given resource head) with `check` as flow-style YAML. */
function withCheck(check: string, resource = '{ type: service, name: app, driver: process, command: [/usr/bin/app]'): string {
  return [
    'cluster: c1',
    'nodes:',
    '  - name: a',
    '    addresses: [10.0.0.1]',
    'groups:',
    '  - name: g',
    '    resources:',
    `      - ${resource}, check: ${check} }`,
    '',
  ].join('\n');
}

const checkOf = (check: string): CheckSpec => parseConfig(withCheck(check)).groups[0]!.resources[0]!.check;

function issuesOf(text: string): [string, string][] {
  try {
    parseConfig(text);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.issues.map((i) => [i.path, i.message]);
  }
  assert.fail('expected the file to be rejected');
}

const timing = { intervalMs: 2000, timeoutMs: 1000, rise: 2, fall: 3 };
const AT = 'groups[0].resources[0].check';

void describe('sizes and percentages', () => {
  it('parses units as Monit does (1024-based), and nothing else', () => {
    assert.equal(parseSize('2GB'), 2 * GiB);
    assert.equal(parseSize('2G'), 2 * GiB);
    assert.equal(parseSize('2GiB'), 2 * GiB);
    assert.equal(parseSize('2 gb'), 2 * GiB);
    assert.equal(parseSize('1.5MB'), 1.5 * MiB);
    assert.equal(parseSize('512B'), 512);
    assert.equal(parseSize('100K'), 102_400);
    assert.equal(parseSize('1TB'), 1024 ** 4);
    for (const bad of ['2', '', 'GB', '2PB', '2 G B', '-1GB', '2GBs', '1e3MB']) assert.equal(parseSize(bad), undefined, bad);
    assert.equal(parsePercent('90%'), 90);
    assert.equal(parsePercent('12.5 %'), 12.5);
    for (const bad of ['90', '%', '-5%', 'ninety%']) assert.equal(parsePercent(bad), undefined, bad);
  });
});

void describe('config: resource checks', () => {
  it('normalises each type with its units in the field names', () => {
    assert.deepEqual(checkOf('{ type: disk, path: /var/lib/pg, maxUsed: 90%, minFree: 5GB, maxInodesUsed: 95% }'), {
      type: 'disk', path: '/var/lib/pg', maxUsedPercent: 90, minFreeBytes: 5 * GiB, maxInodesUsedPercent: 95, ...timing,
    });
    assert.deepEqual(checkOf('{ type: memory, max: 2GB, fall: 3 }'), { type: 'memory', maxBytes: 2 * GiB, children: false, ...timing });
    assert.deepEqual(checkOf('{ type: memory, max: 512MB, pidFile: /run/app.pid, children: true, interval: 10s, timeout: 2s }'), {
      type: 'memory', maxBytes: 512 * MiB, pidFile: '/run/app.pid', children: true, ...timing, intervalMs: 10_000, timeoutMs: 2000,
    });
    assert.deepEqual(checkOf('{ type: cpu, max: 80%, fall: 5 }'), { type: 'cpu', maxPercent: 80, ...timing, fall: 5 });
    assert.deepEqual(checkOf('{ type: cpu, max: 250% }'), { type: 'cpu', maxPercent: 250, ...timing });
    const sum = 'AB'.repeat(32);
    assert.deepEqual(checkOf(`{ type: file, path: /etc/app.conf, sha256: ${sum}, maxSize: 1MB, minSize: 1B, maxAge: 10m }`), {
      type: 'file', path: '/etc/app.conf', sha256: sum.toLowerCase(), maxSizeBytes: MiB, minSizeBytes: 1, maxAgeMs: 600_000, ...timing,
    });
    assert.deepEqual(checkOf('{ type: file, path: /etc/app.conf, sha256: unchanged }'), { type: 'file', path: '/etc/app.conf', sha256: 'unchanged', ...timing });
    assert.deepEqual(checkOf('{ type: icmp, host: 10.213.0.1 }'), { type: 'icmp', host: '10.213.0.1', ...timing });
  });

  const INVALID: [string, string, [string, RegExp][]][] = [
    ['a bare number as a size', '{ type: memory, max: 2 }', [[`${AT}.max`, /^expected a size with a unit, such as 2MB or 2GB \(a bare number is ambiguous\)$/]]],
    ['an unknown size unit', '{ type: memory, max: 2PB }', [[`${AT}.max`, /^expected a size such as 512MB or 2GB \(units B, KB, MB, GB, TB\), got '2PB'$/]]],
    ['a zero memory limit', '{ type: memory, max: 0MB }', [[`${AT}.max`, /^must be at least 1B, got '0MB'$/]]],
    ['a bare number as a percentage', '{ type: disk, path: /srv, maxUsed: 90 }', [[`${AT}.maxUsed`, /^expected a percentage with its % sign, such as 90%$/]]],
    ['a percentage over 100', '{ type: disk, path: /srv, maxInodesUsed: 120% }', [[`${AT}.maxInodesUsed`, /^must be at most 100%, got '120%'$/]]],
    ['a percentage without a number', '{ type: cpu, max: lots% }', [[`${AT}.max`, /^expected a percentage such as 90%, got 'lots%'$/]]],
    ['a disk check without a threshold', '{ type: disk, path: /srv }', [[AT, /needs at least one threshold: 'maxUsed' \(e\.g\. 90%\), 'minFree'/]]],
    ['a relative disk path', '{ type: disk, path: srv, maxUsed: 90% }', [[`${AT}.path`, /^expected a path on the filesystem to check \(an absolute path\)$/]]],
    ['a memory check without max', '{ type: memory }', [[`${AT}.max`, /size/]]],
    ['a bad checksum', '{ type: file, path: /etc/x, sha256: abc }', [[`${AT}.sha256`, /^expected a SHA-256 checksum \(64 hexadecimal digits, as sha256sum prints it\) or 'unchanged'$/]]],
    ['an age without a unit', '{ type: file, path: /etc/x, maxAge: 600 }', [[`${AT}.maxAge`, /^expected a duration with a unit, such as 600s/]]],
    ['minSize above maxSize', '{ type: file, path: /etc/x, minSize: 2MB, maxSize: 1MB }', [[`${AT}.minSize`, /^minSize is larger than maxSize/]]],
    ['an option as the ping host', '{ type: icmp, host: -f }', [[`${AT}.host`, /^expected a host name or IP address$/]]],
    ['a misspelt threshold', '{ type: cpu, max: 80%, maxx: 90% }', [[`${AT}.maxx`, /^unknown key 'maxx'$/]]],
  ];
  for (const [name, check, expected] of INVALID) {
    it(`rejects ${name}`, () => {
      const issues = issuesOf(withCheck(check));
      for (const [path, message] of expected) {
        assert.ok(issues.some(([p, m]) => p === path && message.test(m)), `expected ${path}: ${message}; got ${JSON.stringify(issues)}`);
      }
    });
  }

  it("a memory or cpu check of a resource the agent does not run itself needs 'pidFile'", () => {
    const systemd = '{ type: service, name: app, driver: systemd, unit: app.service';
    assert.deepEqual(issuesOf(withCheck('{ type: memory, max: 2GB }', systemd)), [
      [AT, "a memory check of a 'systemd' service needs 'pidFile' (the process to measure); only a 'process' service's own process is found without one"],
    ]);
    const command = '{ type: command, name: app, start: [/bin/true], stop: [/bin/true], monitor: [/bin/true]';
    assert.deepEqual(issuesOf(withCheck('{ type: cpu, max: 80% }', command)), [
      [AT, "a cpu check of a command resource needs 'pidFile' (the process to measure); only a 'process' service's own process is found without one"],
    ]);
    assert.equal(parseConfig(withCheck('{ type: memory, max: 2GB, pidFile: /run/app.pid }', systemd)).groups[0]!.resources[0]!.check.type, 'memory');
  });
});

void describe('doctor: an icmp check needs ping', () => {
  it('lists ping, with the resource that needs it', () => {
    const config = parseConfig(withCheck('{ type: icmp, host: 10.213.0.1 }'));
    assert.deepEqual(requiredTools(config, 'a', { embeddedServer: false }), [
      { tool: '/usr/bin/app', why: 'resource g/app (service)' },
      { tool: 'ping', why: 'resource g/app: its icmp check (iputils-ping)' },
    ]);
  });
});
