/**
 * Is this node's clock synchronised? Safety does not depend on it (HA-OSCAR never compares two
 * machines' clocks: DESIGN.md, docs/failover.md), but every timestamp does — logs, failure
 * reports, the postmortem timeline across nodes, Temporal's timers, TLS certificates' validity.
 *
 * Asked of whatever keeps the clock, in this order: chrony (`chronyc tracking`), ntpd or ntpsec
 * (`ntpq -p`), systemd (`timedatectl show`, needs systemd as PID 1), and last the kernel itself
 * (adjtimex(2)'s STA_UNSYNC, through `adjtimex --print`), which is what the others set.
 */
import type { Exec } from '../exec.js';

export type TimeSource = 'chrony' | 'ntpd' | 'timesyncd' | 'kernel';

export interface TimeSyncAnswer {
  source: TimeSource;
  synced: boolean;
  detail: string;
}

/** `chronyc tracking`: "Leap status : Normal" when synchronised, "Not synchronised" when not. */
export function parseChronycTracking(text: string): TimeSyncAnswer | undefined {
  const leap = /^Leap status\s*:\s*(.+)$/m.exec(text)?.[1]?.trim();
  if (leap === undefined) return undefined;
  const ref = /^Reference ID\s*:\s*(.+)$/m.exec(text)?.[1]?.trim();
  const synced = leap !== 'Not synchronised';
  return { source: 'chrony', synced, detail: `chrony: leap status ${leap}${ref ? `, reference ${ref}` : ''}` };
}

/** `ntpq -p`: synchronised when a peer line is marked `*` (the system peer). */
export function parseNtpqPeers(text: string): TimeSyncAnswer | undefined {
  const lines = text.split('\n');
  if (!lines.some((l) => /^\s*remote\s+refid/.test(l)) && !/No association/i.test(text)) return undefined;
  const peer = lines.find((l) => l.startsWith('*'));
  return peer
    ? { source: 'ntpd', synced: true, detail: `ntpd: system peer ${peer.slice(1).trim().split(/\s+/)[0]}` }
    : { source: 'ntpd', synced: false, detail: 'ntpd: no system peer selected (no line marked *)' };
}

/** `timedatectl show`: `NTPSynchronized=yes|no` (the kernel's flag), `NTP=yes` when a sync service is enabled. */
export function parseTimedatectlShow(text: string): TimeSyncAnswer | undefined {
  const field = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(text)?.[1]?.trim();
  const synced = field('NTPSynchronized');
  if (synced !== 'yes' && synced !== 'no') return undefined;
  const service = field('NTP');
  return { source: 'timesyncd', synced: synced === 'yes', detail: `systemd: NTPSynchronized=${synced}, NTP service ${service === 'yes' ? 'enabled' : 'not enabled'}` };
}

/** adjtimex(2)'s "clock not synchronised" status bit. */
export const STA_UNSYNC = 0x40;

/** `adjtimex --print`: the kernel's `status` bits. */
export function parseAdjtimexPrint(text: string): TimeSyncAnswer | undefined {
  const status = /^\s*status:\s*(\d+)\s*$/m.exec(text)?.[1];
  if (status === undefined) return undefined;
  const bits = Number(status);
  const synced = (bits & STA_UNSYNC) === 0;
  return { source: 'kernel', synced, detail: `kernel (adjtimex): status ${bits}, STA_UNSYNC ${synced ? 'clear' : 'set'}` };
}

const PROBES: readonly { source: TimeSource; file: string; args: string[]; parse: (text: string) => TimeSyncAnswer | undefined }[] = [
  { source: 'chrony', file: 'chronyc', args: ['tracking'], parse: parseChronycTracking },
  { source: 'ntpd', file: 'ntpq', args: ['-p', '-n'], parse: parseNtpqPeers },
  { source: 'timesyncd', file: 'timedatectl', args: ['show'], parse: parseTimedatectlShow },
  { source: 'kernel', file: 'adjtimex', args: ['--print'], parse: parseAdjtimexPrint },
];

/**
 * The first definite answer, in the order above, or undefined (with what was tried) when none
 * could tell: a program missing, a daemon not running, timedatectl without systemd.
 */
export async function probeTimeSync(exec: Exec, timeoutMs: number): Promise<{ answer?: TimeSyncAnswer; tried: string[] }> {
  const tried: string[] = [];
  for (const probe of PROBES) {
    try {
      const { stdout } = await exec(probe.file, probe.args, { timeoutMs });
      const answer = probe.parse(stdout);
      if (answer) return { answer, tried };
      tried.push(`${probe.file}: no answer it could read`);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      tried.push(`${probe.file}: ${/could not be run|ENOENT/.test(message) ? 'not installed' : message}`);
    }
  }
  return { tried };
}
