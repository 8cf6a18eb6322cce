/**
 * Monit's resource tests as checks (disk, memory, cpu, file, icmp), against real things: statfs
 * of a real directory, real child processes that allocate memory or spin, real files, and the
 * real ping — inside a throwaway network namespace for everything but its argument handling.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { CheckSpec } from '../../src/config/types.js';
import { createCheck, type CheckContext } from '../../src/checks/check.js';
import { readDiskUsage } from '../../src/checks/disk.js';
import { readRss } from '../../src/checks/usage.js';
import { createExec, type Exec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';

const timing = { intervalMs: 1000, timeoutMs: 1000, rise: 1, fall: 1 };
const exec = createExec(silentLogger);
const ctx: CheckContext = { exec };
const MB = 1024 * 1024;

let dir: string;
const children: ChildProcess[] = [];

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'haoscar-resource-checks-'));
});
after(async () => {
  for (const child of children) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  await rm(dir, { recursive: true, force: true });
});

/** A node child running `script`; resolves once it printed "ready". */
async function child(script: string, argv0 = process.execPath, args: string[] = ['-e', script]): Promise<ChildProcess & { pid: number }> {
  // Its own process group, so that cleanup reaches what it started too.
  const proc = spawn(argv0, args, { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  children.push(proc);
  let out = '';
  await new Promise<void>((resolve, reject) => {
    proc.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('ready')) resolve();
    });
    proc.once('exit', (code) => reject(new Error(`child exited with ${code} before it was ready`)));
  });
  assert.ok(proc.pid);
  return proc as ChildProcess & { pid: number };
}

/** A child holding `mb` MiB of touched (resident) memory. */
const ALLOCATE = (mb: number) => `globalThis.held = Buffer.alloc(${mb} * 1024 * 1024, 1); console.log('ready'); setInterval(() => {}, 1e6);`;

