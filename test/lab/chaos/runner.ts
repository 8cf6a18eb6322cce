/**
 * One chaos run: a real two-node cluster in the network lab (LabCluster: the VIP and an HTTP
 * service, the Temporal dev server on a SQLite file and the workflow worker on the root side,
 * a real agent and lease guard in each host), a client requesting the service through the VIP
 * every 20 ms, the VIP sampler (exact holder periods, live hosts only) and the instance sampler
 * running throughout; the schedule's faults applied one at a time, each healed, then the
 * cluster left to settle (the group running on one node, and everything saying so) before a
 * quiet time and the next one. At the end the checker (checker.ts) decides the whole run.
 * Used by `npm run chaos` (run.ts) and the CI test (test/lab/chaos.test.ts).
 */
import { cp, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetLab, type ArpingReport } from '../netlab.js';
import { LabCluster, GROUP, type ClusterTiming } from '../cluster.js';
import { InstanceSampler } from '../instance-sampler.js';
import type { VipSampler } from '../vip-sampler.js';
import type { Prober } from '../prober.js';
import { queryOwnership } from '../../../src/agent/controller-link.js';
import type { Ownership } from '../../../workflows/shared.js';
import { ChaosProcesses } from './processes.js';
import { healEverything, inject, roles, type ChaosEnv } from './faults.js';
import { describeFault, makeSchedule, type FaultKind, type FaultSpec } from './schedule.js';
import { check, clientGaps, settled, DEFAULT_BOUNDS, type ArpCheck, type ChaosBounds, type ChaosRecord, type ChaosVerdict, type FaultRecord, type View } from './checker.js';

export const HOSTS = ['n1', 'n2'] as const;

/** Timing profiles: `lab` is the failover lab tests' (a 2 s lease a loaded 2-core machine keeps); `default` the product's. */
export const PROFILES: Record<string, { timing: ClusterTiming; ttlMs: number; deadtimeMs: number; what: string }> = {
  lab: {
    timing: { heartbeat: { interval: '100ms', deadtime: '500ms' }, lease: { ttl: '2s', margin: '150ms' }, failover: { verifyTimeout: '500ms' } },
    ttlMs: 2000,
    deadtimeMs: 500,
    what: 'heartbeat 100ms/500ms, lease 2s+150ms, verify 500ms (the failover lab tests\')',
  },
  default: { timing: {}, ttlMs: 600, deadtimeMs: 600, what: 'the product\'s defaults: heartbeat 150ms/600ms, lease 600ms+100ms, verify 300ms' },
};

export interface ChaosOptions {
  seed: number;
  faults: number;
  kinds?: readonly FaultKind[];
  profile?: keyof typeof PROFILES;
  /** Scales the schedule's durations. */
  pace?: number;
  bounds?: Partial<ChaosBounds>;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Keep the lab directory (logs) afterwards; default: only when something failed. */
  keepDir?: boolean;
  /**
   * Called every `checkpointEvery` faults (default 25) with the checker's verdict on the run so
   * far, so that a run cut short (the machine's processes killed) still leaves its figures.
   */
  onCheckpoint?: (verdict: ChaosVerdict, faultsDone: number) => Promise<void> | void;
  checkpointEvery?: number;
}

export interface ChaosResult {
  seed: number;
  profile: string;
  schedule: FaultSpec[];
  verdict: ChaosVerdict;
  record: ChaosRecord;
  /** Agents that exited by themselves (restarted by the supervisor). */
  agentExits: ChaosProcesses['unexpectedExits'];
  durationMs: number;
  /** The lab's directory (logs), when kept. */
  labDir?: string;
}

const isService = (cmdline: string) => cmdline.includes('pid-service.mjs');

/** The controller's answer, or undefined after `ms` (Temporal down, the worker away). */
async function ownership(cluster: LabCluster, ms = 3000): Promise<Ownership | undefined> {
  return cluster.client.withDeadline(Date.now() + ms, () => queryOwnership(cluster.client, cluster.cluster)).catch(() => undefined);
}

