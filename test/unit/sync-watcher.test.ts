/**
 * ChangeWatcher on real directories (inotify through Node's recursive fs.watch): batching,
 * nested directories, a directory that appears later or is removed, the partial dir ignored.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { silentLogger } from '../../src/log.js';
import { PARTIAL_DIR } from '../../src/sync/rsync.js';
import { ChangeWatcher, type ChangeBatch, type ChangeWatcherOptions } from '../../src/sync/watcher.js';
import { waitFor } from '../support/wait.js';

const BATCH_MS = 150;
/** Slack for timers and inotify delivery on a busy test machine. */
const SLACK_MS = 250;

function setUp(t: TestContext, options: Partial<ChangeWatcherOptions> = {}) {
  const root = mkdtempSync(join(tmpdir(), 'haoscar-watch-'));
  const dir = join(root, 'data');
  mkdirSync(dir);
  const batches: Array<ChangeBatch & { at: number }> = [];
  let watcher: ChangeWatcher | undefined;
  const start = (dirs = [dir]) => {
    watcher = new ChangeWatcher({ dirs, batchMs: BATCH_MS, retryMs: 100, logger: silentLogger, onBatch: (b) => void batches.push({ ...b, at: Date.now() }), ...options });
    return watcher;
  };
  t.after(async () => {
    await watcher?.close();
    rmSync(root, { recursive: true, force: true });
  });
  return { root, dir, batches, start };
}

/** Waits long enough for a batch that should NOT come to have come. */
const quietFor = (ms: number) => new Promise((r) => setTimeout(r, ms));

void test('several writes in quick succession make one batch, reported batchMs after the first', async (t) => {
  const { dir, batches, start } = setUp(t);
  start();
  const first = Date.now();
  for (let i = 0; i < 5; i++) writeFileSync(join(dir, `f${i}`), String(i));
  await waitFor('a batch', () => batches.length > 0, 5_000, 5);
  const [batch] = batches;
  assert.ok(batch);
  assert.ok(batch.changes >= 5, `every write counted (${batch.changes})`);
  assert.ok(batch.firstAt >= first && batch.firstAt <= first + SLACK_MS, 'firstAt is the first change');
  const delay = batch.at - batch.firstAt;
  assert.ok(delay >= BATCH_MS - 5 && delay <= BATCH_MS + SLACK_MS, `reported ${delay} ms after the first change`);
  assert.ok(batch.paths.includes(join(dir, 'f0')), 'absolute paths in the sample');
  await quietFor(BATCH_MS + SLACK_MS);
  assert.equal(batches.length, 1, 'one batch for the burst');
});

void test('changes in nested directories, including ones created after the watch started', async (t) => {
  const { dir, batches, start } = setUp(t);
  mkdirSync(join(dir, 'a/b'), { recursive: true });
  start();
  writeFileSync(join(dir, 'a/b/old-dir-file'), 'x');
  await waitFor('a batch for a/b', () => batches.some((b) => b.paths.includes(join(dir, 'a/b/old-dir-file'))), 5_000, 5);

  mkdirSync(join(dir, 'new/deeper'), { recursive: true });
  await waitFor('a batch for the new directories', () => batches.some((b) => b.paths.some((p) => p.startsWith(join(dir, 'new')))), 5_000, 5);
  const count = batches.length;
  writeFileSync(join(dir, 'new/deeper/file'), 'x');
  await waitFor('a batch for a file in a new directory', () => batches.slice(count).some((b) => b.paths.includes(join(dir, 'new/deeper/file'))), 5_000, 5);
});

void test('the partial dir is ignored', async (t) => {
  const { dir, batches, start } = setUp(t);
  mkdirSync(join(dir, 'sub', PARTIAL_DIR), { recursive: true });
  start();
  writeFileSync(join(dir, 'sub', PARTIAL_DIR, 'big.img'), 'partial');
  writeFileSync(join(dir, PARTIAL_DIR + 'x'), 'not the partial dir');
  await waitFor('a batch', () => batches.length > 0, 5_000, 5);
  await quietFor(BATCH_MS + SLACK_MS);
  const paths = batches.flatMap((b) => b.paths);
  assert.ok(paths.includes(join(dir, PARTIAL_DIR + 'x')));
  assert.ok(!paths.some((p) => p.includes(`/${PARTIAL_DIR}/`)), `no partial-dir paths in ${JSON.stringify(paths)}`);
});

void test('a directory that does not exist yet is watched once it appears (and that counts as a change)', async (t) => {
  const { root, batches, start } = setUp(t);
  const later = join(root, 'later');
  start([later]);
  await quietFor(250);
  assert.equal(batches.length, 0);
  mkdirSync(later);
  await waitFor('the appearance as a batch', () => batches.some((b) => b.paths.includes(later)), 5_000, 5);
  const count = batches.length;
  writeFileSync(join(later, 'f'), 'x');
  await waitFor('a change inside it', () => batches.slice(count).some((b) => b.paths.includes(join(later, 'f'))), 5_000, 5);
});

void test('a removed directory is reported, looked for again, and watched when it comes back', async (t) => {
  const { dir, batches, start } = setUp(t);
  start();
  rmSync(dir, { recursive: true });
  await waitFor('the removal as a batch', () => batches.some((b) => b.paths.includes(dir)), 5_000, 5);
  await quietFor(BATCH_MS + SLACK_MS);
  mkdirSync(dir);
  const count = batches.length;
  await waitFor('the re-appearance', () => batches.length > count, 5_000, 5);
  await quietFor(BATCH_MS + SLACK_MS);
  const again = batches.length;
  writeFileSync(join(dir, 'back'), 'x');
  await waitFor('a change in the re-created directory', () => batches.slice(again).some((b) => b.paths.includes(join(dir, 'back'))), 5_000, 5);
});

void test('changes during a running callback make the next batch, never a concurrent call', async (t) => {
  let running = 0;
  let overlapped = false;
  let release: (() => void) | undefined;
  const calls: ChangeBatch[] = [];
  const { dir, start } = setUp(t, {
    onBatch: async (batch) => {
      running += 1;
      if (running > 1) overlapped = true;
      calls.push(batch);
      if (calls.length === 1) await new Promise<void>((r) => (release = r));
      running -= 1;
    },
  });
  start();
  writeFileSync(join(dir, 'one'), '1');
  await waitFor('the first callback', () => calls.length === 1 && release !== undefined, 5_000, 5);
  writeFileSync(join(dir, 'two'), '2');
  // The second window closes while the first callback still runs: the batch waits for it.
  await quietFor(BATCH_MS + SLACK_MS);
  assert.equal(calls.length, 1);
  release?.();
  await waitFor('the second batch', () => calls.length === 2, 5_000, 5);
  assert.ok(calls[1]?.paths.includes(join(dir, 'two')));
  assert.ok(!calls[1]?.paths.includes(join(dir, 'one')));
  assert.equal(overlapped, false);
});

void test('close() stops reporting', async (t) => {
  const { dir, batches, start } = setUp(t);
  const watcher = start();
  writeFileSync(join(dir, 'f'), 'x');
  await watcher.close();
  writeFileSync(join(dir, 'g'), 'x');
  await quietFor(BATCH_MS + SLACK_MS);
  assert.equal(batches.length, 0, 'a pending batch is dropped, later changes are not seen');
});
