/**
 * Logging: pino, JSON lines on stderr (journald, docker and log shippers all take them);
 * `HAOSCAR_LOG_PRETTY=1` is not offered on purpose — `jq` reads the lines just as well.
 *
 * Under systemd, each line starts with its syslog priority (`<3>{"level":50,...}`), which
 * journald strips and stores (`SyslogLevelPrefix=`, on by default), so that `journalctl -p err`
 * finds the errors. Only when stderr is the journal stream systemd set up (`JOURNAL_STREAM`
 * names its device and inode): the same line in a terminal, a file or docker stays plain JSON.
 */
import { fstatSync } from 'node:fs';
import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/** pino's level numbers → syslog priorities (RFC 5424: 2 crit, 3 err, 4 warning, 6 info, 7 debug). */
export function syslogPriority(level: number): number {
  if (level >= 60) return 2;
  if (level >= 50) return 3;
  if (level >= 40) return 4;
  if (level >= 30) return 6;
  return 7;
}

/** The line as journald should get it: `<priority>` before pino's JSON (whose first field is the level). */
export function withSyslogPriority(line: string): string {
  const level = /^\{"level":(\d+)/.exec(line);
  return level ? `<${syslogPriority(Number(level[1]))}>${line}` : line;
}

/**
 * Whether file descriptor `fd` is the stream systemd connected to the journal: `JOURNAL_STREAM` is
 * `<device>:<inode>` of it (systemd.exec(5)); a process whose stderr was redirected since then
 * (a shell's `2>file`) inherits the variable but not the stream.
 */
export function isJournalStream(fd: number, journalStream = process.env.JOURNAL_STREAM): boolean {
  if (!journalStream) return false;
  const [device, inode] = journalStream.split(':');
  try {
    const stat = fstatSync(fd, { bigint: true });
    return String(stat.dev) === device && String(stat.ino) === inode;
  } catch {
    return false;
  }
}

export function createLogger(options: { level?: string; name?: string; node?: string } = {}): Logger {
  const stderr = pino.destination({ fd: 2, sync: true });
  const destination: DestinationStream = isJournalStream(2) ? { write: (line: string) => stderr.write(withSyslogPriority(line)) } : stderr;
  return pino(
    {
      level: options.level ?? process.env.HAOSCAR_LOG_LEVEL ?? 'info',
      name: options.name ?? 'haoscar',
      base: options.node ? { node: options.node } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/** A logger that drops everything, for unit tests that do not look at logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
