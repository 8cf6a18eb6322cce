/**
 * Which candidates an unplanned failover may start the group on, given how far each one's copy
 * of the group's file sets is behind (issue 9 item 8). Pure: the failover asks the candidates
 * (the `syncState` activity on each node's queue) and hands the answers here.
 *
 * A candidate's lag for a set is counted in the owner's announced change generations, by the
 * candidate, with the owner's numbers only (FileSetSyncRecord): last announced − last pulled
 * completely. No clock takes part. Against which owner: the group's owner when the failover began
 * (`from`, at `fromEpoch`); with none (the group ran nowhere), the newest series any candidate
 * followed, and when no candidate followed any (a new cluster's first placement), nothing is
 * known to be newer: 0. A candidate that followed an older series, completed no pull in it, has no record, or
 * did not answer, is behind by an UNKNOWN amount, which no limit allows. A candidate that was the
 * source of the newest series itself is behind by 0. The group's lag is its worst set's.
 *
 * Candidates within `maxSyncLag` keep their order (the group's preference). When none is, the
 * operator's `acceptDataLoss` lets the best ones be tried anyway: the least behind first,
 * unknown last, each group in preference order.
 */
import type { CandidateSyncState, FileSetSyncRecord } from './shared.js';

export interface SyncLagFacts {
  /** Candidates in preference order. */
  candidates: readonly string[];
  /** The group's file sets (names). */
  sets: readonly string[];
  /** The group's owner when the failover began (null: none), and its epoch then. */
  from: string | null;
  fromEpoch: number;
  /** Each candidate's answer; undefined or a string (why it gave none): no answer. */
  answers: Readonly<Record<string, CandidateSyncState | string | undefined>>;
  maxSyncLag: number;
  acceptDataLoss: boolean;
}

export interface CandidateLag {
  node: string;
  /** Generations behind (worst set); undefined: unknown. */
  lag: number | undefined;
  /** Why, for the history and the operator: per set, what was counted or why it could not be. */
  detail: string;
}

export interface SyncLagPlan {
  /** Candidates to try, in order. Empty: nobody may take the group. */
  allowed: string[];
  /** Every candidate's lag and why. */
  lags: CandidateLag[];
  /** Candidates left out (further behind than maxSyncLag, or unknown). */
  refused: CandidateLag[];
  /** Candidates allowed only because the operator accepted the loss. */
  acceptedBehind: CandidateLag[];
}

/** The series a set's lag is counted against: the failover's old owner, or the newest any candidate followed. */
function reference(facts: SyncLagFacts, set: string): { owner: string; epoch: number } | undefined {
  if (facts.from !== null) return { owner: facts.from, epoch: facts.fromEpoch };
  let best: FileSetSyncRecord | undefined;
  for (const node of facts.candidates) {
    const answer = facts.answers[node];
    if (typeof answer !== 'object') continue;
    const rec = answer.sets.find((s) => s.set === set)?.record;
    if (rec && (!best || rec.epoch > best.epoch)) best = rec;
  }
  return best ? { owner: best.owner, epoch: best.epoch } : undefined;
}

/** One candidate's lag for one set: generations, or undefined with why. */
function setLag(facts: SyncLagFacts, node: string, answer: CandidateSyncState, set: string): { lag: number | undefined; detail: string } {
  const rec = answer.sets.find((s) => s.set === set)?.record;
  const ref = reference(facts, set);
  if (node === facts.from) return { lag: 0, detail: `${set}: it is the owner` };
  // No owner, and no candidate ever followed one (a new cluster's first placement): no copy is known to be newer.
  if (!ref) return { lag: 0, detail: `${set}: no candidate has followed an owner of it (nothing to compare)` };
  if (!rec) return { lag: undefined, detail: `${set}: it has followed no owner of this set (unknown)` };
  if (ref && rec.epoch < ref.epoch) return { lag: undefined, detail: `${set}: it last followed ${rec.owner} at epoch ${rec.epoch}, older than ${ref.owner}'s epoch ${ref.epoch} (unknown)` };
  if (rec.owner === node) return { lag: 0, detail: `${set}: it was the owner itself (epoch ${rec.epoch})` };
  if (ref && rec.owner !== ref.owner) return { lag: undefined, detail: `${set}: it followed ${rec.owner}, not ${ref.owner}, at epoch ${rec.epoch} (unknown)` };
  if (rec.pulled === null) return { lag: undefined, detail: `${set}: no pull from ${rec.owner} at epoch ${rec.epoch} completed (announced generation ${rec.announced}; unknown)` };
  const lag = Math.max(0, rec.announced - rec.pulled);
  return { lag, detail: `${set}: ${lag} behind ${rec.owner} (announced generation ${rec.announced}, pulled ${rec.pulled})` };
}

/** A candidate's lag over all sets: the worst; unknown if any is unknown. */
export function candidateLag(facts: SyncLagFacts, node: string): CandidateLag {
  const answer = facts.answers[node];
  if (node === facts.from) return { node, lag: 0, detail: 'it is the owner' };
  if (typeof answer !== 'object') return { node, lag: undefined, detail: `it did not tell its sync state${typeof answer === 'string' ? `: ${answer}` : ''} (unknown)` };
  const per = facts.sets.map((set) => setLag(facts, node, answer, set));
  const unknown = per.some((p) => p.lag === undefined);
  const lag = unknown ? undefined : Math.max(0, ...per.map((p) => p.lag!));
  return { node, lag, detail: per.map((p) => p.detail).join('; ') || 'no file sets' };
}

export function planSyncCandidates(facts: SyncLagFacts): SyncLagPlan {
  const lags = facts.candidates.map((node) => candidateLag(facts, node));
  const within = (c: CandidateLag) => c.lag !== undefined && c.lag <= facts.maxSyncLag;
  const allowed = lags.filter(within);
  const behind = lags.filter((c) => !within(c));
  if (!facts.acceptDataLoss || behind.length === 0) {
    return { allowed: allowed.map((c) => c.node), lags, refused: behind, acceptedBehind: [] };
  }
  // Stable sort: equal lags keep the preference order; unknown after every known lag.
  const rank = (c: CandidateLag) => c.lag ?? Number.MAX_SAFE_INTEGER;
  const best = [...behind].sort((a, b) => rank(a) - rank(b));
  return { allowed: [...allowed, ...best].map((c) => c.node), lags, refused: [], acceptedBehind: best };
}

/** One line for the history: who was refused and why. */
export function describeRefusals(group: string, maxSyncLag: number, refused: readonly CandidateLag[]): string {
  return refused.map((c) => `${c.node} ${c.lag === undefined ? 'is behind by an unknown amount' : `is ${c.lag} generation(s) behind`} (more than failover.maxSyncLag ${maxSyncLag} of group '${group}': ${c.detail})`).join('; ');
}
