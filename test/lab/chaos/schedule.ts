/**
 * The chaos suite's schedule (pure): a seeded PRNG, the fault menu, and the list of faults a
 * run applies, one at a time. The same seed, options and timing give the same schedule, so a
 * failure is replayed with `npm run chaos -- --seed S --faults N`. Targets are roles (`owner`,
 * `standby`), resolved when the fault is applied; durations are drawn relative to the lease.
 */

/** Every kind of fault the suite can apply. */
export const FAULT_KINDS = [
  'node-death',
  'agent-kill',
  'agent-freeze-short',
  'agent-freeze-long',
  'partition',
  'partition-oneway',
  'owner-isolated',
  'witness-cut',
  'worker-kill',
  'temporal-restart',
  'temporal-kill-mid-failover',
  'node-freeze',
  'guard-kill',
  'lossy-links',
  'witness-data-lost',
] as const;

export type FaultKind = (typeof FAULT_KINDS)[number];

/**
 * What each kind does (its inject and heal are in faults.ts). The checker's rules are the same
 * for all of them; the expectation is what the product should do, for the report.
 */
export const FAULT_MENU: Readonly<Record<FaultKind, { what: string; expect: string; weight: number }>> = {
  'node-death': {
    what: 'the host dies (link down, every process SIGKILLed, its addresses left configured), then boots again (guard, link, agent)',
    expect: 'the owner\'s death: failover after deadtime + lease; the dead host\'s VIP reaches nobody; back, it holds nothing',
    weight: 3,
  },
  'agent-kill': {
    what: 'the agent is SIGKILLed (its guard and services live on), restarted after a delay',
    expect: 'restarted within its lease: it re-attaches, nothing moves; later: the guard releases at the deadline, the standby takes over',
    weight: 3,
  },
  'agent-freeze-short': {
    what: 'the agent is SIGSTOPped for less than the lease, then SIGCONT',
    expect: 'nothing moves (or a false alarm); never two holders',
    weight: 1,
  },
  'agent-freeze-long': {
    what: 'the agent is SIGSTOPped for longer than the lease, then SIGCONT',
    expect: 'the guard releases the group at its deadline, the standby takes over; thawed, the agent restarts nothing',
    weight: 2,
  },
  partition: {
    what: 'every frame between the two hosts is dropped (both still reach Temporal and the client)',
    expect: 'a false alarm: nothing moves, no outage',
    weight: 2,
  },
  'partition-oneway': {
    what: 'frames from one host to the other are dropped, not the other way',
    expect: 'a false alarm or a move; never two holders',
    weight: 2,
  },
  'owner-isolated': {
    what: 'the owner is cut off from everything (peers, client, Temporal), its link up',
    expect: 'it stops the group after its lease; the standby takes over after lease + margin',
    weight: 2,
  },
  'witness-cut': {
    what: 'the hosts (all, or the owner only) cannot reach Temporal; the peers still hear each other',
    expect: 'the fail-safe: the owner keeps serving, nothing moves',
    weight: 2,
  },
  'worker-kill': {
    what: 'the workflow worker (controller, failovers) is SIGKILLed, restarted after a delay',
    expect: 'nothing moves while it is away; it resumes the workflows from their histories',
    weight: 1,
  },
  'temporal-restart': {
    what: 'the Temporal server is SIGKILLed and restarted (same SQLite file)',
    expect: 'the fail-safe while it is down; the controller resumes from its history; nothing moves',
    weight: 1,
  },
  'temporal-kill-mid-failover': {
    what: 'the owner dies, and the Temporal server is SIGKILLed while the failover runs, then restarted',
    expect: 'the failover resumes from its history and completes; never two holders',
    weight: 1,
  },
  'node-freeze': {
    what: 'every process of the owner (agent, guard, services) is SIGSTOPped past the lease, then SIGCONT (a VM pause)',
    expect: 'the standby takes over; without fencing the frozen owner still has the VIP (its kernel answers ARP): a bounded overlap, recorded apart; thawed, its guard releases at once',
    weight: 2,
  },
  'guard-kill': {
    what: 'the lease guard of a host is SIGKILLed',
    expect: 'the agent notices, stops serving, starts the guard again; the group runs again',
    weight: 2,
  },
  'lossy-links': {
    what: 'a share (10-40 %) of the frames to and from the hosts (all, or the owner) is dropped at random',
    expect: 'false alarms or moves; never two holders',
    weight: 2,
  },
  'witness-data-lost': {
    what: 'the Temporal server restarts with its data lost (a new, empty SQLite file)',
    expect: 'DESIGN: survivable (a new controller rebuilds ownership from the nodes); docs/failover.md: not yet — not in the default menu',
    weight: 0,
  },
};

