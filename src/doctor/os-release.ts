/**
 * Which distribution a node runs, from os-release(5) (`/etc/os-release`, else
 * `/usr/lib/os-release`), and so which package manager installs what doctor finds missing.
 */
import { readFile } from 'node:fs/promises';

export type PackageManager = 'apt' | 'dnf' | 'zypper';

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
 * backslash escapes (`\"`, `\\`, `\$`, `` \` ``), `#` comments and blank lines ignored.
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
  const id = (fields.get('ID') ?? 'linux').toLowerCase();
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
  return value;
}

/** The package manager of a distribution: by `ID`, else by the first `ID_LIKE` that is known. */
export function packageManagerOf(os: Pick<OsRelease, 'id' | 'idLike'>): PackageManager | undefined {
  for (const id of [os.id, ...os.idLike]) {
    if (id === 'debian' || id === 'ubuntu') return 'apt';
    if (id === 'rhel' || id === 'centos' || id === 'fedora') return 'dnf';
    if (id === 'suse' || id === 'opensuse' || id.startsWith('opensuse-') || id === 'sles') return 'zypper';
  }
  return undefined;
}

/** Reads this machine's os-release; undefined when neither file exists. */
export async function readOsRelease(): Promise<{ file: string; os: OsRelease } | undefined> {
  for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) return { file, os: parseOsRelease(text) };
  }
  return undefined;
}
