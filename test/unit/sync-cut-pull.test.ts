/**
 * What a standby's tree looks like after a pull that was cut short by a real signal, and what
 * a returning old owner keeps of the files the new owner lacks: real rsync, a real read-only
 * daemon on 127.0.0.1, real directories (issue 9 item 8). Needs root (the daemon chroots).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import type { FileSet } from '../../src/config/types.js';
import { silentLogger } from '../../src/log.js';
import { signalGroup } from '../../src/process-group.js';
import { RsyncDaemon, writeDaemonFiles, type DaemonFiles } from '../../src/sync/daemon.js';
import { moduleName, parseProgress2, PARTIAL_DIR, rsyncPullArgs, runRsync } from '../../src/sync/rsync.js';
import { freePort } from '../support/lab.js';

const RSYNC = '/usr/bin/rsync';
const isRoot = process.getuid?.() === 0;
const SECRET = Buffer.from('cut-pull-test-secret-cut-pull-test');
const MiB = 1024 * 1024;
const SET: FileSet = { name: 'data', paths: [], excludes: [], delete: true, bwlimit: 0, continuous: false, batchMs: 200, verifyEveryMs: 60_000, checksum: false, ioTimeoutMs: 30_000 };
/** Files of the owner's new tree: enough that a pull at the limit below takes seconds. */
const FILES = ['a.bin', 'b.bin', 'c.bin', 'd.bin', 'e.bin', 'f.bin'];
const FILE_BYTES = 3 * MiB;

/** Every file under `dir` (relative), sorted; the partial dir left out. */
function tree(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true })
    .filter((e) => !(prefix === '' && e.name === PARTIAL_DIR))
    .flatMap((e) => {
      const rel = prefix ? `${prefix}/${e.name}` : e.name;
      return e.isDirectory() ? tree(dir, rel) : [rel];
    })
    .sort();
}

