/**
 * Golden images (docs/clone.md#golden-images), the way SystemImager was used: `imageCapture`
 * takes a configured, working node's system once into a directory on the witness;
 * `imageDeploy` puts it later onto a standby's offline root. Started by `haoscar image capture`
 * and `haoscar image deploy`, or from the UI.
 *
 * Both are the clone (clone.ts) cut in two, with its planner, copy, fix-ups and verification:
 * - capture: the witness is the clone's target. On the witness's own queue (only `haoscar
 *   worker` polls it): the directory is checked and marked, the node's root is pulled into
 *   `DIR/root` (progress heartbeats, a retry resumes), sampled files are compared with the
 *   node, then the manifest seals the image.
 * - deploy: the witness is the clone's source. The witness says what the image is (a directory
 *   that is not a sealed image is refused before anything is done), then the clone's steps run
 *   on the target's queue, pulling `DIR/root` from the witness's sshd, with the fix-ups
 *   planned from the image's node as the manifest recorded it.
 */
import { ActivityFailure, ApplicationFailure, log, proxyActivities, proxyLocalActivities, TimeoutFailure, workflowInfo } from '@temporalio/workflow';
import type { CloneCopyResult, CloneVerifyResult } from '../activities/clone.js';
import type { ImageActivities, ImagePrepared } from '../activities/image.js';
import type { ClusterActivities } from '../activities/cluster.js';
import { signed } from './auth.js';
import { CLONE_HEARTBEAT_TIMEOUT_MS, cloneOn, refuseGroupOwner, type CloneResult } from './clone.js';
import { IMAGE_TREE, planImageCapture, planImageDeploy, type ImageCapturePlan, type ImageDeployPlan, type ImageManifest } from './image-plan.js';
import { imageCaptureInputSchema, imageDeployInputSchema, parseWorkflowInput } from './inputs.js';
import { ERROR_TYPES, WITNESS, witnessTaskQueue } from './shared.js';
import { says } from './story.js';

export interface ImageCaptureResult {
  dir: string;
  from: string;
  prepared: ImagePrepared;
  plan: Pick<ImageCapturePlan, 'excluded'>;
  copy: CloneCopyResult;
  /** Sampled files compared with the node; a file that changed on the running node while it was captured differs. */
  verify: CloneVerifyResult;
  manifest: ImageManifest;
}

export interface ImageDeployResult extends CloneResult {
  dir: string;
  /** Where and when the image came from. */
  image: Pick<ImageManifest, 'source' | 'capturedAt' | 'haoscarVersion' | 'osRelease'>;
}

const local = proxyLocalActivities<ClusterActivities>({
  startToCloseTimeout: '10 seconds',
  retry: { initialInterval: '200ms', maximumInterval: '2 seconds', maximumAttempts: 10, nonRetryableErrorTypes: [ERROR_TYPES.WrongCluster] },
});

/** No `haoscar worker` takes a witness step within this: the image workflows need one (agents do not poll the witness's queue). */
const WITNESS_SCHEDULE_TO_START = '2 minutes';
const NON_RETRYABLE = [ERROR_TYPES.ImageRefused, ERROR_TYPES.TargetRunsGroup, ERROR_TYPES.CloneRefused, ERROR_TYPES.CloneCopyFailed, ERROR_TYPES.Unauthenticated];

function witnessSteps(cluster: string) {
  return proxyActivities<Pick<ImageActivities, 'imagePrepare' | 'imageSeal' | 'imageDescribe'>>({
    taskQueue: witnessTaskQueue(cluster),
    scheduleToStartTimeout: WITNESS_SCHEDULE_TO_START,
    startToCloseTimeout: '2 minutes',
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  });
}

