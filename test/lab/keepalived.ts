/**
 * keepalived in the network lab: the baseline that bench/failover.ts measures HA-OSCAR against.
 * Debian's keepalived (VRRP only) runs inside each host's namespace with a configuration, pid
 * files and a log of its own under the lab's directory, and moves the lab's VIP on `eth0`; the
 * service it fronts (pid-service.mjs, the same as the HA-OSCAR group's) runs on every host
 * beside it, started outside keepalived, since keepalived only moves the address. Nothing of it
 * touches the root namespace: its processes live in the host's namespace, so NetLab.killHost()
 * kills them with the host and close() with the lab.
 *
 * Both hosts are `state BACKUP` with the same priority and `nopreempt`: the first master is
 * chosen by the VRRP election, and a host that comes back does not take the VIP back (a second
 * outage the HA-OSCAR side does not have either: its group stays where it moved).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { commandSync } from './commands.js';
import { waitFor } from '../support/wait.js';
import type { NetLab } from './netlab.js';
import { ROOT, SERVICE_PORT } from './cluster.js';

const PID_SERVICE = join(ROOT, 'test/lab/pid-service.mjs');

/** The VRRP timing of a run: the protocol version and the advertisement interval. */
export interface VrrpTiming {
  version: 2 | 3;
  /** Seconds; VRRPv2 allows whole seconds only, VRRPv3 centiseconds (0.01 to 40.95). */
  advertSeconds: number;
}

/** The virtual router id of the lab's VRRP instance: each lab is a bridge of its own, so one id serves all. */
const VRID = 51;
const PRIORITY = 100;

/** Why keepalived cannot run here, or undefined when it can. */
export function keepalivedSkipReason(): string | undefined {
  if (commandSync(['keepalived', '--version']) === undefined) {
    return 'keepalived is not installed (Debian: apt-get install -y --no-install-recommends keepalived)';
  }
  return undefined;
}

/**
 * keepalived.conf for one lab host: one VRRP instance that holds `vip` on eth0.
 * @throws Error on a timing VRRP cannot express.
 */
export function keepalivedConfig(host: string, vip: string, timing: VrrpTiming): string {
  const { version, advertSeconds } = timing;
  if (version === 2 && !Number.isInteger(advertSeconds)) throw new Error(`VRRPv2 advertises in whole seconds, not ${advertSeconds}`);
  if (!(advertSeconds >= 0.01 && advertSeconds <= (version === 2 ? 255 : 40.95))) throw new Error(`advert_int ${advertSeconds} s is out of VRRPv${version}'s range`);
  return [
    'global_defs {',
    `  router_id haoscar-lab-${host}`,
    // No scripts run, but keepalived warns about the default script user without this.
    '  enable_script_security',
    '}',
    'vrrp_instance lab {',
    '  state BACKUP',
    '  interface eth0',
    `  virtual_router_id ${VRID}`,
    `  priority ${PRIORITY}`,
    `  version ${version}`,
    `  advert_int ${advertSeconds}`,
    '  nopreempt',
    '  virtual_ipaddress {',
    `    ${vip} dev eth0`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** keepalived on the hosts of a lab, and the service it fronts on each. */
export class LabKeepalived {
  /** Each host's keepalived starts, numbered (so each has a log of its own). */
  private readonly boots = new Map<string, number>();

  constructor(
    readonly lab: NetLab,
    readonly timing: VrrpTiming,
  ) {}

  get url(): string {
    return `http://${this.lab.vipIp}:${SERVICE_PORT}/`;
  }

  private dir(host: string): string {
    return join(this.lab.dir, 'keepalived', host);
  }

  /**
   * The directory of the host's latest keepalived: its pid files and log. One per start, as /run
   * is empty at boot: a killed instance's pid files name processes that may still exist (its
   * VRRP child, a zombie until reaped), and keepalived then refuses to start ("daemon is already
   * running").
   */
  private bootDir(host: string): string {
    return join(this.dir(host), `boot-${this.boots.get(host) ?? 0}`);
  }

  /** The log of the host's latest keepalived. */
  log(host: string): string {
    return join(this.bootDir(host), 'keepalived.log');
  }

  /** keepalived, then the service, on every host. */
  async start(): Promise<void> {
    for (const host of this.lab.hosts) {
      await this.startKeepalived(host);
      this.startService(host);
    }
  }

  /**
   * Starts the host's keepalived in its namespace (VRRP only, in the foreground, logging to its
   * file): its own configuration and pid files, so that the hosts' instances never see each
   * other's. Does not wait for it (see state()).
   */
  async startKeepalived(host: string): Promise<void> {
    const conf = join(this.dir(host), 'keepalived.conf');
    this.boots.set(host, (this.boots.get(host) ?? 0) + 1);
    const dir = this.bootDir(host);
    await mkdir(dir, { recursive: true });
    await writeFile(conf, keepalivedConfig(host, this.lab.vip, this.timing));
    // -n: no fork (NetLab kills it with the host); -l -G: log to the console (our file), not
    // syslog; -D: state changes in detail; -P: the VRRP subsystem only.
    void this.lab.spawn(host, [
      'keepalived', '-n', '-l', '-G', '-D', '-P',
      '-f', conf,
      '-p', join(dir, 'keepalived.pid'),
      '-r', join(dir, 'vrrp.pid'),
      '-c', join(dir, 'checkers.pid'),
      '-b', join(dir, 'bfd.pid'),
    ], { log: this.log(host) });
  }

  /** The service (pid-service.mjs on port 8080, every address), as the HA-OSCAR group runs it. */
  startService(host: string): void {
    void this.lab.spawn(host, [process.execPath, PID_SERVICE, String(SERVICE_PORT)], { log: join(this.dir(host), 'service.log') });
  }

  /** The VRRP state the host's latest keepalived last logged (`MASTER`, `BACKUP`, `FAULT`), if any. */
  async state(host: string): Promise<string | undefined> {
    const text = await readFile(this.log(host), 'utf8').catch(() => '');
    // "(lab) Entering BACKUP STATE", "(lab): entering FAULT state (interface eth0 down)".
    return [...text.matchAll(/entering (\w+) state/gi)].at(-1)?.[1]?.toUpperCase();
  }

  /**
   * Waits until the host's latest keepalived has started up: in the state it starts in (BACKUP,
   * or FAULT while its link is down), with the VIPs it found removed.
   */
  async waitForStartup(host: string, timeoutMs: number): Promise<void> {
    await waitFor(`keepalived in ${host} started up (log: ${this.log(host)})`, async () => (await readFile(this.log(host), 'utf8').catch(() => '')).includes('Startup complete'), timeoutMs, 50);
  }

  /** Waits until the host's latest keepalived has logged `state`. */
  async waitForState(host: string, state: string, timeoutMs: number): Promise<void> {
    await waitFor(`keepalived in ${host} in state ${state} (log: ${this.log(host)})`, async () => (await this.state(host)) === state, timeoutMs, 50);
  }
}
