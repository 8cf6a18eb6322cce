/**
 * File sets on this node: the read-only rsync daemon that serves them, the change watcher
 * while this node owns a group, and the pulls while it is a standby.
 *
 * Data only ever flows from the owner. The owner's daemon is read-only; a standby pulls
 * into its own directories, and only while it neither holds nor is starting the group (a
 * node being made owner halts its pulls first). The owner tells its standbys that something
 * changed through its heartbeats: a generation per file set, raised once per batch of
 * changes; a standby that sees a generation it has not pulled pulls at once. A full pass every
 * `verifyEvery` catches anything the watcher missed (and the first pass after a node or
 * owner change is always a full one).
 *
 * The state of every set (last success, lag, bytes, errors) is logged and written to
 * `<stateDir>/sync-state.json`, which `haoscar sync status` reads.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config, FileSet, GroupSpec } from '../config/types.js';
import type { Logger } from '../log.js';
import { backupLabel, backupSetDir, finishBackup } from '../sync/backup.js';
import { ChangeWatcher } from '../sync/watcher.js';
import { RsyncDaemon, writeDaemonFiles } from '../sync/daemon.js';
import { moduleName, pullSourceFor, rsyncPullArgs, runRsync, RsyncError, type RsyncProgress } from '../sync/rsync.js';
import type { CandidateSyncState, FileSetSyncRecord } from '../../workflows/shared.js';

/** A pull into a group this node holds (or is starting) was refused. */
export class HoldsGroupError extends Error {
  constructor(node: string, group: string) {
    super(`node ${node} holds group '${group}': data flows from the owner, never toward it`);
    this.name = 'HoldsGroupError';
  }
}

/** What a standby knows of a group's owner, from its heartbeats. */
export interface OwnerView {
  node: string;
  epoch: number;
  /** `group/set` → [generation, time of its first change] */
  sync: Record<string, [number, number]>;
}

export interface FileSyncDeps {
  node: string;
  config: Config;
  /** The cluster secret (the daemon's password is derived from it); undefined on a one-node cluster. */
  secret: Buffer | undefined;
  /** Secrets also accepted while the cluster secret is rotated (heartbeat.acceptSecretFiles). */
  acceptedSecrets?: readonly Buffer[];
  logger: Logger;
  /** Whether this node holds (or is starting) the group. */
  holds: (group: string) => boolean;
  /** The epoch under which this node holds the group (for its series record); undefined: unknown. */
  heldEpoch?: (group: string) => number | undefined;
  /** The group's owner as its heartbeats say (running, heard now), if any. */
  ownerOf: (group: string) => OwnerView | undefined;
  /** Called when this node's generations changed (the agent sends a heartbeat at once). */
  onViewChange: () => void;
  /** A file set's pulls began to fail (`failing`) or work again: told to the alerts (docs/alerts.md). */
  onSyncEdge?: (edge: { group: string; set: string; from: string; failing: boolean; detail: string }) => void;
}

/** The state of one file set on this node, as `haoscar sync status` shows it. */
export interface FileSetState {
  group: string;
  set: string;
  /** source: this node owns the group and serves it; standby: it pulls from `source`. */
  role: 'source' | 'standby' | 'idle';
  source?: string;
  /** Owner: generation raised for its changes. Standby: the owner's generation last pulled. */
  generation: number;
  lastChangeAt?: number;
  lastSuccessAt?: number;
  lastAttemptAt?: number;
  /** Time from the owner's first change of the pulled generation to the end of the pull. */
  lagMs?: number;
  /** Bytes transferred by the last pull, and by all pulls since the agent started. */
  bytes?: number;
  totalBytes: number;
  errors: number;
  lastError?: string;
  running: boolean;
}

/** Progress of a pull of a group (for the resync activity's heartbeats). */
export interface PullProgress {
  key: string;
  percent: number;
  bytes: number;
  etaSeconds?: number;
}

export interface PullResult {
  key: string;
  bytes: number;
  durationMs: number;
}