function witnessCopy(cluster: string) {
  return proxyActivities<Pick<ImageActivities, 'imageCapturePreflight' | 'imageCaptureCopy' | 'imageCaptureVerify'>>({
    taskQueue: witnessTaskQueue(cluster),
    scheduleToCloseTimeout: '48 hours',
    startToCloseTimeout: '24 hours',
    heartbeatTimeout: CLONE_HEARTBEAT_TIMEOUT_MS,
    retry: { initialInterval: '2 seconds', maximumInterval: '30 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  });
}

/** `step`, with a witness nobody serves said as such. @throws ImageRefused when no worker took it in time */
async function onWitness<T>(cluster: string, step: Promise<T>): Promise<T> {
  try {
    return await step;
  } catch (err) {
    // Only a step nobody took: a step that started and then timed out is not a missing worker.
    if (err instanceof ActivityFailure && err.cause instanceof TimeoutFailure && err.cause.timeoutType === 'SCHEDULE_TO_START') {
      throw ApplicationFailure.create({ type: ERROR_TYPES.ImageRefused, nonRetryable: true, message: `no haoscar worker took the step on the witness's queue ${witnessTaskQueue(cluster)} within ${WITNESS_SCHEDULE_TO_START}: images are kept by haoscar worker (the witness), which agents do not replace (docs/clone.md#golden-images); nothing was changed` });
    }
    throw err;
  }
}

const refused = (err: unknown) => ApplicationFailure.create({ type: ERROR_TYPES.CloneRefused, nonRetryable: true, message: `${err instanceof Error ? err.message : String(err)}; nothing was changed` });

export async function imageCapture(rawInput: unknown): Promise<ImageCaptureResult> {
  const input = parseWorkflowInput(imageCaptureInputSchema, rawInput, 'imageCapture');
  const facts = await local.describeCloneFacts.executeWithOptions({ summary: 'look up the nodes and clone: in the configuration' }, [{ cluster: input.cluster }]);
  let plan: ImageCapturePlan;
  try {
    plan = planImageCapture(facts, input.from);
  } catch (err) {
    throw refused(err);
  }
  const sourceHost = facts.sourceAddress[input.from];
  if (sourceHost === undefined) throw refused(new Error(`node '${input.from}' has no address`));
  log.info('image capture', { from: input.from, dir: input.dir, reason: input.reason });
  const { workflowId } = workflowInfo();
  const steps = witnessSteps(input.cluster);
  const copyOn = witnessCopy(input.cluster);

  const prepared = await onWitness(input.cluster, steps.imagePrepare.executeWithOptions(says(`the witness checks ${input.dir} (new, empty or an image) and marks it as being captured`), [
    await signed(true, input.cluster, WITNESS, 'imagePrepare', { dir: input.dir, source: input.from, workflowId }),
  ]));
  const ends = { source: input.from, sourceHost, sourceRoot: input.sourceRoot, targetRoot: `${input.dir}/${IMAGE_TREE}` };
  await copyOn.imageCapturePreflight.executeWithOptions(says(`the witness checks that it can read ${input.from} over ssh`), [ends]);
  const copy = await copyOn.imageCaptureCopy.executeWithOptions(says(`the witness copies ${input.from}'s system into ${ends.targetRoot}`), [
    await signed(true, input.cluster, WITNESS, 'imageCaptureCopy', { ...ends, filters: plan.filters, dryRun: false, checksum: false }),
  ]);
  const verify = await copyOn.imageCaptureVerify.executeWithOptions(says(`the witness compares sampled files of the image with ${input.from}`), [
    { ...ends, filters: plan.filters, sample: facts.checksumSample, checksum: false, fixedFiles: [] },
  ]);
  const manifest = await onWitness(input.cluster, steps.imageSeal.executeWithOptions(says(`the witness seals the image in ${input.dir} with its manifest`), [
    await signed(true, input.cluster, WITNESS, 'imageSeal', {
      dir: input.dir, cluster: input.cluster,
      source: { node: input.from, addresses: plan.addresses, root: input.sourceRoot },
      startedAt: prepared.startedAt, filters: plan.filters, excluded: plan.excluded,
      stats: { entries: copy.stats?.files ?? 0, bytes: copy.stats?.totalFileSize ?? 0 },
      workflowId,
    }),
  ]));
  return { dir: input.dir, from: input.from, prepared, plan: { excluded: plan.excluded }, copy, verify, manifest };
}

export async function imageDeploy(rawInput: unknown): Promise<ImageDeployResult> {
  const input = parseWorkflowInput(imageDeployInputSchema, rawInput, 'imageDeploy');
  const facts = await local.describeCloneFacts.executeWithOptions({ summary: 'look up the nodes and clone: in the configuration' }, [{ cluster: input.cluster }]);
  const manifest = await onWitness(input.cluster, witnessSteps(input.cluster).imageDescribe.executeWithOptions(says(`the witness says what the image in ${input.dir} is`), [{ dir: input.dir }]));
  let plan: ImageDeployPlan;
  try {
    plan = planImageDeploy(facts, manifest, { to: input.to, ...(input.hostname ? { hostname: input.hostname } : {}) });
  } catch (err) {
    throw refused(err);
  }
  await refuseGroupOwner(input.cluster, input.to, 'an image deploy');
  log.info('image deploy', { dir: input.dir, imageOf: manifest.source.node, to: input.to, targetRoot: input.targetRoot, dryRun: input.dryRun, reason: input.reason });

  const ends = { source: 'the witness', sourceHost: input.witnessHost, sourceRoot: `${input.dir}/${IMAGE_TREE}`, targetRoot: input.targetRoot };
  const target = cloneOn(input.cluster, input.to);
  await target.clonePreflight.executeWithOptions(says(`${input.to} checks its target root ${input.targetRoot} and that it can read the image on the witness (${input.witnessHost}) over ssh`), [ends]);
  const copy = await target.cloneCopy.executeWithOptions(
    says(input.dryRun ? `${input.to} lists what a deploy of ${input.dir} would change in ${input.targetRoot}` : `${input.to} copies the image ${input.dir} into ${input.targetRoot}`),
    [await signed(true, input.cluster, input.to, 'cloneCopy', { ...ends, filters: plan.filters, dryRun: input.dryRun, checksum: input.checksum })],
  );
  const fixups = await target.cloneFixups.executeWithOptions(
    says(`${input.to} ${input.dryRun ? 'works out' : 'applies'} the fix-ups: host name ${plan.hostname}, machine ID, ssh host keys, addresses`),
    [await signed(true, input.cluster, input.to, 'cloneFixups', { ...ends, hostname: plan.hostname, addresses: plan.addresses, dryRun: input.dryRun })],
  );
  const summary = { excluded: plan.excluded, hostname: plan.hostname, addresses: plan.addresses, warnings: plan.warnings };
  const image = { source: manifest.source, capturedAt: manifest.capturedAt, haoscarVersion: manifest.haoscarVersion, ...(manifest.osRelease ? { osRelease: manifest.osRelease } : {}) };
  const result = { dir: input.dir, image, from: manifest.source.node, to: input.to, targetRoot: input.targetRoot, plan: summary, copy, fixups };
  if (input.dryRun) return { ...result, dryRun: true };
  const verify = await target.cloneVerify.executeWithOptions(says(`${input.to} verifies the deploy (checksums against the image, sshd -t, the package database in a chroot)`), [
    { ...ends, filters: plan.filters, sample: facts.checksumSample, checksum: input.checksum, fixedFiles: [...new Set(fixups.changes.map((c) => c.file))] },
  ]);
  return { ...result, dryRun: false, verify };
}
