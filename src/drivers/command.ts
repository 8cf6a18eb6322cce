/**
 * The `command` driver: a resource managed by three scripts of its own, given as argv (no
 * shell): `start`, `stop` and `monitor`, each bounded by the resource's `timeoutMs`.
 *
 * Contract, as with OCF resource agents: start and stop are idempotent (starting a running
 * resource and stopping a stopped one exit 0), because a retried activity may run them twice;
 * HA-OSCAR cannot check that for the scripts. monitor exits 0 while the resource runs and
 * anything else when it does not (OCF's 7, "not running", is the usual choice).
 *
 * A script that leaves a daemon behind must detach the daemon's standard output and error
 * (`daemon >/dev/null 2>&1 &`): the script counts as finished only when every process holding
 * them has closed them.
 */
import { ExecError, lastLine, type Exec } from '../exec.js';
import type { Logger } from '../log.js';
import type { CommandResource } from '../config/types.js';
import type { ServiceDriver, ServiceStatus } from './service-driver.js';
import type { GuardAction } from '../guard/protocol.js';

export interface CommandDriverDeps {
  exec: Exec;
  logger: Logger;
}

type Action = 'start' | 'stop' | 'monitor';


export class CommandDriver implements ServiceDriver {
  readonly kind = 'command' as const;
  readonly #resource: CommandResource;
  readonly #exec: Exec;
  readonly #logger: Logger;

  constructor(resource: CommandResource, deps: CommandDriverDeps) {
    this.#resource = resource;
    this.#exec = deps.exec;
    // The caller's logger already names the group and resource.
    this.#logger = deps.logger.child({ driver: 'command' });
  }

  /**
   * Runs the start command; it must exit 0, also when the resource already runs.
   * @throws Error quoting the command and its output when it exits non-zero, cannot be run or
   *   outlives `timeoutMs`.
   */
  async start(): Promise<void> {
    this.#logger.info({ command: this.#resource.start }, 'starting resource');
    await this.#runOrThrow('start', this.#resource.start);
  }

  /**
   * Runs the stop command; it must exit 0, also when the resource is already stopped.
   * @throws Error as {@link start} does.
   */
  async stop(): Promise<void> {
    this.#logger.info({ command: this.#resource.stop }, 'stopping resource');
    await this.#runOrThrow('stop', this.#resource.stop);
  }

  /**
   * Runs the monitor command: exit 0 is running; another exit code, a kill by a signal or a
   * timeout is not running, with the reason (and the last line it printed) in `detail`.
   * @throws Error when the monitor command cannot be run at all (missing, not executable):
   *   that says nothing about the resource and needs a fix, not a restart.
   */
  /** Its stop command, bounded, once the group's processes are gone (a command may do anything). */
  guardActions(): GuardAction[] {
    return [{ kind: 'run', timeoutMs: this.#resource.timeoutMs, argv: [...this.#resource.stop] }];
  }

  async status(): Promise<ServiceStatus> {
    try {
      const { stdout } = await this.#run(this.#resource.monitor);
      return { running: true, detail: lastLine(stdout) || 'monitor exited 0' };
    } catch (error) {
      if (!(error instanceof ExecError)) throw error;
      const said = lastLine(error.stderr);
      if (error.timedOut) return { running: false, detail: `monitor timed out after ${this.#resource.timeoutMs} ms` };
      if (error.signal) return { running: false, detail: `monitor was killed by ${error.signal}` };
      if (error.exitCode !== undefined) return { running: false, detail: `monitor exited ${error.exitCode}${said ? `: ${said}` : ''}` };
      throw new Error(`monitor command ${JSON.stringify(this.#resource.monitor.join(' '))} could not be run${said ? `: ${said}` : ''}`, { cause: error });
    }
  }

  #run(argv: readonly string[]) {
    const [file, ...args] = argv;
    if (!file) throw new Error('empty command');
    return this.#exec(file, args, { timeoutMs: this.#resource.timeoutMs });
  }

  async #runOrThrow(action: Exclude<Action, 'monitor'>, argv: readonly string[]): Promise<void> {
    try {
      const { stdout, stderr } = await this.#run(argv);
      const said = lastLine(stdout) || lastLine(stderr);
      if (said) this.#logger.debug({ said }, `${action} done`);
    } catch (error) {
      const why = error instanceof ExecError && error.timedOut ? ` (limit ${this.#resource.timeoutMs} ms)` : '';
      throw new Error(`${action} of command resource ${this.#resource.name} failed${why}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
    }
  }
}
