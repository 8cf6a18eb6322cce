/**
 * systemd's side of the notification protocol, for tests (PID 1 is not systemd here): a
 * datagram socket of our own that records what arrives (test/support/notify-receiver.py; Node.js
 * cannot receive on a Unix datagram socket). Give its `socket` to a process as NOTIFY_SOCKET.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { waitFor } from './wait.js';

const RECEIVER = fileURLToPath(new URL('./notify-receiver.py', import.meta.url));
/** Debian's python3 (.ci/run installs it), not a slower shim that may come first on PATH. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

export interface NotifyMessage {
  /** When it arrived: performance.now() of this process. */
  at: number;
  /** The sender's pid as the kernel passed it (SCM_CREDENTIALS). */
  pid: number | null;
  fields: Record<string, string>;
}

export class NotifyReceiver {
  readonly messages: NotifyMessage[] = [];

  private constructor(readonly socket: string, private readonly dir: string, private readonly child: ResultPromise) {}

  /** @throws when python3 is missing or the socket cannot be bound (its error in the message). */
  static async start(): Promise<NotifyReceiver> {
    const dir = await mkdtemp(join(tmpdir(), 'haoscar-notify-'));
    const socket = join(dir, 'notify.sock');
    const child = execa(PYTHON, [RECEIVER, socket], { stdin: 'ignore', stdout: 'pipe', stderr: 'pipe', reject: false, buffer: false });
    const receiver = new NotifyReceiver(socket, dir, child);
    let bound = false;
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const m = JSON.parse(line) as { bound?: string; pid: number | null; fields: Record<string, string> };
      if (m.bound) bound = true;
      else receiver.messages.push({ at: performance.now(), pid: m.pid, fields: m.fields });
    });
    const exited = child.then((r) => {
      throw new Error(`the notification receiver exited (${r.exitCode ?? r.signal}): ${stderr}`);
    });
    exited.catch(() => undefined);
    await Promise.race([waitFor('the notification receiver is bound', () => bound, 10_000, 10), exited]);
    return receiver;
  }

  /** The messages that carry `field` (e.g. 'READY', 'WATCHDOG', 'STATUS'). */
  with(field: string): NotifyMessage[] {
    return this.messages.filter((m) => field in m.fields);
  }

  /** Waits for a message with `field` (matching `value`, when given) after index `from`. */
  waitFor(field: string, value?: RegExp, opts: { from?: number; timeoutMs?: number } = {}): Promise<NotifyMessage> {
    return waitFor(
      `a notification ${field}${value ? ` matching ${value}` : ''}; got: ${JSON.stringify(this.messages.slice(opts.from ?? 0).map((m) => m.fields))}`.slice(0, 2000),
      () => this.messages.slice(opts.from ?? 0).find((m) => field in m.fields && (!value || value.test(m.fields[field]!))),
      opts.timeoutMs ?? 30_000,
      20,
    );
  }

  async close(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.child.catch(() => undefined);
    await rm(this.dir, { recursive: true, force: true });
  }
}
