/**
 * A resource driver: how HA-OSCAR starts, stops and asks about one resource on this node.
 * One file per implementation: service managers (`process.ts`, `systemd.ts`, `sysv.ts`), a
 * virtual IP (`vip.ts`), start/stop/monitor scripts (`command.ts`), a DRBD resource
 * (`drbd.ts`), a filesystem mount (`filesystem.ts`), an OCF resource agent (`ocf.ts`) and a
 * replicated PostgreSQL server (`postgresql.ts`).
 *
 * Contract: `start` and `stop` are idempotent (starting a running service and stopping a
 * stopped one succeed), because a retried activity may run them twice.
 */
export interface ServiceStatus {
  running: boolean;
  /** Main process id, where the manager knows it. */
  pid?: number;
  /** Manager's own words (e.g. systemd's ActiveState/SubState), for logs and errors. */
  detail: string;
}

export interface ProcessExit {
  pid: number;
  exitCode: number | null;
  signal: string | null;
}

import type { GuardAction } from '../guard/protocol.js';

export interface ServiceDriver {
  readonly kind: 'process' | 'systemd' | 'sysv' | 'vip' | 'command' | 'drbd' | 'filesystem' | 'ocf' | 'postgresql';
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): Promise<ServiceStatus>;
  /**
   * Drivers that supervise the process themselves report its exit at once (not at the next
   * poll). Returns a function that removes the listener. Absent for managers we only poll.
   */
  onExit?(listener: (exit: ProcessExit) => void): () => void;
  /** Releases what the driver holds (supervised children are stopped). */
  close?(): Promise<void>;
  /**
   * What the lease guard does to release this resource bluntly when the agent cannot (VIP
   * deleted, processes SIGKILLed, a bounded command): see src/guard/protocol.ts.
   */
  guardActions?(): GuardAction[];
}
