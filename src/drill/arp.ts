/**
 * Two holders of a VIP, seen from where the drill runs: who answers ARP for the address, in
 * rounds, throughout the move.
 *
 * Each round is one `arping -b -c 1 -I IFACE VIP` (iputils), interrupted after `roundMs`: ONE
 * broadcast ARP request, and every answer to it. Every host that has the address on that link
 * answers a request for it, so two MACs answering the same request are two holders at the same
 * moment: a duplicate address. Rounds follow each other, so the check samples the move; an
 * overlap shorter than a round can fall between two requests.
 *
 * Why not `arping -D` (duplicate address detection, RFC 2131 4.4.1)? Its probe comes from
 * 0.0.0.0, and every holder answers it too, but iputils arping stops at the FIRST answer (`-D`
 * sets quit_on_reply; 20221126 here) and exits 1: it can tell that someone holds the address,
 * never that two do. With two holders in the lab it printed the same one MAC on every run.
 * A broadcast request from this host's own address on the link (`-b`: every request broadcast,
 * not unicast to the first answerer) gets every holder's answer.
 */
import type { Exec } from '../exec.js';

/** What one round heard. */
export interface ArpRound {
  /** When its request was sent (ms since the epoch). */
  at: number;
  /** Distinct MACs that answered, lower case, in the order they answered. */
  macs: string[];
}

/** The answers in arping's output: `Unicast reply from 10.0.0.100 [AA:BB:CC:DD:EE:FF]  0.621ms`. Pure. */
export function parseArpingAnswers(output: string, address: string): { macs: string[]; sent?: number } {
  const macs: string[] = [];
  for (const m of output.matchAll(/^(?:Unicast|Broadcast) (?:reply|request) from ([\d.]+) \[([0-9A-Fa-f:]{17})\]/gm)) {
    if (m[1] !== address) continue;
    const mac = m[2]!.toLowerCase();
    if (!macs.includes(mac)) macs.push(mac);
  }
  const sent = /^Sent (\d+) probes?/m.exec(output);
  return { macs, ...(sent ? { sent: Number(sent[1]) } : {}) };
}

/** Where ARP for `address` goes from this host: `ip -o route get` parsed. Pure. */
export function parseRouteGet(output: string): { dev?: string; src?: string; via?: string; local: boolean } {
  const line = output.split('\n')[0] ?? '';
  const field = (name: string) => new RegExp(`(?:^|\\s)${name} (\\S+)`).exec(line)?.[1];
  const dev = field('dev');
  const src = field('src');
  const via = field('via');
  return { ...(dev ? { dev } : {}), ...(src ? { src } : {}), ...(via ? { via } : {}), local: /^local\s/.test(line) };
}

/** The interface to ask on, or why the check cannot be made from this host. */
export async function arpInterface(exec: Exec, address: string): Promise<{ dev: string } | { notChecked: string }> {
  let out: string;
  try {
    out = (await exec('ip', ['-o', 'route', 'get', address], { timeoutMs: 5000 })).stdout;
  } catch (err) {
    return { notChecked: `no route to ${address} from this host (${(err as Error).message})` };
  }
  const r = parseRouteGet(out);
  if (r.local) return { notChecked: `this host holds ${address} itself` };
  if (r.via) return { notChecked: `${address} is reached through the router ${r.via}, not on a link of this host: ARP cannot see its holders from here (run the drill from a host on the VIP's network, or pass --interface)` };
  if (!r.dev) return { notChecked: `\`ip route get ${address}\` names no interface: ${out.trim()}` };
  return { dev: r.dev };
}

export interface ArpWatchReport {
  address: string;
  interface: string;
  rounds: ArpRound[];
  /** Every MAC that answered, in order of first answer. */
  macs: string[];
  /** Rounds in which two or more MACs answered the same request: two holders at once. */
  duplicates: ArpRound[];
  /** Why rounds failed (arping missing, not permitted), if any did. */
  errors: string[];
}

/** The report of `rounds`. Pure. */
export function summarizeArpRounds(address: string, iface: string, rounds: readonly ArpRound[], errors: readonly string[] = []): ArpWatchReport {
  const macs: string[] = [];
  for (const r of rounds) for (const m of r.macs) if (!macs.includes(m)) macs.push(m);
  return { address, interface: iface, rounds: [...rounds], macs, duplicates: rounds.filter((r) => r.macs.length >= 2), errors: [...errors] };
}

/** One round per `roundMs` until stop(); arping through the exec layer. */
export class ArpWatch {
  private readonly rounds: ArpRound[] = [];
  private readonly errors: string[] = [];
  private stopping = false;
  private readonly loop: Promise<void>;

  constructor(
    private readonly exec: Exec,
    readonly address: string,
    readonly iface: string,
    private readonly roundMs = 250,
    private readonly arping = 'arping',
  ) {
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const at = Date.now();
      try {
        // -c 1: one request (the next would go a second later); exits 1 when nothing answered.
        const r = await this.exec(this.arping, ['-b', '-c', '1', '-I', this.iface, this.address], { interruptAfterMs: this.roundMs, timeoutMs: this.roundMs + 5000, okExitCodes: [1] });
        this.rounds.push({ at, macs: parseArpingAnswers(r.stdout, this.address).macs });
      } catch (err) {
        // Missing, not permitted (CAP_NET_RAW), interface gone: said once each, not repeated.
        const why = (err as Error).message;
        if (!this.errors.includes(why)) this.errors.push(why);
        if (this.errors.length >= 3 || this.rounds.length === 0) return;
        await new Promise((r) => setTimeout(r, this.roundMs));
      }
    }
  }

  /** Stops after the round under way. Never throws. */
  async stop(): Promise<ArpWatchReport> {
    this.stopping = true;
    await this.loop;
    return summarizeArpRounds(this.address, this.iface, this.rounds, this.errors);
  }
}