/** A failed pull is tried again after this, announced changes or not. */
const RETRY_AFTER_ERROR_MS = 5000;
/** A node being made owner pulls nothing for this long (or until it holds the group). */
const HALT_MS = 60_000;

export class FileSync {
  private readonly states = new Map<string, FileSetState>();
  private readonly watchers = new Map<string, ChangeWatcher>();
  /** Per standby set: the owner, epoch and generation last pulled, and when the last full pass ran. */
  private readonly pulled = new Map<string, { owner: string; epoch: number; generation: number; fullAt: number }>();
  private readonly running = new Map<string, { abort: AbortController; done: Promise<unknown> }>();
  private readonly halted = new Map<string, number>();
  /** Resyncs running now, by group: no continuous pull meanwhile; a node being made owner aborts them. */
  private readonly resyncs = new Map<string, AbortController>();
  /**
   * Per set (`group/set`): the series this node last followed (see FileSetSyncRecord), kept in
   * `<stateDir>/sync-series.json` so that an agent restart does not forget how far behind it is.
   */
  private readonly records = new Map<string, FileSetSyncRecord>();
  private daemon?: RsyncDaemon;
  private passwordFile?: string;
  /** The daemon user this node's pulls log in as (DaemonFiles.user). */
  private pullUser?: string;
  /** The secrets the daemon's files are written with; a reload may change them (setSecrets). */
  private secrets: { signing: Buffer | undefined; accepted: readonly Buffer[] };
  private stateTimer?: NodeJS.Timeout;
  private closed = false;
  private readonly dir: string;
  private readonly groups: GroupSpec[];

  private constructor(private readonly deps: FileSyncDeps) {
    this.dir = join(deps.config.agent.stateDir, 'sync');
    this.secrets = { signing: deps.secret, accepted: deps.acceptedSecrets ?? [] };
    this.groups = deps.config.groups.filter((g) => g.nodes.includes(deps.node) && g.fileSets.length > 0);
    for (const g of this.groups) {
      for (const set of g.fileSets) this.states.set(key(g.name, set.name), { group: g.name, set: set.name, role: 'idle', generation: 0, totalBytes: 0, errors: 0, running: false });
    }
  }

  /** Starts the daemon serving this node's file sets (when it has any). */
  static async start(deps: FileSyncDeps): Promise<FileSync> {
    const sync = new FileSync(deps);
    await sync.loadRecords();
    if (sync.groups.length > 0) await sync.startDaemon();
    return sync;
  }

  private async startDaemon(): Promise<void> {
    const { config, logger } = this.deps;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    if (config.sync.transport === 'ssh') return; // sshd serves; nothing of ours listens
    if (!this.secrets.signing) {
      logger.info('one-node cluster: no rsync daemon (there is no standby to serve)');
      return;
    }
    const files = await this.writeDaemonFiles(this.secrets.signing);
    // Listening on every address of the node (redundant links): a standby tries them in turn.
    this.daemon = new RsyncDaemon({ rsync: config.sync.rsync, config: files.config, pidFile: files.pidFile, logFile: files.logFile, port: config.sync.port, logger: logger.child({ sync: 'daemon' }) });
    await this.daemon.start();
  }

  /** The daemon's files under the current secrets; the daemon reads them again at each connection. */
  private async writeDaemonFiles(signing: Buffer) {
    const { config } = this.deps;
    const files = await writeDaemonFiles(this.dir, {
      cluster: config.cluster,
      port: config.sync.port,
      secret: signing,
      acceptedSecrets: this.secrets.accepted,
      hostsAllow: config.nodes.flatMap((n) => n.addresses),
      modules: this.groups.flatMap((g) => g.fileSets.flatMap((set) => set.paths.map((path, i) => ({ name: moduleName(g.name, set.name, i), path, comment: `${g.name}/${set.name}` })))),
    });
    this.passwordFile = files.passwordFile;
    this.pullUser = files.user;
    return files;
  }