/** Runs the schedule; never leaves anything behind. @throws only when the lab or the cluster cannot be set up. */
export async function runChaos(opts: ChaosOptions): Promise<ChaosResult> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const profileName = opts.profile ?? 'lab';
  const profile = PROFILES[profileName];
  if (!profile) throw new Error(`unknown profile '${profileName}' (${Object.keys(PROFILES).join(', ')})`);
  const bounds: ChaosBounds = { ...DEFAULT_BOUNDS, ...opts.bounds };
  const schedule = makeSchedule({ seed: opts.seed, faults: opts.faults, ...(opts.kinds ? { kinds: opts.kinds } : {}), ...(opts.pace ? { pace: opts.pace } : {}) }, profile);
  const began = Date.now();
  log(`chaos: seed ${opts.seed} (replay: npm run chaos -- --seed ${opts.seed} --faults ${opts.faults}${profileName !== 'lab' ? ` --profile ${profileName}` : ''}), ${opts.faults} faults, profile ${profileName}: ${profile.what}`);

  const lab = await NetLab.create({ hosts: [...HOSTS], client: true, keepDir: opts.keepDir ?? false });
  // A failed run's logs and Temporal database are copied here before the lab removes its directory.
  const keptDir = join(tmpdir(), `haoscar-chaos-${opts.seed}-${began}`);
  const cluster = new LabCluster(lab, profile.timing);
  const procs = new ChaosProcesses(lab, cluster, (line) => log(`  ${line}`));
  const temporalDb = join(lab.dir, 'temporal.db');
  const env: ChaosEnv = { lab, cluster, procs, temporalDb, log };
  let vip: VipSampler | undefined;
  let instances: InstanceSampler | undefined;
  let client: Prober | undefined;
  const faults: FaultRecord[] = [];
  const arpChecks: ArpCheck[] = [];
  const pendingArp: Promise<void>[] = [];
  let failed = true;
  try {
    await lab.startDevServer({ dbFile: temporalDb });
    await cluster.start();
    procs.supervise();
    vip = await lab.sampleVip(lab.vip, 20);
    instances = new InstanceSampler(Object.fromEntries(lab.hosts.map((h) => [h, lab.ns(h)])), isService, 20);
    client = await lab.probe(cluster.url, { everyMs: 20, timeoutMs: 300 });
    const startedAt = Date.now();

    const vipLive = () => vip!.holders().filter((h) => lab.isAlive(h));
    const observe = async (since: number): Promise<View> => {
      const s = await ownership(cluster);
      const g = s?.groups[GROUP];
      const now = instances!.now();
      const last = client!.lastOk();
      const guards = procs.guardPids();
      const blocked = g?.operation?.blocked;
      return {
        at: Date.now(),
        ...(s && g
          ? {
              controller: {
                owner: g.owner,
                state: g.state,
                epoch: g.epoch,
                nodes: Object.fromEntries(Object.entries(s.nodes).map(([n, l]) => [n, l.state])),
                ...(blocked ? { blocked: `${blocked.node} at epoch ${blocked.epoch}: ${blocked.detail}` } : {}),
              },
            }
          : {}),
        vipLive: vipLive(),
        instances: Object.fromEntries(Object.entries(now.byHost).filter(([h]) => lab.isAlive(h)).map(([h, pids]) => [h, pids.length])),
        ...(last && last.t >= since && Date.now() - last.t < 1000 && last.host ? { clientHost: last.host } : {}),
        agents: procs.agentsRunning(),
        guards: lab.hosts.filter((h) => lab.isAlive(h) && (guards.get(h)?.length ?? 0) > 0),
      };
    };
    /** Polls until settled (or `patienceMs`): the first settled view, or the last one seen. */
    const settle = async (since: number, patienceMs: number): Promise<{ at?: number; view: View }> => {
      const until = Date.now() + patienceMs;
      let view = await observe(since);
      for (;;) {
        if (settled(view, lab.hosts).ok) return { at: view.at, view };
        if (Date.now() > until) return { view };
        await sleep(100);
        view = await observe(since);
      }
    };
    const arp = (fault: FaultSpec) => {
      const p = lab.arpingAddress(lab.vip, { seconds: 1 }).then(
        (r: ArpingReport) => void arpChecks.push({ at: r.at, ms: 1000, answers: r.answers }),
        (e: unknown) => log(`  #${fault.index}: the client's ARP check failed: ${String(e)}`),
      );
      pendingArp.push(p);
      return p;
    };

    const first = await settle(0, 90_000);
    if (first.at === undefined) throw new Error(`the cluster did not settle before the first fault: ${JSON.stringify(first.view)}`);
    log(`chaos: cluster settled (group on ${first.view.controller?.owner}); ${schedule.length} faults follow`);

    let unsettledInARow = 0;
    for (const spec of schedule) {
      if (unsettledInARow >= 2) {
        log(`chaos: the cluster did not settle, even after its agents were restarted, twice in a row: the rest of the schedule (${schedule.length - faults.length} faults) is skipped (seed ${opts.seed})`);
        break;
      }
      const who = await roles(env, vipLive);
      const before = await ownership(cluster);
      const record: FaultRecord = { spec, targets: [], injectedAt: Date.now(), ...(before?.groups[GROUP] ? { epochBefore: before.groups[GROUP].epoch } : {}) };
      faults.push(record);
      log(`${describeFault(spec)} on ${spec.target === 'all' ? 'both' : spec.target === 'standby' ? who.standby : who.owner} (owner ${who.owner})`);
      try {
        record.injectedAt = Date.now();
        const injected = await inject(env, spec, who);
        record.targets = injected.targets;
        // The client's ARP check in the middle of the fault (not awaited: it listens for 1 s).
        const mid = sleep(spec.holdMs / 2).then(() => arp(spec));
        await sleep(spec.holdMs);
        await injected.heal();
        record.healedAt = Date.now();
        await mid;
      } catch (e) {
        record.harnessError = e instanceof Error ? e.message : String(e);
        log(`  harness: ${record.harnessError}; healing everything`);
        const problems = await healEverything(env);
        if (problems.length > 0) log(`  harness: ${problems.join('; ')}`);
        record.healedAt = Date.now();
      }
      const done = await settle(record.healedAt, bounds.recoveryMs + 5_000);
      record.view = done.view;
      if (done.at !== undefined) {
        unsettledInARow = 0;
        record.settledAt = done.at;
        const epoch = done.view.controller?.epoch;
        log(`  settled ${Math.round(done.at - record.healedAt)} ms after the heal: ${done.view.controller?.owner} at epoch ${epoch}${epoch !== record.epochBefore ? ` (was ${record.epochBefore})` : ''}`);
      } else {
        const why = settled(done.view, lab.hosts);
        log(`  NOT SETTLED ${bounds.recoveryMs + 5_000} ms after the heal: ${why.ok ? '?' : why.why} (seed ${opts.seed})`);
        // Recorded (the checker counts it); now what an operator would do, so that the next
        // faults do not pile up on this one: restart both agents (each stops what it holds, and
        // reports that it restarted).
        await healEverything(env);
        for (const h of lab.hosts) await procs.restartAgent(h);
        const again = await settle(Date.now(), bounds.recoveryMs);
        if (again.at !== undefined) {
          unsettledInARow = 0;
          log('  settled again after both agents were restarted (the fault still counts as a violation)');
        } else {
          unsettledInARow++;
          const still = settled(again.view, lab.hosts);
          log(`  still not settled after both agents were restarted: ${still.ok ? '?' : still.why}`);
        }
      }
      await arp(spec);
      const outage = clientGaps(client.results.filter((r) => r.t >= record.injectedAt - 1000), Date.now())
        .filter((g) => g.to > record.injectedAt)
        .reduce((m, g) => Math.max(m, g.ms), 0);
      log(`  client outage within the fault: ${Math.round(outage)} ms`);
      await sleep(spec.quietMs);
      if (opts.onCheckpoint && faults.length % (opts.checkpointEvery ?? 25) === 0) {
        // The samplers go on: the periods so far come from a copy of what they have seen.
        const so = await vip.snapshot();
        await opts.onCheckpoint(check({
          seed: opts.seed,
          hosts: [...lab.hosts],
          startedAt,
          stoppedAt: Date.now(),
          vipPeriods: so.holdersOverTime,
          samplerErrors: so.errors,
          hostEvents: [...lab.hostEvents()],
          instanceSamples: instances.snapshot(),
          arpChecks: [...arpChecks],
          probes: client.results.map((r) => ({ t: r.t, ok: r.ok, ...(r.host ? { host: r.host } : {}) })),
          faults: [...faults],
        }, bounds), faults.length);
      }
    }
    await Promise.all(pendingArp);

    const probes = await client.stop();
    const held = await vip.stop();
    const ran = instances.stop();
    const record: ChaosRecord = {
      seed: opts.seed,
      hosts: [...lab.hosts],
      startedAt,
      stoppedAt: Date.now(),
      vipPeriods: held.holdersOverTime,
      samplerErrors: held.errors,
      hostEvents: [...lab.hostEvents()],
      instanceSamples: ran.samples,
      arpChecks,
      probes: probes.results.map((r) => ({ t: r.t, ok: r.ok, ...(r.host ? { host: r.host } : {}) })),
      faults,
    };
    const verdict = check(record, bounds);
    failed = verdict.violations.length > 0 || verdict.harnessErrors.length > 0;
    return {
      seed: opts.seed,
      profile: profileName,
      schedule,
      verdict,
      record,
      agentExits: procs.unexpectedExits,
      durationMs: Date.now() - began,
      ...(opts.keepDir ? { labDir: lab.dir } : failed ? { labDir: keptDir } : {}),
    };
  } finally {
    instances?.stop();
    await procs.close();
    await cluster.close();
    if (opts.keepDir) log(`chaos: the lab's logs are kept in ${lab.dir}`);
    else if (failed) {
      // Not the guards' FIFOs (cp refuses them): the logs and the database.
      const regular = async (src: string) => (await lstat(src).catch(() => undefined))?.isFIFO() !== true;
      await cp(lab.dir, keptDir, { recursive: true, filter: regular }).then(
        () => log(`chaos: the lab's logs and Temporal database are kept in ${keptDir}`),
        (e: unknown) => log(`chaos: could not keep the lab's logs: ${String(e)}`),
      );
    }
    await lab.close();
  }
}

