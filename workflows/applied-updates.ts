/**
 * The controller's record of the updates it applied, by update ID, with their answers, carried
 * over continue-as-new (workflows/controller.ts). Temporal answers an update ID it has seen with
 * the first outcome only within one run of a workflow (update IDs are kept per execution); a
 * failover's retried `claimGroup` or `endOperation` that reaches the controller's next run would
 * otherwise be refused as stale or applied again. Pure: no workflow APIs.
 */

/**
 * How many applied updates are kept (the oldest go first). A repeat comes only from the failover
 * that sent the update, re-running the same activity execution (activities/controller.ts
 * withUpdateId): a retry of the local activity (at most 20 attempts of at most 10 s, 2 s apart:
 * minutes), or its workflow task run again after a failed one (as soon as a worker takes it).
 * Until then that failover holds its group, so the entries that push the first one out are other
 * groups' updates: an operation applies a few (begin, a claim or two per candidate, end), one
 * operation per group at a time, so 500 entries are more than a hundred other operations in that
 * window. 500 entries of about 200 bytes are 100 kB in the continue-as-new input (its limit is 2 MB).
 */
export const MAX_APPLIED_UPDATES = 500;

export interface AppliedUpdate {
  /** The update ID (the failover's: workflow/run/activity/update). */
  id: string;
  /** Which update (beginOperation, claimGroup, ...), for the postmortem. */
  update: string;
  /** Workflow time it was applied. */
  at: number;
  /** Its answer (absent for updates that answer nothing). */
  result?: unknown;
}

export class AppliedUpdates {
  private readonly byId = new Map<string, AppliedUpdate>();

  constructor(entries: readonly AppliedUpdate[] = [], private readonly max = MAX_APPLIED_UPDATES) {
    for (const e of entries) this.add(e);
  }

  /** The update applied under `id`, if it is still kept. */
  get(id: string | undefined): AppliedUpdate | undefined {
    return id === undefined ? undefined : this.byId.get(id);
  }

  /** Keeps `entry` as the newest; the oldest go beyond `max`. */
  add(entry: AppliedUpdate): void {
    this.byId.delete(entry.id);
    this.byId.set(entry.id, entry);
    for (const id of this.byId.keys()) {
      if (this.byId.size <= this.max) break;
      this.byId.delete(id);
    }
  }

  get size(): number {
    return this.byId.size;
  }

  /** Oldest first: what the next run is given (and builds the same record from). */
  entries(): AppliedUpdate[] {
    return [...this.byId.values()];
  }
}
