/**
 * An in-memory service for workflow tests: a driver and a check whose behaviour each test
 * scripts (start fails, crashes after start, never becomes healthy). Temporal, the workers
 * and the activities are real; only the service is modelled, so that the tests can pin the
 * workflow's decisions exactly. The end-to-end tests use real processes.
 */
import type { ServiceDriver, ServiceStatus } from '../../src/drivers/service-driver.js';
import type { Check, CheckResult } from '../../src/checks/check.js';

export interface ScriptedBehaviour {
  /** Thrown by start(); e.g. a missing command. */
  startError?: string;
  /** The check keeps failing after a start (a service that dies during start-up). */
  unhealthyAfterStart?: boolean;
  /** Thrown by stop(), the service still running; e.g. a daemon that ignores its stop signal. */
  stopError?: string;
}

export class ScriptedService {
  running = true;
  starts = 0;
  stops = 0;
  behaviour: ScriptedBehaviour = {};

  crash(): void {
    this.running = false;
  }

  readonly driver: ServiceDriver = {
    kind: 'process',
    start: async () => {
      this.starts++;
      if (this.behaviour.startError) throw new Error(this.behaviour.startError);
      this.running = true;
    },
    stop: async () => {
      this.stops++;
      if (this.behaviour.stopError) throw new Error(this.behaviour.stopError);
      this.running = false;
    },
    status: async (): Promise<ServiceStatus> => ({ running: this.running, pid: this.running ? 4242 : undefined, detail: this.running ? 'running' : 'stopped' }),
  };

  readonly check: Check = async (): Promise<CheckResult> => {
    const ok = this.running && !this.behaviour.unhealthyAfterStart;
    return { ok, detail: ok ? 'scripted: healthy' : 'scripted: not healthy', durationMs: 0 };
  };
}
