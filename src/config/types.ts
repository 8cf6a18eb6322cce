/**
 * The normalised configuration: every default resolved, every duration in milliseconds.
 * These are plain data types with no imports, so workflow code may import them as types.
 */

export interface CheckTiming {
  intervalMs: number;
  timeoutMs: number;
  rise: number;
  fall: number;
}

export type CheckSpec = CheckTiming &
  (
    | { type: 'process'; name?: string; pidFile?: string }
    | { type: 'tcp'; host: string; port: number }
    | { type: 'http'; url: string; expectStatus?: number[] }
    | { type: 'command'; command: string[] }
  );

export interface HealingPolicy {
  maxRestarts: number;
  windowMs: number;
  backoff: { initialMs: number; maxMs: number; multiplier: number };
  startTimeoutMs: number;
}

interface ServiceBase {
  type: 'service';
  name: string;
  check: CheckSpec;
  healing: HealingPolicy;
}
export type ServiceResource = ServiceBase &
  (
    | {
        driver: 'process';
        command: string[];
        cwd?: string;
        env?: Record<string, string>;
        stopSignal: 'SIGTERM' | 'SIGINT' | 'SIGQUIT' | 'SIGHUP' | 'SIGUSR1' | 'SIGUSR2';
        stopTimeoutMs: number;
        logFile?: string;
      }
    | { driver: 'systemd'; unit: string }
    | { driver: 'sysv'; script: string }
  );

export type Resource = ServiceResource;

export interface NodeSpec {
  name: string;
  addresses: string[];
  priority: number;
}

export interface GroupSpec {
  name: string;
  /** Nodes that may run the group, most preferred first. */
  nodes: string[];
  resources: Resource[];
}

export interface TemporalSettings {
  address: string;
  namespace: string;
  tls: boolean | { serverName?: string; caFile?: string; certFile?: string; keyFile?: string };
  apiKeyFile?: string;
  server: { dataDir: string; ip: string; port: number; uiPort: number };
}

export interface Config {
  cluster: string;
  temporal: TemporalSettings;
  agent: {
    stateDir: string;
    logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error';
    maxCachedWorkflows: number;
    /** How long a failure report may wait for Temporal before the agent heals locally. */
    localHealAfterMs: number;
  };
  nodes: NodeSpec[];
  groups: GroupSpec[];
}
