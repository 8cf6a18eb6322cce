/**
 * The pure part of a golden image (docs/clone.md#golden-images): a node's system captured into
 * a directory on the witness, deployed later onto a standby's offline root. An image is the
 * clone's copy split in two halves, so it is planned with the clone's planner: the capture
 * leaves out what a clone leaves out; the deploy is a clone whose source is the image (its
 * node's addresses as the manifest recorded them) and whose exclusions are the target's.
 * No I/O: the workflows plan with it, the witness's activities read and write the manifest,
 * and the table tests pin it down.
 */
import { z } from 'zod';
import { planAddresses, planFilters, type CloneFacts, type ClonePlan } from './clone-plan.js';

/** The manifest's name in an image directory; the captured tree is beside it in {@link IMAGE_TREE}. */
export const IMAGE_MANIFEST = 'haoscar-image.json';
/** Written when a capture starts, removed when it is sealed: an image with it is not deployed. */
export const IMAGE_CAPTURING = 'haoscar-image.capturing.json';
/** The captured root, under the image directory (the manifest stays out of the copied tree). */
export const IMAGE_TREE = 'root';
/** What an image directory may hold: anything else means it is not one (and is never overwritten). */
export const IMAGE_ENTRIES: readonly string[] = [IMAGE_MANIFEST, IMAGE_CAPTURING, IMAGE_TREE];
export const IMAGE_FORMAT = 'haoscar-image/1';

const rule = z.string().regex(/^[+-] [^\0\n]+$/, { error: 'expected an rsync filter rule "+ PATTERN" or "- PATTERN"' });
const absolute = z.string().regex(/^\/[^\0\n]*$/, { error: 'expected an absolute path' });

/** `haoscar-image.json`: where and when the image came from, and what the capture left out. */
export const imageManifestSchema = z.object({
  format: z.literal(IMAGE_FORMAT, { error: `expected format "${IMAGE_FORMAT}" (an image of another HA-OSCAR version?)` }),
  cluster: z.string(),
  source: z.object({
    node: z.string().min(1),
    /** Its addresses in `nodes:` when captured: the deploy maps them onto the target's. */
    addresses: z.array(z.string()),
    /** Its root directory (`/`). */
    root: absolute,
  }),
  startedAt: z.iso.datetime(),
  capturedAt: z.iso.datetime(),
  haoscarVersion: z.string(),
  /** The source's os-release(5), as captured (absent if the tree has none). */
  osRelease: z.object({ id: z.string(), idLike: z.array(z.string()), name: z.string(), versionId: z.string().optional() }).optional(),
  /** The capture's rsync filter rules: the deploy takes the same parts of the image. */
  filters: z.array(rule).min(1),
  excluded: z.array(z.string()),
  stats: z.object({ entries: z.number().int().nonnegative(), bytes: z.number().nonnegative() }).optional(),
  workflowId: z.string().optional(),
});
export type ImageManifest = z.infer<typeof imageManifestSchema>;

/** The manifest in `text`. @throws Error saying what is wrong with it. */
export function parseImageManifest(text: string): ImageManifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${IMAGE_MANIFEST} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = imageManifestSchema.safeParse(json);
  if (!parsed.success) throw new Error(`${IMAGE_MANIFEST} is not an image manifest: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'manifest'}: ${i.message}`).join('; ')}`);
  return parsed.data;
}

/**
 * Whether a directory with these entries may receive a capture: empty, or an image (sealed,
 * or a capture that was interrupted). Anything else is someone's data, which the capture's
 * `--delete` would remove: refused (the reason), and nothing is changed.
 */
export function captureDirProblem(dir: string, entries: readonly string[]): string | undefined {
  const others = entries.filter((e) => !IMAGE_ENTRIES.includes(e));
  if (others.length > 0) return `${dir} is not empty and is not an image (it holds ${others.slice(0, 5).join(', ')}${others.length > 5 ? ', ...' : ''}): capture into a new or empty directory, or into an image`;
  if (entries.includes(IMAGE_TREE) && !entries.includes(IMAGE_MANIFEST) && !entries.includes(IMAGE_CAPTURING)) return `${dir} holds a ${IMAGE_TREE}/ directory but no ${IMAGE_MANIFEST}: it is not an image; capture into a new or empty directory`;
  return undefined;
}

export interface ImageCapturePlan {
  from: string;
  /** The source's addresses, recorded in the manifest. */
  addresses: string[];
  filters: string[];
  excluded: string[];
}

/**
 * The capture of `from`'s root: what a clone would copy (the same exclusions: no machine ID, no
 * ssh host keys, not the agent's state or the groups' data, nothing of `/proc` ...).
 * @throws Error naming what is wrong (unknown node, a relative pattern in `clone:`).
 */
export function planImageCapture(facts: CloneFacts, from: string): ImageCapturePlan {
  const source = facts.nodes.find((n) => n.name === from);
  if (!source) throw new Error(`unknown source node '${from}' (known: ${facts.nodes.map((n) => n.name).join(', ')})`);
  return { from: source.name, addresses: source.addresses, ...planFilters(facts) };
}

/** A clone's plan, whose `from` is the node the image was captured from (it need not be in the configuration any more). */
export type ImageDeployPlan = ClonePlan;

/**
 * The deploy of an image onto `to`: the target's own exclusions (its machine ID, host keys, agent
 * state, the groups' mounts and `clone.exclude` of the configuration now) come first, so that
 * `--delete` never removes them, then the capture's rules, so that a partial image (`clone.include`
 * when captured) is not taken for a whole one and the rest of the target deleted. The fix-ups map
 * the image node's addresses, as recorded, onto the target's. The target may be the image's own
 * node (a node restored from its own image).
 * @throws Error naming what is wrong (unknown target node, a relative pattern in `clone:`).
 */
export function planImageDeploy(facts: CloneFacts, manifest: Pick<ImageManifest, 'source' | 'filters' | 'excluded'>, req: { to: string; hostname?: string }): ImageDeployPlan {
  const target = facts.nodes.find((n) => n.name === req.to);
  if (!target) throw new Error(`unknown target node '${req.to}' (known: ${facts.nodes.map((n) => n.name).join(', ')})`);
  const own = planFilters({ ...facts, clone: { include: ['/'], exclude: facts.clone.exclude } });
  const exclusions = own.filters.filter((r) => r.startsWith('- '));
  const filters = [...new Set([...exclusions, ...manifest.filters])];
  const excluded = [...new Set([...own.excluded, ...manifest.excluded])];
  const source = { name: manifest.source.node, addresses: manifest.source.addresses };
  const { addresses, warnings } = planAddresses(source, target);
  return { from: source.name, to: target.name, filters, excluded, hostname: req.hostname ?? target.name, addresses, warnings };
}
