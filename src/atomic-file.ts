/** Writing a small state file so that a crash leaves the old content or the new, never half of it. */
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';

/**
 * Writes `text` to `file` through a temporary file that is fsync'd and renamed over it, then
 * fsyncs the directory: when it resolves, the new content is on disk.
 * @throws the file system's error (the temporary file may be left behind).
 */
export async function writeFileAtomically(file: string, text: string, mode = 0o644): Promise<void> {
  const dir = dirname(file);
  const tmp = `${file}.tmp-${process.pid}`;
  await mkdir(dir, { recursive: true });
  const handle = await open(tmp, 'w', mode);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  const d = await open(dir, 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
