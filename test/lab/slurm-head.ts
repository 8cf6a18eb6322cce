/**
 * An HPC head node in the network lab (issue 13 item 2; docs/hpc.md): the group of the two lab
 * hosts n1 and n2 runs, besides its VIP, the real Slurm controller (`slurmctld`, with its own
 * `munged`) with its StateSaveLocation on the group's replicated file set, and `dnsmasq` as the
 * cluster's DHCP/TFTP server, its lease file there too. An extra namespace `c1` runs `slurmd` (a
 * compute node) and one `dhcp` a DHCP client; the lab's client namespace submits jobs with `sbatch`
 * and asks `squeue`, both through the VIP. Debian's packages: slurmctld slurmd slurm-client munge
 * dnsmasq busybox.
 *
 * Lab-only choices (the example configuration, examples/hpc-head-node.yaml, is for real machines):
 * - Every daemon runs as root (`SlurmUser=root`, dnsmasq `--user=root`): the lab has no users.
 * - The namespaces share one filesystem, so each namespace's `munged` has its own socket and each
 *   its own copy of slurm.conf naming it (`AuthInfo=socket=`), the only line in which they differ
 *   (`DebugFlags=NO_CONF_HASH` silences the controller's warning about that). The head's `munged`
 *   runs with the group (one socket path for n1 and n2, used by one at a time); on real head nodes
 *   munge runs on every node from systemd.
 * - slurmctld only runs on a host named in `SlurmctldHost`: it is started in a UTS namespace of its
 *   own named `slurm-head` (`unshare --uts`), which is also how docs/hpc.md runs it on two real
 *   head nodes with different host names.
 * - `stateOnDrbd`: StateSaveLocation on "the DRBD resource" as in examples/hpc-head-node.yaml, a
 *   `drbd` resource (the DRBD SIMULATOR, test/support/drbd-sim: roles and states, no data) and a
 *   `filesystem` resource before slurmctld. The filesystem is a real ext4 on a loop device over
 *   an image file in the lab directory: ONE block device that both heads mount (one at a time,
 *   each in its agent's mount namespace), standing in for DRBD's two replicated disks. What n1's
 *   slurmctld wrote is on the device n2 mounts as soon as its write returned: synchronous
 *   replication by construction, the property of DRBD protocol C this lab relies on (see
 *   slurm-sync-lag.test.ts for what that does and does not cover).
 */