void describe('disk check', () => {
  test('thresholds around what statfs reports for a real directory; df agrees with the figures', async () => {
    const usage = await readDiskUsage(dir);
    // df rounds Use% up; its Avail is in 1K blocks.
    const df = await execa('df', ['--output=pcent,avail', '-B1', dir]);
    const [pcent, avail] = df.stdout.split('\n')[1]!.trim().split(/\s+/);
    assert.ok(Math.abs(Number(pcent!.replace('%', '')) - Math.ceil(usage.usedPercent)) <= 1, `df ${pcent} vs ${usage.usedPercent}`);
    assert.ok(Math.abs(Number(avail) - usage.freeBytes) < 64 * MB, `df avail ${avail} vs ${usage.freeBytes}`);

    const run = (limits: Partial<Extract<CheckSpec, { type: 'disk' }>>) => createCheck({ type: 'disk', path: dir, ...limits, ...timing }, ctx)();
    // Margins of 5 points and a factor 2: other writers on this machine move the figures a little.
    const pass = await run({ maxUsedPercent: Math.min(100, usage.usedPercent + 5), minFreeBytes: Math.floor(usage.freeBytes / 2) });
    assert.equal(pass.ok, true, pass.detail);
    assert.match(pass.detail, new RegExp(`^disk ${dir}: \\d+(\\.\\d)?% used, [\\d.]+[KMGT]?B free$`));

    const tooFull = await run({ maxUsedPercent: Math.max(0, usage.usedPercent - 5) });
    if (usage.usedPercent > 0) {
      assert.equal(tooFull.ok, false, tooFull.detail);
      assert.match(tooFull.detail, /space used over [\d.]+% \(/);
    }
    const tooLittleFree = await run({ minFreeBytes: usage.freeBytes * 2 + MB });
    assert.equal(tooLittleFree.ok, false);
    assert.match(tooLittleFree.detail, /free space under [\d.]+[KMGT]?B/);

    if (usage.inodesUsedPercent !== undefined) {
      const inodesOk = await run({ maxInodesUsedPercent: Math.min(100, usage.inodesUsedPercent + 5) });
      assert.equal(inodesOk.ok, true, inodesOk.detail);
      assert.match(inodesOk.detail, /inodes [\d.]+% used/);
      if (usage.inodesUsedPercent > 0) {
        const inodesFull = await run({ maxInodesUsedPercent: usage.inodesUsedPercent / 2 });
        assert.equal(inodesFull.ok, false, inodesFull.detail);
        assert.match(inodesFull.detail, /inodes used over/);
      }
    }

    const missing = await run({ path: join(dir, 'nope'), maxUsedPercent: 99 });
    assert.deepEqual([missing.ok, missing.detail], [false, `disk ${join(dir, 'nope')}: no such file`]);
  });
});

void describe('memory check', () => {
  test("the VmRSS of the service and of a pid file's process", async () => {
    const hog = await child(ALLOCATE(200));
    const rss = await readRss(hog.pid);
    assert.ok(rss !== undefined && rss > 200 * MB, `rss ${rss}`);

    const service: CheckContext = { exec, servicePid: () => Promise.resolve(hog.pid) };
    const over = await createCheck({ type: 'memory', maxBytes: 150 * MB, children: false, ...timing }, service)();
    assert.equal(over.ok, false, over.detail);
    assert.match(over.detail, new RegExp(`^memory of the service: pid ${hog.pid} uses [\\d.]+MB \\(VmRSS\\), over 150MB$`));
    const under = await createCheck({ type: 'memory', maxBytes: 1024 * MB, children: false, ...timing }, service)();
    assert.equal(under.ok, true, under.detail);
    assert.match(under.detail, /at most 1GB$/);

    const pidFile = join(dir, 'hog.pid');
    await writeFile(pidFile, `${hog.pid}\n`);
    const byFile = await createCheck({ type: 'memory', maxBytes: 150 * MB, pidFile, children: false, ...timing }, ctx)();
    assert.equal(byFile.ok, false, byFile.detail);
    assert.match(byFile.detail, new RegExp(`^memory of pidfile ${pidFile}: pid ${hog.pid} uses`));

    const notRunning = await createCheck({ type: 'memory', maxBytes: MB, children: false, ...timing }, { exec, servicePid: () => Promise.resolve(undefined) })();
    assert.deepEqual([notRunning.ok, notRunning.detail], [false, 'memory of the service: the service has no process (not running)']);
    hog.kill('SIGKILL');
    await once(hog, 'exit');
  });

  test('children: a small parent whose child holds the memory (Monit totalmem)', async () => {
    // A shell that starts the hog and waits: the shell itself is small.
    const parent = await child('', '/bin/sh', ['-c', `"${process.execPath}" -e "${ALLOCATE(200).replace(/"/g, '\\"')}" & wait`]);
    const service: CheckContext = { exec, servicePid: () => Promise.resolve(parent.pid) };
    const alone = await createCheck({ type: 'memory', maxBytes: 150 * MB, children: false, ...timing }, service)();
    assert.equal(alone.ok, true, alone.detail);
    const total = await createCheck({ type: 'memory', maxBytes: 150 * MB, children: true, ...timing }, service)();
    assert.equal(total.ok, false, total.detail);
    assert.match(total.detail, new RegExp(`pid ${parent.pid} and its 1 descendant use [\\d.]+MB \\(VmRSS\\), over 150MB`));
    process.kill(-parent.pid, 'SIGKILL');
  });
});

void describe('cpu check', () => {
  test('a spinning process is over, an idle one under; the first run measures a window of its own, later runs use the last sample', async () => {
    const spinner = await child("console.log('ready'); for (;;) {}");
    const idle = await child("console.log('ready'); setInterval(() => {}, 1e6);");
    const spec = { type: 'cpu', maxPercent: 10, ...timing } as const;
    const busyCheck = createCheck(spec, { exec, servicePid: () => Promise.resolve(spinner.pid) });
    const first = await busyCheck();
    assert.equal(first.ok, false, first.detail);
    assert.match(first.detail, new RegExp(`^cpu of the service: pid ${spinner.pid} used [\\d.]+% CPU over the last 0\\.5s, over 10%$`));
    assert.ok(first.durationMs >= 450, `the first run measured over half the timeout (${first.durationMs}ms)`);
    await new Promise((r) => setTimeout(r, 300));
    const second = await busyCheck();
    assert.equal(second.ok, false, second.detail);
    assert.ok(second.durationMs < 400, `the second run compares with the first's sample (${second.durationMs}ms)`);
    assert.match(second.detail, /over the last 0\.[3-9]s/);

    const idleCheck = createCheck(spec, { exec, servicePid: () => Promise.resolve(idle.pid) });
    for (let i = 0; i < 2; i++) {
      const r = await idleCheck();
      assert.equal(r.ok, true, r.detail);
      assert.match(r.detail, /used [0-9.]+% CPU .*, at most 10%$/);
    }

    // The service restarted (another pid): no delta against the old process's sample.
    let pid = spinner.pid;
    const switching = createCheck(spec, { exec, servicePid: () => Promise.resolve(pid) });
    assert.equal((await switching()).ok, false);
    pid = idle.pid;
    const afterRestart = await switching();
    assert.equal(afterRestart.ok, true, afterRestart.detail);
    assert.ok(afterRestart.durationMs >= 450, 'a new process is measured over a window of its own');
    spinner.kill('SIGKILL');
    idle.kill('SIGKILL');
  });
});

void describe('file check', () => {
  test('sha256 fixed and unchanged, size, age, missing', async () => {
    const file = join(dir, 'app.conf');
    await writeFile(file, 'listen 80\n');
    const sum = createHash('sha256').update('listen 80\n').digest('hex');
    const check = (over: Partial<Extract<CheckSpec, { type: 'file' }>>) => createCheck({ type: 'file', path: file, ...timing, ...over }, ctx);

    assert.deepEqual(await pick(check({ sha256: sum })), [true, `file ${file}: sha256 ${sum.slice(0, 12)}…`]);
    const wrong = await check({ sha256: '0'.repeat(64) })();
    assert.equal(wrong.ok, false);
    assert.match(wrong.detail, /checksum is not 000000000000…/);

    // 'unchanged' with fall 2: a change fails two runs (one failing edge), then is the reference.
    const unchanged = check({ sha256: 'unchanged', fall: 2 });
    assert.match((await unchanged()).detail, /now the reference/);
    assert.match((await unchanged()).detail, /unchanged$/);
    await appendFile(file, 'listen 443\n');
    const changed = await unchanged();
    assert.equal(changed.ok, false);
    assert.match(changed.detail, new RegExp(`content changed: sha256 ${sum.slice(0, 12)}… is now`));
    assert.equal((await unchanged()).ok, false, 'still reported: fall is 2');
    const adopted = await unchanged();
    assert.equal(adopted.ok, true, adopted.detail);
    assert.match(adopted.detail, /unchanged$/);

    assert.deepEqual(await pick(check({ maxSizeBytes: 10 })), [false, `file ${file}: larger than 10B (21B)`]);
    assert.deepEqual(await pick(check({ maxSizeBytes: 1024, minSizeBytes: 1 })), [true, `file ${file}: 21B`]);
    await writeFile(join(dir, 'empty'), '');
    assert.deepEqual(await pick(createCheck({ type: 'file', path: join(dir, 'empty'), minSizeBytes: 1, ...timing }, ctx)), [false, `file ${join(dir, 'empty')}: smaller than 1B (0B)`]);

    assert.equal((await check({ maxAgeMs: 600_000 })()).ok, true);
    const old = new Date(Date.now() - 3_600_000);
    await utimes(file, old, old);
    assert.deepEqual(await pick(check({ maxAgeMs: 600_000 })), [false, `file ${file}: not modified for over 10m (modified 1h ago)`]);

    assert.deepEqual(await pick(createCheck({ type: 'file', path: join(dir, 'absent'), ...timing }, ctx)), [false, `file ${join(dir, 'absent')}: no such file`]);
  });
});

async function pick(check: () => Promise<{ ok: boolean; detail: string }>): Promise<[boolean, string]> {
  const r = await check();
  return [r.ok, r.detail];
}

void describe('icmp check', () => {
  const ns = `hm-icmp-${process.pid}`;
  /** Runs each command inside the namespace: the pings never leave it. */
  const inNamespace: Exec = (file, args, options) => exec('ip', ['netns', 'exec', ns, file, ...args], options);
  const nsCtx: CheckContext = { exec: inNamespace };

  before(async () => {
    await execa('ip', ['netns', 'add', ns]);
    await execa('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    // A veth pair inside the namespace gives it 10.213.0.0/24 with nobody at .77.
    await execa('ip', ['-n', ns, 'link', 'add', 'hm0', 'type', 'veth', 'peer', 'name', 'hm1']);
    await execa('ip', ['-n', ns, 'link', 'set', 'hm0', 'up']);
    await execa('ip', ['-n', ns, 'link', 'set', 'hm1', 'up']);
    await execa('ip', ['-n', ns, 'address', 'add', '10.213.0.5/24', 'dev', 'hm0']);
  });
  after(async () => {
    await execa('ip', ['netns', 'delete', ns], { reject: false });
  });

  test('127.0.0.1 answers; 10.213.0.77 does not (within the timeout); an unknown name is named', async () => {
    const up = await createCheck({ type: 'icmp', host: '127.0.0.1', ...timing }, nsCtx)();
    assert.equal(up.ok, true, up.detail);
    assert.match(up.detail, /^icmp 127\.0\.0\.1: reply in [\d.]+ms$/);

    const down = await createCheck({ type: 'icmp', host: '10.213.0.77', ...timing, timeoutMs: 500 }, nsCtx)();
    assert.deepEqual([down.ok, down.detail], [false, 'icmp 10.213.0.77: no reply within 300ms']);
    assert.ok(down.durationMs >= 250 && down.durationMs < 500, `ping gave up before the check's deadline (${down.durationMs}ms)`);

    const unknown = await createCheck({ type: 'icmp', host: 'no-such-host.invalid', ...timing }, nsCtx)();
    assert.equal(unknown.ok, false);
    assert.match(unknown.detail, /^icmp no-such-host\.invalid: ping exited with 2: .*no-such-host\.invalid/);
  });
});
