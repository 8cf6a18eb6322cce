/**
 * `haoscar image capture NODE DIR` and `haoscar image deploy DIR NODE --target-root PATH`:
 * golden images kept in a directory on the witness (docs/clone.md#golden-images), with the
 * clone's progress bar and report. `haoscar image` gathers the image subcommands; each comes
 * from its own file (capture and deploy here, others passed to {@link imageCommand}).
 */
import { Command } from 'commander';
import { userInfo } from 'node:os';
import { WorkflowExecutionAlreadyStartedError, WorkflowIdConflictPolicy, type Client } from '@temporalio/client';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import type { ImageCaptureInput, ImageDeployInput } from '../../workflows/inputs.js';
import type { ImageCaptureResult, ImageDeployResult } from '../../workflows/image.js';
import { cloneWorkflowId, clusterTaskQueue, imageCaptureWorkflowId } from '../../workflows/shared.js';
import { describeClone } from './clone.js';
import { CliError, EXIT } from './errors.js';
import { formatBytes, showProgress } from './progress.js';
import { printJson } from './output.js';
import { failed, withClient } from './switchover.js';

const CONFIG_OPTION = ['-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml'] as const;

/**
 * `haoscar image`: capture and deploy, and the image subcommands of other files (`more`, e.g.
 * `image recipe`), each with main.ts's exit handling (a usage error is exit 2).
 */
export function imageCommand(more: Command[] = []): Command {
  const image = new Command('image').description('golden images of a node\'s system kept on the witness (SystemImager\'s role), and install recipes');
  for (const sub of [imageCaptureCommand(), imageDeployCommand(), ...more]) image.addCommand(sub.exitOverride().showHelpAfterError());
  return image;
}

/** An image directory: absolute, not `/`, without a trailing slash. @throws CliError (exit 2) */
function imageDir(dir: string): string {
  if (!dir.startsWith('/') || dir.replace(/\/+$/, '') === '') throw new CliError(`the image directory '${dir}' must be an absolute directory on the witness other than /, e.g. /var/lib/haoscar/images/web`, EXIT.usage);
  return dir.replace(/\/+$/, '');
}

function knownNode(config: Config, what: string, node: string): void {
  const names = config.nodes.map((n) => n.name);
  if (!names.includes(node)) throw new CliError(`${what}: unknown node '${node}' (known: ${names.join(', ')})`, EXIT.usage);
}

/** The host part of `temporal.address` (`host:port`, `[v6]:port`): the witness when Temporal runs there. */
export function witnessHostOf(address: string): string {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(address);
  if (v6?.[1]) return v6[1];
  return address.replace(/:\d+$/, '');
}