import assert from 'node:assert/strict';
import { chmod, mkdir, readdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { NetLab } from './netlab.js';
import { LabCluster, ROOT, type ClusterTiming } from './cluster.js';
import { TIMING, LONG_LEASE } from './failover-setup.js';
import { waitFor } from '../support/wait.js';

const WITH_CGROUP_V1 = join(ROOT, 'test/lab/with-cgroup-v1.sh');

/** The programs the lab runs (Debian 12's paths); a test skips, naming them, when one is missing. */
export const SLURM_PROGRAMS = ['/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/bin/sbatch', '/usr/bin/squeue', '/usr/bin/scontrol', '/usr/sbin/munged', '/usr/sbin/dnsmasq', '/bin/busybox'];
export const missingSlurmPrograms = (): string[] => SLURM_PROGRAMS.filter((p) => !existsSync(p));

/** The name slurmctld runs under (its UTS namespace's host name), as in SlurmctldHost. */
export const SLURM_HEAD_NAME = 'slurm-head';
/** The compute namespace (slurmd) and the DHCP client's: the lab's extras .150 and .151. */
export const COMPUTE = 'c1';
export const DHCP_CLIENT = 'dhcp';
/** The DHCP range: .160-.170 of the lab's /24 (hosts are .11.., the client .100, extras .150.., the VIP .200). */
const DHCP_FIRST = 160;
const DHCP_LAST = 170;

export interface SlurmLab {
  lab: NetLab;
  cluster: LabCluster;
  /** `sbatch`, `squeue`, `scontrol` ... as the client namespace runs them (through the VIP). */
  slurm(argv: string[], timeoutMs?: number): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Where the jobs write their output (`<id>.out`), a directory every namespace sees. */
  jobsDir: string;
  /**
   * The head's StateSaveLocation as `host` has it: its own copy of the file set, or (stateOnDrbd)
   * the device as mounted in its agent's mount namespace (through /proc/PID/root; defined while
   * that agent runs and has it mounted).
   */
  stateOf(host: string): string;
  /** One DHCP exchange from the `dhcp` namespace: the address leased and the server that answered. */
  dhcpLease(): Promise<{ ip: string; server: string; output: string }>;
}

/**
 * Builds the lab (n1, n2, the client, c1, dhcp), writes the configurations, starts munged and
 * slurmd on c1 and munged on the client, then the cluster (the group lands on n1), and waits until
 * the controller answers through the VIP and c1 is idle. `after` registers the teardown (a test's
 * `(fn) => t.after(fn)`).
 */
export interface SlurmLabOptions {
  /** The file set's extra keys (YAML flow mapping entries). */
  fileSet?: string;
  /**
   * StateSaveLocation on a `drbd` + `filesystem` pair in the group (the DRBD simulator and an
   * ext4 loop device both heads mount, see the header) instead of on the file set.
   */
  stateOnDrbd?: boolean;
}

export async function setUpSlurm(after: (cleanup: () => Promise<void>) => void, timing: Partial<ClusterTiming> = {}, options: SlurmLabOptions = {}): Promise<SlurmLab> {
  const fileSet = options.fileSet ?? 'batch: 100ms, verifyEvery: 1h';
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true, extra: [COMPUTE, DHCP_CLIENT] });
  const dir = lab.dir;
  // The file set: <lab>/data, each head's own copy (cluster.ts); dnsmasq's leases and TFTP files
  // are in it, and the controller's state unless it is on the "DRBD" filesystem.
  const data = join(dir, 'data');
  const drbdMount = join(dir, 'drbd');
  const stateDir = options.stateOnDrbd ? join(drbdMount, 'slurmctld') : join(data, 'slurmctld');
  const jobsDir = join(dir, 'jobs');
  const munge = (ns: string) => join(dir, 'munge', ns);
  const conf = (ns: string) => join(dir, `slurm-${ns}.conf`);
  const keyFile = join(dir, 'munge.key');
  await writeFile(keyFile, randomBytes(1024));
  await chmod(keyFile, 0o600);
  await mkdir(jobsDir, { recursive: true });
  for (const h of lab.hosts) {
    await mkdir(join(dir, 'hosts', h, 'data', 'slurmctld'), { recursive: true });
    await mkdir(join(dir, 'hosts', h, 'data', 'tftp'), { recursive: true });
  }
  await writeFile(join(dir, 'hosts', 'n1', 'data', 'tftp', 'pxelinux.0'), 'a boot loader, served by TFTP\n');
  await mkdir(join(dir, 'slurmd', COMPUTE), { recursive: true });
  await mkdir(join(dir, 'run'), { recursive: true });
  for (const ns of ['head', 'client', COMPUTE]) {
    await mkdir(munge(ns), { recursive: true });
    await chmod(munge(ns), 0o700);
    await writeFile(conf(ns), slurmConf({ vipIp: lab.vipIp, computeIp: lab.address(COMPUTE), stateDir, runDir: join(dir, 'run'), spoolDir: join(dir, 'slurmd'), mungeSocket: join(munge(ns), 'socket') }));
  }
  const mungedArgs = (ns: string) => ['/usr/sbin/munged', '--foreground', '--force', `--socket=${join(munge(ns), 'socket')}`, `--key-file=${keyFile}`,
    `--log-file=${join(munge(ns), 'log')}`, `--pid-file=${join(munge(ns), 'pid')}`, `--seed-file=${join(munge(ns), 'seed')}`];
  const yamlList = (argv: string[]) => `[${argv.map((a) => JSON.stringify(a)).join(', ')}]`;
  const prefix = lab.vipIp.replace(/\.\d+$/, '');
  const dnsmasq = ['/usr/sbin/dnsmasq', '--keep-in-foreground', '--conf-file=/dev/null', '--port=0', '--no-resolv', '--no-hosts', '--user=root', '--interface=eth0',
    `--dhcp-range=${prefix}.${DHCP_FIRST},${prefix}.${DHCP_LAST},255.255.255.0,10m`, '--dhcp-authoritative', `--dhcp-leasefile=${join(data, 'dnsmasq.leases')}`,
    '--enable-tftp', `--tftp-root=${join(data, 'tftp')}`, '--dhcp-boot=pxelinux.0', '--log-dhcp', '--log-facility=-', `--pid-file=${join(dir, 'run', 'dnsmasq.pid')}`];
  const slurmctld = ['/usr/bin/unshare', '--uts', '/bin/sh', '-c', `hostname ${SLURM_HEAD_NAME} && exec /usr/sbin/slurmctld -D -f ${conf('head')}`];
  let loop: string | undefined;
  if (options.stateOnDrbd) {
    // The ext4 made with StateSaveLocation in it (mkfs -d copies a directory), then attached.
    const seed = join(dir, 'drbd-seed');
    await mkdir(join(seed, 'slurmctld'), { recursive: true });
    const image = join(dir, 'drbd-disk.img');
    await writeFile(image, '');
    await truncate(image, 64 * 1024 * 1024);
    await execa('mkfs.ext4', ['-q', '-F', '-d', seed, image]);
    loop = (await execa('losetup', ['-f', '--show', image])).stdout.trim();
  }
  const detachLoop = async () => {
    if (loop) await execa('losetup', ['-d', loop], { reject: false });
  };
  const cluster = new LabCluster(lab, {
    ...TIMING,
    ...LONG_LEASE,
    ...timing,
    resources: [
      // After the drbd resource (cluster.ts puts it first), before slurmctld.
      ...(loop ? [`{ type: filesystem, name: state-fs, device: ${loop}, mountpoint: ${drbdMount}, fstype: ext4, options: [noatime], timeout: 20s }`] : []),
      `{ type: service, name: munged, driver: process, command: ${yamlList(mungedArgs('head'))} }`,
      // SIGTERM: slurmctld saves its state and exits. Judged by its process (a tcp check's bare
      // connections fill its log with "Zero Bytes were transmitted or received").
      `{ type: service, name: slurmctld, driver: process, command: ${yamlList(slurmctld)}, stopTimeout: 20s }`,
      `{ type: service, name: dnsmasq, driver: process, command: ${yamlList(dnsmasq)} }`,
      ...(timing.resources ?? []),
    ],
  }, { fileSet, drbd: options.stateOnDrbd });
  after(async () => {
    if (process.env.HAOSCAR_LAB_KEEP) process.stderr.write(`lab kept in ${lab.dir}\n`);
    await cluster.close();
    await lab.close();
    // Mounted only in the agents' namespaces, gone with them.
    await detachLoop();
  });
  void lab.spawn(COMPUTE, mungedArgs(COMPUTE), { log: 'c1-munged.log' });
  void lab.spawn('client', mungedArgs('client'), { log: 'client-munged.log' });
  void lab.spawn(COMPUTE, [WITH_CGROUP_V1, '/usr/sbin/slurmd', '-D', '-N', COMPUTE, '-f', conf(COMPUTE)], { log: 'c1-slurmd.log' });
  await cluster.start();

  const slurm: SlurmLab['slurm'] = (argv, timeoutMs = 15_000) =>
    lab.run('client', ['/usr/bin/env', `SLURM_CONF=${conf('client')}`, ...argv], { reject: false, timeoutMs });
  await waitFor('c1 idle, seen through the VIP', async () => {
    const r = await slurm(['/usr/bin/sinfo', '--noheader', '--format=%n %t']);
    return r.exitCode === 0 && r.stdout.trim() === `${COMPUTE} idle` ? true : undefined;
  }, 120_000, 500);

  const script = join(dir, 'udhcpc-script.sh');
  // Prints what the server offered; leaves the interface alone (the lab's addresses stay).
  await writeFile(script, '#!/bin/sh\necho "udhcpc-event=$1 ip=$ip serverid=$serverid"\n');
  await chmod(script, 0o755);
  // -B: the server broadcasts its answers (the client has no address yet to send them to).
  const dhcpLease: SlurmLab['dhcpLease'] = async () => {
    const r = await lab.run(DHCP_CLIENT, ['/bin/busybox', 'udhcpc', '-i', 'eth0', '-B', '-f', '-q', '-n', '-t', '10', '-T', '1', '-s', script], { reject: false, timeoutMs: 30_000 });
    const output = `${r.stdout}\n${r.stderr}`;
    const m = /udhcpc-event=bound ip=(\S+) serverid=(\S+)/.exec(output);
    if (r.exitCode !== 0 || !m) {
      const logs = await Promise.all(lab.hosts.map(async (h) => `--- ${h}'s dnsmasq\n${(await readFile(join(dir, 'hosts', h, 'state', 'log', 'web', 'dnsmasq.log'), 'utf8').catch(() => '')).split('\n').slice(-15).join('\n')}`));
      throw new Error(`no DHCP lease (exit code ${r.exitCode}):\n${output}\n${logs.join('\n')}`);
    }
    return { ip: m[1]!, server: m[2]!, output };
  };
  const stateOf = (host: string) => (options.stateOnDrbd ? join('/proc', String(cluster.agents.get(host)?.pid), 'root', stateDir) : join(dir, 'hosts', host, 'data', 'slurmctld'));
  return { lab, cluster, slurm, jobsDir, stateOf, dhcpLease };
}

