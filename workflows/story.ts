/**
 * The story an operation's history tells (issue 11, the postmortem): its trigger and outcome as
 * search attributes (`HaTrigger`, `HaOutcome`: "every false alarm this month" is one query), and
 * the one-line summaries the Temporal UI shows on workflows and activities (the SDK's user
 * metadata). Workflow-safe: no I/O.
 *
 * The attributes are upserted only by runs that asked for PATCH_STORY at their start: recorded
 * histories (and workflows running when a worker is upgraded) replay without those commands.
 * Summaries are metadata of commands that are there anyway, and replay unchanged.
 */
import { upsertSearchAttributes } from '@temporalio/workflow';
import { HA_KEYS } from './search-attributes.js';

/** Asked at the start of healService, failover, switchover and resync (before their first await). */
export const PATCH_STORY = 'ha-story-attributes';

/** What started an operation: the values of `HaTrigger`. */
export const TRIGGERS = ['monitor', 'operator', 'node-lost', 'heal-gave-up', 'place', 'recover', 'switchover', 'failback', 'standby', 'ui'] as const;
export type Trigger = (typeof TRIGGERS)[number];

/** What an operation came to: the values of `HaOutcome`. */
export const OUTCOMES = ['healed', 'gave-up', 'moved', 'already-there', 'false-alarm', 'down', 'unchanged', 'synced', 'failed'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** A heal's trigger from its first failure report's `source` (`monitor@<node>`, `cli@<user>`). */
export function healTrigger(source: string | undefined): Trigger {
  if (source === undefined) return 'ui';
  return source.startsWith('monitor') ? 'monitor' : 'operator';
}

/** Sets `HaTrigger` (when `story` is on: the run asked for PATCH_STORY). */
export function tellTrigger(story: boolean, trigger: Trigger): void {
  if (story) upsertSearchAttributes([{ key: HA_KEYS.HaTrigger, value: trigger }]);
}

/** Sets `HaOutcome` (when `story` is on); a later call replaces an earlier one. */
export function tellOutcome(story: boolean, outcome: Outcome): void {
  if (story) upsertSearchAttributes([{ key: HA_KEYS.HaOutcome, value: outcome }]);
}

/** A duration for a summary: 850ms, 4s, 1.5s, 2m. */
export function shortDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10}s`;
  return `${Math.round(ms / 6000) / 10}m`;
}

/** `{ summary }` for an activity call's executeWithOptions: the line the Temporal UI shows for it. */
export function says(summary: string): { summary: string } {
  return { summary };
}
