/**
 * Disk check: space and inodes of the filesystem that holds a path, from statfs(2) — the
 * figures df prints, without running df (which can hang on a dead NFS mount and prints for
 * humans). Monit's `check filesystem ... if space usage > 90%`.
 */
import { statfs } from 'node:fs/promises';
import { formatSize, trimNumber } from '../config/size.js';
import type { ProbeOutcome } from './check.js';

export interface DiskThresholds {
  maxUsedPercent?: number;
  minFreeBytes?: number;
  maxInodesUsedPercent?: number;
}

/** What statfs says of a filesystem, in df's terms. */
export interface DiskUsage {
  /** df's Use%: used / (used + available to non-root), so the root reserve counts as used. */
  usedPercent: number;
  /** Bytes available to non-root users (df's Avail). */
  freeBytes: number;
  /** df -i's IUse%; undefined when the filesystem reports no inode counts (btrfs, some FUSE). */
  inodesUsedPercent: number | undefined;
}

/** The usage of the filesystem holding `path`. Rejects as statfs does (e.g. ENOENT). */
export async function readDiskUsage(path: string): Promise<DiskUsage> {
  const s = await statfs(path);
  const used = (s.blocks - s.bfree) * s.bsize;
  const free = s.bavail * s.bsize;
  const usedPercent = used + free === 0 ? 0 : (used / (used + free)) * 100;
  const inodesUsedPercent = s.files === 0 ? undefined : ((s.files - s.ffree) / s.files) * 100;
  return { usedPercent, freeBytes: free, inodesUsedPercent };
}

/** Fails when any threshold is crossed; the detail gives every figure, and what was crossed. */
export async function probeDisk(path: string, limits: DiskThresholds, signal: AbortSignal): Promise<ProbeOutcome> {
  const usage = await readDiskUsage(path);
  signal.throwIfAborted();
  const figures: string[] = [];
  const crossed: string[] = [];
  if (limits.maxUsedPercent !== undefined || limits.minFreeBytes !== undefined) {
    figures.push(`${trimNumber(usage.usedPercent)}% used, ${formatSize(usage.freeBytes)} free`);
  }
  if (limits.maxUsedPercent !== undefined && usage.usedPercent > limits.maxUsedPercent) {
    crossed.push(`space used over ${limits.maxUsedPercent}%`);
  }
  if (limits.minFreeBytes !== undefined && usage.freeBytes < limits.minFreeBytes) {
    crossed.push(`free space under ${formatSize(limits.minFreeBytes)}`);
  }
  if (limits.maxInodesUsedPercent !== undefined) {
    if (usage.inodesUsedPercent === undefined) {
      // Such a filesystem allocates inodes as needed: there is nothing to run out of.
      figures.push('no inode counts (this filesystem does not report them)');
    } else {
      figures.push(`inodes ${trimNumber(usage.inodesUsedPercent)}% used`);
      if (usage.inodesUsedPercent > limits.maxInodesUsedPercent) crossed.push(`inodes used over ${limits.maxInodesUsedPercent}%`);
    }
  }
  const detail = figures.join(', ');
  return { ok: crossed.length === 0, detail: crossed.length === 0 ? detail : `${crossed.join(', ')} (${detail})` };
}
