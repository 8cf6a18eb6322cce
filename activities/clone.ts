/**
 * A standby clone's steps on the TARGET node's own queue (docs/clone.md): the target pulls
 * the source's root over ssh into its offline root directory, applies the per-node fix-ups
 * and verifies the result. Data flows from the source only: the source's sshd is asked to read
 * (through `rrsync -ro` when the key is restricted as docs/sync.md says), never to write.
 *
 * The copy heartbeats its progress ({@link ResyncProgress}, what the CLI draws); a retried
 * attempt (the worker died, the connection dropped) runs rsync again, which skips what is
 * already there and resumes the file it was copying from its partial dir.
 */
import { lstat, mkdir, mkdtemp, readdir, realpath, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Exec } from '../src/exec.js';
import { ExecError } from '../src/exec.js';
import type { Logger } from '../src/log.js';
import type { Config } from '../src/config/types.js';
import type { MessageKey } from '../src/auth/messages.js';
import { RsyncError, runRsync, type RsyncStats } from '../src/sync/rsync.js';
import { installBootLoader, type BootLoaderResult } from '../src/clone/boot.js';
import { applyFixups, targetMounts, FIXUP_SOURCE_FILTERS, type FixupReport, type FixupRequest } from '../src/clone/fixups.js';
import { cloneCopyArgs, compareArgs, differingFiles, probeArgs, type CloneSource } from '../src/clone/transfer.js';
import { ERROR_TYPES, type ResyncProgress } from '../workflows/shared.js';
import { createNodeAuth } from './auth.js';

export interface CloneActivityDeps {
  node: string;
  cluster: string;
  key: MessageKey | undefined;
  logger: Logger;
  exec: Exec;
  rsync: string;
  /** How this node reaches a source over ssh (sync.ssh and clone.sshPort). */
  ssh: { user: string; identityFile: string; knownHostsFile: string; port: number; client?: string };
  /** The groups this node holds or is starting: a target that runs one is refused. */
  heldGroups: () => string[];
  /** The `chroot` binary; default `chroot`. */
  chroot?: string;
}

/**
 * The clone activities' settings from the configuration, for the agent and the rescue worker
 * alike (one place: both must reach the source the same way).
 */
export function cloneActivityDeps(opts: { config: Config; node: string; key: MessageKey | undefined; exec: Exec; logger: Logger; heldGroups: () => string[] }): CloneActivityDeps {
  const { config } = opts;
  return {
    node: opts.node, cluster: config.cluster, key: opts.key, exec: opts.exec, rsync: config.sync.rsync, logger: opts.logger.child({ clone: true }),
    ssh: { ...config.sync.ssh, port: config.clone.sshPort },
    heldGroups: opts.heldGroups,
  };
}

/** Where the source is: its address and root (`/`, or a directory in tests). */
export interface CloneEnds {
  source: string;
  sourceHost: string;
  sourceRoot: string;
  targetRoot: string;
}

export interface CloneCopyResult {
  dryRun: boolean;
  stats: RsyncStats | undefined;
  durationMs: number;
  attempts: number;
}

export interface CloneVerifyResult {
  sampled: number;
  /** Sampled files whose content differs from the source's (fix-up files are not sampled). */
  differing: string[];
  checks: { name: string; ok: boolean; output: string }[];
  ok: boolean;
}

const HEARTBEAT_EVERY_MS = 500;

