/**
 * The pure parts of the rsync layer, on output recorded from rsync 3.5.0: progress2 lines,
 * the --stats block, failure classification from exit code and stderr, and the pull argv.
 * runRsync's streaming, exit 24, timeout and abort handling run against a scripted stand-in
 * for rsync (sync-rsync.test.ts runs the real one).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { FileSet, SyncSettings } from '../../src/config/types.js';
import { DaemonConfigError, derivePassword, writeDaemonFiles } from '../../src/sync/daemon.js';
import { secretKeyId } from '../../src/heartbeat/secret.js';
import {
  classifyRsyncFailure,
  moduleName,
  parseProgress2,
  parseStats,
  pullSourceFor,
  RsyncArgsError,
  RsyncError,
  rsyncPullArgs,
  runRsync,
  type RsyncErrorKind,
  type RsyncProgress,
} from '../../src/sync/rsync.js';
import { waitFor } from '../support/wait.js';

const SET: FileSet = { name: 'docroot', paths: ['/srv/www'], excludes: [], delete: true, bwlimit: 0, continuous: true, batchMs: 200, verifyEveryMs: 300_000, checksum: false, ioTimeoutMs: 30_000 };

void describe('parseProgress2', () => {
  const cases: Array<[string, RsyncProgress | undefined]> = [
    ['     12,345,678  45%   11.23MB/s    0:00:05 (xfr#3, to-chk=10/20)', { bytes: 12_345_678, percent: 45, bytesPerSecond: Math.round(11.23 * 1024 * 1024), seconds: 5, transferred: 3, toCheck: { remaining: 10, total: 20, incremental: false } }],
    // Before the first file completes there is no parenthesis; trailing spaces overwrite a longer previous line.
    ['         32,768   1%    0.00kB/s    0:00:00  ', { bytes: 32_768, percent: 1, bytesPerSecond: 0, seconds: 0, transferred: undefined, toCheck: undefined }],
    ['      2,097,152  69%    1.94MB/s    0:00:00  ', { bytes: 2_097_152, percent: 69, bytesPerSecond: Math.round(1.94 * 1024 * 1024), seconds: 0, transferred: undefined, toCheck: undefined }],
    ['              2   0%    0.00kB/s    0:00:00 (xfr#1, ir-chk=1009/1311)', { bytes: 2, percent: 0, bytesPerSecond: 0, seconds: 0, transferred: 1, toCheck: { remaining: 1009, total: 1311, incremental: true } }],
    ['          4,179  66%   20.19kB/s    0:00:00 (xfr#1990, ir-chk=1000/3291)', { bytes: 4_179, percent: 66, bytesPerSecond: Math.round(20.19 * 1024), seconds: 0, transferred: 1990, toCheck: { remaining: 1000, total: 3291, incremental: true } }],
    ['          6,300 100%   16.67kB/s    0:00:00 (xfr#3000, to-chk=0/3301)   ', { bytes: 6_300, percent: 100, bytesPerSecond: Math.round(16.67 * 1024), seconds: 0, transferred: 3000, toCheck: { remaining: 0, total: 3301, incremental: false } }],
    // Everything already up to date: rsync's last line says 0%.
    ['              0   0%    0.00kB/s    0:00:00 (xfr#0, to-chk=0/3003)   ', { bytes: 0, percent: 0, bytesPerSecond: 0, seconds: 0, transferred: 0, toCheck: { remaining: 0, total: 3003, incremental: false } }],
    ['  1,073,741,824  50%    1.02GB/s    1:02:03 (xfr#7, to-chk=1/9)', { bytes: 1_073_741_824, percent: 50, bytesPerSecond: Math.round(1.02 * 1024 ** 3), seconds: 3723, transferred: 7, toCheck: { remaining: 1, total: 9, incremental: false } }],
    // --no-human-readable numbers and an unknown remaining time.
    ['   20971520  99%  999.00B/s   ??:??:??', { bytes: 20_971_520, percent: 99, bytesPerSecond: 999, seconds: undefined, transferred: undefined, toCheck: undefined }],
    ['', undefined],
    ['receiving incremental file list', undefined],
    ['Number of files: 3,003 (reg: 3,001, dir: 2)', undefined],
    ['sent 43,025 bytes  received 13 bytes  86,076.00 bytes/sec', undefined],
    ['total size is 3,013,893  speedup is 70.03', undefined],
  ];
  for (const [line, expected] of cases) {
    void test(JSON.stringify(line), () => assert.deepEqual(parseProgress2(line), expected));
  }
});

const STATS = `
Number of files: 3,301 (reg: 3,000, dir: 301)
Number of created files: 3,301 (reg: 3,000, dir: 301)
Number of deleted files: 2 (reg: 2)
Number of regular files transferred: 3,000
Total file size: 21,013,893 bytes
Total transferred file size: 20,971,520 bytes
Literal data: 17,825,792 bytes
Matched data: 3,145,728 bytes
File list size: 43,012
File list generation time: 0.001 seconds
File list transfer time: 0.000 seconds
Total bytes sent: 59,112
Total bytes received: 17,913,425

sent 59,112 bytes  received 17,913,425 bytes  7,189,014.80 bytes/sec
total size is 21,013,893  speedup is 1.17
`;

void describe('parseStats', () => {
  void test('a --stats block with thousands separators', () => {
    assert.deepEqual(parseStats(STATS), {
      files: 3301,
      fileKinds: { reg: 3000, dir: 301 },
      createdFiles: 3301,
      deletedFiles: 2,
      regularFilesTransferred: 3000,
      totalFileSize: 21_013_893,
      transferredFileSize: 20_971_520,
      literalData: 17_825_792,
      matchedData: 3_145_728,
      fileListSize: 43_012,
      bytesSent: 59_112,
      bytesReceived: 17_913_425,
    });
  });

  void test('plain numbers (--no-human-readable), links and a line rsync left out', () => {
    const stats = parseStats('Number of files: 7 (reg: 4, dir: 2, link: 1)\nNumber of regular files transferred: 3\nTotal file size: 4107 bytes\nTotal bytes received: 4400\n');
    assert.equal(stats?.files, 7);
    assert.deepEqual(stats?.fileKinds, { reg: 4, dir: 2, link: 1 });
    assert.equal(stats?.totalFileSize, 4107);
    assert.equal(stats?.bytesReceived, 4400);
    assert.equal(stats?.deletedFiles, 0, 'absent: 0');
  });

  void test('no stats: undefined', () => {
    assert.equal(parseStats(''), undefined);
    assert.equal(parseStats('rsync error: error in socket IO (code 10) at clientserver.c(165) [Receiver=3.5.0]\n'), undefined);
  });
});

void describe('classifyRsyncFailure on recorded stderr', () => {
  const cases: Array<[string, number, string, RsyncErrorKind, boolean]> = [
    ['disk full', 11, 'rsync: [receiver] write failed on "/srv/www/five.img": No space left on device (28)\nrsync error: error in file IO (code 11) at receiver.c(657) [receiver=3.5.0]', 'no-space', false],
    ['disk full seen by the generator', 23, 'rsync: [receiver] mkstemp "/srv/www/.a.XXXXXX" failed: No space left on device (28)\nrsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1394) [generator=3.5.0]', 'no-space', false],
    ['quota', 11, 'rsync: [receiver] write failed on "/srv/www/x": Disk quota exceeded (122)', 'no-space', false],
    ['read-only destination', 23, 'rsync: [generator] recv_generator: mkdir "/srv/www/a" failed: Read-only file system (30)\n*** Skipping any contents from this failed directory ***\nrsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1394) [sender=3.5.0]', 'read-only', false],
    ['a push into a read-only module', 1, 'ERROR: module is read only\nrsync error: syntax or usage error (code 1) at main.c(1185) [Receiver=3.5.0]', 'read-only', false],
    ['wrong password', 5, "rsync: [sender] read error: Connection reset by peer (104)\n@ERROR: auth failed on module g.basic.0\nrsync error: error starting client-server protocol (code 5) at main.c(1954) [Receiver=3.5.0]", 'auth', false],
    ['host not allowed (listed module)', 5, '@ERROR: access denied to g.basic.0 from UNDETERMINED (127.0.0.2)', 'auth', false],
    ['ssh key refused', 255, 'root@node1: Permission denied (publickey).\nrsync: connection unexpectedly closed (0 bytes received so far) [Receiver]\nrsync error: unexplained error (code 255) at io.c(285) [Receiver=3.5.0]', 'auth', false],
    ['ssh host key unknown', 255, 'No ED25519 host key is known for node1 and you have requested strict checking.\nHost key verification failed.\nrsync: connection unexpectedly closed (0 bytes received so far) [Receiver]', 'auth', false],
    ['rrsync refuses a push', 12, '/usr/bin/rrsync error: sending to read-only server is not allowed\nrsync: connection unexpectedly closed (0 bytes received so far) [sender]\nrsync error: error in rsync protocol data stream (code 12) at io.c(285) [sender=3.5.0]', 'auth', false],
    ['local permission', 23, 'rsync: [receiver] mkstemp "/srv/www/.x.AbCdEf" failed: Permission denied (13)', 'permission', false],
    ['unknown module (or a refused host, with list = no)', 5, "@ERROR: Unknown module 'g.basic.0'\nrsync error: error starting client-server protocol (code 5) at main.c(1954) [Receiver=3.5.0]", 'other', true],
    ['module directory missing on the owner', 5, '@ERROR: chroot failed\nrsync error: error starting client-server protocol (code 5) at main.c(1954) [Receiver=3.5.0]', 'other', true],
    ['directory missing on the owner (ssh)', 23, 'rsync: [sender] change_dir "/srv/www" failed: No such file or directory (2)\nrsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1868) [Receiver=3.5.0]', 'other', true],
    ['too many connections', 5, '@ERROR: max connections (16) reached -- try again later', 'connection', true],
    ['daemon down', 10, 'rsync: [Receiver] failed to connect to 10.0.0.1 (10.0.0.1): Connection refused (111)\nrsync error: error in socket IO (code 10) at clientserver.c(165) [Receiver=3.5.0]', 'connection', true],
    ['sshd down', 255, 'ssh: connect to host 127.0.0.1 port 1: Connection refused\nrsync: connection unexpectedly closed (0 bytes received so far) [Receiver]\nrsync error: unexplained error (code 255) at io.c(285) [Receiver=3.5.0]', 'connection', true],
    ['unresolvable', 255, 'ssh: Could not resolve hostname nonexistent.invalid: Name or service not known', 'connection', true],
    ['stalled', 30, '[Receiver] io timeout after 1 seconds -- exiting\nrsync error: timeout in data send/receive (code 30) at io.c(248) [Receiver=3.5.0]', 'timeout', true],
    ['no daemon answer', 35, 'rsync error: timeout waiting for daemon connection (code 35) at socket.c(278) [Receiver=3.5.0]', 'timeout', true],
    ['another program on the port', 5, 'rsync: server sent "HTTP/1.1 400 Bad Request" rather than greeting\nrsync error: error starting client-server protocol (code 5) at main.c(1954) [Receiver=3.5.0]', 'protocol', false],
    ['protocol', 2, 'rsync: protocol version mismatch -- is your shell clean?', 'protocol', false],
    ['usage', 1, 'rsync: --bogus: unknown option', 'usage', false],
    ['unsupported', 4, '', 'usage', false],
    ['partial', 23, 'rsync: [sender] send_files failed to open "/srv/www/x": Input/output error (5)', 'partial', true],
    ['vanished', 24, 'file has vanished: "/srv/www/tmp.123"', 'vanished', true],
    ['killed by SIGINT', 20, 'rsync error: received SIGINT, SIGTERM, or SIGHUP (code 20) at rsync.c(713) [Receiver=3.5.0]', 'other', true],
    ['memory', 22, '', 'other', true],
  ];
  for (const [what, exitCode, stderr, kind, retryable] of cases) {
    void test(`${what}: exit ${exitCode} → ${kind}${retryable ? ' (retryable)' : ''}`, () => {
      assert.deepEqual(classifyRsyncFailure(exitCode, stderr), { kind, retryable });
    });
  }

  void test('the message names the module and host, says what to do, and keeps rsync\'s last lines', () => {
    const argv = ['-a', '--password-file=/var/lib/haoscar/rsyncd/password', 'rsync://haoscar@10.0.0.1:8873/web.docroot.0/', '/srv/www/'];
    const stderr = ['one', 'two', 'three', 'four', 'rsync: [receiver] write failed on "/srv/www/x": No space left on device (28)', 'rsync error: error in file IO (code 11) at receiver.c(657) [receiver=3.5.0]'];
    const error = RsyncError.from(argv, 11, stderr);
    assert.equal(error.kind, 'no-space');
    assert.equal(error.retryable, false);
    assert.equal(error.exitCode, 11);
    assert.match(error.message, /^rsync pull of module web\.docroot\.0 from 10\.0\.0\.1:8873 into \/srv\/www failed \(exit 11: error in file I\/O\): no space left/);
    assert.match(error.message, /df -h \/srv\/www\)/);
    assert.match(error.message, /rsync said: two \| three \| four \| rsync: \[receiver\] write failed .* \| rsync error: error in file IO/);
    assert.doesNotMatch(error.message, /one/, 'only the last lines');

    const ssh = RsyncError.from(['-a', '-e', 'ssh -i /k', 'root@node1:/srv/www/', '/srv/www/'], 255, ['root@node1: Permission denied (publickey).']);
    assert.match(ssh.message, /^rsync pull of \/srv\/www\/ from root@node1 \(ssh\) into \/srv\/www failed \(exit 255/);
    assert.match(ssh.message, /authorized_keys/);
  });
});

void describe('rsyncPullArgs', () => {
  void test('daemon transport: the exact argv', () => {
    assert.deepEqual(
      rsyncPullArgs({
        set: { ...SET, excludes: ['*.tmp', 'cache/'], bwlimit: 5000, checksum: true, ioTimeoutMs: 29_500 },
        source: { transport: 'daemon', host: '10.0.0.1', port: 8873, module: moduleName('web', 'docroot', 0), passwordFile: '/var/lib/haoscar/rsyncd/password' },
        destination: '/srv/www',
      }),
      [
        '-a', '--hard-links', '--numeric-ids', '--partial-dir=.haoscar-partial', '--delay-updates', '--timeout=30', '--delete', '--delete-delay',
        '--exclude=*.tmp', '--exclude=cache/', '--bwlimit=5000', '--checksum', '--info=progress2', '--stats',
        '--contimeout=30', '--password-file=/var/lib/haoscar/rsyncd/password',
        'rsync://haoscar@10.0.0.1:8873/web.docroot.0/', '/srv/www/',
      ],
    );
  });

  void test('delete: false, no limit, no checksum; an IPv6 owner in brackets; trailing slashes normalised', () => {
    const argv = rsyncPullArgs({ set: { ...SET, delete: false }, source: { transport: 'daemon', host: 'fd00::1', port: 8873, module: 'web.docroot.1', passwordFile: '/p' }, destination: '/srv/data//' });
    assert.ok(!argv.includes('--delete') && !argv.some((a) => a.startsWith('--bwlimit') || a === '--checksum'));
    assert.ok(!argv.includes('--delete-excluded'));
    assert.ok(argv.includes('--delay-updates'), 'a cut pull leaves the old tree, with or without deletions');
    assert.ok(!argv.includes('--backup'), 'no backups unless asked');
    assert.deepEqual(argv.slice(-2), ['rsync://haoscar@[fd00::1]:8873/web.docroot.1/', '/srv/data/']);
  });

  void test('ssh transport: one -e argument, user@host:DIR/ into DIR/', () => {
    const sync: SyncSettings = { transport: 'ssh', port: 8873, rsync: '/usr/bin/rsync', keepBackups: 5, ssh: { user: 'root', identityFile: '/etc/haoscar/sync_ed25519', knownHostsFile: '/etc/haoscar/known_hosts' } };
    const source = pullSourceFor(sync, { host: '10.0.0.1', group: 'web', set: 'docroot', index: 0, path: '/srv/www', passwordFile: '/unused' });
    const argv = rsyncPullArgs({ set: SET, source, destination: '/srv/www' });
    const e = argv.indexOf('-e');
    assert.equal(argv[e + 1], 'ssh -i /etc/haoscar/sync_ed25519 -o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/haoscar/known_hosts -o IdentitiesOnly=yes -o ConnectTimeout=30 -p 22');
    assert.deepEqual(argv.slice(-2), ['root@10.0.0.1:/srv/www/', '/srv/www/']);
    assert.ok(!argv.some((a) => a.startsWith('--password-file') || a.startsWith('--contimeout')));
  });

  void test('pullSourceFor, daemon: the module of that directory on the configured port', () => {
    const sync: SyncSettings = { transport: 'daemon', port: 9000, rsync: '/usr/bin/rsync', keepBackups: 5, ssh: { user: 'root', identityFile: '/k', knownHostsFile: '/h' } };
    assert.deepEqual(pullSourceFor(sync, { host: '10.0.0.1', group: 'web', set: 'docroot', index: 2, path: '/srv/c', passwordFile: '/p' }), { transport: 'daemon', host: '10.0.0.1', port: 9000, module: 'web.docroot.2', passwordFile: '/p' });
  });

  void test('backupDir: --backup --backup-dir=DIR; refused relative or inside the destination', () => {
    const source = { transport: 'daemon' as const, host: '10.0.0.1', port: 8873, module: 'web.docroot.0', passwordFile: '/p' };
    const argv = rsyncPullArgs({ set: SET, source, destination: '/srv/www', backupDir: '/var/lib/haoscar/sync-backup/web/docroot/20261206T172000Z-from-node2/0' });
    assert.deepEqual(argv.filter((a) => a.startsWith('--backup')), ['--backup', '--backup-dir=/var/lib/haoscar/sync-backup/web/docroot/20261206T172000Z-from-node2/0']);
    assert.throws(() => rsyncPullArgs({ set: SET, source, destination: '/srv/www', backupDir: 'backup' }), RsyncArgsError);
    assert.throws(() => rsyncPullArgs({ set: SET, source, destination: '/srv/www', backupDir: '/srv/www/.backup' }), /inside the destination/);
    // A sibling whose name starts the same is not inside.
    assert.ok(rsyncPullArgs({ set: SET, source, destination: '/srv/www', backupDir: '/srv/www-backup' }).includes('--backup'));
  });

  void test('refuses what rsync or ssh could misread', () => {
    const ssh = { transport: 'ssh' as const, host: 'node1', user: 'root', path: '/srv/www', identityFile: '/k', knownHostsFile: '/h' };
    const bad: Array<[string, Parameters<typeof rsyncPullArgs>[0]]> = [
      ['relative destination', { set: SET, source: ssh, destination: 'srv/www' }],
      ['a host that is an option', { set: SET, source: { ...ssh, host: '-oProxyCommand=touch /tmp/x' }, destination: '/srv/www' }],
      ['a user that is an option', { set: SET, source: { ...ssh, user: '-oProxyCommand=x' }, destination: '/srv/www' }],
      ['a key path with a space', { set: SET, source: { ...ssh, identityFile: '/etc/my key' }, destination: '/srv/www' }],
      ['a known-hosts path with a %', { set: SET, source: { ...ssh, knownHostsFile: '/etc/%u' }, destination: '/srv/www' }],
      ['a module with a slash', { set: SET, source: { transport: 'daemon', host: 'node1', port: 8873, module: 'a/b', passwordFile: '/p' }, destination: '/srv/www' }],
      ['a newline in a path', { set: SET, source: { ...ssh, path: '/srv/a\nb' }, destination: '/srv/www' }],
    ];
    for (const [what, opts] of bad) assert.throws(() => rsyncPullArgs(opts), RsyncArgsError, what);
  });
});

void describe('runRsync with a scripted rsync', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-fake-rsync-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  /** A stand-in for rsync: a node script (its argv is ignored). */
  const fake = (name: string, code: string) => {
    const file = join(dir, name);
    writeFileSync(file, `#!${process.execPath}\n${code}\n`, { mode: 0o755 });
    return file;
  };
  const argv = ['rsync://haoscar@10.0.0.1:8873/web.docroot.0/', '/srv/www/'];

  void test('progress lines split on \\r across chunk boundaries; stats parsed; a final 100%', async () => {
    const rsync = fake('progress', `
      const w = (s) => new Promise((r) => process.stdout.write(s, () => setTimeout(r, 30)));
      (async () => {
        await w('\\r      1,000   10%    1.00kB/s    0:00:09  \\r      5,0');
        await w('00   50%    1.00kB/s    0:00:05 (xfr#1, to-chk=1/3)');
        await w('\\r      9,000   99%    1.00kB/s    0:00:09 (xfr#2, to-chk=0/3)\\n\\n${STATS.trim().replace(/\n/g, '\\n')}\\n');
      })();`);
    const seen: RsyncProgress[] = [];
    const result = await runRsync(argv, { rsync, onProgress: (p) => seen.push(p) });
    assert.deepEqual(seen.map((p) => [p.bytes, p.percent]), [[1000, 10], [5000, 50], [9000, 99], [9000, 100]]);
    assert.equal(result.exitCode, 0);
    assert.equal(result.vanished, false);
    assert.equal(result.stats?.bytesReceived, 17_913_425);
  });

  void test('exit 24 (files vanished) is a success with vanished: true', async () => {
    const rsync = fake('vanished', `console.error('file has vanished: "/srv/www/tmp.1"'); process.exitCode = 24;`);
    const result = await runRsync(argv, { rsync });
    assert.equal(result.exitCode, 24);
    assert.equal(result.vanished, true);
  });

  void test('a failure becomes an RsyncError with the classified kind', async () => {
    const rsync = fake('refused', `console.error('rsync: [Receiver] failed to connect to 10.0.0.1 (10.0.0.1): Connection refused (111)'); process.exitCode = 10;`);
    await assert.rejects(runRsync(argv, { rsync }), (err: unknown) => {
      assert.ok(err instanceof RsyncError);
      assert.equal(err.kind, 'connection');
      assert.equal(err.retryable, true);
      assert.match(err.message, /cannot talk to the rsync daemon on 10\.0\.0\.1:8873/);
      return true;
    });
  });

  void test('timeoutMs kills it: kind timeout, retryable', async () => {
    const rsync = fake('hang', 'setInterval(() => {}, 1000);');
    await assert.rejects(runRsync(argv, { rsync, timeoutMs: 200 }), (err: unknown) => {
      assert.ok(err instanceof RsyncError);
      assert.equal(err.kind, 'timeout');
      assert.equal(err.retryable, true);
      assert.match(err.message, /did not finish within 200 ms/);
      return true;
    });
  });

  void test('abort kills its process group and rejects with the signal\'s reason', async () => {
    const pidFile = join(dir, 'grandchild.pid');
    // A child of the fake rsync stands for rsync's own forked receiver.
    const rsync = fake('forks', `
      const { spawn } = require('node:child_process');
      const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(child.pid));
      setInterval(() => {}, 1000);`);
    const controller = new AbortController();
    const run = runRsync(argv, { rsync, signal: controller.signal });
    await waitFor('the fake rsync to fork', () => existsSync(pidFile) && readFileSync(pidFile, 'utf8') !== '', 5_000);
    const grandchild = Number(readFileSync(pidFile, 'utf8'));
    controller.abort(new Error('cancelled by test'));
    await assert.rejects(run, /cancelled by test/);
    await waitFor('the forked child to be gone too', () => {
      try {
        process.kill(grandchild, 0);
        return readFileSync(`/proc/${grandchild}/stat`, 'utf8').includes(') Z');
      } catch {
        return true;
      }
    }, 5_000);
  });

  void test('a missing rsync binary: kind usage, not retryable, says to install it', async () => {
    await assert.rejects(runRsync(argv, { rsync: join(dir, 'no-such-rsync') }), (err: unknown) => {
      assert.ok(err instanceof RsyncError);
      assert.equal(err.kind, 'usage');
      assert.equal(err.retryable, false);
      assert.match(err.message, /apt install rsync/);
      return true;
    });
  });
});

