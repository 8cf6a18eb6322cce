/**
 * Bringing this node's copy of a group's data up to date with the owner (the resync
 * workflow, and a switchover's final pass). Runs on the node's own queue.
 *
 * Progress is sent as heartbeat details ({@link ResyncProgress}); a retried attempt (the
 * worker died, a connection dropped) reads the last details and skips the steps they list as
 * done, and rsync's partial directory keeps the file that was half copied.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { HoldsGroupError, type FileSync } from '../src/agent/file-sync.js';
import type { ServiceRegistry } from '../src/agent/services.js';
import type { Logger } from '../src/log.js';
import { DrbdDriver, DrbdSplitBrainError } from '../src/drivers/drbd.js';
import { RsyncError } from '../src/sync/rsync.js';
import { ERROR_TYPES, type CandidateSyncState, type ResyncProgress, type ResyncResult, type ResyncStepResult } from '../workflows/shared.js';
import type { MessageKey } from '../src/auth/messages.js';
import type { Config } from '../src/config/types.js';
import { createNodeAuth } from './auth.js';

export interface SyncActivityDeps {
  node: string;
  fileSync: FileSync;
  services: ServiceRegistry;
  /** Whether this node holds (or is starting) the group. */
  holds: (group: string) => boolean;
  /** The group's owner as its heartbeats show it (running, heard now). */
  ownerOf: (group: string) => { node: string; epoch: number } | undefined;
  logger: Logger;
  /** Which cluster: the orders' MACs name it. */
  cluster: Config['cluster'];
  /** The message key: a pull is refused unless the workflow worker signed it (activities/auth.ts). Undefined only in a one-node cluster. */
  key: MessageKey | undefined;
}

/** Heartbeats at most this often (and on every step boundary). */
const HEARTBEAT_EVERY_MS = 500;

