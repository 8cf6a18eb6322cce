/**
 * Who holds an address (a VIP), in every namespace of a lab, throughout a test.
 *
 * Polling `ip addr` is too dear for a 20 ms period: one `ip -n NS` costs about 7 ms of CPU
 * (it enters the namespace and remounts /sys), so five namespaces every 20 ms would take more
 * than a core and slow down the very failover being measured. Instead one
 * `ip -n NS -ts -o -4 monitor address` (`-6` for an IPv6 address) per namespace reports each change as it happens,
 * timestamped by `ip`; the holders are kept from those events (after an initial `ip addr`),
 * and samples every `everyMs` read that state at no cost. The exact periods
 * (`holdersOverTime`, `dualPeriods`) come from the event timestamps, so an overlap shorter than
 * the sampling period is caught too. At stop the state is checked against `ip addr` again.
 *
 * A holder counts only while its host is alive: a host killed by the lab keeps its addresses
 * (as a machine that lost power does) but reaches nobody, so it is a holder in `holders` and
 * not in `live`. A frozen host is alive (its kernel answers ARP): it is in `live`, and in
 * `frozen` too, so that the overlap a whole-node freeze causes without fencing can be told
 * apart. Dual ownership (`dualSamples`, `dualPeriods`) is two or more LIVE holders.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Logger } from '../../src/log.js';
import { command, parseAddresses } from './commands.js';

export interface VipSample {
  /** Date.now() of the sample. (Times of changes and periods are ms since the epoch with a fraction.) */
  at: number;
  /** Lab hosts that had the address on an interface, in lab order, dead ones included. */
  holders: string[];
  /** Of those, the hosts alive (not killed): the holders that count. */
  live: string[];
  /** Of the live ones, those frozen. */
  frozen: string[];
}

export interface VipPeriod {
  from: number;
  to: number;
  /** Every host that had the address, dead ones included. */
  holders: string[];
  /** The holders alive throughout the period. */
  live: string[];
  /** The live holders frozen throughout the period. */
  frozen: string[];
}

export interface VipReport {
  address: string;
  startedAt: number;
  stoppedAt: number;
  /** One every `everyMs`. */
  samples: VipSample[];
  /** The samples with two or more live holders: dual ownership. */
  dualSamples: VipSample[];
  /** Consecutive periods with the same holders (and the same of them alive, frozen), exact (from the change events). */
  holdersOverTime: VipPeriod[];
  /** The periods with two or more live holders, however short. */
  dualPeriods: VipPeriod[];
  /** Every change: a host gained (`added`) or lost the address on `dev`. */
  changes: Array<{ at: number; host: string; dev: string; added: boolean }>;
  /** Problems of the sampler itself (a monitor died, the final state disagreed with `ip addr`). */
  errors: string[];
}

/** A namespace to watch. */
export interface VipTarget {
  host: string;
  namespace: string;
}

/** A host's death, revival, freeze or thaw (the lab's HostEvent). */
export interface HostLifeEvent {
  at: number;
  host: string;
  kind: 'died' | 'revived' | 'frozen' | 'thawed';
}

/** What the sampler needs from its lab: its monitors run inside the namespaces and must be spared by faults. */
export interface SamplerContext {
  logger: Logger;
  addInfraPid(pid: number): void;
  removeInfraPid(pid: number): void;
  /** The hosts dead and frozen now (for samples); none when absent. */
  hostState?: () => { dead: ReadonlySet<string>; frozen: ReadonlySet<string> };
  /** Every death, revival, freeze and thaw so far, in time order (for the exact periods). */
  hostEvents?: () => readonly HostLifeEvent[];
}

/** Strips a /prefix: `10.213.7.200/24` → `10.213.7.200`. */
export function bareIp(address: string): string {
  return address.split('/')[0]!;
}