  /**
   * A reload changed the cluster secrets (a step of a rotation, docs/reload.md): the daemon's
   * users and passwords and this node's own are written again; running pulls keep theirs.
   */
  async setSecrets(signing: Buffer, accepted: readonly Buffer[]): Promise<void> {
    this.secrets = { signing, accepted };
    if (this.daemon) await this.writeDaemonFiles(signing);
  }

  /** `group/set` → [generation, first change] of the groups this node holds (for its heartbeats). */
  view(): Record<string, [number, number]> {
    const out: Record<string, [number, number]> = {};
    for (const s of this.states.values()) if (s.role === 'source' && s.generation > 0) out[key(s.group, s.set)] = [s.generation, s.lastChangeAt ?? 0];
    return out;
  }

  status(): FileSetState[] {
    return [...this.states.values()].map((s) => ({ ...s }));
  }

  /** Called every heartbeat interval: watchers follow ownership, standbys pull what is due. */
  tick(): void {
    if (this.closed) return;
    for (const g of this.groups) {
      const held = this.deps.holds(g.name);
      // Holding the group ends a halt: once it lets go (a switchover away), it pulls at once.
      if (held) this.halted.delete(g.name);
      for (const set of g.fileSets) {
        const k = key(g.name, set.name);
        const state = this.states.get(k)!;
        if (held) {
          // Normally none runs (halted before the start); never pull into what we serve.
          void this.abortPull(k);
          if (state.role !== 'source') this.becomeSource(g, set, state);
          this.noteSource(k, this.deps.heldEpoch?.(g.name));
          continue;
        }
        if (state.role === 'source') this.stopSource(k, state);
        const owner = this.deps.ownerOf(g.name);
        if (owner && owner.node !== this.deps.node) this.noteAnnounced(k, owner.node, owner.epoch, owner.sync[k]?.[0] ?? 0);
        this.pullIfDue(g, set, state);
      }
    }
  }

  /**
   * A node about to start the group pulls nothing more: running pulls are aborted and
   * awaited, new ones are not started until it holds the group (or for a minute, if the
   * start fails). Called before the first resource of a group is started here.
   */
  async halt(group: string): Promise<void> {
    this.halted.set(group, Date.now() + HALT_MS);
    this.resyncs.get(group)?.abort(new Error(`node ${this.deps.node} is starting group '${group}'`));
    const g = this.groups.find((x) => x.name === group);
    for (const set of g?.fileSets ?? []) await this.abortPull(key(group, set.name));
  }

  /**
   * Pulls every directory of the group's file sets from `source` now, skipping `skip` (keys
   * done by an earlier attempt); used by the resync activity. Runs beside the continuous
   * pulls: those of the group are aborted first, and none start until it ends.
   * @throws RsyncError (kind, retryable) when rsync fails; HoldsGroupError when this node holds the group.
   */
  async pullGroup(group: string, source: string, opts: { skip: ReadonlySet<string>; signal: AbortSignal; onProgress: (p: PullProgress) => void; onDone: (r: PullResult) => void }): Promise<void> {
    const g = this.groups.find((x) => x.name === group);
    if (!g) return;
    for (const set of g.fileSets) await this.abortPull(key(group, set.name));
    const abort = new AbortController();
    this.resyncs.set(group, abort);
    const signal = AbortSignal.any([opts.signal, abort.signal]);
    try {
      for (const set of g.fileSets) {
        // What the owner had announced before this pass: anything newer is pulled again later.
        const announced = this.deps.ownerOf(group);
        // A resync brings back a node that may have been the owner: what it had is kept aside.
        await this.keepingBackups(g, set, source, announced?.node === source ? announced.epoch : undefined, async (backup) => {
          for (let i = 0; i < set.paths.length; i++) {
            const step = stepKey(set, i);
            if (opts.skip.has(step)) continue;
            if (this.deps.holds(group)) throw new HoldsGroupError(this.deps.node, group);
            const t = Date.now();
            const result = await this.pullPath(g, set, i, source, { signal, backup, onProgress: (p) => opts.onProgress({ key: step, percent: p.percent, bytes: p.bytes, ...(p.seconds !== undefined && p.percent < 100 ? { etaSeconds: p.seconds } : {}) }) });
            opts.onDone({ key: step, bytes: result.bytes, durationMs: Date.now() - t });
          }
        });
        // The next continuous pass from this owner only needs what changed since this one began.
        this.pulled.set(key(group, set.name), { owner: source, epoch: announced?.epoch ?? -1, generation: announced?.sync[key(group, set.name)]?.[0] ?? 0, fullAt: Date.now() });
        if (announced?.node === source) this.notePulled(key(group, set.name), source, announced.epoch, announced.sync[key(group, set.name)]?.[0] ?? 0);
        // The owner does not run the group (a switchover's final pass, after it stopped): it
        // writes nothing more, so this complete pass holds all it announced.
        else if (announced === undefined) this.notePulledAll(key(group, set.name), source);
      }
    } finally {
      if (this.resyncs.get(group) === abort) this.resyncs.delete(group);
    }
  }

