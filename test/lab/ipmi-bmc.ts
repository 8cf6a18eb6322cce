/**
 * A simulated IPMI BMC for a lab host: Debian's openipmi `ipmi_sim`, on the root side of the
 * lab's bridge (a BMC is not the host: it survives the host's death and is reached over the
 * network), with LAN (lanplus) access for `admin`. The host's power is bmc-power.sh, ipmi_sim's
 * startcmd: an IPMI power off really kills the host (link down, every process SIGKILLed), and
 * the BMC's power status then says off. `fence_ipmilan` from fence-agents runs against it as it
 * would against a real BMC (MACHINE-NOTES: ipmi_sim has no "Get Channel Cipher Suites", so the
 * cipher suite is given: `cipher: "3"`).
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import type { NetLab } from './netlab.js';
import { ROOT } from './cluster.js';
import { freePort } from '../support/lab.js';
import { waitFor } from '../support/wait.js';

const POWER = join(ROOT, 'test/lab/bmc-power.sh');
export const BMC_USER = 'admin';

export class SimulatedBmc {
  private constructor(
    readonly host: string,
    readonly address: string,
    readonly port: number,
    readonly password: string,
    private readonly dir: string,
    private readonly keepFile: string,
    private readonly sim: ResultPromise,
  ) {}

  /** Starts `host`'s BMC with the host powered on (ipmi_sim's `startnow`). */
  static async start(lab: NetLab, host: string, password: string): Promise<SimulatedBmc> {
    const dir = join(lab.dir, 'bmc', host);
    const state = join(dir, 'state');
    await mkdir(state, { recursive: true });
    const port = await freePort();
    const keepFile = join(dir, 'keep-pids');
    await writeFile(keepFile, '');
    // lan.conf(5): one BMC, LAN on the bridge address; power-off goes straight to SIGTERM (no
    // VM is connected to the serial port), SIGKILL after 10 s if the power script hung.
    await writeFile(join(dir, 'lan.conf'), [
      `name "${host}-bmc"`,
      'set_working_mc 0x20',
      '  startlan 1',
      `    addr ${lab.bridgeIp} ${port}`,
      '    priv_limit admin',
      '    allowed_auths_callback none md2 md5 straight',
      '    allowed_auths_user none md2 md5 straight',
      '    allowed_auths_operator none md2 md5 straight',
      '    allowed_auths_admin none md2 md5 straight',
      '    guid a123456789abcdefa123456789abcdef',
      '  endlan',
      `  serial 15 127.0.0.1 ${await freePort()} codec VM`,
      `  startcmd "${POWER} ${lab.ns(host)} ${dir} ${keepFile}"`,
      '  startnow true',
      '  poweroff_wait 1',
      '  kill_wait 10',
      `  user 2 true "${BMC_USER}" "${password}" admin 10 none md2 md5 straight`,
      '',
    ].join('\n'));
    await writeFile(join(dir, 'sim.emu'), 'mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n');
    const sim = execa('ipmi_sim', ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'sim.emu'), '-s', state, '-n'], { reject: false, stdin: 'ignore', all: true });
    const bmc = new SimulatedBmc(host, lab.bridgeIp, port, password, dir, keepFile, sim);
    await waitFor(`${host}'s BMC powered the host on`, async () => (await bmc.readMs('powered-on-at')) ?? (sim.exitCode !== null ? Promise.reject(new Error(`ipmi_sim exited: ${(await sim).all}`)) : undefined), 10_000, 50);
    return bmc;
  }

  /** The lab's observers in the host's namespace, which its power-off must leave alone (they are not the host's). */
  async keep(pids: readonly number[]): Promise<void> {
    await writeFile(this.keepFile, pids.map((p) => `${p}\n`).join(''));
  }

  /** `fence_ipmilan`'s params for this BMC (haoscar.yaml's `nodes[].fence.params`), as a YAML flow mapping. */
  fenceParams(password = this.password): string {
    return `{ ip: ${this.address}, ipport: "${this.port}", username: ${BMC_USER}, password: ${password}, lanplus: "1", cipher: "3" }`;
  }

  /** When the power script took the link down / had killed the last process (ms since the epoch), once it has. */
  linkDownAt(): Promise<number | undefined> {
    return this.readMs('link-down-at');
  }

  poweredOffAt(): Promise<number | undefined> {
    return this.readMs('powered-off-at');
  }

  /** The BMC stops answering (SIGSTOP), as one that hung or lost its network would. */
  pause(): void {
    this.sim.kill('SIGSTOP');
  }

  resume(): void {
    this.sim.kill('SIGCONT');
  }

  /** Stops the simulator (its power script follows it, leaving the host as it is). */
  async stop(): Promise<void> {
    this.sim.kill('SIGCONT');
    this.sim.kill('SIGKILL');
    await this.sim;
  }

  private async readMs(name: string): Promise<number | undefined> {
    const text = await readFile(join(this.dir, name), 'utf8').catch(() => undefined);
    return text && /^\d+\s*$/.test(text) ? Number(text) : undefined;
  }
}
