/**
 * The heartbeat secret: the HMAC-SHA256 key every node of a cluster shares, read from a file
 * (`heartbeat.secretFile`, the same content on every node).
 *
 * Whoever can read the file can forge heartbeats (make a dead node look alive, or hide a live
 * one behind forged views), so the agent refuses to start when other users can read or write it,
 * exactly as sshd refuses a world-readable private key. Group access is allowed (a `root:haoscar
 * 0640` file is a legitimate set-up).
 */
import { open } from 'node:fs/promises';
import { constants } from 'node:fs';
import { hkdfSync } from 'node:crypto';

/** Shorter keys are refused: 16 bytes (128 bits) is the least HMAC-SHA256 should be given. */
export const MIN_SECRET_BYTES = 16;
/** A "secret" bigger than this is the wrong file (a log, an image), not a key. */
export const MAX_SECRET_BYTES = 64 * 1024;

const CREATE_HINT = (file: string) => `create one with: head -c 32 /dev/urandom | base64 > ${file}; chmod 600 ${file} (then copy the same file to every node)`;

/** Thrown by {@link loadHeartbeatSecret}; the message says what is wrong with the file and how to fix it. */
export class HeartbeatSecretError extends Error {
  constructor(
    readonly file: string,
    message: string,
    cause?: unknown,
  ) {
    super(message, { cause });
    this.name = 'HeartbeatSecretError';
  }
}

/**
 * Reads the shared heartbeat key. Trailing whitespace (newline, CR, spaces) is not part of the
 * key, so a file written with `echo` or saved with CRLF line ends on one node gives the same
 * key as a file without them on another.
 *
 * The file is opened once and checked through that descriptor (fstat), so it cannot be
 * swapped between the check and the read. It is opened non-blocking so that a FIFO given by
 * mistake is reported instead of hanging the agent.
 *
 * @throws HeartbeatSecretError when the file is missing, unreadable, not a regular file,
 *   readable or writable by every user, shorter than {@link MIN_SECRET_BYTES} (after the
 *   trailing whitespace) or larger than {@link MAX_SECRET_BYTES}.
 */
export async function loadHeartbeatSecret(file: string): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') {
      throw new HeartbeatSecretError(file, `heartbeat secret file ${file} does not exist: ${CREATE_HINT(file)}`, err);
    }
    if (code === 'EACCES') {
      throw new HeartbeatSecretError(file,
        `cannot read heartbeat secret file ${file}: permission denied; the agent runs as uid ${process.getuid?.() ?? '?'}: make the file owned by that user (chown) and keep it mode 600`, err);
    }
    throw new HeartbeatSecretError(file, `cannot open heartbeat secret file ${file}: ${(err as Error).message}`, err);
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new HeartbeatSecretError(file, `heartbeat secret file ${file} is not a regular file: ${CREATE_HINT(file)}`);
    }
    const mode = (stats.mode & 0o7777).toString(8).padStart(4, '0');
    if (stats.mode & 0o006) {
      const what = stats.mode & 0o004 ? (stats.mode & 0o002 ? 'readable and writable' : 'readable') : 'writable';
      throw new HeartbeatSecretError(file,
        `heartbeat secret file ${file} has mode ${mode} and is ${what} by every user: anyone on this host could forge heartbeats; run: chmod 600 ${file}`);
    }
    if (stats.size > MAX_SECRET_BYTES) {
      throw new HeartbeatSecretError(file, `heartbeat secret file ${file} is ${stats.size} bytes, more than ${MAX_SECRET_BYTES}: is it the right file? ${CREATE_HINT(file)}`);
    }
    const key = trimTrailingWhitespace(await handle.readFile());
    if (key.length < MIN_SECRET_BYTES) {
      throw new HeartbeatSecretError(file,
        `heartbeat secret file ${file} holds ${key.length} bytes (without trailing whitespace), fewer than ${MIN_SECRET_BYTES}: ${CREATE_HINT(file)}`);
    }
    return key;
  } catch (err) {
    if (err instanceof HeartbeatSecretError) throw err;
    throw new HeartbeatSecretError(file, `cannot read heartbeat secret file ${file}: ${(err as Error).message}`, err);
  } finally {
    await handle.close();
  }
}

function trimTrailingWhitespace(data: Buffer): Buffer {
  let end = data.length;
  // space, \t, \n, \v, \f, \r
  while (end > 0 && (data[end - 1] === 0x20 || (data[end - 1]! >= 0x09 && data[end - 1]! <= 0x0d))) end--;
  return data.subarray(0, end);
}

/**
 * The secrets a node holds: the one it signs with (`heartbeat.secretFile`) and those it also
 * accepts while the cluster secret is rotated (`heartbeat.acceptSecretFiles`,
 * docs/reload.md#rotating-the-cluster-secret). `accepted` never holds `signing` itself, nor
 * the same secret twice (two files with one content count once).
 */
export interface ClusterSecrets {
  signing: Buffer;
  accepted: Buffer[];
}

/** Reads every secret file the settings name, each checked as {@link loadHeartbeatSecret} does. @throws HeartbeatSecretError */
export async function loadClusterSecrets(settings: { secretFile: string; acceptSecretFiles: readonly string[] }): Promise<ClusterSecrets> {
  const signing = await loadHeartbeatSecret(settings.secretFile);
  const accepted: Buffer[] = [];
  for (const file of settings.acceptSecretFiles) {
    const secret = await loadHeartbeatSecret(file);
    if (!secret.equals(signing) && !accepted.some((a) => a.equals(secret))) accepted.push(secret);
  }
  return { signing, accepted };
}

/**
 * A secret's public name: 16 hex digits of HKDF-SHA256 under a label of its own (nothing about
 * the secret can be learnt from it, nor a heartbeat tag or message MAC made with it). Nodes
 * advertise the names of the secrets they accept, so that a rotation step can be checked
 * against every peer, and `haoscar status` shows which secret each node signs with.
 */
export function secretKeyId(secret: Buffer): string {
  return Buffer.from(hkdfSync('sha256', secret, Buffer.alloc(0), 'haoscar secret id v1', 8)).toString('hex');
}
