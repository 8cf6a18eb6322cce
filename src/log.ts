/**
 * Logging: pino, JSON lines on stderr (journald, docker and log shippers all take them);
 * `HAOSCAR_LOG_PRETTY=1` is not offered on purpose — `jq` reads the lines just as well.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(options: { level?: string; name?: string; node?: string } = {}): Logger {
  return pino(
    {
      level: options.level ?? process.env.HAOSCAR_LOG_LEVEL ?? 'info',
      name: options.name ?? 'haoscar',
      base: options.node ? { node: options.node } : {},
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ fd: 2, sync: true }),
  );
}

/** A logger that drops everything, for unit tests that do not look at logs. */
export const silentLogger: Logger = pino({ level: 'silent' });
