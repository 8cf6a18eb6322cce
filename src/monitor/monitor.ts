/**
 * Watches one resource: runs its check on a timer, feeds the results through rise/fall
 * hysteresis, and reports transitions (edges) only — the agent forwards edges to Temporal,
 * never a stream of levels.
 *
 * Runs never overlap: the next run is scheduled (setTimeout) only after the previous one
 * finished, so a slow check stretches the period instead of piling up checks.
 */
import type { Logger } from '../log.js';
import type { Check, CheckResult } from '../checks/check.js';
import { forceFailing, initialHealth, observe, type HealthEdge, type HealthState } from './hysteresis.js';

export interface HealthEdgeEvent {
  to: HealthEdge;
  detail: string;
  /** Epoch milliseconds at which the monitor saw the transition. */
  at: number;
}

export interface ResourceMonitorOptions {
  /** The resource's name, for logs. */
  name: string;
  check: Check;
  timing: { intervalMs: number; rise: number; fall: number };
  logger: Logger;
  /**
   * Called once per transition, in order; the next edge is not delivered before this one's
   * promise settles. Errors (thrown or rejected) are logged and otherwise ignored.
   */
  onEdge: (edge: HealthEdgeEvent) => void | Promise<void>;
}

export interface MonitorStatus extends HealthState {
  /** Detail of the last check result or reported exit. */
  detail: string;
  /** Epoch milliseconds of that result, if any. */
  at?: number;
}

export class ResourceMonitor {
  readonly #opts: ResourceMonitorOptions;
  readonly #logger: Logger;
  #state: HealthState = initialHealth();
  #detail = 'not checked yet';
  #at: number | undefined;
  /** Identifies the current polling loop; a run from an older loop (before stop()) must not reschedule. */
  #loop: object | undefined;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  /** Bumped by reportExit(): a check that started before the exit has a stale result. */
  #epoch = 0;
  /** Edge deliveries, chained so onEdge sees them in order and one at a time. */
  #deliveries: Promise<void> = Promise.resolve();

  constructor(opts: ResourceMonitorOptions) {
    this.#opts = opts;
    this.#logger = opts.logger.child({ resource: opts.name });
  }

  /** Starts polling; the first check runs at once. Does nothing if already started. */
  start(): void {
    if (this.#loop) return;
    const loop = {};
    this.#loop = loop;
    const previous = this.#inFlight;
    if (previous) {
      // Restarted before the run of the previous loop finished (stop() not awaited): start
      // after it, so two checks never overlap.
      void previous.then(() => {
        if (this.#loop === loop) this.#schedule(loop, 0);
      });
    } else {
      this.#schedule(loop, 0);
    }
  }

  /**
   * Stops polling. Resolves once no timer is left, the in-flight check (if any) has
   * finished and edges already emitted have been delivered. A result that arrives after
   * stop() was called is dropped: no edge follows stop().
   */
  async stop(): Promise<void> {
    this.#loop = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
    await this.#deliveries;
  }

  /**
   * The supervised process exited: the resource is failing now, not after `fall` more
   * polls. Emits the edge at once (unless already failing) and keeps polling, so the
   * monitor sees the service come back. Ignored while the monitor is not started.
   */
  reportExit(detail: string): void {
    if (!this.#loop) {
      this.#logger.debug({ detail }, 'process exit reported while the monitor is stopped; ignored');
      return;
    }
    // Race: a check already in flight may have probed the process just before it died and
    // come back ok; the epoch makes #run drop that stale result instead of counting it.
    this.#epoch++;
    this.#apply(forceFailing(this.#state), detail, Date.now());
  }

  /**
   * The timing changed (a reload applied a new interval; rise, fall and the check's timeout are
   * read at each run anyway): a run waiting out the old interval is rescheduled with the new one,
   * counted from now. A run in flight schedules the next with the new interval when it ends.
   */
  retime(): void {
    if (this.#timer === undefined || this.#loop === undefined) return;
    clearTimeout(this.#timer);
    this.#schedule(this.#loop, this.#opts.timing.intervalMs);
  }

  status(): MonitorStatus {
    return { ...this.#state, detail: this.#detail, ...(this.#at === undefined ? {} : { at: this.#at }) };
  }

  #schedule(loop: object, delayMs: number): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const run = this.#run(loop);
      this.#inFlight = run;
      void run.finally(() => {
        if (this.#inFlight === run) this.#inFlight = undefined;
      });
    }, delayMs);
  }

  /** One check, then the next one is scheduled. Never rejects. */
  async #run(loop: object): Promise<void> {
    const epoch = this.#epoch;
    let result: CheckResult;
    try {
      result = await this.#opts.check();
    } catch (err) {
      // Checks from createCheck never throw; a hand-written one might.
      result = { ok: false, detail: `check threw: ${err instanceof Error ? err.message : String(err)}`, durationMs: 0 };
    }
    if (this.#loop !== loop) return; // stopped (or restarted) meanwhile
    if (epoch === this.#epoch) {
      this.#logger.debug({ ok: result.ok, detail: result.detail, durationMs: result.durationMs }, 'check');
      this.#apply(observe(this.#state, result.ok, this.#opts.timing), result.detail, Date.now());
    } else {
      this.#logger.debug({ ok: result.ok, detail: result.detail }, 'check result predates a reported exit; dropped');
    }
    // Wait for our own edge (if any) to be delivered: a slow onEdge slows polling rather
    // than letting undelivered edges queue up.
    await this.#deliveries;
    if (this.#loop === loop) this.#schedule(loop, this.#opts.timing.intervalMs);
  }

  #apply(observation: { state: HealthState; edge?: HealthEdge }, detail: string, at: number): void {
    this.#state = observation.state;
    this.#detail = detail;
    this.#at = at;
    const to = observation.edge;
    if (to === undefined) return;
    const event: HealthEdgeEvent = { to, detail, at };
    this.#logger.info({ to, detail }, `resource ${this.#opts.name} is ${to}`);
    this.#deliveries = this.#deliveries.then(async () => {
      try {
        await this.#opts.onEdge(event);
      } catch (err) {
        this.#logger.error({ err, to, detail }, 'health edge handler failed');
      }
    });
  }
}