  /** The steps of a group's resync: one per file-set directory. */
  steps(group: string): string[] {
    return this.groups.find((x) => x.name === group)?.fileSets.flatMap((set) => set.paths.map((_, i) => stepKey(set, i))) ?? [];
  }

  /**
   * What this node knows of its copy of each of the group's file sets, for a failover deciding
   * whether it may take the group over (the `syncState` activity). No I/O, no clock.
   */
  syncState(group: string): CandidateSyncState {
    const g = this.groups.find((x) => x.name === group);
    return {
      node: this.deps.node,
      group,
      sets: (g?.fileSets ?? []).map((set) => {
        const record = this.records.get(key(group, set.name));
        return record ? { set: set.name, record: { ...record } } : { set: set.name };
      }),
    };
  }

  // ------------------------------------------------------------------ series records

  /** This node holds the group: it is the source, nothing to be behind of. */
  private noteSource(k: string, epoch: number | undefined): void {
    const rec = this.records.get(k);
    const e = epoch ?? rec?.epoch ?? 0;
    if (rec?.owner === this.deps.node && rec.epoch === e) return;
    this.records.set(k, { owner: this.deps.node, epoch: e, announced: 0, pulled: 0 });
    this.saveSoon();
  }

  /**
   * The owner's heartbeat announced `generation` for the set: a new series for a new owner or
   * epoch (nothing pulled completely in it yet), else the highest generation announced. A
   * series older than the recorded one (a stale owner's packets) changes nothing.
   */
  private noteAnnounced(k: string, owner: string, epoch: number, generation: number): void {
    const rec = this.records.get(k);
    if (rec && rec.owner === owner && rec.epoch === epoch) {
      if (generation <= rec.announced) return;
      rec.announced = generation;
    } else {
      if (rec && epoch < rec.epoch) return;
      this.records.set(k, { owner, epoch, announced: generation, pulled: null });
    }
    this.saveSoon();
  }

  /** A pull from `owner` at `epoch` completed with what it had announced up to `generation`. */
  private notePulled(k: string, owner: string, epoch: number, generation: number): void {
    const rec = this.records.get(k);
    if (!rec || rec.owner !== owner || rec.epoch !== epoch) {
      if (rec && epoch < rec.epoch) return;
      // A pull before its heartbeat was noted (a resync right after an agent start).
      this.records.set(k, { owner, epoch, announced: generation, pulled: generation });
    } else {
      rec.pulled = Math.max(rec.pulled ?? generation, generation);
      rec.announced = Math.max(rec.announced, generation);
    }
    this.saveSoon();
  }

  /** A complete pull from `owner` after it stopped serving: everything it announced is here. */
  private notePulledAll(k: string, owner: string): void {
    const rec = this.records.get(k);
    if (!rec || rec.owner !== owner) return;
    rec.pulled = rec.announced;
    this.saveSoon();
  }

  private recordsFile(): string {
    return join(this.deps.config.agent.stateDir, 'sync-series.json');
  }

