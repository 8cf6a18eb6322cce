/**
 * Sizes and percentages in config files, written the way Monit and systemd write them:
 * `512MB`, `2GB`, `1.5G`, `100KiB`, `90%`. As in Monit and systemd, K, M, G and T are powers
 * of 1024 (`2GB` is 2 GiB, 2147483648 bytes), with or without a `B` or an `i`, so that a
 * threshold copied from a monitrc means the same here. A bare number is rejected on purpose,
 * as for durations: `max: 2` could be bytes, megabytes or a percentage.
 */
const UNIT_BYTES = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 } as const;
const SIZE = /^(\d+(?:\.\d+)?)\s*(?:(b)|([kmgt])(?:i?b)?)$/i;
const PERCENT = /^(\d+(?:\.\d+)?)\s*%$/;

/** Parses a size into bytes (rounded down to a whole byte); undefined when it is not one. */
export function parseSize(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  if (!m) return undefined;
  const unit = (m[2] ?? m[3] ?? 'b').toLowerCase() as keyof typeof UNIT_BYTES;
  const bytes = Math.floor(Number(m[1]) * UNIT_BYTES[unit]);
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Parses `90%` into 90; undefined when it is not a percentage. The range is the caller's. */
export function parsePercent(text: string): number | undefined {
  const m = PERCENT.exec(text.trim());
  return m ? Number(m[1]) : undefined;
}

/** Formats bytes as the largest 1024-based unit that keeps one decimal meaningful: `1.5GB`, `300MB`, `12B`. */
export function formatSize(bytes: number): string {
  const units = ['TB', 'GB', 'MB', 'KB'] as const;
  const sizes = [1024 ** 4, 1024 ** 3, 1024 ** 2, 1024] as const;
  for (let i = 0; i < units.length; i++) {
    const size = sizes[i]!;
    if (Math.abs(bytes) >= size) return `${trimNumber(bytes / size)}${units[i]!}`;
  }
  return `${bytes}B`;
}

/** One decimal at most, without a trailing `.0`. */
export function trimNumber(value: number): string {
  return String(Math.round(value * 10) / 10);
}
