/**
 * The `systemd` driver: systemd runs the service, HA-OSCAR tells it when. Every call goes
 * through the injected {@link Exec}, so tests can answer for systemctl.
 */
import { ExecError, type Exec } from '../exec.js';
import type { Logger } from '../log.js';
import type { ServiceDriver, ServiceStatus } from './service-driver.js';
import type { GuardAction } from '../guard/protocol.js';

export interface SystemdDriverDeps {
  exec: Exec;
  logger: Logger;
  /** Per systemctl call; a unit whose start job hangs fails instead of blocking the agent. */
  timeoutMs?: number;
}

/** The properties `status()` asks for; `parseSystemctlShow` reads any `Key=value` lines. */
export const SHOW_PROPERTIES = ['ActiveState', 'SubState', 'MainPID', 'LoadState'] as const;

/**
 * Parses `systemctl show` output (`Key=value` lines; values may contain `=`; blank lines and
 * lines without `=` are skipped). Pure, so it is tested on captured output.
 */
export function parseSystemctlShow(text: string): Record<string, string> {
  const properties: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at <= 0) continue;
    properties[line.slice(0, at).trim()] = line.slice(at + 1).trim();
  }
  return properties;
}

/** Thrown when the unit does not exist on this node: retrying will not help. */
export class UnitNotFoundError extends Error {
  constructor(readonly unit: string, cause?: unknown) {
    super(`unit ${unit} not found on this node: install it or fix groups[..] unit`, { cause });
    this.name = 'UnitNotFoundError';
  }
}

export class SystemdDriver implements ServiceDriver {
  readonly kind = 'systemd' as const;
  readonly #unit: string;
  readonly #exec: Exec;
  readonly #logger: Logger;
  readonly #timeoutMs: number;

  constructor(unit: string, deps: SystemdDriverDeps) {
    this.#unit = unit;
    this.#exec = deps.exec;
    this.#logger = deps.logger.child({ unit, driver: 'systemd' });
    this.#timeoutMs = deps.timeoutMs ?? 120_000;
  }

  /**
   * `systemctl start`; starting an active unit succeeds (systemd's own idempotence).
   * @throws UnitNotFoundError when the unit does not exist; Error naming the unit and
   *   systemctl's stderr when the start job fails.
   */
  async start(): Promise<void> {
    // HA-OSCAR limits restarts itself; systemd's StartLimitBurst must not veto a heal, and a
    // unit in the failed state would otherwise stay there after too many crashes.
    try {
      await this.#systemctl('reset-failed', '--', this.#unit);
    } catch (error) {
      // Fails for units that are not loaded or not failed on some versions: harmless here.
      this.#logger.debug({ err: error }, 'reset-failed failed (ignored)');
    }
    this.#logger.info('starting unit');
    await this.#run('start');
  }

  /**
   * `systemctl stop`; stopping an inactive unit succeeds.
   * @throws Error naming the unit and systemctl's stderr when the stop job fails.
   */
  async stop(): Promise<void> {
    this.#logger.info('stopping unit');
    try {
      await this.#run('stop');
    } catch (error) {
      // A unit that is not installed is certainly not running.
      if (error instanceof UnitNotFoundError) return;
      throw error;
    }
  }

  /**
   * @throws UnitNotFoundError when LoadState is not-found; Error when systemctl fails.
   */
  guardActions(): GuardAction[] {
    return [{ kind: 'unit', name: this.#unit }];
  }

  async status(): Promise<ServiceStatus> {
    let stdout: string;
    try {
      ({ stdout } = await this.#systemctl('show', `--property=${SHOW_PROPERTIES.join(',')}`, '--', this.#unit));
    } catch (error) {
      throw this.#describe('show', error);
    }
    const props = parseSystemctlShow(stdout);
    const activeState = props.ActiveState ?? 'unknown';
    const subState = props.SubState ?? 'unknown';
    const loadState = props.LoadState ?? 'unknown';
    if (loadState === 'not-found') throw new UnitNotFoundError(this.#unit);
    const pid = Number(props.MainPID);
    return {
      running: activeState === 'active' || activeState === 'reloading',
      ...(Number.isInteger(pid) && pid > 0 ? { pid } : {}),
      detail: `${activeState}/${subState}${loadState === 'loaded' ? '' : ` (${loadState})`}`,
    };
  }

  async #run(verb: 'start' | 'stop'): Promise<void> {
    try {
      await this.#systemctl(verb, '--', this.#unit);
    } catch (error) {
      throw this.#describe(verb, error);
    }
  }

  /** Every call ends with `-- UNIT`: a unit name is never read as an option. */
  #systemctl(...args: string[]) {
    return this.#exec('systemctl', args, { timeoutMs: this.#timeoutMs });
  }

  #describe(verb: string, error: unknown): Error {
    if (error instanceof ExecError) {
      // An unknown unit: start says "Unit x.service not found.", stop "Unit x.service not
      // loaded." (both exit 5).
      if (/Unit \S+ not (found|loaded)/.test(error.stderr)) return new UnitNotFoundError(this.#unit, error);
      const how = error.timedOut ? `timed out after ${this.#timeoutMs} ms` : `failed (exit ${error.exitCode ?? 'none'})`;
      const stderr = error.stderr.trim();
      return new Error(
        `systemctl ${verb} ${this.#unit} ${how}${stderr ? `: ${stderr}` : ''}; see journalctl -u ${this.#unit}`,
        { cause: error },
      );
    }
    return new Error(`systemctl ${verb} ${this.#unit} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
