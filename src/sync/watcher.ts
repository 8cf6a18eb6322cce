/**
 * Watches a file set's directories on the owner and reports changes in batches, so that a
 * burst of writes (an unpacked archive, a deploy) makes the standbys pull once, not once per
 * file. inotify through Node's recursive fs.watch (Node 20 on Linux): one watch per
 * directory, so a tree of very many directories may need fs.inotify.max_user_watches raised.
 *
 * The watcher only says "something changed"; what changed exactly is rsync's job. A missed
 * event therefore costs nothing permanent: the periodic verify pass catches it.
 */
import { watch, type FSWatcher } from 'node:fs';
import { join, sep } from 'node:path';
import { stat } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { PARTIAL_DIR } from './rsync.js';

export interface ChangeBatch {
  /** Events counted in this batch (one file written twice counts twice). */
  changes: number;
  /** Date.now() of the first change of the batch: how stale the standbys are. */
  firstAt: number;
  /** Up to `sampleSize` distinct absolute paths that changed, for logs. */
  paths: string[];
}

export interface ChangeWatcherOptions {
  /** Absolute directories, each watched recursively. */
  dirs: string[];
  /** The first change opens a window this long; the batch is reported when it closes. */
  batchMs: number;
  /**
   * Called once per batch, never concurrently: changes made while it runs are collected
   * into the next batch, whose window opens with the first of them. A throw is logged.
   */
  onBatch: (batch: ChangeBatch) => void | Promise<void>;
  logger: Logger;
  /** A directory that does not exist (or was removed) is looked for this often (default 1 s). */
  retryMs?: number;
  /** Paths kept per batch (default 10). */
  sampleSize?: number;
}

interface Pending {
  changes: number;
  firstAt: number;
  paths: Set<string>;
}

/** True for a path (relative to a watched directory) inside rsync's partial dir. */
function inPartialDir(relative: string): boolean {
  return relative.split(sep).includes(PARTIAL_DIR);
}

/**
 * Batches change events of several directory trees. Starts watching when constructed.
 *
 * A directory that does not exist yet is looked for every `retryMs` (a warning is logged once,
 * until it appears); one that is removed while watched goes back to that. A directory that
 * appears or disappears counts as a change: its whole content is new to the standbys.
 */
export class ChangeWatcher {
  readonly #watchers = new Map<string, FSWatcher>();
  readonly #retryTimers = new Map<string, NodeJS.Timeout>();
  /** Directories whose absence was already logged (logged again only after they appeared). */
  readonly #reportedMissing = new Set<string>();
  #pending: Pending | undefined;
  #windowTimer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(private readonly options: ChangeWatcherOptions) {
    for (const dir of options.dirs) this.#watch(dir, false);
  }

  /**
   * Stops watching; no batch is reported afterwards (a pending one is dropped). Resolves
   * when a batch callback that is running has returned.
   */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#windowTimer);
    for (const timer of this.#retryTimers.values()) clearTimeout(timer);
    this.#retryTimers.clear();
    for (const watcher of this.#watchers.values()) watcher.close();
    this.#watchers.clear();
    this.#pending = undefined;
    await this.#running;
  }

  /** Watches `dir`; when it is missing, retries later. `appeared`: it was missing before, so its content counts as a change. */
  #watch(dir: string, appeared: boolean): void {
    if (this.#closed) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { recursive: true, persistent: false }, (_event, filename) => this.#event(dir, filename));
    } catch (err) {
      this.#missing(dir, err as NodeJS.ErrnoException);
      return;
    }
    watcher.on('error', (err: NodeJS.ErrnoException) => {
      // Most often the directory itself went away; ENOSPC here is the inotify watch limit.
      watcher.close();
      if (this.#watchers.get(dir) === watcher) this.#watchers.delete(dir);
      this.#change(dir);
      this.#missing(dir, err);
    });
    this.#watchers.set(dir, watcher);
    if (this.#reportedMissing.delete(dir)) this.options.logger.info({ dir }, 'file set directory appeared; watching it');
    if (appeared) this.#change(dir);
  }

  #missing(dir: string, err: NodeJS.ErrnoException): void {
    if (this.#closed) return;
    if (!this.#reportedMissing.has(dir)) {
      this.#reportedMissing.add(dir);
      const message = err.code === 'ENOSPC'
        ? 'cannot watch file set directory: the inotify watch limit is reached (raise fs.inotify.max_user_watches with sysctl); retrying'
        : err.code === 'ENOENT' || err.code === 'ENOTDIR'
          ? 'file set directory does not exist (yet); watching for it'
          : 'cannot watch file set directory; retrying';
      this.options.logger.warn({ dir, code: err.code, err: err.message }, message);
    }
    const timer = setTimeout(() => {
      this.#retryTimers.delete(dir);
      this.#watch(dir, true);
    }, this.options.retryMs ?? 1_000);
    this.#retryTimers.set(dir, timer);
  }

  #event(dir: string, filename: string | Buffer | null): void {
    if (this.#closed) return;
    const relative = filename === null ? '' : filename.toString();
    if (inPartialDir(relative)) return;
    this.#change(relative === '' ? dir : join(dir, relative));
    // An event naming the watched directory itself ("" on Linux) is its removal or rename:
    // the inotify watches are gone with it, so look for it again.
    if (relative === '') void this.#checkStillThere(dir);
  }

  async #checkStillThere(dir: string): Promise<void> {
    const isDir = await stat(dir).then((s) => s.isDirectory(), () => false);
    if (isDir || this.#closed) return;
    const watcher = this.#watchers.get(dir);
    if (!watcher) return;
    watcher.close();
    this.#watchers.delete(dir);
    this.#missing(dir, Object.assign(new Error(`${dir} was removed`), { code: 'ENOENT' }));
  }

  #change(path: string): void {
    if (this.#closed) return;
    if (!this.#pending) {
      this.#pending = { changes: 0, firstAt: Date.now(), paths: new Set() };
      this.#windowTimer = setTimeout(() => this.#windowClosed(), this.options.batchMs);
    }
    this.#pending.changes += 1;
    if (this.#pending.paths.size < (this.options.sampleSize ?? 10)) this.#pending.paths.add(path);
  }

  #windowClosed(): void {
    this.#windowTimer = undefined;
    // A callback still running: the batch waits for it, then goes at once (its window is over).
    if (this.#running || this.#closed || !this.#pending) return;
    const pending = this.#pending;
    this.#pending = undefined;
    this.#running = this.#deliver(pending).finally(() => {
      this.#running = undefined;
      if (this.#pending && this.#windowTimer === undefined) this.#windowClosed();
    });
  }

  async #deliver(pending: Pending): Promise<void> {
    try {
      await this.options.onBatch({ changes: pending.changes, firstAt: pending.firstAt, paths: [...pending.paths] });
    } catch (err) {
      this.options.logger.error({ err }, 'file set change batch handler failed');
    }
  }
}