export function createSyncActivities(deps: SyncActivityDeps) {
  const { node, fileSync, logger } = deps;
  const auth = createNodeAuth({ cluster: deps.cluster, node, key: deps.key, logger });

  return {
    /**
     * How far this node's copy of the group's file sets is behind, as it counts it (per set: the
     * owner it last followed, that owner's last announced generation, the last it pulled
     * completely). Asked by a failover about its candidates; changes nothing, writes no history
     * beyond its own result. Signed over the failover's nonce, as a ping's answer is.
     */
    async syncState(req: { group: string; nonce?: string }): Promise<CandidateSyncState & { mac?: string }> {
      return auth.signAnswer(fileSync.syncState(req.group), req.nonce);
    },

    /**
     * Pulls the group's file sets from `source` and waits for its DRBD resources here to be
     * UpToDate. `final`: the switchover's last pass, after the owner stopped the group.
     * @throws SyncFailed (non-retryable: full or read-only destination, auth), NodeOwnsGroup,
     *   DrbdSplitBrain; other rsync failures are retried by the workflow's policy (resuming).
     */
    async resyncGroup(req: { group: string; source: string; epoch: number; final?: boolean; mac?: string }): Promise<ResyncResult> {
      // A forged pull could overwrite a standby's copy with an older one: only signed ones run.
      auth.checkOrder(req);
      const ctx = Context.current();
      const started = Date.now();
      if (deps.holds(req.group)) {
        throw ApplicationFailure.create({ type: ERROR_TYPES.NodeOwnsGroup, nonRetryable: true, message: `node ${node} holds group '${req.group}': data flows from the owner, never toward it; nothing was changed` });
      }
      if (req.source === node) {
        throw ApplicationFailure.create({ type: ERROR_TYPES.NodeOwnsGroup, nonRetryable: true, message: `node ${node} is the source of group '${req.group}' itself; nothing to do` });
      }
      // The owner named by the workflow must still be the one its heartbeats show (if they
      // show one: during a switchover's final pass it has stopped the group).
      const current = deps.ownerOf(req.group);
      if (current && current.epoch > req.epoch) {
        throw ApplicationFailure.create({ type: ERROR_TYPES.StaleEpoch, nonRetryable: true, message: `group '${req.group}' moved to ${current.node} at epoch ${current.epoch} since this resync from ${req.source} (epoch ${req.epoch}) was ordered; start a new one` });
      }
      const earlier = ctx.info.heartbeatDetails as ResyncProgress | undefined;
      const done = new Set(earlier?.done ?? []);
      const drbd = deps.services.all().filter((s) => s.group.name === req.group && s.driver instanceof DrbdDriver);
      const stepKeys = [...fileSync.steps(req.group), ...drbd.map((s) => `drbd:${s.spec.name}`)];
      const progress: ResyncProgress = { phase: 'starting', done: [...done].filter((k) => stepKeys.includes(k)), steps: stepKeys.length, percent: 0, bytes: earlier?.bytes ?? 0, attempt: ctx.info.attempt };
      const steps: ResyncStepResult[] = progress.done.map((k) => ({ key: k, kind: k.startsWith('drbd:') ? 'drbd' : 'fileset', bytes: 0, durationMs: 0, resumed: true }));
      if (done.size > 0) logger.info({ group: req.group, resumed: progress.done, bytes: progress.bytes, attempt: ctx.info.attempt }, 'resync resumes after an earlier attempt');
      else logger.info({ group: req.group, from: req.source, steps: stepKeys.length, final: req.final ?? false }, 'resync');

      let lastBeat = 0;
      const beat = (force = false) => {
        progress.percent = Math.min(100, progress.percent);
        if (!force && Date.now() - lastBeat < HEARTBEAT_EVERY_MS) return;
        lastBeat = Date.now();
        ctx.heartbeat({ ...progress, done: [...progress.done] });
      };
      const overall = (stepPercent: number) => (progress.done.length + stepPercent / 100) / Math.max(1, stepKeys.length) * 100;
      beat(true);

      // ---- file sets
      let stepBase = progress.bytes;
      try {
        await fileSync.pullGroup(req.group, req.source, {
          skip: new Set(progress.done),
          signal: ctx.cancellationSignal,
          onProgress: (p) => {
            progress.phase = `file set ${p.key.split(':')[1]} (${p.key.split(':').slice(2).join(':')})`;
            progress.percent = overall(p.percent);
            progress.bytes = stepBase + p.bytes;
            if (p.etaSeconds !== undefined) progress.etaSeconds = p.etaSeconds; else delete progress.etaSeconds;
            beat();
          },
          onDone: (r) => {
            progress.done.push(r.key);
            stepBase += r.bytes;
            progress.bytes = stepBase;
            progress.percent = overall(0);
            steps.push({ key: r.key, kind: 'fileset', bytes: r.bytes, durationMs: r.durationMs, resumed: false });
            beat(true);
          },
        });
      } catch (err) {
        throw syncFailure(err, req.group, req.source, node);
      }

      // ---- DRBD
      for (const s of drbd) {
        const k = `drbd:${s.spec.name}`;
        if (progress.done.includes(k)) continue;
        const driver = s.driver as DrbdDriver;
        const t = Date.now();
        progress.phase = `drbd ${s.spec.name}`;
        try {
          await driver.connect();
          await driver.waitUpToDate({
            signal: ctx.cancellationSignal,
            onProgress: (p) => {
              progress.percent = overall(p.percent);
              if (p.etaSeconds !== undefined) progress.etaSeconds = p.etaSeconds; else delete progress.etaSeconds;
              beat();
            },
          });
        } catch (err) {
          if (err instanceof DrbdSplitBrainError) {
            throw ApplicationFailure.create({ type: ERROR_TYPES.DrbdSplitBrain, nonRetryable: true, message: `${s.spec.name} on ${node}: ${err.message}`, details: [err.report] });
          }
          throw ApplicationFailure.create({ type: ERROR_TYPES.DrbdResyncFailed, message: `${s.spec.name} on ${node}: ${err instanceof Error ? err.message : String(err)}` });
        }
        progress.done.push(k);
        steps.push({ key: k, kind: 'drbd', bytes: 0, durationMs: Date.now() - t, resumed: false });
        beat(true);
      }

      progress.phase = 'done';
      progress.percent = 100;
      delete progress.etaSeconds;
      beat(true);
      const result: ResyncResult = { group: req.group, node, source: req.source, steps, bytes: progress.bytes, durationMs: Date.now() - started, attempts: ctx.info.attempt };
      logger.info({ group: req.group, from: req.source, bytes: result.bytes, ms: result.durationMs, attempt: ctx.info.attempt, final: req.final ?? false }, 'resync done');
      return result;
    },
  };
}

export type SyncActivities = ReturnType<typeof createSyncActivities>;

/** rsync's own verdict decides: a full disk is not fixed by retrying, a dropped connection may be. */
function syncFailure(err: unknown, group: string, source: string, node: string): Error {
  if (err instanceof ApplicationFailure) return err;
  const message = `pulling group '${group}' from ${source} to ${node} failed: ${err instanceof Error ? err.message : String(err)}`;
  if (err instanceof RsyncError) return ApplicationFailure.create({ type: err.retryable ? ERROR_TYPES.RsyncTransient : ERROR_TYPES.SyncFailed, nonRetryable: !err.retryable, message, details: [{ kind: err.kind, exitCode: err.exitCode }] });
  if (err instanceof HoldsGroupError) return ApplicationFailure.create({ type: ERROR_TYPES.NodeOwnsGroup, nonRetryable: true, message });
  return ApplicationFailure.create({ type: ERROR_TYPES.RsyncTransient, message });
}
