/**
 * The `vip` driver: a virtual address that moves with its group. start adds it to the
 * interface and announces it, so switches and clients learn its new MAC at once instead of
 * when their neighbour entries expire; stop deletes it.
 *
 * - IPv4: `ip -4 address add`, announced with gratuitous ARP (iputils `arping -U`, as
 *   resource-agents' IPaddr2 does with `arp_sender=iputils_arping`).
 * - IPv6: `ip -6 address add ... nodad`, announced with unsolicited neighbour advertisements
 *   (RFC 4861 7.2.6) by resource-agents' `send_ua`, the helper IPaddr2 itself runs for IPv6.
 *   (Debian's ndisc6 package has no `ndsend`; iputils' arping is IPv4 only.)
 *
 * Every command goes through the injected {@link Exec}; tests run the driver against real `ip`
 * inside a network namespace by giving it an exec that prefixes `ip netns exec NS`.
 */
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { ExecError, type Exec } from '../exec.js';
import type { Logger } from '../log.js';
import type { ServiceDriver, ServiceStatus } from './service-driver.js';
import type { VipResource } from '../config/types.js';
import type { GuardAction } from '../guard/protocol.js';
import { canonicalIPv6, parseVipAddress, type VipAddress } from '../config/ip-address.js';

export interface VipDriverDeps {
  exec: Exec;
  logger: Logger;
  /** `ip` from iproute2; `ip` on PATH unless a test or distribution says so. */
  ipBin?: string;
  /** iputils `arping`; `arping` on PATH unless a test or distribution says so. */
  arpingBin?: string;
  /** resource-agents' `send_ua` (not on PATH); {@link SEND_UA} unless a test or distribution says so. */
  sendUaBin?: string;
  /** Per `ip` call. */
  timeoutMs?: number;
  /** The node's interfaces and their addresses (os.networkInterfaces unless a test says so). */
  listAddresses?: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
}

/** Where Debian, RHEL and Fedora's resource-agents install `send_ua`. */
export const SEND_UA = '/usr/libexec/heartbeat/send_ua';

/** One address line of `ip -o -4|-6 address show`. */
export interface IpAddressLine {
  ifindex: number;
  ifname: string;
  /** IPv6 in canonical text (RFC 5952), as `ip` prints it. */
  address: string;
  prefixLength: number;
}

/**
 * Parses `ip -o -4 address show [dev IFACE]` (one address per line:
 * `2: eth0    inet 10.0.0.5/24 brd 10.0.0.255 scope global eth0\       valid_lft ...`), or with
 * `family` 6 the `inet6` lines of `ip -o -6 address show`. Lines of the other family and
 * anything unreadable are skipped. A point-to-point address (`inet 10.0.0.1 peer 10.0.0.2/32`)
 * takes the prefix length printed after the peer, which is the one the kernel stores. Pure,
 * so it is tested on captured output.
 */
export function parseIpAddressShow(text: string, family: 4 | 6 = 4): IpAddressLine[] {
  const lines: IpAddressLine[] = [];
  const keyword = family === 4 ? 'inet' : 'inet6';
  const maxLength = family === 4 ? 32 : 128;
  for (const raw of text.split('\n')) {
    // `-o` folds the address's continuation lines into one, joined by a backslash.
    const line = raw.split('\\')[0] ?? '';
    const match = new RegExp(`^\\s*(\\d+):\\s+(\\S+)\\s+${keyword}\\s+(\\S+)(?:\\s+peer\\s+(\\S+))?`).exec(line);
    if (!match) continue;
    const [, index = '', ifname = '', local = '', peer] = match;
    const [written, ownLength] = local.split('/');
    const prefixText = ownLength ?? peer?.split('/')[1] ?? String(maxLength);
    const prefixLength = Number(prefixText);
    const address = family === 4 ? (written && isIPv4(written) ? written : undefined) : canonicalIPv6(written ?? '');
    if (!address || !Number.isInteger(prefixLength) || prefixLength < 0 || prefixLength > maxLength) continue;
    lines.push({ ifindex: Number(index), ifname: stripPeer(ifname), address, prefixLength });
  }
  return lines;
}

/**
 * Interface names from `ip -o link` (`3: veth0@if2: <BROADCAST,...> mtu 1500 ...`); the
 * `@peer` suffix iproute2 prints for stacked and paired links is not part of the name. Pure.
 */
export function parseIpLinkNames(text: string): string[] {
  const names: string[] = [];
  for (const line of text.split('\n')) {
    const match = /^\s*\d+:\s+([^:\s]+):\s/.exec(line);
    if (match?.[1]) names.push(stripPeer(match[1]));
  }
  return names;
}

