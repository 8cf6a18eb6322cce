/**
 * systemd's service notification protocol (sd_notify): readiness (`READY=1`), a status line
 * (`STATUS=`), the watchdog (`WATCHDOG=1`) and `STOPPING=1`, for units of `Type=notify`
 * (packaging/systemd/, docs/packaging.md).
 *
 * Node.js cannot send a datagram on a Unix socket (`dgram` is UDP only, `net` streams only), so
 * each message is sent by `systemd-notify`, run through the exec layer. That binary is part of
 * systemd itself, so it is there wherever `NOTIFY_SOCKET` is set by systemd. Two consequences:
 * - the message may reach systemd from a process other than the unit's main one (systemd 252
 *   sends the message itself with its parent's pid as credentials when it runs as root, but its
 *   `BARRIER=1` from a child of its own), so the units say `NotifyAccess=all`;
 * - every message costs a fork: the watchdog is fed every half interval, not more often.
 *
 * Nothing is done when `NOTIFY_SOCKET` is unset (not started by systemd, or a unit of another
 * type): every method returns at once. The variables are removed from this process's environment
 * as soon as they are read, as `sd_notify(unset_environment=1)` does, so that the services, the
 * lease guard and the commands the agent starts do not inherit them: with `NotifyAccess=all`, a
 * service that speaks sd_notify would otherwise report `READY=1` or `STOPPING=1` for the agent.
 */
import { z } from 'zod';
import type { Exec } from '../exec.js';
import type { Logger } from '../log.js';

/** What systemd put in the environment, read once. */
export interface NotifySettings {
  /** `NOTIFY_SOCKET`: a path, or `@name` for an abstract socket. */
  socket: string;
  /** The watchdog's interval (`WATCHDOG_USEC`), when it is meant for this process. */
  watchdogMs?: number;
}

/** A message took longer than this: it is abandoned (killed) so that pings cannot pile up. */
const SEND_TIMEOUT_MS = 5000;
/** The binary that sends the datagrams (on PATH: /usr/bin/systemd-notify, /bin/systemd-notify). */
export const SYSTEMD_NOTIFY = 'systemd-notify';

const POSITIVE = /^[1-9]\d*$/;
const fieldSchemas = {
  NOTIFY_SOCKET: z.string().min(1),
  WATCHDOG_USEC: z.string().regex(POSITIVE, { error: 'expected a positive number of microseconds' }),
  WATCHDOG_PID: z.string().regex(POSITIVE, { error: 'expected a process id' }),
} as const;

/**
 * The notification settings in `env` for the process `pid`, as sd_notify and sd_watchdog_enabled
 * read them: no socket, nothing to do; a watchdog only when `WATCHDOG_USEC` is set and
 * `WATCHDOG_PID`, if set, names this process (the variables leaked to a child mean nothing to it).
 * A malformed variable is ignored (and said so), the others still count.
 * @returns the settings (undefined: not under systemd's notification) and what was ignored, and why.
 */