/** Every file under `dir` with its content (the controller's state as one host has it). */
export async function tree(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => [])) {
    if (!e.isFile()) continue;
    const full = join(e.parentPath, e.name);
    out[full.slice(dir.length + 1)] = await readFile(full, 'latin1').catch(() => '');
  }
  return out;
}

/** `squeue` through the VIP every 200 ms: when each call ended and whether it answered. */
export function sampleSqueue(s: SlurmLab) {
  const calls: { start: number; end: number; ok: boolean }[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      const start = Date.now();
      const r = await s.slurm(['/usr/bin/squeue', '--noheader', '--format=%i'], 10_000);
      calls.push({ start, end: Date.now(), ok: r.exitCode === 0 });
      await new Promise((res) => setTimeout(res, 200));
    }
  })();
  return {
    calls,
    /**
     * The longest time without a successful answer from `from` (the kill) on: between two answers,
     * or from `from` to the first answer after it (the outage a user saw).
     */
    async stop(from: number) {
      running = false;
      await done;
      const ok = [from, ...calls.filter((c) => c.ok && c.end > from).map((c) => c.end)];
      let longest = 0;
      for (let i = 1; i < ok.length; i++) longest = Math.max(longest, ok[i]! - ok[i - 1]!);
      return { longestGapMs: longest, failed: calls.filter((c) => !c.ok && c.start >= from).length };
    },
  };
}

