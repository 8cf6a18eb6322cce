/**
 * Picks the driver for a service resource. One place knows the mapping, so the agent and the
 * activities never switch on `driver` themselves.
 */
import type { ServiceResource } from '../config/types.js';
import type { Exec } from '../exec.js';
import type { Logger } from '../log.js';
import { ProcessDriver } from './process.js';
import type { ServiceDriver } from './service-driver.js';
import { SystemdDriver } from './systemd.js';
import { SysvDriver } from './sysv.js';

export type { ProcessExit, ServiceDriver, ServiceStatus } from './service-driver.js';
export { ProcessDriver } from './process.js';
export { SystemdDriver, UnitNotFoundError, parseSystemctlShow } from './systemd.js';
export { SysvDriver, lsbStatus } from './sysv.js';

export interface DriverDeps {
  exec: Exec;
  logger: Logger;
  /** Where `process` services write `<name>.log` unless they name a `logFile`. */
  logDir: string;
  /** Where `sysv` scripts live; `/etc/init.d` by default. */
  initDir?: string;
}

/** @throws Error when a `process` resource has an empty command. */
export function createServiceDriver(resource: ServiceResource, deps: DriverDeps): ServiceDriver {
  // The caller's logger already names the group and resource.
  const { logger } = deps;
  switch (resource.driver) {
    case 'process':
      return new ProcessDriver(resource, { logger, logDir: deps.logDir });
    case 'systemd':
      return new SystemdDriver(resource.unit, { exec: deps.exec, logger });
    case 'sysv':
      return new SysvDriver(resource.script, { exec: deps.exec, logger, ...(deps.initDir ? { initDir: deps.initDir } : {}) });
  }
}
