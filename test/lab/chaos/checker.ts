/**
 * The chaos suite's checker (pure): from what was recorded during a whole run — the exact VIP
 * holder periods, the hosts' deaths, revivals, freezes and thaws, the running instances of the
 * service, the client's ARP checks and requests, and each fault's settle observations — it
 * decides whether the product kept its promises:
 *
 * 1. `dual-vip`: never two LIVE holders of the VIP, in exact periods (however short). A dead
 *    host (killed by the lab: link down) keeps its addresses but reaches nobody: not a holder.
 * 2. `dual-instance`: never two running instances of the service (on two hosts or one), in the
 *    instance samples, on live hosts.
 * 3. `duplicate-arp`: the client never gets ARP answers for the VIP from two live hosts.
 * 4. `not-recovered`: after each fault is healed, the group runs again within `recoveryMs`:
 *    the controller says it runs on a node, every node is up, the VIP is on that node only, the
 *    service runs there only, the client is served by it, every node has its agent and guard.
 * 5. `view-mismatch`: the same, when the controller says the group runs on a node but the
 *    nodes hold something else, or nothing (the controller's view is not true).
 * 6. `sampler`: an observer failed (its evidence would be incomplete).
 *
 * The one exception, documented and recorded apart (`frozenOverlaps`), not a violation: a host
 * whose every process is frozen (a whole-node freeze, as in a VM pause) cannot let go of
 * anything — its kernel keeps its addresses and answers ARP, its service is stopped, not dead —
 * so, without fencing, once the standby has taken over both hold the VIP until the frozen one
 * runs again and its guard releases it. Rules 1-3 do not count a holder or an instance of a
 * host from the moment it is frozen until `thawReleaseMs` after it is thawed; anything of it
 * past that is a violation. The overlap therefore lasts at most (the freeze's length − the
 * failover's time) + `thawReleaseMs`.
 */
import type { FaultKind, FaultSpec } from './schedule.js';

/** A host's death, revival, freeze or thaw (NetLab's HostEvent). */
export interface LifeEvent {
  at: number;
  host: string;
  kind: 'died' | 'revived' | 'frozen' | 'thawed';
}

/** An exact VIP holder period (VipSampler's VipPeriod). */
export interface HolderPeriod {
  from: number;
  to: number;
  holders: string[];
  live: string[];
  frozen: string[];
}

/** Running instances of the service per host (InstanceSampler's InstanceSample). */
export interface InstanceSnapshot {
  at: number;
  byHost: Record<string, number[]>;
  frozen: number[];
}

export interface ArpCheck {
  at: number;
  /** How long arping listened, ms. */
  ms: number;
  answers: Array<{ mac: string; host?: string }>;
}

export interface Probe {
  t: number;
  ok: boolean;
  host?: string;
}

/** What the runner sees of the cluster at one moment, to judge whether it has settled. */
export interface View {
  at: number;
  /** The controller's answer (undefined: it could not be asked). */
  controller?: {
    owner: string | null;
    state: string;
    epoch: number;
    /** Node → up / suspect / unknown. */
    nodes: Record<string, string>;
    /** A blocked operation on the group, as the controller says. */
    blocked?: string;
  };
  /** Live hosts that hold the VIP. */
  vipLive: string[];
  /** Live hosts → running instances of the service. */
  instances: Record<string, number>;
  /** The host that answered the client's latest successful request, if it started after the heal and is recent. */
  clientHost?: string;
  /** Hosts where the agent runs, and where the lease guard runs. */
  agents: string[];
  guards: string[];
}

export interface FaultRecord {
  spec: FaultSpec;
  /** The hosts the fault hit. */
  targets: string[];
  injectedAt: number;
  /** When the heal was done (undefined: it failed, see harnessError). */
  healedAt?: number;
  /** The first settled view after the heal (undefined: none within the runner's patience). */
  settledAt?: number;
  /** The settled view, or the last one seen. */
  view?: View;
  /** The group's epoch before the fault. */
  epochBefore?: number;
  /** The harness could not apply or heal the fault (not the product's fault, but the run is void there). */
  harnessError?: string;
}

export interface ChaosRecord {
  seed: number;
  hosts: string[];
  startedAt: number;
  stoppedAt: number;
  vipPeriods: HolderPeriod[];
  /** The VIP sampler's and the instance sampler's own problems. */
  samplerErrors: string[];
  hostEvents: LifeEvent[];
  instanceSamples: InstanceSnapshot[];
  arpChecks: ArpCheck[];
  probes: Probe[];
  faults: FaultRecord[];
}