  private async loadRecords(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.recordsFile(), 'utf8');
    } catch {
      return; // first start: no series followed yet
    }
    try {
      const parsed = JSON.parse(text) as { records?: Record<string, unknown> };
      for (const [k, r] of Object.entries(parsed.records ?? {})) {
        const rec = r as Partial<FileSetSyncRecord>;
        const ok = typeof rec.owner === 'string' && Number.isInteger(rec.epoch) && Number.isInteger(rec.announced) && (rec.pulled === null || Number.isInteger(rec.pulled));
        if (ok && this.states.has(k)) this.records.set(k, { owner: rec.owner!, epoch: rec.epoch!, announced: rec.announced!, pulled: rec.pulled! });
      }
    } catch (err) {
      // Unknown is safe: a failover then counts this node's copy as of unknown age.
      this.deps.logger.warn({ file: this.recordsFile(), err: String(err) }, 'could not read the file set series records; starting without them');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.watchers.values()].map((w) => w.close()));
    this.watchers.clear();
    await Promise.all([...this.running.keys()].map((k) => this.abortPull(k)));
    clearTimeout(this.stateTimer);
    await this.writeState();
    await this.daemon?.stop();
  }

  // ------------------------------------------------------------------ owner

  private becomeSource(g: GroupSpec, set: FileSet, state: FileSetState): void {
    const k = key(g.name, set.name);
    state.role = 'source';
    state.source = this.deps.node;
    // A new series: standbys key what they pulled by owner and epoch, so their first pull from
    // a new owner is a full one whatever its generation says.
    state.generation = 0;
    this.deps.logger.info({ group: g.name, set: set.name, paths: set.paths, continuous: set.continuous }, 'file set: serving as the owner');
    if (!set.continuous) return this.saveSoon();
    const watcher = new ChangeWatcher({
      dirs: set.paths,
      batchMs: set.batchMs,
      logger: this.deps.logger.child({ group: g.name, set: set.name }),
      onBatch: (batch) => {
        if (state.role !== 'source') return;
        state.generation += 1;
        state.lastChangeAt = batch.firstAt;
        this.deps.logger.debug({ group: g.name, set: set.name, generation: state.generation, changes: batch.changes }, 'file set changed');
        this.deps.onViewChange();
        this.saveSoon();
      },
    });
    this.watchers.set(k, watcher);
    this.saveSoon();
  }

  private stopSource(k: string, state: FileSetState): void {
    void this.watchers.get(k)?.close();
    this.watchers.delete(k);
    state.role = 'idle';
    state.generation = 0;
    this.deps.onViewChange();
    this.saveSoon();
  }

  // ------------------------------------------------------------------ standby

  private pullIfDue(g: GroupSpec, set: FileSet, state: FileSetState): void {
    const k = key(g.name, set.name);
    // A resync of the group pulls it now; the continuous pulls wait for it to end.
    if (this.running.has(k) || this.resyncs.has(g.name)) return;
    const haltedUntil = this.halted.get(g.name);
    if (haltedUntil !== undefined) {
      if (haltedUntil > Date.now()) return;
      this.halted.delete(g.name);
    }
    const owner = this.deps.ownerOf(g.name);
    if (!owner || owner.node === this.deps.node) {
      if (state.role !== 'idle') { state.role = 'idle'; this.saveSoon(); }
      return;
    }
    state.role = 'standby';
    state.source = owner.node;
    const last = this.pulled.get(k);
    const [generation, changedAt] = owner.sync[k] ?? [0, 0];
    const sameOwner = last !== undefined && last.owner === owner.node && last.epoch === owner.epoch;
    const full = !sameOwner || Date.now() - last.fullAt >= set.verifyEveryMs;
    const changed = sameOwner && set.continuous && generation > last.generation;
    if (!full && !changed) return;
    // After a failed pull, wait a little (not every heartbeat: a full disk stays full).
    if (state.lastError !== undefined && state.lastAttemptAt !== undefined && Date.now() - state.lastAttemptAt < RETRY_AFTER_ERROR_MS) return;
    const abort = new AbortController();
    // The first pull from this owner (a new owner or epoch, or this agent just started): this
    // node's copy may hold its own writes from when it was the owner, so what the pull deletes
    // or replaces is kept. Later pulls in the series only replace what came from this owner.
    const done = this.pullSet(g, set, state, owner, { generation, changedAt, full, changed, backup: !sameOwner, signal: abort.signal }).finally(() => this.running.delete(k));
    this.running.set(k, { abort, done });
  }

  private async pullSet(g: GroupSpec, set: FileSet, state: FileSetState, owner: OwnerView, p: { generation: number; changedAt: number; full: boolean; changed: boolean; backup: boolean; signal: AbortSignal }): Promise<void> {
    const k = key(g.name, set.name);
    state.running = true;
    state.lastAttemptAt = Date.now();
    let bytes = 0;
    try {
      const pullAll = async (backup?: string) => {
        for (let i = 0; i < set.paths.length; i++) {
          const r = await this.pullPath(g, set, i, owner.node, { signal: p.signal, checksum: p.full && set.checksum, ...(backup !== undefined ? { backup } : {}) });
          bytes += r.bytes;
        }
      };
      if (p.backup) await this.keepingBackups(g, set, owner.node, owner.epoch, pullAll);
      else await pullAll();
      const now = Date.now();
      state.lastSuccessAt = now;
      state.generation = p.generation;
      state.bytes = bytes;
      state.totalBytes += bytes;
      // Lag is measured on announced changes only (a periodic pass has no change to measure from).
      if (p.changed && p.changedAt > 0) state.lagMs = now - p.changedAt;
      if (state.lastError !== undefined) {
        this.deps.logger.info({ group: g.name, set: set.name, from: owner.node }, 'file set pulls work again');
        this.deps.onSyncEdge?.({ group: g.name, set: set.name, from: owner.node, failing: false, detail: `pulls from ${owner.node} work again (after: ${state.lastError})` });
      }
      state.lastError = undefined;
      const prev = this.pulled.get(k);
      this.pulled.set(k, { owner: owner.node, epoch: owner.epoch, generation: p.generation, fullAt: p.full ? now : prev?.fullAt ?? now });
      this.notePulled(k, owner.node, owner.epoch, p.generation);
      this.deps.logger[p.full ? 'info' : 'debug']({ group: g.name, set: set.name, from: owner.node, generation: p.generation, bytes, lagMs: state.lagMs, full: p.full, ms: now - state.lastAttemptAt }, 'file set pulled');
    } catch (err) {
      if (p.signal.aborted) return;
      state.errors += 1;
      const message = err instanceof Error ? err.message : String(err);
      // Logged when it changes, not at every retry.
      if (state.lastError !== message) this.deps.logger.error({ group: g.name, set: set.name, from: owner.node, err: message }, 'file set pull failed');
      // An edge: the first failure after a success (or the start), not every retry.
      if (state.lastError === undefined) this.deps.onSyncEdge?.({ group: g.name, set: set.name, from: owner.node, failing: true, detail: `pull from ${owner.node} failed: ${message}` });
      state.lastError = message;
    } finally {
      state.running = false;
      this.saveSoon();
    }
  }

  /**
   * Runs `pull` with a new backup label (see src/sync/backup.ts), then counts what it kept, logs
   * it, and applies the retention (`sync.keepBackups`), whether the pull succeeded or not (a
   * failed pull may have kept files before it failed). A failure of the bookkeeping is logged,
   * never thrown: the files stay where rsync put them.
   */
  private async keepingBackups<T>(g: GroupSpec, set: FileSet, source: string, epoch: number | undefined, pull: (label: string) => Promise<T>): Promise<T> {
    const label = backupLabel(new Date(), source, epoch);
    const setDir = backupSetDir(this.deps.config.agent.stateDir, g.name, set.name);
    try {
      return await pull(label);
    } finally {
      try {
        const kept = await finishBackup(setDir, label, this.deps.config.sync.keepBackups);
        if (kept.files > 0) {
          this.deps.logger.warn({ group: g.name, set: set.name, from: source, files: kept.files, dir: kept.dir, pruned: kept.pruned }, `file set pull: kept ${kept.files} file(s) it deleted or replaced in ${kept.dir}: this node had them, and the owner ${source} has them otherwise or not at all`);
        } else if (kept.pruned.length > 0) {
          this.deps.logger.info({ group: g.name, set: set.name, pruned: kept.pruned }, 'file set backups: removed the oldest (sync.keepBackups)');
        }
      } catch (err) {
        this.deps.logger.warn({ group: g.name, set: set.name, dir: setDir, err: String(err) }, 'could not count or prune the file set backups; they stay');
      }
    }
  }

  /** One directory of a set from `source`; `backup`: the label of the pull's backup dir. @throws RsyncError. */
  private async pullPath(g: GroupSpec, set: FileSet, index: number, source: string, opts: { signal: AbortSignal; checksum?: boolean; backup?: string; onProgress?: (p: RsyncProgress) => void }): Promise<{ bytes: number }> {
    const { config } = this.deps;
    const node = config.nodes.find((n) => n.name === source);
    if (!node) throw new Error(`unknown source node '${source}'`);
    const path = set.paths[index]!;
    await mkdir(path, { recursive: true });
    let lastError: unknown;
    // Each of the owner's addresses in turn (redundant links): a dead link is not a dead owner.
    for (const address of node.addresses) {
      const argv = rsyncPullArgs({
        set: { ...set, checksum: opts.checksum ?? false },
        source: pullSourceFor(config.sync, { host: address, group: g.name, set: set.name, index, path, passwordFile: this.passwordFile ?? '', ...(this.pullUser === undefined ? {} : { user: this.pullUser }) }),
        destination: path,
        ...(opts.backup !== undefined ? { backupDir: join(backupSetDir(config.agent.stateDir, g.name, set.name), opts.backup, String(index)) } : {}),
      });
      try {
        const result = await runRsync(argv, { rsync: config.sync.rsync, signal: opts.signal, what: `${g.name}/${set.name} from ${source} (${address})`, ...(opts.onProgress ? { onProgress: opts.onProgress } : {}) });
        // What came over the wire (the delta algorithm sends only what differs).
        return { bytes: result.stats?.bytesReceived ?? 0 };
      } catch (err) {
        lastError = err;
        if (!(err instanceof RsyncError) || err.kind !== 'connection') throw err;
      }
    }
    throw lastError;
  }

  private async abortPull(k: string): Promise<void> {
    const job = this.running.get(k);
    if (!job) return;
    job.abort.abort();
    await job.done.catch(() => undefined);
  }

  // ------------------------------------------------------------------ state file

  private saveSoon(): void {
    if (this.stateTimer || this.closed) return;
    this.stateTimer = setTimeout(() => {
      this.stateTimer = undefined;
      void this.writeState();
    }, 200);
    this.stateTimer.unref();
  }

  private async writeState(): Promise<void> {
    if (this.groups.length === 0) return;
    const file = join(this.deps.config.agent.stateDir, 'sync-state.json');
    const body = JSON.stringify({ node: this.deps.node, at: Date.now(), sets: this.status() }, null, 2);
    try {
      await mkdir(this.deps.config.agent.stateDir, { recursive: true });
      await writeFile(`${file}.tmp`, body);
      await rename(`${file}.tmp`, file);
      const series = this.recordsFile();
      await writeFile(`${series}.tmp`, JSON.stringify({ node: this.deps.node, records: Object.fromEntries(this.records) }, null, 2));
      await rename(`${series}.tmp`, series);
    } catch (err) {
      this.deps.logger.warn({ file, err: String(err) }, 'could not write the sync state file');
    }
  }
}

const key = (group: string, set: string) => `${group}/${set}`;
/** One step of a resync: a file set's directory. */
const stepKey = (set: FileSet, index: number) => `fileset:${set.name}:${set.paths[index]}`;
