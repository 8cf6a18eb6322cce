/**
 * Set-up of the systemd watchdog lab tests (systemd-watchdog-*.test.ts, docs/packaging.md). PID 1
 * is not systemd here, so the tests play its part: the owner's agent (started through
 * bin/haoscar.js, with NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID as systemd sets them for
 * packaging/systemd/haoscar-agent.service) reports to a socket of the test's
 * (test/support/notify-receiver.ts); watchdogRestart() sees its pings stop, kills it when
 * WatchdogSec has passed without one (WatchdogSignal=SIGKILL) and starts it again RestartSec later
 * (Restart=on-failure).
 */
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetLab } from './netlab.js';
import { LabCluster, type ClusterTiming } from './cluster.js';
import { InstanceSampler } from './instance-sampler.js';
import { NotifyReceiver } from '../support/notify-receiver.js';
import { waitFor } from '../support/wait.js';

/** WatchdogSec of the tests (the unit ships 10 s; shorter here to keep the tests short). */
export const WATCHDOG_MS = 3000;
/** systemd's RestartSec= in the unit. */
export const RESTART_SEC_MS = 1000;

const isService = (cmdline: string) => cmdline.includes('pid-service.mjs');

export async function setUpUnderSystemd(t: TestContext, timing: ClusterTiming) {
  const receiver = await NotifyReceiver.start();
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true });
  const cluster = new LabCluster(lab, timing);
  cluster.underSystemd.set('n1', { socket: receiver.socket, watchdogUsec: WATCHDOG_MS * 1000 });
  t.after(async () => {
    if (process.env.HAOSCAR_LAB_KEEP) process.stderr.write(`lab kept in ${lab.dir}\n`);
    await cluster.close();
    await lab.close();
    await receiver.close();
  });
  await cluster.start();
  const vip = await lab.sampleVip(lab.vip);
  const instances = new InstanceSampler(Object.fromEntries(lab.hosts.map((h) => [h, lab.ns(h)])), isService);
  // Stopped here too when a test fails before it stops it (its timer would keep the file running).
  t.after(() => instances.stop());
  const client = await lab.probe(cluster.url, { everyMs: 20, timeoutMs: 300 });
  await waitFor('the client is served through the VIP by n1', async () => (client.lastOk()?.host === 'n1' ? true : undefined), 30_000, 50);
  return { receiver, lab, cluster, vip, instances, client };
}

export function agentPid(cluster: LabCluster): number {
  const pid = cluster.agents.get('n1')?.pid;
  assert.ok(pid, 'the agent of n1 runs');
  return pid;
}

/** The variables systemd gave the agent, as a process the agent started sees its environment. */
export function notifyVariablesOf(pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter((v) => /^(NOTIFY_SOCKET|WATCHDOG_USEC|WATCHDOG_PID)=/.test(v));
}

/** Hangs the process (SIGSTOP); @returns performance.now() of the hang. Thawed at the end if still there. */
export function hang(t: TestContext, pid: number): number {
  process.kill(pid, 'SIGSTOP');
  t.after(() => {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      // killed by the test, as systemd would
    }
  });
  return performance.now();
}

/**
 * Plays systemd: waits until WatchdogSec has passed without a ping (checking that the pings stop
 * once the agent is hung), kills the agent with SIGKILL and, RestartSec later, starts it again.
 * @returns when the pings stopped and the watchdog fired, relative to the hang.
 */
export async function watchdogRestart(receiver: NotifyReceiver, cluster: LabCluster, pid: number, hungAt: number) {
  const fired = await waitFor('the watchdog fires (WatchdogSec without a ping)', () => {
    const last = receiver.with('WATCHDOG').at(-1)!.at;
    const now = performance.now();
    return now - last > WATCHDOG_MS ? { now, last } : undefined;
  }, 30_000, 20);
  const old = cluster.agents.get('n1')!;
  process.kill(pid, 'SIGKILL');
  await old.catch(() => undefined);
  await sleep(RESTART_SEC_MS);
  const from = receiver.messages.length;
  cluster.startAgent('n1');
  return { lastPingAfterHangMs: fired.last - hungAt, firedAfterHangMs: fired.now - hungAt, restartedFrom: from, restartedAt: performance.now() };
}