export interface ChaosBounds {
  /** Heal → settled, at most. */
  recoveryMs: number;
  /** Thaw of a frozen host → its holds released, at most (the tail of the frozen overlap). */
  thawReleaseMs: number;
}

export const DEFAULT_BOUNDS: ChaosBounds = { recoveryMs: 60_000, thawReleaseMs: 3_000 };

export type Rule = 'dual-vip' | 'dual-instance' | 'duplicate-arp' | 'not-recovered' | 'view-mismatch' | 'sampler';

export interface Violation {
  rule: Rule;
  at: number;
  /** How long it lasted, where that means something. */
  ms?: number;
  /** `#3 node-death`: the fault in whose window it happened. */
  fault?: string;
  detail: string;
}

export interface FrozenOverlap {
  what: 'vip' | 'instance' | 'arp';
  from: number;
  to: number;
  ms: number;
  hosts: string[];
  fault?: string;
}

export interface KindStats {
  kind: FaultKind;
  count: number;
  /** Faults after which the group had a new epoch. */
  moved: number;
  /** Heal → settled, ms, per fault that settled. */
  recoveries: number[];
  /** The longest client gap within each fault's window, ms. */
  outages: number[];
  medianRecoveryMs?: number;
  medianOutageMs?: number;
  maxOutageMs?: number;
}

export interface ChaosVerdict {
  seed: number;
  faults: number;
  violations: Violation[];
  frozenOverlaps: FrozenOverlap[];
  /** Faults the harness could not apply or heal. */
  harnessErrors: string[];
  perKind: KindStats[];
  longestOutage: { ms: number; from: number; to: number; fault?: string };
}

/** Whether the cluster has settled: the group runs on one node, and everything says so. */
export function settled(view: View, hosts: readonly string[]): { ok: true; owner: string } | { ok: false; why: string } {
  const c = view.controller;
  if (!c) return { ok: false, why: 'the controller could not be asked' };
  if (c.blocked) return { ok: false, why: `an operation is blocked: ${c.blocked}` };
  if (c.state !== 'running' || !c.owner) return { ok: false, why: `the controller says the group is ${c.state}${c.owner ? ` on ${c.owner}` : ''}` };
  const owner = c.owner;
  const notUp = hosts.filter((h) => c.nodes[h] !== 'up');
  if (notUp.length > 0) return { ok: false, why: `the controller does not see ${notUp.map((h) => `${h} up (${c.nodes[h] ?? 'unknown'})`).join(', ')}` };
  if (view.vipLive.join() !== owner) return { ok: false, why: `the controller says ${owner} runs it, the VIP is on [${view.vipLive.join(', ')}]` };
  const running = Object.entries(view.instances).filter(([, n]) => n > 0);
  if (running.length !== 1 || running[0]![0] !== owner || running[0]![1] !== 1) {
    return { ok: false, why: `the controller says ${owner} runs it, the service runs ${running.map(([h, n]) => `${n}× on ${h}`).join(', ') || 'nowhere'}` };
  }
  if (view.clientHost !== owner) return { ok: false, why: `the client is ${view.clientHost ? `served by ${view.clientHost}` : 'not served'}, the owner is ${owner}` };
  const noAgent = hosts.filter((h) => !view.agents.includes(h));
  if (noAgent.length > 0) return { ok: false, why: `no agent runs on ${noAgent.join(', ')}` };
  const noGuard = hosts.filter((h) => !view.guards.includes(h));
  if (noGuard.length > 0) return { ok: false, why: `no lease guard runs on ${noGuard.join(', ')}` };
  return { ok: true, owner };
}

interface Window {
  host: string;
  from: number;
  to: number;
}

/** The frozen-host windows: from a freeze until thawReleaseMs after its thaw (or for ever). */
export function freezeWindows(events: readonly LifeEvent[], thawReleaseMs: number): Window[] {
  const open = new Map<string, number>();
  const out: Window[] = [];
  for (const e of [...events].sort((a, b) => a.at - b.at)) {
    if (e.kind === 'frozen' && !open.has(e.host)) open.set(e.host, e.at);
    if (e.kind === 'thawed' && open.has(e.host)) {
      out.push({ host: e.host, from: open.get(e.host)!, to: e.at + thawReleaseMs });
      open.delete(e.host);
    }
  }
  for (const [host, from] of open) out.push({ host, from, to: Infinity });
  return out;
}