/** `[2026-11-28T12:16:35.427364] ...`: `ip -ts` prints local time with microseconds. */
function parseTs(line: string): { at: number; rest: string } {
  const m = /^\[(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?\]\s*(.*)$/.exec(line);
  if (!m) return { at: Date.now(), rest: line };
  // Fractional milliseconds are kept: two changes in the same millisecond stay ordered.
  const at = new Date(m[1]!).getTime() + Number(`0.${m[2] ?? '0'}`) * 1000;
  return { at: Number.isNaN(at) ? Date.now() : at, rest: m[3]! };
}

let markerSeq = 0;

interface Watch {
  target: VipTarget;
  child: ChildProcess;
  devs: Set<string>;
  ready: boolean;
  /** Events older than this are already in the initial `ip addr`. */
  since: number;
  queued: Array<{ at: number; rest: string }>;
  closed: Promise<void>;
}

export class VipSampler {
  private readonly samples: VipSample[] = [];
  private readonly changes: VipReport['changes'] = [];
  private readonly errors: string[] = [];
  private readonly initial = new Map<string, Set<string>>();
  private timer?: NodeJS.Timeout;
  private stopping = false;
  private stopped: Promise<VipReport> | undefined;
  private startedAt = 0;

  private constructor(
    readonly address: string,
    private readonly ip: string,
    private readonly family: '-4' | '-6',
    private readonly watches: Watch[],
    private readonly ctx: SamplerContext,
  ) {}

  /**
   * Starts a monitor in every namespace and waits until each one is known to be listening
   * (a marker address added to and removed from `lo` is seen), then reads the initial holders.
   * @throws Error when a monitor does not start within 10 s (it is stopped first).
   */
  static async start(address: string, targets: readonly VipTarget[], everyMs: number, ctx: SamplerContext): Promise<VipSampler> {
    const ip = bareIp(address);
    const family = ip.includes(':') ? '-6' : '-4';
    const seq = ++markerSeq;
    // The marker is of the VIP's family (IPv6: in the lab's fd00:213::/64, on lo, where it reaches nobody).
    const marker = family === '-4'
      ? `127.77.${(process.pid >> 8) & 0xff}.${(process.pid + seq) & 0xff}`
      : `fd00:213::77:${(process.pid & 0xffff).toString(16)}:${(seq & 0xffff).toString(16)}`;
    const watches: Watch[] = targets.map((target) => {
      const child = spawn('ip', ['-n', target.namespace, '-ts', '-o', family, 'monitor', 'address'], { stdio: ['ignore', 'pipe', 'pipe'] });
      if (child.pid) ctx.addInfraPid(child.pid);
      const closed = new Promise<void>((res) => child.once('close', () => res()));
      return { target, child, devs: new Set(), ready: false, since: 0, queued: [], closed };
    });
    const sampler = new VipSampler(address, ip, family, watches, ctx);
    try {
      await Promise.all(watches.map((w) => sampler.prime(w, marker)));
    } catch (e) {
      await sampler.stop();
      throw e;
    }
    sampler.startedAt = Date.now();
    sampler.sample();
    sampler.timer = setInterval(() => sampler.sample(), everyMs);
    return sampler;
  }

  private async prime(w: Watch, marker: string): Promise<void> {
    let sawMarker!: () => void;
    const seen = new Promise<void>((res) => (sawMarker = res));
    let stderr = '';
    w.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: w.child.stdout!, crlfDelay: Infinity }).on('line', (line) => {
      const ev = parseTs(line);
      if (!w.ready) {
        if (ev.rest.includes(` inet ${marker}/`) || ev.rest.includes(` inet6 ${marker}/`)) sawMarker();
        else w.queued.push(ev);
        return;
      }
      this.apply(w, ev);
    });
    void w.closed.then(() => {
      if (!this.stopping) this.errors.push(`${w.target.host}: the address monitor ended unexpectedly${stderr ? `: ${stderr.trim()}` : ''}`);
    });
    const ns = w.target.namespace;
    // The monitor is listening once it reports a marker address added to `lo`; the initial
    // `addr show` runs in the same `ip` right after that marker, so it cannot predate the
    // monitor. Retried (bounded) while the marker goes unseen.
    const deadline = Date.now() + 10_000;
    let listening = false;
    let dump = '';
    while (!listening && Date.now() < deadline) {
      w.since = Date.now();
      const host = this.family === '-4' ? 32 : 128;
      const r = await command(this.ctx.logger, ['ip', '-n', ns, '-o', this.family, '-force', '-batch', '-'], {
        input: `addr add ${marker}/${host} dev lo\naddr del ${marker}/${host} dev lo\naddr show\n`,
        reject: false,
      });
      dump = r.stdout;
      listening = await Promise.race([seen.then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), 100).unref())]);
    }
    if (!listening) throw new Error(`${w.target.host}: \`ip monitor address\` in ${ns} did not start within 10 s${stderr ? `: ${stderr.trim()}` : ''}`);
    for (const a of parseAddresses(dump)) if (a.ip === this.ip) w.devs.add(a.dev);
    this.initial.set(w.target.host, new Set(w.devs));
    w.ready = true;
    // Events seen between the marker and the dump that are not already in the dump.
    for (const ev of w.queued.splice(0)) this.apply(w, ev);
  }

  private apply(w: Watch, ev: { at: number; rest: string }): void {
    if (ev.at < w.since) return;
    const m = /^(Deleted\s+)?\d+:\s+([^\s@]+)(?:@\S+)?\s+inet6?\s+([\d.]+|[\da-f:]+)\//.exec(ev.rest);
    if (!m || m[3] !== this.ip) return;
    const dev = m[2]!;
    const added = !m[1];
    if (added === w.devs.has(dev)) return;
    if (added) w.devs.add(dev);
    else w.devs.delete(dev);
    this.changes.push({ at: ev.at, host: w.target.host, dev, added });
  }

  /** The hosts holding the address now (as last reported by the monitors). */
  holders(): string[] {
    return this.watches.filter((w) => w.devs.size > 0).map((w) => w.target.host);
  }

  /** The latest sample (one is taken every `everyMs`). */
  latest(): VipSample | undefined {
    return this.samples.at(-1);
  }

  private sample(): void {
    const holders = this.holders();
    const state = this.ctx.hostState?.();
    const live = state ? holders.filter((h) => !state.dead.has(h)) : holders;
    const frozen = state ? live.filter((h) => state.frozen.has(h)) : [];
    this.samples.push({ at: Date.now(), holders, live, frozen });
  }

  /** Everything seen so far, as stop() would report it, while the sampler goes on. */
  async snapshot(): Promise<VipReport> {
    return this.report(Date.now());
  }

  /** Stops the monitors and returns everything seen. Never throws: problems are in `errors`. Idempotent. */
  stop(): Promise<VipReport> {
    this.stopped ??= this.finish();
    return this.stopped;
  }

  private async finish(): Promise<VipReport> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    const started = this.startedAt > 0;
    if (started) this.sample();
    const stoppedAt = Date.now();
    for (const w of this.watches) w.child.kill('SIGTERM');
    await Promise.all(this.watches.map((w) => w.closed));
    for (const w of this.watches) if (w.child.pid) this.ctx.removeInfraPid(w.child.pid);
    if (started) {
      // Missed events would show here: the state kept from them must match `ip addr` now.
      await Promise.all(
        this.watches.map(async (w) => {
          const r = await command(this.ctx.logger, ['ip', '-n', w.target.namespace, '-o', this.family, 'addr', 'show'], { reject: false });
          if (r.exitCode !== 0) return;
          const now = parseAddresses(r.stdout).filter((a) => a.ip === this.ip).map((a) => a.dev).sort().join(',');
          const kept = [...w.devs].sort().join(',');
          if (now !== kept) this.errors.push(`${w.target.host}: the events say the address is on [${kept}] but ip addr says [${now}]`);
        }),
      );
    }
    return this.report(stoppedAt);
  }

  private report(stoppedAt: number): VipReport {
    const changes = [...this.changes].sort((a, b) => a.at - b.at);
    const holdersOverTime = holderPeriods(
      this.watches.map((w) => w.target.host),
      this.initial,
      changes,
      this.ctx.hostEvents?.() ?? [],
      this.startedAt,
      stoppedAt,
    );
    return {
      address: this.address,
      startedAt: this.startedAt,
      stoppedAt,
      samples: [...this.samples],
      dualSamples: this.samples.filter((s) => s.live.length >= 2),
      holdersOverTime,
      dualPeriods: holdersOverTime.filter((p) => p.live.length >= 2),
      changes,
      errors: [...this.errors],
    };
  }
}