/** The jobs `squeue` shows: id -> state (R, PD, CG...). */
export async function queue(s: SlurmLab): Promise<Map<string, string> | undefined> {
  const r = await s.slurm(['/usr/bin/squeue', '--noheader', '--format=%i %t']);
  if (r.exitCode !== 0) return undefined;
  return new Map(r.stdout.trim().split('\n').filter(Boolean).map((l) => l.trim().split(/\s+/) as [string, string]));
}

export async function submit(s: SlurmLab, name: string, seconds: number): Promise<number> {
  const r = await s.slurm(['/usr/bin/sbatch', '--parsable', `--job-name=${name}`, `--output=${join(s.jobsDir, '%j.out')}`, '--wrap', `sleep ${seconds}; echo ${name} done`]);
  assert.equal(r.exitCode, 0, `sbatch ${name}: ${r.stderr}`);
  return Number(r.stdout.trim().split(';')[0]);
}

export async function jobState(s: SlurmLab, id: number): Promise<string | undefined> {
  const r = await s.slurm(['/usr/bin/scontrol', 'show', 'job', String(id)]);
  return /JobState=(\S+)/.exec(r.stdout)?.[1];
}

interface SlurmConfParams {
  vipIp: string;
  computeIp: string;
  stateDir: string;
  runDir: string;
  spoolDir: string;
  mungeSocket: string;
}

/** The lab's slurm.conf: one controller at the VIP, one compute node with one CPU (one job at a time). */
function slurmConf(p: SlurmConfParams): string {
  return `# The HA-OSCAR lab's Slurm (test/lab/slurm-head.ts)
ClusterName=lab
SlurmctldHost=${SLURM_HEAD_NAME}(${p.vipIp})
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=${p.mungeSocket}
CredType=cred/munge
StateSaveLocation=${p.stateDir}
SlurmdSpoolDir=${p.spoolDir}/%n
SlurmctldPidFile=${p.runDir}/slurmctld.pid
SlurmdPidFile=${p.runDir}/slurmd-%n.pid
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/linear
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
DebugFlags=NO_CONF_HASH
NodeName=${COMPUTE} NodeAddr=${p.computeIp} CPUs=1 State=UNKNOWN
PartitionName=batch Nodes=${COMPUTE} Default=YES MaxTime=INFINITE State=UP
`;
}