void describe('writeDaemonFiles', () => {
  const dir = mkdtempSync(join(tmpdir(), 'haoscar-rsyncd-conf-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const secret = Buffer.from('conf-test-secret-conf-test-secret');
  const base = { cluster: 'prod', port: 8873, secret, hostsAllow: ['10.0.0.1', '10.0.0.2'], modules: [{ name: 'web.docroot.0', path: '/srv/www', comment: 'web/docroot' }] };

  void test('one module per directory, read-only, addresses only (no DNS), secrets 0600', async () => {
    const files = await writeDaemonFiles(join(dir, 'a'), { ...base, address: '10.0.0.1', modules: [...base.modules, { name: 'web.docroot.1', path: '/srv/100%/./x ', comment: 'odd %HOME% path' }] });
    const conf = readFileSync(files.config, 'utf8');
    assert.match(conf, /\nport = 8873\naddress = 10\.0\.0\.1\n/);
    assert.match(conf, /\nhosts allow = 10\.0\.0\.1 10\.0\.0\.2\nhosts deny = \*\n/);
    assert.match(conf, /\nforward lookup = no\n/);
    assert.match(conf, /\nexclude = \.haoscar-partial\/\n/);
    assert.match(conf, /\n\[web\.docroot\.0\]\n\tpath = \/srv\/www\n\tcomment = web\/docroot\n/);
    // % doubled (rsync expands %VAR%), "/./" normalised away (rsync's chroot divider), a trailing space kept by a slash.
    assert.match(conf, /\n\[web\.docroot\.1\]\n\tpath = \/srv\/100%%\/x \/\n\tcomment = odd %%HOME%% path\n/);
    assert.equal(statSync(files.secrets).mode & 0o777, 0o600);
    assert.equal(statSync(files.passwordFile).mode & 0o777, 0o600);
    // The signing secret's password twice: as `haoscar` (nodes outside a rotation, older releases) and as its own user.
    const password = derivePassword(secret, 'prod');
    assert.equal(readFileSync(files.secrets, 'utf8'), `haoscar:${password}\nhaoscar-${secretKeyId(secret)}:${password}\n`);
    assert.match(conf, new RegExp(`\nauth users = haoscar, haoscar-${secretKeyId(secret)}\n`));
    assert.equal(files.user, 'haoscar', 'outside a rotation, pulls log in as haoscar');
    assert.ok(!existsSync(`${files.config}.tmp-${process.pid}`), 'written by rename, no temporary left');
  });

  void test('host names in hosts allow turn forward lookups on', async () => {
    const files = await writeDaemonFiles(join(dir, 'b'), { ...base, hostsAllow: ['10.0.0.1', 'node2.example'] });
    assert.match(readFileSync(files.config, 'utf8'), /\nforward lookup = yes\n/);
  });

  void test('derivePassword: deterministic, per cluster, per secret', () => {
    assert.equal(derivePassword(secret, 'prod'), derivePassword(Buffer.from(secret), 'prod'));
    assert.notEqual(derivePassword(secret, 'prod'), derivePassword(secret, 'test'));
    assert.notEqual(derivePassword(secret, 'prod'), derivePassword(Buffer.from('another-secret-another-secret'), 'prod'));
  });

  void test('refuses what cannot go into rsyncd.conf safely', async () => {
    const bad: Array<[string, Partial<Parameters<typeof writeDaemonFiles>[1]>]> = [
      ['no hosts', { hostsAllow: [] }],
      ['a host with a space', { hostsAllow: ['10.0.0.1 *'] }],
      ['a module name with a bracket', { modules: [{ name: 'a]b', path: '/srv', comment: '' }] }],
      ['a module listed twice', { modules: [base.modules[0]!, base.modules[0]!] }],
      ['a relative path', { modules: [{ name: 'a', path: 'srv', comment: '' }] }],
      ['a newline in a path', { modules: [{ name: 'a', path: '/srv\n[evil]', comment: '' }] }],
      ['a newline in a comment', { modules: [{ name: 'a', path: '/srv', comment: 'x\nread only = no' }] }],
    ];
    for (const [what, override] of bad) {
      await assert.rejects(writeDaemonFiles(join(dir, 'bad'), { ...base, ...override }), DaemonConfigError, what);
    }
  });
});