function stripPeer(name: string): string {
  const at = name.indexOf('@');
  return at > 0 ? name.slice(0, at) : name;
}

function isIPv4(text: string): boolean {
  const parts = text.split('.');
  return parts.length === 4 && parts.every((part) => /^\d{1,3}$/.test(part) && Number(part) <= 255);
}

/** Thrown by start when the interface does not exist on this node: retrying will not help. */
export class InterfaceNotFoundError extends Error {
  constructor(
    readonly iface: string,
    /** The node's interfaces, when they could be listed. */
    readonly available: readonly string[] | undefined,
    cause?: unknown,
  ) {
    const has = available ? `this node has ${available.length > 0 ? available.join(', ') : 'no interfaces'}` : 'its interfaces could not be listed';
    super(`interface ${iface} not found on this node (${has}): fix groups[..] interface`, { cause });
    this.name = 'InterfaceNotFoundError';
  }
}

/** The kernel's answers to adding a present address / deleting an absent one (iproute2 ≥ 5.x words, then older RTNETLINK words). */
const ALREADY_PRESENT = /Address already assigned|File exists/;
const NOT_PRESENT = /Address not found|Cannot assign requested address/;
const NO_SUCH_DEVICE = /Cannot find device|does not exist/;

/** Bounds one `arping -c 1` or `send_ua -c 1`, which take about a second (each waits one interval after its packet). */
const ANNOUNCE_TIMEOUT_MS = 5_000;

/**
 * The command of one announcement packet: `arping -U -c 1 -I IF ADDR` (gratuitous ARP) or
 * `send_ua -i 1000 -c 1 ADDR LEN IF` (one unsolicited neighbour advertisement to all nodes,
 * override flag set, then a one-second pause: the spacing arping keeps). Pure.
 */
export function announceCommand(vip: VipAddress, iface: string, bins: { arping: string; sendUa: string }): [string, string[]] {
  return vip.family === 4
    ? [bins.arping, ['-U', '-c', '1', '-I', iface, vip.address]]
    : [bins.sendUa, ['-i', '1000', '-c', '1', vip.address, String(vip.prefixLength), iface]];
}

/**
 * The `ip` arguments that add, delete or list the VIP. IPv6 is added with `nodad`: without
 * it the kernel first runs duplicate address detection, and for about a second (one
 * retransmission, longer with `dad_transmits`) the address is tentative: the service cannot
 * bind it, the kernel does not answer neighbour solicitations for it, and send_ua cannot send
 * from it. A failover must not wait for that, and DAD would not protect anything here: the
 * old owner let go of the address before its lease ran out (its lease guard deletes it), and
 * a node that still has it is fenced, not detected. (DAD that fails also leaves the address
 * `dadfailed`, unusable until deleted by hand.) Pure.
 */
export function ipArguments(verb: 'add' | 'del' | 'show', vip: VipAddress, iface: string): string[] {
  const family = vip.family === 4 ? '-4' : '-6';
  const cidr = `${vip.address}/${vip.prefixLength}`;
  if (verb === 'show') return ['-o', family, 'address', 'show', 'dev', iface];
  return [family, 'address', verb, cidr, 'dev', iface, ...(verb === 'add' && vip.family === 6 ? ['nodad'] : [])];
}

interface Announcer {
  cancelled: boolean;
  done: Promise<void>;
}

export class VipDriver implements ServiceDriver {
  readonly kind = 'vip' as const;
  readonly #vip: VipAddress;
  readonly #iface: string;
  readonly #arpCount: number;
  readonly #exec: Exec;
  readonly #logger: Logger;
  readonly #ip: string;
  readonly #arping: string;
  readonly #sendUa: string;
  readonly #timeoutMs: number;
  readonly #listAddresses: () => NodeJS.Dict<NetworkInterfaceInfo[]>;
  #announcer: Announcer | undefined;

  /** @throws Error when `resource.address` is not a usable `ADDRESS/LEN` (the schema already ensures it). */
  constructor(resource: VipResource, deps: VipDriverDeps) {
    const vip = parseVipAddress(resource.address);
    if ('problem' in vip) throw new Error(`vip ${resource.name}: ${vip.problem}, not ${resource.address}`);
    this.#vip = vip;
    this.#iface = resource.interface;
    this.#arpCount = resource.arpCount;
    this.#exec = deps.exec;
    this.#ip = deps.ipBin ?? 'ip';
    this.#arping = deps.arpingBin ?? 'arping';
    this.#sendUa = deps.sendUaBin ?? SEND_UA;
    this.#timeoutMs = deps.timeoutMs ?? 10_000;
    this.#listAddresses = deps.listAddresses ?? networkInterfaces;
    this.#logger = deps.logger.child({ driver: 'vip', address: this.#cidr, interface: this.#iface });
  }