async function startWorkflow(client: Client, type: string, workflowId: string, cluster: string, input: unknown, summary: string, busy: string) {
  try {
    return await client.workflow.start(type, {
      workflowId, taskQueue: clusterTaskQueue(cluster), args: [input],
      workflowIdConflictPolicy: WorkflowIdConflictPolicy.FAIL,
      staticSummary: `${summary} (operator)`,
      memo: { trigger: 'operator' },
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new CliError(`${busy} (workflow ${workflowId}); wait for it to end`, EXIT.failure);
    throw err;
  }
}

function imageCaptureCommand(): Command {
  return new Command('capture')
    .description("capture a configured, working node's system into a directory on the witness (no machine ID, no ssh host keys, no agent state)")
    .argument('<node>', 'the node whose system is captured (only read)')
    .argument('<dir>', 'the image directory on the witness: new, empty, or an earlier image (updated incrementally)')
    .requiredOption(...CONFIG_OPTION)
    .option('--source-root <dir>', "the node's root directory", '/')
    .option('-r, --reason <text>', 'why (kept in the workflow history)')
    .option('--no-wait', 'return once the capture has started')
    .option('--json', 'print the workflow (and unless --no-wait its result) as JSON; the progress bar stays on stderr')
    .action(async (node: string, dirArg: string, opts: { config: string; sourceRoot: string; reason?: string; wait: boolean; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      knownNode(config, 'NODE', node);
      const dir = imageDir(dirArg);
      const workflowId = imageCaptureWorkflowId(config.cluster, dir);
      const input: ImageCaptureInput = { cluster: config.cluster, from: node, dir, sourceRoot: opts.sourceRoot, reason: opts.reason ?? `requested by ${userInfo().username} with haoscar image capture` };
      await withClient(config, async (client) => {
        const handle = await startWorkflow(client, 'imageCapture', workflowId, config.cluster, input, `image capture: ${node} into the witness's ${dir}`, `a capture into ${dir} is already running`);
        if (!opts.json) process.stdout.write(`image capture started: workflow ${workflowId}\n`);
        if (!opts.wait) return opts.json ? printJson({ workflowId }) : undefined;
        const result = handle.result() as Promise<ImageCaptureResult>;
        await showProgress(client, workflowId, result);
        const r = await failed('image capture', result);
        if (opts.json) printJson({ workflowId, result: r });
        else process.stdout.write(describeCapture(r));
        if (!r.verify.ok) throw new CliError(`the image of ${r.from} was captured and sealed, but sampled files differ from the node (changed while it was captured?): capture again, or check them`, EXIT.failure);
      });
    });
}

function imageDeployCommand(): Command {
  return new Command('deploy')
    .description("deploy an image from the witness onto a standby's offline root, then make it that node (host name, machine ID, ssh host keys, addresses) and verify it")
    .argument('<dir>', 'the image directory on the witness')
    .argument('<node>', 'the standby that receives it; it must run no group')
    .requiredOption(...CONFIG_OPTION)
    .requiredOption('--target-root <path>', "the standby's root file system, mounted on the standby (not its running /), e.g. /mnt/target")
    .option('--witness-host <host>', 'where the standby reaches the witness over ssh (default: the host of temporal.address)')
    .option('--hostname <name>', "the host name it gets (default: the node's name)")
    .option('--dry-run', 'list what would change (files, fix-ups), change nothing')
    .option('--checksum', 'compare every file by content, in the copy and the verification (slow)')
    .option('-r, --reason <text>', 'why (kept in the workflow history)')
    .option('--no-wait', 'return once the deploy has started')
    .option('--json', 'print the workflow (and unless --no-wait its result) as JSON; the progress bar stays on stderr')
    .action(async (dirArg: string, node: string, opts: { config: string; targetRoot: string; witnessHost?: string; hostname?: string; dryRun?: boolean; checksum?: boolean; reason?: string; wait: boolean; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      knownNode(config, 'NODE', node);
      const dir = imageDir(dirArg);
      if (!opts.targetRoot.startsWith('/') || opts.targetRoot.replace(/\/+$/, '') === '') throw new CliError('--target-root must be an absolute directory other than /, e.g. /mnt/target', EXIT.usage);
      // A deploy onto a node is a clone onto it: one at a time, whichever it is.
      const workflowId = cloneWorkflowId(config.cluster, node);
      const input: ImageDeployInput = {
        cluster: config.cluster, dir, to: node, targetRoot: opts.targetRoot.replace(/\/+$/, ''),
        witnessHost: opts.witnessHost ?? witnessHostOf(config.temporal.address),
        dryRun: opts.dryRun ?? false, checksum: opts.checksum ?? false,
        ...(opts.hostname ? { hostname: opts.hostname } : {}),
        reason: opts.reason ?? `requested by ${userInfo().username} with haoscar image deploy`,
      };
      await withClient(config, async (client) => {
        const handle = await startWorkflow(client, 'imageDeploy', workflowId, config.cluster, input, `image deploy: ${dir} onto ${node}:${input.targetRoot}${input.dryRun ? ' (dry run)' : ''}`, `a clone or image deploy onto ${node} is already running`);
        if (!opts.json) process.stdout.write(`image deploy started: workflow ${workflowId}\n`);
        if (!opts.wait) return opts.json ? printJson({ workflowId }) : undefined;
        const result = handle.result() as Promise<ImageDeployResult>;
        await showProgress(client, workflowId, result);
        const r = await failed('image deploy', result);
        if (opts.json) printJson({ workflowId, result: r });
        else process.stdout.write(describeDeploy(r));
        if (r.verify && !r.verify.ok) throw new CliError(`the image was deployed onto ${r.to} but did not verify (see above)`, EXIT.failure);
      });
    });
}

function imageOrigin(m: Pick<ImageDeployResult['image'], 'source' | 'capturedAt' | 'haoscarVersion' | 'osRelease'>): string {
  return `${m.osRelease?.name ?? 'an unknown system'} of ${m.source.node}, captured ${m.capturedAt} by HA-OSCAR ${m.haoscarVersion}`;
}

/** The report after a capture. */
export function describeCapture(r: ImageCaptureResult): string {
  const s = r.copy.stats;
  const lines = [
    `captured ${r.from} into the witness's ${r.dir}: ${s?.files ?? '?'} entries (${formatBytes(s?.totalFileSize ?? 0)}), ${s?.regularFilesTransferred ?? '?'} files transferred (${formatBytes(s?.transferredFileSize ?? 0)}), ${s?.deletedFiles ?? 0} deleted, in ${(r.copy.durationMs / 1000).toFixed(1)} s${r.copy.attempts > 1 ? ` (${r.copy.attempts} attempts, resumed)` : ''}`,
    `image: ${imageOrigin(r.manifest)}${r.prepared.previous ? ` (replaces the image of ${r.prepared.previous.node} captured ${r.prepared.previous.capturedAt})` : ''}`,
    `left out: ${r.plan.excluded.join(' ')}`,
    `verified: ${r.verify.sampled} sampled files compared by checksum with ${r.from}: ${r.verify.differing.length === 0 ? 'all equal' : `${r.verify.differing.length} differ: ${r.verify.differing.slice(0, 10).join(' ')}`}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** The report after a deploy (or its dry run): the clone's, headed by the image. */
export function describeDeploy(r: ImageDeployResult): string {
  const s = r.copy.stats;
  const headline = r.dryRun
    ? `dry run: a deploy of the image ${r.dir} (${imageOrigin(r.image)}) onto ${r.to}:${r.targetRoot} would transfer ${s?.regularFilesTransferred ?? '?'} files (${formatBytes(s?.transferredFileSize ?? 0)}) and delete ${s?.deletedFiles ?? '?'}, of ${s?.files ?? '?'} entries (${formatBytes(s?.totalFileSize ?? 0)}); nothing was changed`
    : `deployed the image ${r.dir} (${imageOrigin(r.image)}) onto ${r.to}:${r.targetRoot}: ${s?.files ?? '?'} entries (${formatBytes(s?.totalFileSize ?? 0)}), ${s?.regularFilesTransferred ?? '?'} files transferred (${formatBytes(s?.transferredFileSize ?? 0)}), ${s?.deletedFiles ?? 0} deleted, in ${(r.copy.durationMs / 1000).toFixed(1)} s${r.copy.attempts > 1 ? ` (${r.copy.attempts} attempts, resumed)` : ''}`;
  return describeClone(r, { headline, comparedWith: `the image on the witness` });
}
