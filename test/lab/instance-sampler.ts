/**
 * Running instances of a service in every host of a lab, throughout a test: every `everyMs`
 * one pass over /proc finds the processes whose command line matches, in which namespace, and
 * whether they live (a zombie waiting for a frozen parent to reap it serves nobody and does not
 * count; a process stopped with its frozen host is counted, as `frozen`, since it runs again
 * when the host thaws). Two instances at once, on two hosts or on one, is a violation.
 */
import { readFileSync } from 'node:fs';
import { pidsByNamespace } from './commands.js';

export interface InstanceSample {
  at: number;
  /** Live instances per host (pids), hosts without any left out. */
  byHost: Record<string, number[]>;
  /** Of those, the pids stopped (SIGSTOP) at the time. */
  frozen: number[];
}

export interface InstanceReport {
  samples: InstanceSample[];
  /** Samples with two or more live instances in all. */
  dualSamples: InstanceSample[];
  /** Consecutive dual samples as periods (from the first to the last such sample). */
  dualPeriods: { from: number; to: number; byHost: Record<string, number[]> }[];
}

export class InstanceSampler {
  private readonly samples: InstanceSample[] = [];
  private readonly timer: NodeJS.Timeout;

  /**
   * @param namespaces host name → network namespace name
   * @param matches whether a process (its NUL-separated command line) is an instance
   */
  constructor(private readonly namespaces: Record<string, string>, private readonly matches: (cmdline: string) => boolean, everyMs = 20) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  /** The live instances now, per host. */
  now(): InstanceSample {
    const byNs = pidsByNamespace(Object.values(this.namespaces));
    const byHost: Record<string, number[]> = {};
    const frozen: number[] = [];
    for (const [host, ns] of Object.entries(this.namespaces)) {
      for (const pid of byNs.get(ns) ?? []) {
        const state = processState(pid);
        if (state === undefined || state === 'Z' || state === 'X') continue;
        let cmdline: string;
        try {
          cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        } catch {
          continue;
        }
        if (!this.matches(cmdline)) continue;
        (byHost[host] ??= []).push(pid);
        if (state === 'T' || state === 't') frozen.push(pid);
      }
    }
    return { at: Date.now(), byHost, frozen };
  }

  /** The samples so far (a copy), while it goes on. */
  snapshot(): InstanceSample[] {
    return [...this.samples];
  }

  stop(): InstanceReport {
    clearInterval(this.timer);
    this.sample();
    const count = (s: InstanceSample) => Object.values(s.byHost).reduce((n, pids) => n + pids.length, 0);
    const dualSamples = this.samples.filter((s) => count(s) >= 2);
    const dualPeriods: InstanceReport['dualPeriods'] = [];
    let open: InstanceReport['dualPeriods'][number] | undefined;
    for (const s of this.samples) {
      if (count(s) >= 2) {
        if (open) open.to = s.at;
        else dualPeriods.push((open = { from: s.at, to: s.at, byHost: s.byHost }));
      } else open = undefined;
    }
    return { samples: this.samples, dualSamples, dualPeriods };
  }

  private sample(): void {
    this.samples.push(this.now());
  }
}

/** The state letter of /proc/PID/stat (R, S, D, T, Z, ...), or undefined when it is gone. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}
