/**
 * Rise/fall hysteresis: turns a stream of check results (levels) into health transitions
 * (edges). Pure — no clock, no I/O — so its behaviour is pinned by table tests.
 *
 * The status becomes `healthy` after `rise` consecutive passes and `failing` after `fall`
 * consecutive failures; in between it keeps its last value (`unknown` until the first
 * verdict). An edge is reported only when the status changes, never for a repeated level.
 */

export type HealthStatus = 'unknown' | 'healthy' | 'failing';

export interface HealthState {
  status: HealthStatus;
  /** Consecutive passes, reset by any failure. */
  passes: number;
  /** Consecutive failures, reset by any pass. */
  failures: number;
}

export interface Thresholds {
  rise: number;
  fall: number;
}

export type HealthEdge = 'healthy' | 'failing';

export interface Observation {
  state: HealthState;
  /** Present only when the status changed to this value. */
  edge?: HealthEdge;
}

export function initialHealth(): HealthState {
  return { status: 'unknown', passes: 0, failures: 0 };
}

/**
 * Applies one check result. Thresholds below 1 act as 1 (the config schema already rejects
 * them; a zero here must not mean "healthy without a single pass").
 */
export function observe(state: HealthState, ok: boolean, thresholds: Thresholds): Observation {
  const passes = ok ? state.passes + 1 : 0;
  const failures = ok ? 0 : state.failures + 1;
  let status = state.status;
  if (ok && passes >= Math.max(1, thresholds.rise)) status = 'healthy';
  if (!ok && failures >= Math.max(1, thresholds.fall)) status = 'failing';
  const next: HealthState = { status, passes, failures };
  return status !== state.status && status !== 'unknown' ? { state: next, edge: status } : { state: next };
}

/**
 * A definitive failure (the supervised process exited): failing at once, whatever `fall`
 * says. Counts as one more consecutive failure, so a pass after it starts the `rise` count
 * from zero. The edge is reported only if the status was not already failing.
 */
export function forceFailing(state: HealthState): Observation {
  const next: HealthState = { status: 'failing', passes: 0, failures: state.failures + 1 };
  return state.status === 'failing' ? { state: next } : { state: next, edge: 'failing' };
}