/** Whether `host` was dead at `t` (between a death and the next revival). */
function deadAt(events: readonly LifeEvent[], host: string, t: number): boolean {
  let dead = false;
  for (const e of events) {
    if (e.host !== host || e.at > t) continue;
    if (e.kind === 'died') dead = true;
    if (e.kind === 'revived') dead = false;
  }
  return dead;
}

function excused(windows: readonly Window[], host: string, from: number, to: number): boolean {
  return windows.some((w) => w.host === host && w.from <= from && to <= w.to);
}

const median = (xs: readonly number[]): number | undefined => {
  if (xs.length === 0) return undefined;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** The fault in whose window `t` falls (the last one injected at or before it). */
function faultAt(faults: readonly FaultRecord[], t: number): string | undefined {
  let found: FaultRecord | undefined;
  for (const f of faults) if (f.injectedAt <= t) found = f;
  return found ? `#${found.spec.index} ${found.spec.kind}` : undefined;
}

/** Gaps between the starts of consecutive successful requests (and from the last one to `end`). */
export function clientGaps(probes: readonly Probe[], end: number): Array<{ from: number; to: number; ms: number }> {
  const oks = probes.filter((p) => p.ok).map((p) => p.t).sort((a, b) => a - b);
  const gaps: Array<{ from: number; to: number; ms: number }> = [];
  for (let i = 1; i < oks.length; i++) gaps.push({ from: oks[i - 1]!, to: oks[i]!, ms: oks[i]! - oks[i - 1]! });
  const last = oks.at(-1);
  if (last !== undefined && probes.some((p) => !p.ok && p.t > last)) gaps.push({ from: last, to: end, ms: end - last });
  return gaps;
}

/** Decides the run. Pure. */
export function check(rec: ChaosRecord, bounds: ChaosBounds = DEFAULT_BOUNDS): ChaosVerdict {
  const violations: Violation[] = [];
  const frozenOverlaps: FrozenOverlap[] = [];
  const events = [...rec.hostEvents].sort((a, b) => a.at - b.at);
  const windows = freezeWindows(events, bounds.thawReleaseMs);
  const label = (t: number) => faultAt(rec.faults, t);

  for (const e of rec.samplerErrors) violations.push({ rule: 'sampler', at: rec.stoppedAt, detail: e });

  // 1. Two live VIP holders, exact periods; split where a frozen host's excuse begins or ends.
  for (const p of rec.vipPeriods) {
    if (p.live.length < 2) continue;
    const inner = windows.flatMap((w) => [w.from, w.to]).filter((t) => t > p.from && t < p.to);
    const cuts = [...new Set([p.from, ...inner, p.to])].sort((a, b) => a - b);
    // A zero-length dual period (two changes in the same instant) is one segment too.
    const segments = cuts.length === 1 ? [[p.from, p.to] as const] : cuts.slice(0, -1).map((c, i) => [c, cuts[i + 1]!] as const);
    for (const [from, to] of segments) {
      const counted = p.live.filter((h) => !excused(windows, h, from, to));
      const fault = label(from);
      if (counted.length >= 2) {
        violations.push({ rule: 'dual-vip', at: from, ms: to - from, ...(fault ? { fault } : {}), detail: `two live holders of the VIP for ${Math.round(to - from)} ms: ${p.live.join(' and ')}${p.frozen.length ? ` (frozen: ${p.frozen.join(', ')})` : ''}` });
      } else {
        frozenOverlaps.push({ what: 'vip', from, to, ms: to - from, hosts: [...p.live], ...(fault ? { fault } : {}) });
      }
    }
  }

  // 2. Two running instances (samples), live hosts only.
  type Run = { from: number; to: number; hosts: Set<string>; excused: boolean };
  let open: Run | undefined;
  const runs: Run[] = [];
  for (const s of rec.instanceSamples) {
    const live = Object.entries(s.byHost).filter(([h, pids]) => pids.length > 0 && !deadAt(events, h, s.at));
    const total = live.reduce((n, [, pids]) => n + pids.length, 0);
    if (total < 2) {
      open = undefined;
      continue;
    }
    const counted = live.filter(([h]) => !excused(windows, h, s.at, s.at)).reduce((n, [, pids]) => n + pids.length, 0);
    const isExcused = counted < 2;
    if (open && open.excused === isExcused) {
      open.to = s.at;
      for (const [h] of live) open.hosts.add(h);
    } else {
      open = { from: s.at, to: s.at, hosts: new Set(live.map(([h]) => h)), excused: isExcused };
      runs.push(open);
    }
  }
  for (const r of runs) {
    const fault = label(r.from);
    if (r.excused) frozenOverlaps.push({ what: 'instance', from: r.from, to: r.to, ms: r.to - r.from, hosts: [...r.hosts], ...(fault ? { fault } : {}) });
    else violations.push({ rule: 'dual-instance', at: r.from, ms: r.to - r.from, ...(fault ? { fault } : {}), detail: `two running instances of the service (on ${[...r.hosts].join(', ')}) in samples over ${Math.round(r.to - r.from)} ms` });
  }

  // 3. The client's ARP checks.
  for (const a of rec.arpChecks) {
    const who = [...new Set(a.answers.map((x) => x.host ?? x.mac))];
    if (who.length < 2) continue;
    const counted = who.filter((h) => !excused(windows, h, a.at, a.at + a.ms));
    const fault = label(a.at);
    if (counted.length >= 2) violations.push({ rule: 'duplicate-arp', at: a.at, ...(fault ? { fault } : {}), detail: `the client's ARP for the VIP was answered by ${who.join(' and ')}` });
    else frozenOverlaps.push({ what: 'arp', from: a.at, to: a.at + a.ms, ms: a.ms, hosts: who, ...(fault ? { fault } : {}) });
  }

  // 4, 5. Each fault healed, then settled in time, with a true view.
  const harnessErrors: string[] = [];
  for (const f of rec.faults) {
    const name = `#${f.spec.index} ${f.spec.kind}`;
    if (f.harnessError) harnessErrors.push(`${name}: ${f.harnessError}`);
    if (f.healedAt === undefined) continue;
    const tookMs = f.settledAt === undefined ? undefined : f.settledAt - f.healedAt;
    if (tookMs !== undefined && tookMs <= bounds.recoveryMs) continue;
    const v = f.view;
    const why = v ? settled(v, rec.hosts) : { ok: false as const, why: 'nothing was observed' };
    const detail = `${tookMs === undefined ? `not settled ${bounds.recoveryMs} ms after the heal` : `settled only ${Math.round(tookMs)} ms after the heal (bound ${bounds.recoveryMs} ms)`}; last view: ${why.ok ? 'settled' : why.why}`;
    const c = v?.controller;
    // The controller says the group runs on a node, and the nodes hold something else, or nothing.
    const mismatch = c?.state === 'running' && c.owner !== null &&
      (v!.vipLive.join() !== c.owner || (v!.instances[c.owner] ?? 0) !== 1 || Object.entries(v!.instances).some(([h, n]) => n > 0 && h !== c.owner));
    violations.push({ rule: mismatch ? 'view-mismatch' : 'not-recovered', at: f.healedAt, fault: name, detail });
  }

  // Figures: outages and recoveries per kind.
  const gaps = clientGaps(rec.probes, rec.stoppedAt);
  const longest = gaps.reduce<{ ms: number; from: number; to: number }>((best, g) => (g.ms > best.ms ? g : best), { ms: 0, from: rec.startedAt, to: rec.startedAt });
  const longestFault = longest.ms > 0 ? label(longest.to) : undefined;
  const stats = new Map<FaultKind, KindStats>();
  rec.faults.forEach((f, i) => {
    const s = stats.get(f.spec.kind) ?? { kind: f.spec.kind, count: 0, moved: 0, recoveries: [], outages: [] };
    stats.set(f.spec.kind, s);
    s.count++;
    if (f.epochBefore !== undefined && f.view?.controller && f.view.controller.epoch !== f.epochBefore) s.moved++;
    if (f.healedAt !== undefined && f.settledAt !== undefined) s.recoveries.push(Math.max(0, f.settledAt - f.healedAt));
    const end = f.settledAt ?? rec.faults[i + 1]?.injectedAt ?? rec.stoppedAt;
    const within = gaps.filter((g) => g.to > f.injectedAt && g.from < end).map((g) => g.ms);
    s.outages.push(within.length ? Math.max(...within) : 0);
  });
  const perKind = [...stats.values()].map((s) => {
    const mr = median(s.recoveries);
    const mo = median(s.outages);
    return { ...s, ...(mr !== undefined ? { medianRecoveryMs: mr } : {}), ...(mo !== undefined ? { medianOutageMs: mo, maxOutageMs: Math.max(...s.outages) } : {}) };
  });

  violations.sort((a, b) => a.at - b.at);
  return {
    seed: rec.seed,
    faults: rec.faults.length,
    violations,
    frozenOverlaps,
    harnessErrors,
    perKind,
    longestOutage: { ...longest, ...(longestFault ? { fault: longestFault } : {}) },
  };
}
