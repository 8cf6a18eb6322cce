/**
 * A golden image's steps on the WITNESS (docs/clone.md#golden-images), on its own queue that
 * only `haoscar worker` polls: the capture pulls a node's root over ssh into `DIR/root` with the
 * clone's own copy, progress and resume (activities/clone.ts, the witness being its "target"),
 * then seals the image with its manifest; a deploy first asks here what the image is, and the
 * target node then pulls `DIR/root` from the witness with the clone's steps on its own queue.
 *
 * An image directory holds only `haoscar-image.json`, `root/` and, while a capture runs or after
 * one was interrupted, `haoscar-image.capturing.json`. A directory with anything else is never
 * written to (the copy's `--delete` would remove it), and one without a sealed manifest is never
 * deployed.
 */
import { chmod, lstat, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { packageVersion } from '../src/package-info.js';
import { readOsReleaseUnder, writeJsonFile } from '../src/clone/image.js';
import { captureDirProblem, IMAGE_CAPTURING, IMAGE_FORMAT, IMAGE_MANIFEST, IMAGE_TREE, parseImageManifest, type ImageManifest } from '../workflows/image-plan.js';
import { ERROR_TYPES, WITNESS } from '../workflows/shared.js';
import { createNodeAuth } from './auth.js';
import { createCloneActivities, type CloneActivityDeps, type CloneEnds } from './clone.js';

export type ImageActivityDeps = Omit<CloneActivityDeps, 'node' | 'heldGroups' | 'chroot'>;

/** What `imagePrepare` found and did. */
export interface ImagePrepared {
  /** When this capture started (the witness's clock). */
  startedAt: string;
  /** The directory did not exist and was made. */
  created: boolean;
  /** The image it replaces, if the directory held a sealed one. */
  previous?: { node: string; capturedAt: string };
}

/** What `imageSeal` is given: the manifest, but for what the witness fills in itself. */
export type ImageSealRequest = Omit<ImageManifest, 'format' | 'capturedAt' | 'haoscarVersion' | 'osRelease'> & { dir: string; mac?: string };

export function createImageActivities(deps: ImageActivityDeps) {
  const { logger } = deps;
  // The witness is the clone's target during a capture; it never holds a group.
  const clone = createCloneActivities({ ...deps, node: WITNESS, heldGroups: () => [] });
  const auth = createNodeAuth({ cluster: deps.cluster, node: WITNESS, key: deps.key, logger });
  const refuse = (message: string) => ApplicationFailure.create({ type: ERROR_TYPES.ImageRefused, nonRetryable: true, message });
  const checkDir = (dir: string) => {
    if (!/^\/[^\0\n]*[^/\0\n]$/.test(dir)) throw refuse(`the image directory '${dir}' is not an absolute path other than /; nothing was changed`);
  };

  return {
    /**
     * Makes `dir` (mode 0700: the image holds the source's /etc/shadow and the cluster secret)
     * or checks that it is empty or an image, marks it as being captured (a deploy refuses it
     * from now until {@link imageSeal}) and makes `dir/root`.
     * @throws ImageRefused (not a directory, someone's data), Unauthenticated
     */
    async imagePrepare(req: { dir: string; source: string; workflowId?: string; mac?: string }): Promise<ImagePrepared> {
      auth.checkOrder(req);
      checkDir(req.dir);
      const st = await lstat(req.dir).catch(() => undefined);
      if (st && !st.isDirectory()) throw refuse(`${req.dir} on the witness is not a directory; nothing was changed`);
      const entries = st ? await readdir(req.dir) : [];
      const problem = captureDirProblem(req.dir, entries);
      if (problem) throw refuse(`${problem}; nothing was changed`);
      let previous: ImagePrepared['previous'];
      if (entries.includes(IMAGE_MANIFEST)) {
        const m = await readFile(join(req.dir, IMAGE_MANIFEST), 'utf8').then(parseImageManifest, () => undefined);
        if (m) previous = { node: m.source.node, capturedAt: m.capturedAt };
      }
      const startedAt = new Date().toISOString();
      await mkdir(req.dir, { recursive: true, mode: 0o700 });
      await chmod(req.dir, 0o700);
      // The mark first, then the old manifest out: at no moment does the directory look sealed.
      await writeJsonFile(join(req.dir, IMAGE_CAPTURING), { source: req.source, startedAt, workflowId: req.workflowId });
      await rm(join(req.dir, IMAGE_MANIFEST), { force: true });
      await mkdir(join(req.dir, IMAGE_TREE), { recursive: true, mode: 0o755 });
      logger.info({ dir: req.dir, source: req.source, created: !st, previous }, 'image capture prepared');
      return { startedAt, created: !st, ...(previous ? { previous } : {}) };
    },

    /** The clone's preflight with the witness as its target: `dir/root` is checked, the source answers over ssh. */
    imageCapturePreflight: (ends: CloneEnds) => clone.clonePreflight(ends),
    /** The clone's copy into `dir/root` (progress heartbeats; a retry resumes). */
    imageCaptureCopy: (req: Parameters<typeof clone.cloneCopy>[0]) => clone.cloneCopy(req),
    /** The clone's sampled checksum comparison with the source; no chroot checks (an image has no host keys). */
    imageCaptureVerify: (req: Parameters<typeof clone.cloneVerify>[0]) => clone.cloneVerify({ ...req, chrootChecks: false }),

    /**
     * Writes the manifest (the witness adds the time, its HA-OSCAR version and the captured
     * tree's os-release) and removes the capture's mark: from now on the image can be deployed.
     * @throws ImageRefused (no capture under way there), Unauthenticated
     */
    async imageSeal(req: ImageSealRequest): Promise<ImageManifest> {
      auth.checkOrder(req);
      checkDir(req.dir);
      if (!(await lstat(join(req.dir, IMAGE_CAPTURING)).catch(() => undefined))) throw refuse(`${req.dir} on the witness has no capture under way (no ${IMAGE_CAPTURING}); nothing was changed`);
      const { dir, mac: _mac, ...fields } = req;
      const osRelease = await readOsReleaseUnder(join(dir, IMAGE_TREE));
      const manifest: ImageManifest = {
        format: IMAGE_FORMAT,
        ...fields,
        capturedAt: new Date().toISOString(),
        haoscarVersion: packageVersion(),
        ...(osRelease ? { osRelease } : {}),
      };
      await writeJsonFile(join(dir, IMAGE_MANIFEST), parseImageManifest(JSON.stringify(manifest)));
      await rm(join(dir, IMAGE_CAPTURING), { force: true });
      logger.info({ dir, source: manifest.source.node, os: osRelease?.name }, 'image sealed');
      return manifest;
    },

    /**
     * The image in `dir`: its manifest, checked. Changes nothing.
     * @throws ImageRefused: no such directory, not an image, a capture under way or interrupted,
     *   a manifest that does not parse
     */
    async imageDescribe(req: { dir: string }): Promise<ImageManifest> {
      checkDir(req.dir);
      const entries = await readdir(req.dir).catch(() => undefined);
      if (entries === undefined) throw refuse(`${req.dir} does not exist on the witness (or is not a directory): there is no image there; nothing was changed`);
      if (entries.includes(IMAGE_CAPTURING)) throw refuse(`${req.dir} on the witness is being captured, or its capture was interrupted (${IMAGE_CAPTURING} is there): let it finish, or run haoscar image capture again; nothing was changed`);
      if (!entries.includes(IMAGE_MANIFEST)) throw refuse(`${req.dir} on the witness is not an image (it has no ${IMAGE_MANIFEST}): capture one with haoscar image capture NODE DIR; nothing was changed`);
      let manifest: ImageManifest;
      try {
        manifest = parseImageManifest(await readFile(join(req.dir, IMAGE_MANIFEST), 'utf8'));
      } catch (err) {
        throw refuse(`${req.dir} on the witness is not a usable image: ${err instanceof Error ? err.message : String(err)}; nothing was changed`);
      }
      if (!(await lstat(join(req.dir, IMAGE_TREE)).catch(() => undefined))?.isDirectory()) throw refuse(`${req.dir} on the witness has a manifest but no ${IMAGE_TREE}/ directory; nothing was changed`);
      return manifest;
    },
  };
}

export type ImageActivities = ReturnType<typeof createImageActivities>;
