/**
 * What the heartbeat keeps across restarts of the agent, in `<stateDir>/heartbeat/<node>.json`
 * (one file per node, so nodes that share a state directory, as in the lab, do not share it):
 *
 *     {"incarnation": 1796564425326, "answeredBy": ["node2"]}
 *
 * - `incarnation`: this node's last run. Each start takes a larger one and writes it to disk
 *   (fsync'd, atomically) before the first packet leaves, so a run's incarnation is larger
 *   than every earlier one's whatever the clock says: peers never take a restarted node for a
 *   recording of an older run. It is the last one + 1, or the clock in ms when that is larger
 *   (and without a file: the first start, or a state directory that was lost): releases before
 *   the file used the clock at every start, so peers that remember such an incarnation, and a
 *   node downgraded and upgraded again, stay in order.
 * - `answeredBy`: the peers that have answered one of this node's challenges (challenge.ts):
 *   packets without a challenge from them are refused from then on, in every later run.
 *
 * The file is written atomically (a temporary file, fsync, rename, fsync of the directory): a
 * crash leaves the old file or the new one. {@link parseHeartbeatState} and
 * {@link nextIncarnation} are pure.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomically } from '../atomic-file.js';
import { z } from 'zod';
import { NAME_PATTERN } from '../config/schema.js';

export interface HeartbeatState {
  incarnation: number;
  answeredBy: string[];
}

const stateSchema = z.object({
  incarnation: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  answeredBy: z.array(z.string().regex(NAME_PATTERN)).default([]),
});

/** Thrown when the state file cannot be read, parsed or written; the message names the file. */
export class HeartbeatStateError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause });
    this.name = 'HeartbeatStateError';
  }
}

/** The file of `node` in the agent's state directory. */
export function heartbeatStateFile(stateDir: string, node: string): string {
  return join(stateDir, 'heartbeat', `${node}.json`);
}

/**
 * Parses a state file's text.
 * @returns the state, or a sentence saying what is wrong with it.
 */
export function parseHeartbeatState(text: string): { ok: true; state: HeartbeatState } | { ok: false; why: string } {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, why: 'not JSON' };
  }
  const parsed = stateSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return { ok: false, why: `${issue?.path.join('.') || '(file)'}: ${issue?.message ?? 'invalid'}` };
  }
  return { ok: true, state: { incarnation: parsed.data.incarnation, answeredBy: [...new Set(parsed.data.answeredBy)].sort() } };
}

/**
 * This run's incarnation: one more than the last run's, or this host's clock (`now`, ms) when
 * that is larger or no run was recorded. A clock set back never makes it go back; a clock is
 * never compared with another host's.
 * @throws RangeError past Number.MAX_SAFE_INTEGER (never in practice).
 */
export function nextIncarnation(last: number | undefined, now: number): number {
  const clock = Math.floor(now);
  const next = last === undefined ? clock : Math.max(last + 1, clock);
  if (!Number.isSafeInteger(next) || next < 0) throw new RangeError(`heartbeat: no incarnation after ${last ?? `the clock ${now}`}`);
  return next;
}

/** The state file of one node: read once at start, then written after each change, one write at a time. */
export class HeartbeatStateStore {
  private writing: Promise<void> = Promise.resolve();

  private constructor(readonly file: string, private state: HeartbeatState) {}

  /**
   * Reads the last state (if any), takes the next incarnation and writes it to disk.
   * @throws HeartbeatStateError when the file exists but cannot be read or is damaged (it is
   *   not overwritten: a wrong guess could reuse an incarnation), or cannot be written.
   */
  static async begin(stateDir: string, node: string, now: number): Promise<HeartbeatStateStore> {
    const file = heartbeatStateFile(stateDir, node);
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new HeartbeatStateError(`heartbeat: cannot read ${file}: ${(err as Error).message}`, err);
      }
    }
    let last: HeartbeatState | undefined;
    if (text !== undefined) {
      const parsed = parseHeartbeatState(text);
      if (!parsed.ok) {
        throw new HeartbeatStateError(
          `heartbeat: ${file} is damaged (${parsed.why}); it holds this node's last heartbeat incarnation. If the clock of this host is right, remove it: the next start then takes the clock's time as its incarnation`);
      }
      last = parsed.state;
    }
    let incarnation: number;
    try {
      incarnation = nextIncarnation(last?.incarnation, now);
    } catch (err) {
      throw new HeartbeatStateError(`${(err as Error).message} (${file})`, err);
    }
    const store = new HeartbeatStateStore(file, { incarnation, answeredBy: last?.answeredBy ?? [] });
    await store.save();
    return store;
  }

  get incarnation(): number {
    return this.state.incarnation;
  }

  /** The peers that have answered a challenge of this node, in this run or an earlier one. */
  answeredBy(): ReadonlySet<string> {
    return new Set(this.state.answeredBy);
  }

  /**
   * Records that `peer` answered a challenge; resolves once it is on disk.
   * @throws HeartbeatStateError when the file cannot be written (the record is kept in memory).
   */
  recordAnswered(peer: string): Promise<void> {
    if (this.state.answeredBy.includes(peer)) return this.writing;
    this.state = { ...this.state, answeredBy: [...this.state.answeredBy, peer].sort() };
    return this.save();
  }

  /** Resolves when every write asked for so far is done (successfully or not). */
  settled(): Promise<void> {
    return this.writing.catch(() => undefined);
  }

  private save(): Promise<void> {
    const text = `${JSON.stringify(this.state)}\n`;
    const done = this.writing.catch(() => undefined).then(() => writeAtomically(this.file, text));
    this.writing = done;
    return done;
  }
}

/** writeFileAtomically, its failure as a HeartbeatStateError. */
async function writeAtomically(file: string, text: string): Promise<void> {
  try {
    await writeFileAtomically(file, text);
  } catch (err) {
    throw new HeartbeatStateError(`heartbeat: cannot write ${file}: ${(err as Error).message}`, err);
  }
}