/**
 * The exact holder periods from `startedAt` to `stoppedAt`: the initial holders, every address
 * change and every host death, revival, freeze and thaw, in time order (pure). A new period
 * begins whenever the holders, or which of them are alive or frozen, change. A period with two
 * or more live holders is kept however short; another empty one is dropped.
 */
export function holderPeriods(
  order: readonly string[],
  initial: ReadonlyMap<string, ReadonlySet<string>>,
  changes: ReadonlyArray<{ at: number; host: string; dev: string; added: boolean }>,
  hostEvents: readonly HostLifeEvent[],
  startedAt: number,
  stoppedAt: number,
): VipPeriod[] {
  const devs = new Map<string, Set<string>>();
  for (const host of order) devs.set(host, new Set(initial.get(host) ?? []));
  const dead = new Set<string>();
  const frozen = new Set<string>();
  const life = (e: HostLifeEvent) => {
    if (e.kind === 'died') dead.add(e.host);
    else if (e.kind === 'revived') dead.delete(e.host);
    else if (e.kind === 'frozen') frozen.add(e.host);
    else frozen.delete(e.host);
  };
  const events = [...hostEvents].sort((a, b) => a.at - b.at);
  // What happened to the hosts before the sampler started.
  for (const e of events) if (e.at <= startedAt) life(e);
  const now = (from: number): VipPeriod => {
    const holders = order.filter((h) => devs.get(h)!.size > 0);
    const live = holders.filter((h) => !dead.has(h));
    return { from, to: stoppedAt, holders, live, frozen: live.filter((h) => frozen.has(h)) };
  };
  const key = (p: VipPeriod) => `${p.holders.join()}|${p.live.join()}|${p.frozen.join()}`;
  type Step = { at: number; apply: () => void };
  const steps: Step[] = [
    ...changes.map((c) => ({
      at: c.at,
      apply: () => {
        const set = devs.get(c.host);
        if (!set) return;
        if (c.added) set.add(c.dev);
        else set.delete(c.dev);
      },
    })),
    ...events.filter((e) => e.at > startedAt && e.at < stoppedAt).map((e) => ({ at: e.at, apply: () => life(e) })),
  ].sort((a, b) => a.at - b.at);
  const periods: VipPeriod[] = [];
  let current = now(startedAt);
  for (const step of steps) {
    step.apply();
    const next = now(Math.max(step.at, current.from));
    if (key(next) === key(current)) continue;
    // A dual period is kept however short; another empty one is dropped.
    if (next.from > current.from || current.live.length >= 2) periods.push({ ...current, to: next.from });
    current = next;
  }
  periods.push(current);
  return periods;
}
