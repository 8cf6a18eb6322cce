/**
 * Which distribution a node runs, from os-release(5) (`/etc/os-release`, else
 * `/usr/lib/os-release`). Which family that is, and what follows from it: families.ts.
 */
import { readFile } from 'node:fs/promises';

export interface OsRelease {
  /** `ID`, lower case (`debian`, `ubuntu`, `rhel`, `fedora`, `opensuse-leap` ...). */
  id: string;
  /** `ID_LIKE`: the distributions this one derives from, closest first. */
  idLike: string[];
  /** `PRETTY_NAME`, else `NAME VERSION_ID`, else `ID`. */
  name: string;
  versionId?: string;
}

/**
 * Parses os-release text: `KEY=value` lines, the value bare or in single or double quotes with
 * backslash escapes (`\"`, `\\`, `\$`, `` \` ``), `#` comments and blank lines ignored. Never
 * throws: a line that is not an assignment is skipped, a missing `ID` is `linux` (os-release(5)).
 */
export function parseOsRelease(text: string): OsRelease {
  const fields = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (!m) continue;
    fields.set(m[1]!, unquote(m[2]!));
  }
  const id = fields.get('ID')?.toLowerCase() || 'linux'; // an empty ID too
  const versionId = fields.get('VERSION_ID');
  const name = fields.get('PRETTY_NAME') ?? (fields.get('NAME') ? `${fields.get('NAME')}${versionId ? ` ${versionId}` : ''}` : id);
  return {
    id,
    idLike: (fields.get('ID_LIKE') ?? '').toLowerCase().split(/\s+/).filter(Boolean),
    name,
    ...(versionId !== undefined ? { versionId } : {}),
  };
}

function unquote(value: string): string {
  const q = value[0];
  if ((q === '"' || q === "'") && value.endsWith(q) && value.length >= 2) {
    const inner = value.slice(1, -1);
    return q === '"' ? inner.replace(/\\([\\"$`])/g, '$1') : inner;
  }
  // Unquoted, as the shell reads it: a backslash takes the next character as it is (`Foo\ Bar`).
  return value.replace(/\\(.)/g, '$1');
}

/** Where os-release(5) says to look, in this order. */
export const OS_RELEASE_FILES = ['/etc/os-release', '/usr/lib/os-release'] as const;

/** Reads this machine's os-release (or the first of `files` that exists); undefined when none exists. */
export async function readOsRelease(files: readonly string[] = OS_RELEASE_FILES): Promise<{ file: string; os: OsRelease } | undefined> {
  for (const file of files) {
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) return { file, os: parseOsRelease(text) };
  }
  return undefined;
}
