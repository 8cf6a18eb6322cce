/**
 * The Temporal SDK's process-wide runtime, with its logs sent to our logger (one log stream).
 */
import { DefaultLogger, Runtime, makeTelemetryFilterString, type LogLevel } from '@temporalio/worker';
import type { Logger } from '../log.js';

let installed = false;

/**
 * Installs the runtime once per process, before any connection is made (the SDK fixes it then).
 * `opts.metricsAddress`: the SDK's own Prometheus exporter binds there (127.0.0.1:PORT; our
 * endpoint reads it, src/metrics/server.ts).
 */
export function installTemporalRuntime(logger: Logger, level: LogLevel = 'WARN', opts: { metricsAddress?: string } = {}): void {
  if (installed) return;
  installed = true;
  const sdk = logger.child({ component: 'temporal' });
  Runtime.install({
    logger: new DefaultLogger(level, ({ level: l, message, meta }) => {
      const method = l === 'ERROR' ? 'error' : l === 'WARN' ? 'warn' : l === 'INFO' ? 'info' : 'debug';
      sdk[method](meta ?? {}, message);
    }),
    // Forward the SDK core's own (Rust) logs too, instead of letting it print its own format.
    telemetryOptions: {
      logging: { filter: makeTelemetryFilterString({ core: level }), forward: {} },
      // Seconds, as Prometheus's conventions and our own histograms have them.
      ...(opts.metricsAddress ? { metrics: { prometheus: { bindAddress: opts.metricsAddress, useSecondsForDurations: true } } } : {}),
    },
  });
}
