/**
 * The highest epoch this node has seen of each group, kept across restarts of the agent in
 * `<stateDir>/epochs/<node>.json` (one file per node, as the heartbeat's state):
 *
 *     {"seen": {"web": 7, "db": 3}}
 *
 * Epochs live in the controller's state, in Temporal. If Temporal's data is lost, a new controller
 * starts every group at epoch 0; the nodes announce what they hold and the highest epoch they have
 * seen, so that the controller's next claim is above every one of them (an epoch is never reused,
 * and orders of the new controller are not refused as stale). Without this file a node that
 * restarted would have forgotten what it saw. A start under a new epoch waits until the epoch is
 * on disk; epochs seen elsewhere (the controller's answers, peers' heartbeats) are written behind.
 *
 * The file is written atomically (temporary file, fsync, rename, fsync of the directory).
 * {@link parseEpochFile} is pure.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { NAME_PATTERN } from '../config/schema.js';
import { writeFileAtomically } from '../atomic-file.js';

const fileSchema = z.strictObject({
  seen: z.record(z.string().regex(NAME_PATTERN), z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)),
});

/** Thrown when the epoch file cannot be read, parsed or written; the message names the file. */
export class EpochStoreError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'EpochStoreError';
  }
}

export function epochFile(stateDir: string, node: string): string {
  return join(stateDir, 'epochs', `${node}.json`);
}

/** Parses the file's text. @returns the epochs by group, or a sentence saying what is wrong. */
export function parseEpochFile(text: string): { ok: true; seen: Record<string, number> } | { ok: false; why: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, why: 'not JSON' };
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, why: `${issue?.path.join('.') || '(file)'}: ${issue?.message ?? 'invalid'}` };
  }
  return { ok: true, seen: parsed.data.seen };
}

/** The node's epoch file: read once at start, written after each rise, one write at a time. */
export class EpochStore {
  private writing: Promise<void> = Promise.resolve();

  private constructor(readonly file: string, private readonly seen: Map<string, number>) {}

  /**
   * Reads the file (none: nothing seen yet).
   * @throws EpochStoreError when it exists but cannot be read or is damaged (it is not overwritten:
   *   forgetting an epoch could let a controller that lost its data hand it out again).
   */
  static async open(stateDir: string, node: string): Promise<EpochStore> {
    const file = epochFile(stateDir, node);
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new EpochStoreError(`epochs: cannot read ${file}: ${(err as Error).message}`, err);
    }
    if (text === undefined) return new EpochStore(file, new Map());
    const parsed = parseEpochFile(text);
    if (!parsed.ok) {
      throw new EpochStoreError(`epochs: ${file} is damaged (${parsed.why}); it holds the highest epoch this node has seen of each group. Fix it, or remove it if Temporal still has its data (the controller's epochs are then the truth)`);
    }
    return new EpochStore(file, new Map(Object.entries(parsed.seen)));
  }

  /** The highest epoch seen of each group, as recorded (or being written). */
  all(): Record<string, number> {
    return Object.fromEntries(this.seen);
  }

  /**
   * Records that `epoch` of `group` was seen; resolves once it (or a higher one) is on disk.
   * @throws EpochStoreError when the file cannot be written (the epoch is kept in memory).
   */
  record(group: string, epoch: number): Promise<void> {
    if ((this.seen.get(group) ?? -1) >= epoch) return this.writing;
    this.seen.set(group, epoch);
    const text = `${JSON.stringify({ seen: this.all() })}\n`;
    const done = this.writing.catch(() => undefined).then(() =>
      writeFileAtomically(this.file, text).catch((err: unknown) => {
        throw new EpochStoreError(`epochs: cannot write ${this.file}: ${(err as Error).message}`, err);
      }),
    );
    this.writing = done;
    return done;
  }
}