export function createCloneActivities(deps: CloneActivityDeps) {
  const { node, logger, exec } = deps;
  const auth = createNodeAuth({ cluster: deps.cluster, node, key: deps.key, logger });
  const fail = (type: string, message: string) => ApplicationFailure.create({ type, nonRetryable: true, message });
  const sourceOf = (ends: CloneEnds): CloneSource => ({ host: ends.sourceHost, user: deps.ssh.user, port: deps.ssh.port, identityFile: deps.ssh.identityFile, knownHostsFile: deps.ssh.knownHostsFile, root: ends.sourceRoot, ...(deps.ssh.client ? { ssh: deps.ssh.client } : {}) });

  /** @throws TargetRunsGroup, CloneRefused (the running root, not a directory) */
  const checkTarget = async (ends: CloneEnds) => {
    const held = deps.heldGroups();
    if (held.length > 0) throw fail(ERROR_TYPES.TargetRunsGroup, `node ${node} runs group(s) ${held.join(', ')}: a clone never goes toward a node that runs a group; nothing was changed`);
    if (ends.source === node) throw fail(ERROR_TYPES.CloneRefused, `node ${node} is the source itself; nothing was changed`);
    const st = await stat(ends.targetRoot).catch(() => undefined);
    if (!st?.isDirectory()) throw fail(ERROR_TYPES.CloneRefused, `the target root ${ends.targetRoot} on ${node} is not a directory: mount the standby's root file system there first (docs/clone.md); nothing was changed`);
    const running = await stat('/');
    const real = await realpath(ends.targetRoot);
    // The running system's root, under any name: imaging onto it would delete what runs.
    if (real === '/' || (st.dev === running.dev && st.ino === running.ino)) {
      throw fail(ERROR_TYPES.CloneRefused, `the target root ${ends.targetRoot} on ${node} is the running system's own root: a clone goes onto an offline root (mounted from a rescue or install system, or a spare disk); nothing was changed`);
    }
  };

  return {
    /**
     * Checks the target (runs no group, the root is an offline directory) and that the source
     * answers over ssh with a trusted host key. Changes nothing.
     * @throws TargetRunsGroup, CloneRefused, SourceUnreachable (after the workflow's retries)
     */
    async clonePreflight(ends: CloneEnds): Promise<{ targetEntries: number }> {
      await checkTarget(ends);
      try {
        await exec(deps.rsync, probeArgs(sourceOf(ends)), { timeoutMs: 60_000, env: { LC_ALL: 'C' } });
      } catch (err) {
        throw ApplicationFailure.create({ type: ERROR_TYPES.SourceUnreachable, message: `${node} cannot read ${ends.source}'s root over ssh (${ends.sourceHost}): ${err instanceof Error ? err.message : String(err)}; check sync.ssh's key, known hosts and the source's sshd (docs/sync.md)` });
      }
      return { targetEntries: (await readdir(ends.targetRoot)).length };
    },

    /**
     * The copy (or with `dryRun`, its listing). Heartbeats progress; a retry resumes.
     * @throws TargetRunsGroup, CloneRefused, CloneCopyFailed (non-retryable: no space, read-only,
     *   auth), RsyncTransient (retried)
     */
    async cloneCopy(req: CloneEnds & { filters: string[]; dryRun: boolean; checksum: boolean; mac?: string }): Promise<CloneCopyResult> {
      // A forged copy order would overwrite a directory of this node with another's files.
      auth.checkOrder(req);
      await checkTarget(req);
      const ctx = Context.current();
      const earlier = ctx.info.heartbeatDetails as ResyncProgress | undefined;
      const progress: ResyncProgress = { phase: req.dryRun ? 'listing the changes' : `copying ${req.source}:${req.sourceRoot}`, done: [], steps: 1, percent: 0, bytes: earlier?.bytes ?? 0, attempt: ctx.info.attempt };
      const base = progress.bytes;
      let lastBeat = 0;
      const beat = (force = false) => {
        if (!force && Date.now() - lastBeat < HEARTBEAT_EVERY_MS) return;
        lastBeat = Date.now();
        ctx.heartbeat({ ...progress });
      };
      beat(true);
      if (earlier) logger.info({ attempt: ctx.info.attempt, bytes: earlier.bytes }, 'clone copy resumes after an earlier attempt');
      const args = cloneCopyArgs({ source: sourceOf(req), targetRoot: req.targetRoot, filters: req.filters, dryRun: req.dryRun, checksum: req.checksum });
      logger.info({ from: req.source, sourceRoot: req.sourceRoot, targetRoot: req.targetRoot, dryRun: req.dryRun }, 'clone copy');
      try {
        const r = await runRsync(args, {
          rsync: deps.rsync,
          logger,
          signal: ctx.cancellationSignal,
          what: `clone of ${req.source}:${req.sourceRoot} into ${req.targetRoot}`,
          onProgress: (p) => {
            progress.percent = Math.min(100, p.percent);
            progress.bytes = base + p.bytes;
            if (p.seconds !== undefined && p.percent < 100) progress.etaSeconds = p.seconds; else delete progress.etaSeconds;
            beat();
          },
        });
        progress.phase = 'copied';
        progress.percent = 100;
        progress.done = ['copy'];
        delete progress.etaSeconds;
        beat(true);
        return { dryRun: req.dryRun, stats: r.stats, durationMs: r.durationMs, attempts: ctx.info.attempt };
      } catch (err) {
        if (err instanceof RsyncError) {
          throw ApplicationFailure.create({ type: err.retryable ? ERROR_TYPES.RsyncTransient : ERROR_TYPES.CloneCopyFailed, nonRetryable: !err.retryable, message: `clone of ${req.source} onto ${node}:${req.targetRoot}: ${err.message}`, details: [{ kind: err.kind, exitCode: err.exitCode }] });
        }
        throw err;
      }
    },

    /**
     * The per-node fix-ups on the copied root. With `dryRun`, the few files they read are
     * fetched from the source into a scratch directory and the changes are computed there.
     */
    async cloneFixups(req: CloneEnds & FixupRequest & { dryRun: boolean; mac?: string }): Promise<FixupReport> {
      auth.checkOrder(req);
      await checkTarget(req);
      // The target's own file systems (mounted under its target root) for fstab, also on a dry run.
      const mounts = await targetMounts(req.targetRoot, exec);
      if (!req.dryRun) {
        const report = await applyFixups(req.targetRoot, req, { write: true, exec, mounts });
        logger.info({ changes: report.changes.length, warnings: report.warnings.length }, 'clone fix-ups applied');
        return report;
      }
      const scratch = await mkdtemp(join(tmpdir(), 'haoscar-clone-preview-'));
      try {
        await runRsync(cloneCopyArgs({ source: sourceOf(req), targetRoot: scratch, filters: FIXUP_SOURCE_FILTERS }), { rsync: deps.rsync, logger, what: `fix-up files of ${req.source}` });
        return await applyFixups(scratch, req, { write: false, exec, mounts });
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },

    /**
     * The boot loader and initramfs on `bootDevice`, in a chroot of the target root with the
     * running system's /dev, /proc, /sys and /run bound in (src/clone/boot.ts); with `dryRun`,
     * the commands it would run. An authenticated order: it writes a disk's boot sector.
     * @throws TargetRunsGroup, CloneRefused (no such block device, no boot tools in the clone)
     */
    async cloneBootLoader(req: CloneEnds & { bootDevice: string; dryRun: boolean; mac?: string }): Promise<BootLoaderResult> {
      auth.checkOrder(req);
      await checkTarget(req);
      try {
        const result = await installBootLoader(exec, req.targetRoot, req.bootDevice, { dryRun: req.dryRun });
        logger.info({ device: req.bootDevice, family: result.family, dryRun: req.dryRun, ok: result.ok }, 'clone boot loader');
        return result;
      } catch (err) {
        throw fail(ERROR_TYPES.CloneRefused, `the boot loader on ${node}:${req.bootDevice}: ${err instanceof Error ? err.message : String(err)}; the copy and fix-ups are done, the boot loader is not`);
      }
    },

    /**
     * Verification: `sample` files (or with `checksum` every file) compared by content with
     * the source, then `sshd -t` and the package database (`dpkg --audit`, or `rpm -Va`,
     * reported only) inside a chroot of the result, unless `chrootChecks` is false (an image's
     * capture: it has no host keys, on purpose, so sshd -t would fail). Changes nothing.
     */
    async cloneVerify(req: CloneEnds & { filters: string[]; sample: number; checksum: boolean; fixedFiles: string[]; chrootChecks?: boolean }): Promise<CloneVerifyResult> {
      const ctx = Context.current();
      ctx.heartbeat({ phase: 'verifying', done: ['copy'], steps: 1, percent: 100, bytes: 0, attempt: ctx.info.attempt } satisfies ResyncProgress);
      const fixed = new Set(req.fixedFiles);
      let differing: string[] = [];
      let sampled = 0;
      if (req.checksum) {
        const { stdout } = await exec(deps.rsync, cloneCopyArgs({ source: sourceOf(req), targetRoot: req.targetRoot, filters: req.filters, dryRun: true, checksum: true }), { timeoutMs: 24 * 3600_000, okExitCodes: [24], env: { LC_ALL: 'C' } });
        differing = differingFiles(stdout).map((f) => `/${f}`).filter((f) => !fixed.has(f));
        sampled = -1;
      } else if (req.sample > 0) {
        const files = (await regularFiles(req.targetRoot, 20_000)).filter((f) => !fixed.has(f) && !/[\n\r]/.test(f));
        const stride = Math.max(1, Math.floor(files.length / req.sample));
        const picked = files.filter((_, i) => i % stride === 0).slice(0, req.sample);
        sampled = picked.length;
        if (picked.length > 0) {
          const { stdout } = await exec(deps.rsync, compareArgs({ source: sourceOf(req), targetRoot: req.targetRoot, files: picked }), { timeoutMs: 600_000, okExitCodes: [24], env: { LC_ALL: 'C' } });
          differing = differingFiles(stdout).map((f) => `/${f}`);
        }
      }
      const checks: CloneVerifyResult['checks'] = [];
      const inChroot = async (name: string, argv: string[], judge: 'exit' | 'empty' | 'report') => {
        try {
          const r = await exec(deps.chroot ?? 'chroot', [req.targetRoot, ...argv], { timeoutMs: 600_000, env: { LC_ALL: 'C', PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, okExitCodes: judge === 'report' ? [0, 1] : [0] });
          const output = `${r.stdout}\n${r.stderr}`.trim();
          checks.push({ name, ok: judge !== 'empty' || output === '', output: output.split('\n').slice(0, 20).join('\n') });
        } catch (err) {
          checks.push({ name, ok: false, output: err instanceof ExecError ? err.message : String(err) });
        }
      };
      const has = async (p: string) => (await lstat(join(req.targetRoot, p)).catch(() => undefined)) !== undefined;
      if (req.chrootChecks !== false) {
        // An offline root's /dev and /run are empty (file systems mounted over them at boot; the
        // copy leaves them out), but sshd opens /dev/null and wants /run/sshd: both are made for
        // the checks and removed after.
        const devNull = join(req.targetRoot, 'dev', 'null');
        const madeDevNull = !(await has('dev/null')) && (await has('dev')) && (await exec('mknod', ['-m', '666', devNull, 'c', '1', '3']).then(() => true, () => false));
        const runSshd = join(req.targetRoot, 'run', 'sshd');
        const madeRunSshd = !(await has('run/sshd')) && (await has('run')) && (await mkdir(runSshd, { mode: 0o755 }).then(() => true, () => false));
        try {
          if (await has('usr/sbin/sshd')) await inChroot('sshd -t', ['/usr/sbin/sshd', '-t'], 'exit');
          if (await has('usr/bin/dpkg')) await inChroot('dpkg --audit', ['/usr/bin/dpkg', '--audit'], 'empty');
          else if (await has('usr/bin/rpm')) await inChroot('rpm -Va', ['/usr/bin/rpm', '-Va', '--nofiles'], 'report');
        } finally {
          if (madeDevNull) await rm(devNull, { force: true });
          if (madeRunSshd) await rm(runSshd, { recursive: true, force: true });
        }
      }
      const ok = differing.length === 0 && checks.every((c) => c.ok);
      logger.info({ sampled, differing: differing.length, checks: checks.map((c) => `${c.name}: ${c.ok ? 'ok' : 'FAILED'}`) }, 'clone verified');
      return { sampled, differing, checks, ok };
    },
  };
}

export type CloneActivities = ReturnType<typeof createCloneActivities>;

/** Regular files under `root` (paths from the root, `/etc/hosts`), sorted, at most `limit`; one file system. */
async function regularFiles(root: string, limit: number): Promise<string[]> {
  const rootDev = (await stat(root)).dev;
  const out: string[] = [];
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(root, rel), { withFileTypes: true }).catch(() => []);
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      if (out.length >= limit) return;
      const p = `${rel}/${e.name}`;
      if (e.isFile()) out.push(p);
      else if (e.isDirectory() && !e.name.startsWith('.haoscar-clone-partial')) {
        const st = await lstat(join(root, p));
        if (st.dev === rootDev) await walk(p);
      }
    }
  };
  await walk('');
  return out;
}