const fmtMs = (ms: number | undefined) => (ms === undefined ? '-' : `${Math.round(ms)} ms`);

/** The figures of a run, as `npm run chaos` prints them. */
export function formatReport(r: ChaosResult): string {
  const v = r.verdict;
  const lines: string[] = [];
  lines.push(`chaos run: seed ${r.seed}, profile ${r.profile}, ${v.faults} faults in ${Math.round(r.durationMs / 1000)} s`);
  lines.push('');
  lines.push('fault kind                    count  moved  median recovery  median outage  worst outage');
  for (const k of [...v.perKind].sort((a, b) => a.kind.localeCompare(b.kind))) {
    lines.push(`${k.kind.padEnd(28)}  ${String(k.count).padStart(5)}  ${String(k.moved).padStart(5)}  ${fmtMs(k.medianRecoveryMs).padStart(15)}  ${fmtMs(k.medianOutageMs).padStart(13)}  ${fmtMs(k.maxOutageMs).padStart(12)}`);
  }
  lines.push('(recovery: heal → the group running on one node, the controller, the VIP, the service, the client and every agent and guard agreeing; outage: the longest gap between successful client requests within the fault)');
  lines.push('');
  lines.push(`longest client outage: ${fmtMs(v.longestOutage.ms)}${v.longestOutage.fault ? ` (${v.longestOutage.fault})` : ''}`);
  const frozenMs = v.frozenOverlaps.filter((o) => o.what === 'vip').reduce((s, o) => Math.max(s, o.ms), 0);
  lines.push(`whole-node freeze overlaps (documented, not violations): ${v.frozenOverlaps.length}${v.frozenOverlaps.length ? `, longest VIP overlap ${fmtMs(frozenMs)}` : ''}`);
  if (r.agentExits.length > 0) lines.push(`agents that exited by themselves (restarted): ${r.agentExits.map((e) => `${e.host} (${e.code ?? e.signal})`).join(', ')}`);
  if (v.harnessErrors.length > 0) lines.push(`HARNESS ERRORS: ${v.harnessErrors.length}\n  ${v.harnessErrors.join('\n  ')}`);
  lines.push(`violations: ${v.violations.length}`);
  for (const x of v.violations) lines.push(`  ${x.rule}${x.fault ? ` during ${x.fault}` : ''} at +${Math.round((x.at - r.record.startedAt) / 1000)}s: ${x.detail}`);
  if (v.violations.length > 0 || v.harnessErrors.length > 0) lines.push(`replay: npm run chaos -- --seed ${r.seed} --faults ${v.faults}${r.profile !== 'lab' ? ` --profile ${r.profile}` : ''}${r.labDir ? `\nlogs: ${r.labDir}` : ''}`);
  return lines.join('\n');
}