/** The kinds a run draws from unless told otherwise (every kind with a weight). */
export const DEFAULT_KINDS: readonly FaultKind[] = FAULT_KINDS.filter((k) => FAULT_MENU[k].weight > 0);

export type Role = 'owner' | 'standby';

export interface FaultSpec {
  /** 1-based position in the schedule. */
  index: number;
  kind: FaultKind;
  /** Whose fault it is; `all` for the faults that hit every host. */
  target: Role | 'all';
  /** How long the fault lasts before it is healed, ms (0: healed at once). */
  holdMs: number;
  /** Quiet time after the group has settled, before the next fault, ms. */
  quietMs: number;
  /** node-death / agent-kill / worker-kill: the down time is holdMs. oneway: which direction is dropped. */
  fromOwner?: boolean;
  /** lossy-links: the share dropped, in %. */
  lossPercent?: number;
  /** temporal-kill-mid-failover: the owner's death → Temporal killed, and how long Temporal stays down. */
  temporalKillAfterMs?: number;
  temporalDownMs?: number;
}

export interface ScheduleTiming {
  /** The lease ttl of the cluster, ms. */
  ttlMs: number;
  /** The heartbeat deadtime, ms. */
  deadtimeMs: number;
}

export interface ScheduleOptions {
  seed: number;
  faults: number;
  kinds?: readonly FaultKind[];
  /**
   * The first faults cover every kind once, in a seeded order (a short schedule then tests all
   * of them); the rest are drawn by weight. Default true.
   */
  cover?: boolean;
  /** Scales every duration (a CI schedule uses < 1). Default 1. */
  pace?: number;
}

/** A seed as given on the command line: a decimal or 0x hexadecimal 32-bit number. @throws Error otherwise. */
export function parseSeed(text: string): number {
  const t = text.trim();
  const n = /^0x[0-9a-f]{1,8}$/i.test(t) ? parseInt(t.slice(2), 16) : /^\d{1,10}$/.test(t) ? Number(t) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`a seed is a number from 0 to 4294967295 (decimal or 0x hex), not '${text}'`);
  return n;
}

/** A fresh seed for a run that was given none (printed, so that the run can be replayed). */
export function randomSeed(): number {
  return Math.floor(Math.random() * 0x100000000);
}

/** mulberry32: a small, fast, well-mixed 32-bit PRNG; enough for schedules, not for secrets. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** In [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from nothing');
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** A seeded Fisher-Yates shuffle (a copy). */
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }

  /** By weight. */
  weighted<T>(items: ReadonlyArray<readonly [T, number]>): T {
    const total = items.reduce((s, [, w]) => s + w, 0);
    if (!(total > 0)) throw new Error('weighted pick with no weight');
    let x = this.next() * total;
    for (const [item, w] of items) {
      x -= w;
      if (x < 0) return item;
    }
    return items.at(-1)![0];
  }
}

/**
 * The schedule: `faults` fault specs, deterministic for (seed, options, timing).
 * @throws Error on an unknown kind, no kind, or a fault count that is not a positive integer.
 */
export function makeSchedule(opts: ScheduleOptions, timing: ScheduleTiming): FaultSpec[] {
  if (!Number.isInteger(opts.faults) || opts.faults < 1) throw new Error(`--faults must be a positive integer, not ${opts.faults}`);
  const kinds = [...(opts.kinds ?? DEFAULT_KINDS)];
  if (kinds.length === 0) throw new Error('no fault kind to draw from');
  const unknown = kinds.filter((k) => !(FAULT_KINDS as readonly string[]).includes(k));
  if (unknown.length > 0) throw new Error(`unknown fault kind(s): ${unknown.join(', ')} (known: ${FAULT_KINDS.join(', ')})`);
  const pace = opts.pace ?? 1;
  if (!(pace > 0)) throw new Error(`pace must be > 0, not ${pace}`);
  const rng = new Rng(opts.seed);
  const order = opts.cover === false ? [] : rng.shuffle(kinds);
  const byWeight = kinds.map((k) => [k, Math.max(FAULT_MENU[k].weight, 0.5)] as const);
  const out: FaultSpec[] = [];
  for (let i = 0; i < opts.faults; i++) {
    const kind = i < order.length ? order[i]! : rng.weighted(byWeight);
    out.push(drawFault(rng, i + 1, kind, timing, pace));
  }
  return out;
}