  get #cidr(): string {
    return `${this.#vip.address}/${this.#vip.prefixLength}`;
  }

  /**
   * Adds the address unless it is already there, then announces it with `arpCount`
   * gratuitous ARPs (IPv6: unsolicited neighbour advertisements) in the background: the first
   * leaves within milliseconds, and start does not wait the second spent on each packet (a
   * failover must not wait for them). A failed announcement is logged, not fatal: the address
   * works, neighbours just learn it later.
   * @throws InterfaceNotFoundError when the interface does not exist; Error when `ip` fails.
   */
  async start(): Promise<void> {
    const present = await this.#addresses();
    if (present === 'no-interface') throw new InterfaceNotFoundError(this.#iface, await this.#interfaces());
    if (this.#holds(present)) {
      this.#logger.info('address already on the interface');
    } else {
      this.#logger.info('adding address');
      try {
        await this.#runIp(ipArguments('add', this.#vip, this.#iface));
      } catch (error) {
        // Someone added it between our look and our add: the state we want.
        if (error instanceof ExecError && ALREADY_PRESENT.test(error.stderr)) {
          this.#logger.info('address was added meanwhile');
        } else if (error instanceof ExecError && NO_SUCH_DEVICE.test(error.stderr)) {
          throw new InterfaceNotFoundError(this.#iface, await this.#interfaces(), error);
        } else {
          throw this.#describe('add', error);
        }
      }
    }
    // Also when the address was already there: a retried start may follow one that added the
    // address and died before announcing it, and an extra announcement harms nobody.
    this.#announce();
  }

  /**
   * Stops a running announcement, then deletes the address. An absent address and a missing
   * interface both count as stopped.
   * @throws Error when `ip` fails otherwise.
   */
  async stop(): Promise<void> {
    // Race: an arping still running after the delete would keep telling the network the
    // address is here, while the node taking over announces it there. Wait for the one
    // packet in flight (at most about a second) before letting go.
    await this.#stopAnnouncing();
    const present = await this.#addresses();
    if (present === 'no-interface') {
      this.#logger.info('interface not found: the address cannot be on it');
      return;
    }
    if (!this.#holds(present)) {
      this.#logger.info('address not on the interface: already stopped');
      return;
    }
    this.#logger.info('deleting address');
    try {
      await this.#runIp(ipArguments('del', this.#vip, this.#iface));
    } catch (error) {
      if (error instanceof ExecError && NOT_PRESENT.test(error.stderr)) return;
      if (error instanceof ExecError && NO_SUCH_DEVICE.test(error.stderr)) {
        this.#logger.info('interface vanished: the address went with it');
        return;
      }
      throw this.#describe('del', error);
    }
  }

  /**
   * Running means the address with its prefix length is on the interface.
   * @throws Error when `ip` fails for another reason than a missing interface.
   */
  guardActions(): GuardAction[] {
    // The canonical text: the guard finds the address in `ip address show` by it.
    return [{ kind: 'vip', device: this.#iface, address: this.#cidr }];
  }

  /**
   * The owner's agent asks this at every check interval. A held address is found in
   * os.networkInterfaces() (getifaddrs: netlink, in-process) without running `ip`: spawning a
   * command from the agent, a node process of some 150 MB, was most of an idle owner's CPU
   * (issue 14 item 5: 7 % of a core of its 11 %). Anything else (not listed, which getifaddrs also
   * says of an address on a link that is down or not running; another prefix length; another
   * label) is looked up with `ip`, which says exactly what is there.
   */
  async status(): Promise<ServiceStatus> {
    if (this.#listedAsHeld()) return { running: true, detail: `${this.#cidr} on ${this.#iface}` };
    const present = await this.#addresses();
    if (present === 'no-interface') return { running: false, detail: `interface ${this.#iface} not found` };
    if (this.#holds(present)) return { running: true, detail: `${this.#cidr} on ${this.#iface}` };
    const other = present.find((line) => line.address === this.#vip.address);
    return {
      running: false,
      detail: `${this.#vip.address} not on ${this.#iface}${other ? ` (it is there as ${other.address}/${other.prefixLength})` : ''}`,
    };
  }

  /** Stops announcing (the address stays). */
  async close(): Promise<void> {
    await this.#stopAnnouncing();
  }

  #listedAsHeld(): boolean {
    let listed: NetworkInterfaceInfo[] | undefined;
    try {
      listed = this.#listAddresses()[this.#iface];
    } catch {
      return false; // ip decides
    }
    const family = this.#vip.family === 4 ? 'IPv4' : 'IPv6';
    return (listed ?? []).some((info) => info.family === family
      && (this.#vip.family === 4 ? info.address : canonicalIPv6(info.address)) === this.#vip.address
      && info.cidr === `${info.address}/${this.#vip.prefixLength}`);
  }

  #holds(lines: IpAddressLine[]): boolean {
    return lines.some((line) => line.address === this.#vip.address && line.prefixLength === this.#vip.prefixLength && line.ifname === this.#iface);
  }

  async #addresses(): Promise<IpAddressLine[] | 'no-interface'> {
    try {
      const { stdout } = await this.#runIp(ipArguments('show', this.#vip, this.#iface));
      return parseIpAddressShow(stdout, this.#vip.family);
    } catch (error) {
      // `Device "eth9" does not exist.`, exit 1.
      if (error instanceof ExecError && error.exitCode !== undefined && NO_SUCH_DEVICE.test(error.stderr)) return 'no-interface';
      throw this.#describe('show', error);
    }
  }

  async #interfaces(): Promise<string[] | undefined> {
    try {
      return parseIpLinkNames((await this.#runIp(['-o', 'link'])).stdout);
    } catch (error) {
      this.#logger.warn({ err: error }, 'could not list the interfaces');
      return undefined;
    }
  }

  #runIp(args: string[]) {
    return this.#exec(this.#ip, args, { timeoutMs: this.#timeoutMs });
  }

  #announce(): void {
    if (this.#arpCount === 0) return;
    if (this.#announcer) {
      this.#logger.debug('an announcement is already running');
      return;
    }
    const announcer: Announcer = { cancelled: false, done: Promise.resolve() };
    announcer.done = this.#sendArps(announcer).finally(() => {
      if (this.#announcer === announcer) this.#announcer = undefined;
    });
    this.#announcer = announcer;
  }

  /**
   * One `arping -c 1` (or `send_ua -c 1`) per packet rather than one run with `-c N`: each
   * takes about a second (the spacing `-c N` would use too), and between packets the
   * announcement can be cancelled, which a single long run through {@link Exec} could not be.
   * Never rejects.
   */
  async #sendArps(announcer: Announcer): Promise<void> {
    const [file, args] = announceCommand(this.#vip, this.#iface, { arping: this.#arping, sendUa: this.#sendUa });
    const what = this.#vip.family === 4 ? 'gratuitous ARP' : 'unsolicited neighbour advertisement';
    for (let sent = 0; sent < this.#arpCount && !announcer.cancelled; sent += 1) {
      try {
        const { stdout, stderr } = await this.#exec(file, args, { timeoutMs: ANNOUNCE_TIMEOUT_MS });
        // send_ua exits 0 whatever happened to its packet and says `ERROR: ...` instead
        // (e.g. `bind() failed` when the address is not, or no longer, on the interface).
        const said = `${stdout}\n${stderr}`;
        if (this.#vip.family === 6 && /ERROR/.test(said)) throw new Error(said.trim().split('\n').find((l) => l.includes('ERROR')) ?? said.trim());
      } catch (error) {
        const why = error instanceof Error ? error.message : String(error);
        const missing = error instanceof ExecError && (error.exitCode === undefined || /No such file|ENOENT/.test(why));
        const hint = missing && this.#vip.family === 6 ? ` (is ${file} installed? it comes with the resource-agents package)` : '';
        this.#logger.warn({ err: error, sent }, `${what} failed (${why})${hint}: neighbours learn the address's new place only when their neighbour entries expire`);
        return;
      }
    }
    if (!announcer.cancelled) this.#logger.debug({ count: this.#arpCount }, `${what}s sent`);
  }

  async #stopAnnouncing(): Promise<void> {
    const announcer = this.#announcer;
    if (!announcer) return;
    announcer.cancelled = true;
    await announcer.done;
  }

  #describe(verb: 'add' | 'del' | 'show', error: unknown): Error {
    const what = `ip ${ipArguments(verb, this.#vip, this.#iface).join(' ')}`;
    if (error instanceof ExecError) {
      const how = error.timedOut
        ? `timed out after ${this.#timeoutMs} ms`
        : error.exitCode === undefined
          ? `could not be run (is iproute2 installed?)`
          : `failed (exit ${error.exitCode})`;
      const stderr = error.stderr.trim();
      return new Error(`${what} ${how}${stderr ? `: ${stderr}` : ''}`, { cause: error });
    }
    return new Error(`${what} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
}
