/**
 * The services this node may run, each with its driver and its check, built once from the
 * config so that activities and monitors share one driver per service (a `process` driver
 * holds the supervised child: two of them would start two copies).
 */
import type { Check } from '../checks/check.js';
import type { ServiceDriver } from '../drivers/service-driver.js';
import type { GroupSpec, Resource } from '../config/types.js';

export interface ManagedService {
  group: GroupSpec;
  spec: Resource;
  driver: ServiceDriver;
  check: Check;
  /** When this agent last (re)started it (ms since the epoch); see restartManaged. */
  startedAt?: number;
}

/**
 * The one way the agent restarts a service (heal activity and local heal alike): stop if
 * needed, start, and remember when, so that a stale failure report can be recognised.
 */
export async function restartManaged(service: ManagedService): Promise<void> {
  await service.driver.stop();
  await service.driver.start();
  service.startedAt = Date.now();
}

export class ServiceRegistry {
  private readonly byKey = new Map<string, ManagedService>();

  add(service: ManagedService): void {
    this.byKey.set(key(service.group.name, service.spec.name), service);
  }

  get(group: string, resource: string): ManagedService | undefined {
    return this.byKey.get(key(group, resource));
  }

  all(): ManagedService[] {
    return [...this.byKey.values()];
  }
}

const key = (group: string, resource: string) => `${group}/${resource}`;

/** The isRunning probe for waitUntilHealthy: only for services the agent supervises itself. */
export function supervisedIsRunning(service: ManagedService): (() => Promise<boolean>) | undefined {
  if (service.spec.type !== 'service' || service.spec.driver !== 'process') return undefined;
  return async () => (await service.driver.status()).running;
}