export function readNotifySettings(env: Record<string, string | undefined>, pid: number): { settings: NotifySettings | undefined; ignored: string[] } {
  const ignored: string[] = [];
  const read = (name: keyof typeof fieldSchemas): string | undefined => {
    const value = env[name];
    if (value === undefined || value === '') return undefined;
    const parsed = fieldSchemas[name].safeParse(value);
    if (parsed.success) return parsed.data;
    ignored.push(`${name}=${JSON.stringify(value)}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
    return undefined;
  };
  const socket = read('NOTIFY_SOCKET');
  const usec = read('WATCHDOG_USEC');
  const watchdogPid = read('WATCHDOG_PID');
  if (!socket) return { settings: undefined, ignored };
  if (!usec) return { settings: { socket }, ignored };
  if (env.WATCHDOG_PID && !watchdogPid) return { settings: { socket }, ignored };
  if (watchdogPid && Number(watchdogPid) !== pid) {
    ignored.push(`WATCHDOG_PID=${watchdogPid}: the watchdog is meant for another process (this one is ${pid})`);
    return { settings: { socket }, ignored };
  }
  return { settings: { socket, watchdogMs: Math.max(1, Math.floor(Number(usec) / 1000)) }, ignored };
}

/** The variables systemd sets for the notification protocol, removed from a child's environment. */
export const NOTIFY_VARIABLES = ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID'] as const;

export interface SystemdNotifierOptions {
  exec: Exec;
  logger: Logger;
  /** Default: process.env, from which the variables are then removed. */
  env?: Record<string, string | undefined>;
  pid?: number;
  /** The systemd-notify binary (tests). */
  program?: string;
}

/**
 * Tells systemd how the service is doing. Every method is a no-op without `NOTIFY_SOCKET`, and
 * never throws: a message that cannot be sent is logged (systemd then kills a unit that never
 * said READY=1, at `TimeoutStartSec`, or that stopped feeding the watchdog: the log says why).
 */
export class SystemdNotifier {
  private readonly settings: NotifySettings | undefined;
  private readonly log: Logger;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private pinging = false;
  private readySent = false;
  private lastStatus: string | undefined;
  /** Messages are sent one at a time, in order (READY=1 before the STATUS= that follows it). */
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly opts: SystemdNotifierOptions) {
    this.log = opts.logger.child({ systemd: true });
    const env = opts.env ?? process.env;
    const { settings, ignored } = readNotifySettings(env, opts.pid ?? process.pid);
    for (const why of ignored) this.log.warn({ why }, 'ignoring a systemd notification variable');
    this.settings = settings;
    if (!opts.env) for (const name of NOTIFY_VARIABLES) delete process.env[name];
    if (settings) this.log.info({ socket: settings.socket, watchdogMs: settings.watchdogMs }, 'started by systemd: notifying it of readiness and status');
  }

  /** Whether systemd listens (NOTIFY_SOCKET was set). */
  get enabled(): boolean {
    return this.settings !== undefined;
  }

  /** The watchdog's interval when systemd asked for one (WatchdogSec=), for this process. */
  get watchdogMs(): number | undefined {
    return this.settings?.watchdogMs;
  }

  /** READY=1 (once; later calls only update the status), with a status line. */
  ready(status: string): Promise<void> {
    if (!this.settings) return Promise.resolve();
    const fields = this.readySent ? [] : ['READY=1'];
    this.readySent = true;
    return this.send([...fields, ...this.statusField(status)]);
  }

  /** STATUS=…, sent only when it changed. */
  status(status: string): Promise<void> {
    if (!this.settings) return Promise.resolve();
    const fields = this.statusField(status);
    return fields.length === 0 ? Promise.resolve() : this.send(fields);
  }

  /**
   * Resolves once every notification asked so far has been sent (or given up). A command awaits
   * it before it returns: main() then exits the process, and a STOPPING=1 still queued behind a
   * notification being sent would be lost.
   */
  flush(): Promise<void> {
    return this.queue;
  }

  /** STOPPING=1: the service is shutting down (systemctl shows `deactivating`). */
  stopping(status: string): Promise<void> {
    if (!this.settings) return Promise.resolve();
    this.stopWatchdog();
    return this.send(['STOPPING=1', ...this.statusField(status)]);
  }

  /**
   * Feeds systemd's watchdog from this process's event loop, every half interval (as
   * sd_watchdog_enabled advises): a blocked or frozen event loop stops the pings, and systemd
   * kills the service `WatchdogSec` after the last one (then restarts it, `Restart=`). A ping
   * still in flight (systemd-notify slow to start on a loaded machine) is not doubled.
   */
  startWatchdog(): void {
    const every = this.settings?.watchdogMs;
    if (every === undefined || this.watchdogTimer) return;
    const ping = () => {
      if (this.pinging) return;
      this.pinging = true;
      void this.send(['WATCHDOG=1']).finally(() => {
        this.pinging = false;
      });
    };
    ping();
    this.watchdogTimer = setInterval(ping, Math.max(1, Math.floor(every / 2)));
    this.watchdogTimer.unref();
  }

  stopWatchdog(): void {
    clearInterval(this.watchdogTimer);
    this.watchdogTimer = undefined;
  }

  private statusField(status: string): string[] {
    // One line: systemd shows the first line only, and a newline would start a new field.
    const line = status.replace(/\s*\n\s*/g, ' ').trim();
    if (line === this.lastStatus) return [];
    this.lastStatus = line;
    return [`STATUS=${line}`];
  }

  private send(fields: string[]): Promise<void> {
    const settings = this.settings!;
    const sent = this.queue.then(async () => {
      try {
        // Fields as arguments (an argv array, never a shell): systemd-notify joins them with newlines.
        await this.opts.exec(this.opts.program ?? SYSTEMD_NOTIFY, fields, { env: { NOTIFY_SOCKET: settings.socket }, timeoutMs: SEND_TIMEOUT_MS });
      } catch (err) {
        this.log.warn({ fields: fields.map((f) => f.split('=')[0]), err: err instanceof Error ? err.message : String(err) }, 'could not notify systemd');
      }
    });
    this.queue = sent;
    return sent;
  }
}