/** One fault's parameters (every kind draws the same number of values, whatever it uses). */
function drawFault(rng: Rng, index: number, kind: FaultKind, t: ScheduleTiming, pace: number): FaultSpec {
  const T = t.ttlMs;
  // Drawn for every kind, in the same order, so that one kind's parameters do not shift the next ones'.
  const roleDraw = rng.next();
  const allDraw = rng.next();
  const holdDraw = rng.next();
  const extra = [rng.next(), rng.next()] as const;
  const quietMs = rng.int(500, 1500);
  const within = (x: number, lo: number, hi: number) => lo + Math.floor(x * (hi - lo + 1));
  const ms = (loTtl: number, hiTtl: number) => Math.round(within(holdDraw, Math.round(loTtl * T), Math.round(hiTtl * T)) * pace);
  const base: Pick<FaultSpec, 'index' | 'kind' | 'quietMs'> = { index, kind, quietMs };
  const owner80: Role = roleDraw < 0.8 ? 'owner' : 'standby';
  switch (kind) {
    case 'node-death':
      return { ...base, target: owner80, holdMs: ms(2, 5) };
    case 'agent-kill':
      // From an immediate restart (re-attach within the lease) to well past the lease.
      return { ...base, target: owner80, holdMs: ms(0, 3) };
    case 'agent-freeze-short':
      return { ...base, target: 'owner', holdMs: Math.max(50, ms(0.2, 0.6)) };
    case 'agent-freeze-long':
      return { ...base, target: 'owner', holdMs: Math.max(ms(1.5, 3), Math.round(1.2 * T)) };
    case 'partition':
      return { ...base, target: 'all', holdMs: ms(2, 6) };
    case 'partition-oneway':
      return { ...base, target: 'all', holdMs: ms(2, 5), fromOwner: roleDraw < 0.5 };
    case 'owner-isolated':
      return { ...base, target: 'owner', holdMs: Math.max(ms(1.5, 4), Math.round(1.2 * T)) };
    case 'witness-cut':
      return { ...base, target: allDraw < 0.7 ? 'all' : 'owner', holdMs: ms(2, 5) };
    case 'worker-kill':
      return { ...base, target: 'all', holdMs: ms(0.25, 3) };
    case 'temporal-restart':
      return { ...base, target: 'all', holdMs: ms(0.5, 2) };
    case 'temporal-kill-mid-failover':
      return {
        ...base,
        target: 'owner',
        holdMs: Math.max(ms(3, 5), t.deadtimeMs + 2 * T),
        temporalKillAfterMs: t.deadtimeMs + within(extra[0], 100, T),
        temporalDownMs: Math.round(within(extra[1], Math.round(0.5 * T), Math.round(1.5 * T)) * pace),
      };
    case 'node-freeze':
      return { ...base, target: 'owner', holdMs: Math.max(ms(1.5, 3), Math.round(1.2 * T) + t.deadtimeMs) };
    case 'guard-kill':
      return { ...base, target: owner80, holdMs: 0 };
    case 'lossy-links':
      return { ...base, target: allDraw < 0.5 ? 'all' : 'owner', holdMs: ms(2, 5), lossPercent: within(extra[0], 10, 40) };
    case 'witness-data-lost':
      return { ...base, target: 'all', holdMs: ms(0.5, 1) };
  }
}

/** One line per fault, for the run's log. */
export function describeFault(f: FaultSpec): string {
  const extra = [
    f.fromOwner !== undefined ? (f.fromOwner ? 'owner→standby dropped' : 'standby→owner dropped') : '',
    f.lossPercent !== undefined ? `${f.lossPercent}% loss` : '',
    f.temporalKillAfterMs !== undefined ? `Temporal killed after ${f.temporalKillAfterMs} ms for ${f.temporalDownMs} ms` : '',
  ].filter(Boolean);
  return `#${f.index} ${f.kind} (${f.target}, ${f.holdMs} ms${extra.length ? `, ${extra.join(', ')}` : ''})`;
}
