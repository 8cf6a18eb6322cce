/**
 * Picks the driver for a service resource. One place knows the mapping, so the agent and the
 * activities never switch on `driver` themselves.
 */
import { serviceCgroupPath } from '../cgroup.js';
import type { Resource, ServiceResource } from '../config/types.js';
import { CommandDriver } from './command.js';
import { DrbdDriver } from './drbd.js';
import { FilesystemDriver } from './filesystem.js';
import { OcfDriver } from './ocf.js';
import { PostgresqlDriver } from './postgresql.js';
import { VipDriver } from './vip.js';
import type { Exec } from '../exec.js';
import type { Logger } from '../log.js';
import { ProcessDriver } from './process.js';
import type { ServiceDriver } from './service-driver.js';
import { SystemdDriver } from './systemd.js';
import { SysvDriver } from './sysv.js';

export type { ProcessExit, ServiceDriver, ServiceStatus } from './service-driver.js';
export { ProcessDriver } from './process.js';
export type { GuardTargets, ProcessDriverDeps } from './process.js';
export {
  CgroupError,
  cgroupLivePids,
  cgroupPids,
  cgroupsUsable,
  checkCgroupRoot,
  ensureCgroup,
  findCgroup2Mount,
  killCgroup,
  removeCgroup,
  serviceCgroupPath,
} from '../cgroup.js';
export { SystemdDriver, UnitNotFoundError, parseSystemctlShow } from './systemd.js';
export { SysvDriver, lsbStatus } from './sysv.js';
export { VipDriver } from './vip.js';
export { CommandDriver } from './command.js';
export { DrbdDriver, DrbdPeerPrimaryError, DrbdResourceNotConfiguredError, DrbdSplitBrainError } from './drbd.js';
export type { DrbdSplitBrainReport, DrbdSyncProgress, WaitUpToDateOptions } from './drbd.js';
export { FilesystemBusyError, FilesystemDriver, MountpointTakenError } from './filesystem.js';
export { OcfDriver } from './ocf.js';
export { PostgresqlDriver, PostgresqlRejoinBusyError } from './postgresql.js';

export interface DriverDeps {
  exec: Exec;
  logger: Logger;
  /** Where `process` services write `<group>/<name>.log` unless they name a `logFile`. */
  logDir: string;
  /** This node's name (drivers name it in what they tell an administrator to run where). */
  node?: string;
  /** Where `sysv` scripts live; `/etc/init.d` by default. */
  initDir?: string;
  /**
   * The cgroup v2 mount (findCgroup2Mount, once cgroupsUsable says yes): `process` services
   * then run in `<cgroupRoot>/haoscar/<cluster>/<node>/<group>/<resource>`, which needs
   * `cluster`, `node` and `group` too. Without it they are held by their process group only.
   */
  cgroupRoot?: string;
  /** The cluster's name (for the cgroup path). */
  cluster?: string;
  /** The name of the resource's group (for the cgroup path). */
  group?: string;
}

/**
 * The driver of any resource of a group.
 * @throws Error as createServiceDriver.
 */
export function createResourceDriver(resource: Resource, deps: DriverDeps): ServiceDriver {
  switch (resource.type) {
    case 'service':
      return createServiceDriver(resource, deps);
    case 'vip':
      return new VipDriver(resource, { exec: deps.exec, logger: deps.logger });
    case 'command':
      return new CommandDriver(resource, { exec: deps.exec, logger: deps.logger });
    case 'drbd':
      return new DrbdDriver(resource, { exec: deps.exec, logger: deps.logger, ...(deps.node ? { node: deps.node } : {}) });
    case 'filesystem':
      return new FilesystemDriver(resource, { exec: deps.exec, logger: deps.logger });
    case 'ocf':
      return new OcfDriver(resource, { exec: deps.exec, logger: deps.logger });
    case 'postgresql': {
      // Its own cgroup, as a process service's: the server must outlive a restart of the agent.
      const cgroup = deps.cgroupRoot === undefined ? undefined : processCgroup(resource.name, deps.cgroupRoot, deps);
      return new PostgresqlDriver(resource, { exec: deps.exec, logger: deps.logger, ...(deps.node ? { node: deps.node } : {}), ...(cgroup ? { cgroup } : {}) });
    }
  }
}

/**
 * @throws Error when a `process` resource has an empty command, or `cgroupRoot` is given
 *   without `cluster`, `node` or `group`; CgroupError when a name cannot be a cgroup's.
 */
export function createServiceDriver(resource: ServiceResource, deps: DriverDeps): ServiceDriver {
  // The caller's logger already names the group and resource.
  const { logger } = deps;
  switch (resource.driver) {
    case 'process': {
      const cgroup = deps.cgroupRoot === undefined ? undefined : processCgroup(resource.name, deps.cgroupRoot, deps);
      return new ProcessDriver(resource, { logger, logDir: deps.logDir, ...(deps.group ? { group: deps.group } : {}), ...(cgroup ? { cgroup } : {}) });
    }
    case 'systemd':
      return new SystemdDriver(resource.unit, { exec: deps.exec, logger });
    case 'sysv':
      return new SysvDriver(resource.script, { exec: deps.exec, logger, ...(deps.initDir ? { initDir: deps.initDir } : {}) });
  }
}

function processCgroup(resource: string, cgroupRoot: string, deps: DriverDeps): string {
  const { cluster, node, group } = deps;
  if (cluster === undefined || node === undefined || group === undefined) {
    const missing = Object.entries({ cluster, node, group }).filter(([, value]) => value === undefined).map(([key]) => key);
    throw new Error(`service ${resource}: a cgroupRoot needs the ${missing.join(', ')} name too, to place the service's cgroup`);
  }
  return serviceCgroupPath(cgroupRoot, cluster, node, group, resource);
}