void describe('a pull cut short, and what a returning owner keeps (real rsync and daemon)', { skip: !isRoot && 'needs root: the daemon chroots' }, () => {
  const root = mkdtempSync(join(tmpdir(), 'haoscar-cut-'));
  const owner = join(root, 'owner');
  let files: DaemonFiles;
  let daemon: RsyncDaemon;
  let port: number;
  const newContent = new Map<string, Buffer>();

  before(async () => {
    mkdirSync(owner, { recursive: true });
    for (const f of FILES) {
      const body = randomBytes(FILE_BYTES);
      newContent.set(f, body);
      writeFileSync(join(owner, f), body);
    }
    port = await freePort();
    files = await writeDaemonFiles(join(root, 'daemon'), { cluster: 'test', port, address: '127.0.0.1', modules: [{ name: moduleName('g', 'data', 0), path: owner, comment: 'g/data' }], hostsAllow: ['127.0.0.1'], secret: SECRET });
    daemon = new RsyncDaemon({ rsync: RSYNC, config: files.config, pidFile: files.pidFile, port, address: '127.0.0.1', logger: silentLogger });
    await daemon.start();
  });

  after(async () => {
    await daemon?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  const argvFor = (destination: string, overrides: Partial<FileSet> = {}, backupDir?: string) =>
    rsyncPullArgs({ set: { ...SET, ...overrides }, source: { transport: 'daemon', host: '127.0.0.1', port, module: moduleName('g', 'data', 0), passwordFile: files.passwordFile }, destination, ...(backupDir !== undefined ? { backupDir } : {}) });

  /** The standby's old copy: every file with old content (an older time), and one the owner has since deleted. */
  const oldTree = (name: string): string => {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    const old = new Date(Date.now() - 3600_000);
    for (const f of FILES) {
      writeFileSync(join(dir, f), `old ${f}`);
      utimesSync(join(dir, f), old, old);
    }
    writeFileSync(join(dir, 'deleted-on-owner.txt'), 'old');
    return dir;
  };

  /** Per file: 'old', 'new', or something else (a mix of both would be a half-updated tree). */
  const states = (dir: string) => Object.fromEntries([...FILES, 'deleted-on-owner.txt'].map((f) => {
    const file = join(dir, f);
    if (!existsSync(file)) return [f, 'missing'];
    const body = readFileSync(file);
    if (f === 'deleted-on-owner.txt') return [f, body.toString() === 'old' ? 'old' : 'other'];
    return [f, body.equals(newContent.get(f)!) ? 'new' : body.toString() === `old ${f}` ? 'old' : 'other'];
  }));
  const OLD = Object.fromEntries([...FILES, 'deleted-on-owner.txt'].map((f) => [f, 'old']));
  const NEW = { ...Object.fromEntries(FILES.map((f) => [f, 'new'])), 'deleted-on-owner.txt': 'missing' };

  /** Runs the pull and kills its whole process group with `signal` once `killAt` bytes have arrived. */
  async function pullKilled(argv: string[], signal: NodeJS.Signals, killAt: number): Promise<number> {
    const child = execa(RSYNC, argv, { reject: false, buffer: false, detached: true, stdin: 'ignore', env: { LC_ALL: 'C' } });
    let seen = 0;
    let killed = false;
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      for (const line of chunk.split(/\r|\n/)) {
        const p = parseProgress2(line);
        if (!p) continue;
        seen = p.bytes;
        if (!killed && p.bytes >= killAt && child.pid !== undefined) {
          killed = true;
          signalGroup(child.pid, signal);
        }
      }
    });
    const result = await child;
    assert.ok(killed, `the pull was killed mid-transfer (it ended by itself with exit ${result.exitCode} after ${seen} bytes)`);
    return seen;
  }

  for (const signal of ['SIGKILL', 'SIGTERM'] as const) {
    void test(`a pull killed mid-transfer (${signal}) leaves the old tree, whole; the next pull gives the new tree, whole`, async () => {
      const dest = oldTree(`cut-${signal}`);
      // 18 MiB at 4,000 KiB/s: about 4.6 s; killed after two files and a half.
      const seen = await pullKilled(argvFor(dest, { bwlimit: 4_000 }), signal, 2.5 * FILE_BYTES);
      assert.ok(seen < FILES.length * FILE_BYTES, `cut short (${seen} bytes)`);
      assert.deepEqual(states(dest), OLD, 'every file as it was before the pull (none replaced, none deleted)');

      const resumed = await runRsync(argvFor(dest), { rsync: RSYNC });
      assert.deepEqual(states(dest), NEW);
      assert.deepEqual(tree(dest), [...FILES].sort());
      // What the cut pull had received was kept and used: less than the whole tree came again.
      assert.ok((resumed.stats?.literalData ?? Infinity) < FILES.length * FILE_BYTES, `resumed: literal ${resumed.stats?.literalData}`);
      assert.deepEqual(existsSync(join(dest, PARTIAL_DIR)) ? readdirSync(join(dest, PARTIAL_DIR)) : [], [], 'nothing left in the partial dir');
    });
  }

  void test("a returning owner's pull keeps what the new owner lacks, or has changed, in the backup dir", async () => {
    const dest = oldTree('returning');
    writeFileSync(join(dest, 'only-on-returning-owner.txt'), 'written before it died');
    const backup = join(root, 'state', 'sync-backup', 'g', 'data', 'first', '0');
    await runRsync(argvFor(dest, {}, backup), { rsync: RSYNC });
    assert.deepEqual(states(dest), NEW);
    assert.ok(!existsSync(join(dest, 'only-on-returning-owner.txt')), 'the copy is the owner\'s');
    assert.ok(existsSync(backup), `the backup dir ${backup} exists`);
    assert.equal(readFileSync(join(backup, 'only-on-returning-owner.txt'), 'utf8'), 'written before it died');
    assert.equal(readFileSync(join(backup, 'deleted-on-owner.txt'), 'utf8'), 'old');
    for (const f of FILES) assert.equal(readFileSync(join(backup, f), 'utf8'), `old ${f}`, `the replaced ${f} is kept`);
  });
});
