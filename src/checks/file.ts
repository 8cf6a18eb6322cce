/**
 * File check: a file exists and, optionally, has a given content (SHA-256), stays within a size,
 * and was modified recently — Monit's `check file` with `if changed checksum`, `if size > ...`
 * and `if timestamp > 10 minutes`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { formatDuration } from '../config/duration.js';
import { formatSize } from '../config/size.js';
import type { Probe } from './check.js';

export interface FileCheckSpec {
  path: string;
  /** 64 lowercase hex digits, or 'unchanged': the content the first run saw. */
  sha256?: string;
  maxSizeBytes?: number;
  minSizeBytes?: number;
  maxAgeMs?: number;
  /** With sha256 'unchanged': how many runs report a change before it becomes the new reference. */
  fall: number;
}

/**
 * The file check's probe. With `sha256: unchanged` it keeps a reference checksum between runs:
 * the first run's content (or the first run that found the file). A change fails `fall` runs in
 * a row — enough for the monitor to count the resource as failing once, and heal it (Monit's
 * `if changed checksum then restart`) — and then becomes the new reference, so that a restarted
 * service passes again instead of being restarted for ever.
 */
export function createFileProbe(spec: FileCheckSpec): Probe {
  let reference: string | undefined;
  let changeReported = 0;
  return async (signal) => {
    const info = await stat(spec.path);
    const figures: string[] = [];
    const crossed: string[] = [];
    if (spec.maxSizeBytes !== undefined || spec.minSizeBytes !== undefined) {
      figures.push(formatSize(info.size));
      if (spec.maxSizeBytes !== undefined && info.size > spec.maxSizeBytes) crossed.push(`larger than ${formatSize(spec.maxSizeBytes)}`);
      if (spec.minSizeBytes !== undefined && info.size < spec.minSizeBytes) crossed.push(`smaller than ${formatSize(spec.minSizeBytes)}`);
    }
    if (spec.maxAgeMs !== undefined) {
      const ageMs = Math.max(0, Date.now() - info.mtimeMs);
      figures.push(`modified ${ageText(ageMs)} ago`);
      if (ageMs > spec.maxAgeMs) crossed.push(`not modified for over ${formatDuration(spec.maxAgeMs)}`);
    }
    if (spec.sha256 !== undefined) {
      if (!info.isFile()) {
        crossed.push('not a regular file (no checksum)');
      } else {
        const sum = await sha256Of(spec.path, signal);
        const short = sum.slice(0, 12);
        if (spec.sha256 !== 'unchanged') {
          figures.push(`sha256 ${short}…`);
          if (sum !== spec.sha256) crossed.push(`checksum is not ${spec.sha256.slice(0, 12)}…`);
        } else if (reference === undefined || reference === sum) {
          figures.push(reference === undefined ? `sha256 ${short}… (now the reference)` : `sha256 ${short}… unchanged`);
          reference = sum;
          changeReported = 0;
        } else {
          crossed.push(`content changed: sha256 ${reference.slice(0, 12)}… is now ${short}…`);
          changeReported++;
          if (changeReported >= spec.fall) {
            reference = sum;
            changeReported = 0;
          }
        }
      }
    }
    const detail = figures.length === 0 ? 'exists' : figures.join(', ');
    return { ok: crossed.length === 0, detail: crossed.length === 0 ? detail : `${crossed.join(', ')} (${detail})` };
  };
}

/** `45s`, `10m22s`, `3h5m`: to the second under an hour, to the minute above. */
function ageText(ms: number): string {
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const [h, m, s] = [Math.floor(seconds / 3600), Math.floor(seconds / 60) % 60, seconds % 60];
  if (h === 0) return `${m}m${s === 0 ? '' : `${s}s`}`;
  return `${h}h${m === 0 ? '' : `${m}m`}`;
}

async function sha256Of(path: string, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
