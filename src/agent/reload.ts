/**
 * A reload's contract (`haoscar reload`, SIGHUP; docs/reload.md): the agent reads its
 * configuration file again, plans the change (config/reload-plan.ts) and either applies every
 * changed setting live or changes nothing, and records the outcome in its local status
 * (local-status.ts), where `haoscar reload` reads it.
 */
import { z } from 'zod';
import type { Config } from '../config/types.js';

/**
 * - `applied`: every changed setting is in force;
 * - `unchanged`: the file says what the agent already runs;
 * - `refused`: some change needs a restart (or the secret file changed): nothing was changed;
 * - `invalid`: the file cannot be used (the configuration's errors): nothing was changed.
 */
export const RELOAD_RESULTS = ['applied', 'unchanged', 'refused', 'invalid'] as const;
export type ReloadResult = (typeof RELOAD_RESULTS)[number];

export const reloadOutcomeSchema = z.object({
  result: z.enum(RELOAD_RESULTS),
  /** When the reload finished, ms since the epoch (this node's clock). */
  at: z.number(),
  file: z.string(),
  applied: z.array(z.object({ path: z.string(), from: z.unknown(), to: z.unknown() })),
  refused: z.array(z.object({ path: z.string(), why: z.string() })),
  /** With `invalid`: what is wrong with the file. */
  error: z.string().optional(),
});
export type ReloadOutcome = z.infer<typeof reloadOutcomeSchema>;

/** What the local status says of reloads: how many finished (the CLI waits for this to grow), and the last one. */
export const reloadStatusSchema = z.object({
  completed: z.number().int().nonnegative(),
  last: reloadOutcomeSchema.optional(),
});
export type ReloadStatus = z.infer<typeof reloadStatusSchema>;

const CHECK_TIMING = ['intervalMs', 'timeoutMs', 'rise', 'fall'] as const;

/**
 * Copies the live settings of `next` into `running`, in place: every part of the agent holds
 * the same objects (a monitor its resource's `check`, the heal activities the resource), so
 * they read the new values from their next use on. Check timing is assigned field by field
 * (monitors keep a reference to the `check` object); a heal policy is replaced whole (resources
 * share one policy object when they inherit it, so it must not be changed in place).
 *
 * Precondition: `planReload(running, next)` refused nothing, so the groups and resources are the
 * same, by name and order, and nothing else differs. Afterwards `running` equals `next`.
 */
export function applyLiveSettings(running: Config, next: Config): void {
  running.agent.logLevel = next.agent.logLevel;
  // The files only: the agent loads and applies their contents (Agent.planAndApply).
  running.heartbeat.secretFile = next.heartbeat.secretFile;
  running.heartbeat.acceptSecretFiles = [...next.heartbeat.acceptSecretFiles];
  running.agent.localHealAfterMs = next.agent.localHealAfterMs;
  running.groups.forEach((group, g) => {
    group.resources.forEach((resource, r) => {
      const wanted = next.groups[g]!.resources[r]!;
      if (wanted.name !== resource.name) throw new Error(`applyLiveSettings: resource ${group.name}/${resource.name} is not ${wanted.name}: plan the reload first`);
      for (const f of CHECK_TIMING) resource.check[f] = wanted.check[f];
      resource.healing = { ...wanted.healing, backoff: { ...wanted.healing.backoff } };
    });
  });
}
