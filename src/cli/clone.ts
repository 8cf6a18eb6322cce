/**
 * `haoscar clone --from NODE --to NODE --target-root DIR [--dry-run]`: image a node's system
 * onto a standby's offline root with per-node fix-ups (docs/clone.md), with a progress bar of
 * the copy read from its heartbeats.
 */
import { Command } from 'commander';
import { userInfo } from 'node:os';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy } from '@temporalio/client';
import { loadConfig } from '../config/load.js';
import { cloneInputSchema, type CloneInput } from '../../workflows/inputs.js';
import type { CloneResult } from '../../workflows/clone.js';
import { clusterTaskQueue, cloneWorkflowId } from '../../workflows/shared.js';
import { CliError, EXIT } from './errors.js';
import { formatBytes, showProgress } from './progress.js';
import { printJson } from './output.js';
import { failed, withClient } from './switchover.js';

export function cloneCommand(): Command {
  return new Command('clone')
    .description("image a node's system onto a standby's offline root over ssh, then make it that node (host name, machine ID, ssh host keys, addresses) and verify it")
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .requiredOption('--from <node>', 'the node whose system is copied (only read)')
    .requiredOption('--to <node>', 'the standby that receives it; it must run no group')
    .requiredOption('--target-root <dir>', "the standby's root file system, mounted on the standby (not its running /), e.g. /mnt/target")
    .option('--hostname <name>', "the clone's host name (default: the target node's name)")
    .option('--dry-run', 'list what would change (files, fix-ups), change nothing')
    .option('--checksum', 'compare every file by content, in the copy and the verification (slow)')
    .option('--boot-device <dev>', "the standby's boot disk as it sees it (e.g. /dev/sda): rebuild the initramfs and install the boot loader there in a chroot, for a standby whose disks differ (default: not done)")
    .option('--source-root <dir>', "the source's root directory", '/')
    .option('-r, --reason <text>', 'why (kept in the workflow history)')
    .option('--no-wait', 'return once the clone has started')
    .option('--json', 'print the workflow (and unless --no-wait its result) as JSON; the progress bar stays on stderr')
    .action(async (opts: { config: string; from: string; to: string; targetRoot: string; hostname?: string; bootDevice?: string; dryRun?: boolean; checksum?: boolean; sourceRoot: string; reason?: string; wait: boolean; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      const names = config.nodes.map((n) => n.name);
      for (const [what, n] of [['--from', opts.from], ['--to', opts.to]] as const) {
        if (!names.includes(n)) throw new CliError(`${what}: unknown node '${n}' (known: ${names.join(', ')})`, EXIT.usage);
      }
      if (opts.from === opts.to) throw new CliError('--from and --to name the same node', EXIT.usage);
      if (!opts.targetRoot.startsWith('/') || opts.targetRoot.replace(/\/+$/, '') === '') throw new CliError('--target-root must be an absolute directory other than /, e.g. /mnt/target', EXIT.usage);
      if (opts.bootDevice !== undefined) {
        // The workflow's own schema, here too: a bad path is a usage error, not a failed workflow.
        const device = cloneInputSchema.shape.bootDevice.safeParse(opts.bootDevice);
        if (!device.success) throw new CliError(`--boot-device '${opts.bootDevice}': ${device.error.issues[0]?.message ?? 'expected a path under /dev'}`, EXIT.usage);
      }
      const workflowId = cloneWorkflowId(config.cluster, opts.to);
      const input: CloneInput = {
        cluster: config.cluster, from: opts.from, to: opts.to, targetRoot: opts.targetRoot.replace(/\/+$/, ''), sourceRoot: opts.sourceRoot,
        dryRun: opts.dryRun ?? false, checksum: opts.checksum ?? false,
        ...(opts.hostname ? { hostname: opts.hostname } : {}),
        ...(opts.bootDevice ? { bootDevice: opts.bootDevice } : {}),
        reason: opts.reason ?? `requested by ${userInfo().username} with haoscar clone`,
      };
      await withClient(config, async (client) => {
        let handle;
        try {
          handle = await client.workflow.start('clone', {
            workflowId, taskQueue: clusterTaskQueue(config.cluster), args: [input],
            workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
            staticSummary: `clone: ${opts.from} onto ${opts.to}:${input.targetRoot}${input.dryRun ? ' (dry run)' : ''} (operator)`,
            memo: { trigger: 'operator' },
          });
        } catch (err) {
          if (err instanceof WorkflowExecutionAlreadyStartedError) throw new CliError(`a clone onto ${opts.to} is already running (workflow ${workflowId}); wait for it to end`, EXIT.failure);
          throw err;
        }
        if (!opts.json) process.stdout.write(`clone started: workflow ${workflowId}\n`);
        if (!opts.wait) return opts.json ? printJson({ workflowId }) : undefined;
        const result = handle.result() as Promise<CloneResult>;
        await showProgress(client, workflowId, result);
        const r = await failed('clone', result);
        if (opts.json) printJson({ workflowId, result: r });
        else process.stdout.write(describeClone(r));
        if (r.verify && !r.verify.ok) throw new CliError(`the clone onto ${r.to} was copied but did not verify (see above)${opts.bootDevice ? '; the boot loader was not installed' : ''}`, EXIT.failure);
        if (r.boot && !r.boot.ok) throw new CliError(`the clone onto ${r.to} verified, but installing the boot loader on ${r.boot.device} failed (see above)`, EXIT.failure);
      });
    });
}

/**
 * The report an administrator reads after a clone (or a dry run). An image's deploy gives its
 * own first line (`headline`) and what the verification compared with (`comparedWith`: the image).
 */
export function describeClone(r: CloneResult, opts: { headline?: string; comparedWith?: string } = {}): string {
  const lines: string[] = [];
  const s = r.copy.stats;
  const secs = (r.copy.durationMs / 1000).toFixed(1);
  if (opts.headline !== undefined) {
    lines.push(opts.headline);
  } else if (r.dryRun) {
    lines.push(`dry run: a clone of ${r.from} onto ${r.to}:${r.targetRoot} would transfer ${s?.regularFilesTransferred ?? '?'} files (${formatBytes(s?.transferredFileSize ?? 0)}) and delete ${s?.deletedFiles ?? '?'}, of ${s?.files ?? '?'} entries (${formatBytes(s?.totalFileSize ?? 0)}); nothing was changed`);
  } else {
    lines.push(`cloned ${r.from} onto ${r.to}:${r.targetRoot}: ${s?.files ?? '?'} entries (${formatBytes(s?.totalFileSize ?? 0)}), ${s?.regularFilesTransferred ?? '?'} files transferred (${formatBytes(s?.transferredFileSize ?? 0)}), ${s?.deletedFiles ?? 0} deleted, in ${secs} s${r.copy.attempts > 1 ? ` (${r.copy.attempts} attempts, resumed)` : ''}`);
  }
  lines.push(`left out: ${r.plan.excluded.join(' ')}`);
  lines.push(`fix-ups${r.dryRun ? ' it would apply' : ''} (host name ${r.plan.hostname}${r.plan.addresses.map((a) => `, ${a.from} -> ${a.to}`).join('')}):`);
  for (const c of r.fixups.changes) lines.push(`  ${c.file}: ${c.what}`);
  if (r.fixups.changes.length === 0) lines.push('  none');
  if (r.fixups.hostKeys.length > 0) {
    lines.push('its ssh host keys (put them in sync.ssh.knownHostsFile on every node once it runs):');
    for (const k of r.fixups.hostKeys) lines.push(`  ${k}`);
  }
  const warnings = [...r.plan.warnings, ...r.fixups.warnings];
  if (warnings.length > 0) {
    lines.push('check by hand:');
    for (const w of warnings) lines.push(`  ${w}`);
  }
  if (r.verify) {
    const v = r.verify;
    lines.push(`verified: ${v.sampled < 0 ? 'every file' : `${v.sampled} sampled files`} compared by checksum with ${opts.comparedWith ?? r.from}: ${v.differing.length === 0 ? 'all equal' : `${v.differing.length} differ: ${v.differing.slice(0, 10).join(' ')}`}`);
    for (const c of v.checks) lines.push(`  ${c.name} in a chroot: ${c.ok ? 'ok' : `FAILED\n    ${c.output.split('\n').join('\n    ')}`}`);
  }
  if (r.boot) {
    const b = r.boot;
    lines.push(b.dryRun ? `boot loader: it would run (${b.family} tools, device ${b.device}):` : `boot loader on ${b.device} (${b.family} tools): ${b.ok ? 'installed' : 'FAILED'}`);
    for (const step of b.steps) lines.push(`  ${step.argv.join(' ')}${step.ok === undefined ? '' : step.ok ? '' : `: FAILED\n    ${(step.output ?? '').split('\n').join('\n    ')}`}`);
  }
  return `${lines.join('\n')}\n`;
}
