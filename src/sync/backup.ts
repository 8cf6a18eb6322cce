/**
 * What a pull would throw away is kept: the files it deletes or replaces are moved by rsync
 * (`--backup --backup-dir`) to `<stateDir>/sync-backup/<group>/<set>/<label>/<index>/`, where
 * `<index>` is the directory's place in the file set's `paths`. That is outside every file set
 * (the config rules refuse a set holding the state directory), so it is neither replicated nor
 * deleted by a later pull. The last `sync.keepBackups` pulls that kept something are kept per set;
 * a pull that kept nothing leaves no directory.
 *
 * Which pulls keep backups is file-sync.ts's choice: the first pull from an owner (a new owner,
 * a new epoch, an agent start) and every resync: the pulls where this node's copy may hold
 * writes of its own (it was the owner before) that the new owner lacks.
 */
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

export const BACKUP_DIR = 'sync-backup';

/** The per-set directory holding one directory per pull that kept files. */
export function backupSetDir(stateDir: string, group: string, set: string): string {
  return join(stateDir, BACKUP_DIR, group, set);
}

/**
 * A new pull's label: its local time (sorts in order, for retention; only ever compared with
 * this node's own labels) and where it pulled from, e.g. `20261206T172000.123Z-from-n2-e7`.
 */
export function backupLabel(at: Date, from: string, epoch: number | undefined): string {
  const stamp = at.toISOString().replace(/[-:]/g, '');
  return `${stamp}-from-${from}${epoch !== undefined && epoch >= 0 ? `-e${epoch}` : ''}`;
}

/** Regular files (and links) under `dir`, recursively; 0 when it does not exist. */
export async function countFiles(dir: string): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  let n = 0;
  for (const e of entries) n += e.isDirectory() ? await countFiles(join(dir, e.name)) : 1;
  return n;
}

export interface FinishedBackup {
  /** Files the pull kept (deleted or replaced in the copy). */
  files: number;
  /** Where they are; undefined when it kept none (its directory was removed). */
  dir: string | undefined;
  /** Older pulls' directories removed by the retention. */
  pruned: string[];
}

/**
 * After a pull into `<setDir>/<label>`: counts what it kept, removes its directory when it kept
 * nothing, and keeps the newest `keep` pulls' directories of the set (by label), removing older ones.
 * @throws the file system's error when the directories cannot be read or removed.
 */
export async function finishBackup(setDir: string, label: string, keep: number): Promise<FinishedBackup> {
  const dir = join(setDir, label);
  const files = await countFiles(dir);
  if (files === 0) await rm(dir, { recursive: true, force: true });
  const labels = (await readdir(setDir, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const pruned = labels.slice(0, Math.max(0, labels.length - Math.max(1, keep))).map((l) => join(setDir, l));
  for (const old of pruned) await rm(old, { recursive: true, force: true });
  return { files, dir: files > 0 ? dir : undefined, pruned };
}
