/**
 * A job submitted right before the head node dies (issue 13 item 2; docs/hpc.md#the-state-on-a-file-set-instead-of-drbd),
 * with the controller's StateSaveLocation on an rsync file set, then on the DRBD resource.
 *
 * Both tests kill n1 at the same moment: `sbatch` returned the job's id AND n1's slurmctld has
 * written the job to its StateSaveLocation (its `job_state` names it). slurmctld saves in the
 * background (at most every 5 s, at once after a quiet spell), so the tests first wait for a
 * quiet spell and then for that save: what is lost after it is lost by the replication alone.
 *
 * 1. File set (`batch: 2s`, so that the window is certain rather than a race): n2's copy does
 *    not have the job when n1 dies; n2 takes over with the state from before it (its lag is
 *    within maxSyncLag: n1 had not even announced the change), the job is lost, and the next
 *    job gets the same id — job ids go backwards. The diagnostics say what became of the lost
 *    job (in the runs seen, n1 died before it scheduled it: it never ran) and of the next.
 *
 * 2. DRBD: the group is `drbd` + `filesystem` + ... as in examples/hpc-head-node.yaml, the state
 *    on the filesystem. DRBD IS SIMULATED (the kernel module cannot load here):
 *    - the `drbd` resource runs against test/support/drbd-sim, which models DRBD 9's roles,
 *      disk and connection states and their errors (promotion, demotion, a crashed peer:
 *      `drbd-sim crash n1 r0` tells it n1 died). It models NOTHING of the data path: no block
 *      device, no protocol C, no write acknowledgement;
 *    - the data is a real ext4 on ONE loop device (an image file in the lab) that n1 and n2
 *      mount in turn, each in its agent's mount namespace (test/lab/slurm-head.ts). That single
 *      device stands in for the two replicated disks, and it is what makes the write
 *      synchronous: whatever n1's slurmctld wrote is on the device n2 mounts the moment its
 *      write returned. That is the property of protocol C (a write completes only once it is on
 *      both nodes' disks) this test relies on, and all it shows: with synchronous replication
 *      a job the controller has saved survives the kill, its id is not handed out again.
 *    - Not shown: DRBD's own network path, latency and failures (a write stalls or a peer is
 *      dropped when the link breaks); and the lab's kill ends n1's processes, not its kernel, so
 *      n1's page cache is not lost: the lab cannot tell a write slurmctld had fsync'd from one
 *      still in the cache, as a real power cut would (a real DRBD only has what reached the disk).
 *    The job is held (`sbatch --hold`), so that n1 cannot have started it on c1 before it died:
 *    what n2 shows is the saved state only. n2 lists it; released, it runs and completes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from './failover-setup.js';
import { setUpSlurm, missingSlurmPrograms, queue, jobState, tree, type SlurmLab } from './slurm-head.js';
import { waitFor } from '../support/wait.js';

const missing = missingSlurmPrograms();
const skip = missing.length > 0 && `missing ${missing.join(', ')}: apt-get install slurmctld slurmd slurm-client munge dnsmasq-base busybox`;

async function sbatch(s: SlurmLab, name: string, seconds: number, extra: string[] = []): Promise<number> {
  const r = await s.slurm(['/usr/bin/sbatch', '--parsable', `--job-name=${name}`, `--output=${join(s.jobsDir, '%x-%j.out')}`, ...extra, '--wrap', `sleep ${seconds}; echo ${name} done`]);
  assert.equal(r.exitCode, 0, `sbatch ${name}: ${r.stderr}`);
  return Number(r.stdout.trim().split(';')[0]);
}

const jobStateOf = async (s: SlurmLab, host: string) => readFile(join(s.stateOf(host), 'job_state'), 'latin1').catch(() => '');

/**
 * A first job, completed and saved; then a quiet spell (n1's job_state unchanged for 6 s:
 * slurmctld's next save is then immediate) in which `ready` holds; then `sbatch` of `name` and, as soon as n1's
 * job_state names it, n1 killed. Returns the job's id and how long after sbatch returned the
 * save was seen.
 */
async function submitAndKillOnceSaved(s: SlurmLab, name: string, extra: string[], ready: () => Promise<true | undefined> = async () => true): Promise<{ first: number; id: number; savedAfterMs: number }> {
  const { lab, cluster } = s;
  const first = await sbatch(s, 'first', 1);
  await expect(cluster, 'the first job completed', async () => ((await jobState(s, first)) === 'COMPLETED' ? true : undefined), 60_000);
  await expect(cluster, 'n1\'s job_state unchanged for 6 s, and the test\'s own condition', async () => {
    const saved = await stat(join(s.stateOf('n1'), 'job_state')).catch(() => undefined);
    return saved && Date.now() - saved.mtimeMs > 6_000 ? ready() : undefined;
  }, 60_000);
  const id = await sbatch(s, name, 5, extra);
  const returnedAt = Date.now();
  await waitFor(`n1's slurmctld saved job ${id} ("${name}")`, async () => ((await jobStateOf(s, 'n1')).includes(name) ? true : undefined), 20_000, 20);
  const savedAfterMs = Date.now() - returnedAt;
  await lab.killHost('n1');
  return { first, id, savedAfterMs };
}

test('file set: a job saved by the controller right before the head node dies is lost, and its id is handed out again', { skip }, async (t) => {
  const s = await setUpSlurm((fn) => t.after(fn), {}, { fileSet: 'batch: 2s, verifyEvery: 1h' });
  const { lab, cluster } = s;
  const { first, id: lost, savedAfterMs } = await submitAndKillOnceSaved(s, 'lost', [], async () => {
    // Before the submission: n2's copy is n1's state, the first job in it.
    const [a, b] = [await tree(s.stateOf('n1')), await tree(s.stateOf('n2'))];
    return a['job_state']?.includes('first') && JSON.stringify(a) === JSON.stringify(b) ? true : undefined;
  });
  assert.equal(lost, first + 1);
  assert.equal((await jobStateOf(s, 'n2')).includes('lost'), false, 'n2\'s copy of the state did not have the job when n1 died');
  t.diagnostic(`n1's slurmctld saved job ${lost} ${savedAfterMs} ms after sbatch returned; n1 killed then`);
  await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group', 90_000);
  const after = await expect(cluster, 'squeue through the VIP answers from n2', () => queue(s), 90_000);
  assert.equal(after.has(String(lost)), false, `n2's controller does not know job ${lost}: ${[...after]}`);
  const known = await s.slurm(['/usr/bin/scontrol', 'show', 'job', String(lost)]);
  assert.match(`${known.stdout}${known.stderr}`, /Invalid job id specified/, `job ${lost} is unknown on n2`);

  // The next job gets the lost job's id again: ids went backwards.
  const next = await sbatch(s, 'next', 1);
  assert.equal(next, lost, `the job after the failover gets id ${lost} again`);
  t.diagnostic(`job ${lost} ("lost") was accepted by n1 and is unknown to n2; the next job got id ${next} again`);

  // What became of each: reported, not asserted (Slurm's handling of a job its controller does
  // not know, on the node that runs it, is Slurm's).
  let nextState: string | undefined;
  await expect(cluster, `job ${next} ("next") ended`, async () => {
    nextState = await jobState(s, next);
    return nextState && !['PENDING', 'RUNNING', 'CONFIGURING', 'COMPLETING'].includes(nextState) ? true : undefined;
  }, 90_000).catch(() => undefined);
  const output = async (name: string, id: number) => (await readFile(join(s.jobsDir, `${name}-${id}.out`), 'utf8').catch(() => '(no output file)')).trim();
  t.diagnostic(`job ${next} "next": ${nextState}, output: ${await output('next', next)}`);
  t.diagnostic(`job ${lost} "lost": output: ${await output('lost', lost)}`);
  const slurmd = (await readFile(join(lab.dir, 'c1-slurmd.log'), 'utf8').catch(() => '')).split('\n').filter((l) => l.includes(`JobId=${lost}`) || l.includes(`job ${lost}`) || l.includes(`${lost}.batch`));
  t.diagnostic(`c1's slurmd on job id ${lost} (either job):\n${slurmd.slice(-12).join('\n')}`);
});

test('DRBD (simulated, one shared device): a job saved by the controller right before the head node dies is kept, and ids go on', { skip }, async (t) => {
  const s = await setUpSlurm((fn) => t.after(fn), {}, { stateOnDrbd: true });
  const { cluster } = s;
  const shown = JSON.parse((await cluster.drbdSim(['show', 'r0'])).stdout) as { node: Record<string, { role: string }> };
  assert.equal(shown.node.n1?.role, 'Primary', 'the simulated DRBD resource is Primary on n1');
  const mounted = (await readFile(`/proc/${cluster.agents.get('n1')?.pid}/mountinfo`, 'utf8')).split('\n').filter((l) => l.includes(' ext4 /dev/loop'));
  assert.equal(mounted.length, 1, `the state's filesystem is mounted in n1's agent's namespace: ${mounted}`);

  const { first, id: kept, savedAfterMs } = await submitAndKillOnceSaved(s, 'kept', ['--hold']);
  assert.equal(kept, first + 1);
  assert.equal((await cluster.drbdSim(['crash', 'n1', 'r0'])).exitCode, 0);
  t.diagnostic(`n1's slurmctld saved job ${kept} ${savedAfterMs} ms after sbatch returned; n1 killed then`);
  await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group', 90_000);
  assert.equal((JSON.parse((await cluster.drbdSim(['show', 'r0'])).stdout) as typeof shown).node.n2?.role, 'Primary', 'n2 promoted the resource');
  const after = await expect(cluster, 'squeue through the VIP answers from n2', () => queue(s), 90_000);
  assert.equal(after.get(String(kept)), 'PD', `n2's controller lists job ${kept}, held: ${[...after]}`);

  // Ids go on: the next job gets a higher id than the kept one.
  const next = await sbatch(s, 'next', 1);
  assert.ok(next > kept, `the job after the failover gets id ${next}, after ${kept}`);
  // Released, the kept job runs and completes (after or before "next": one CPU).
  const release = await s.slurm(['/usr/bin/scontrol', 'release', String(kept)]);
  assert.equal(release.exitCode, 0, release.stderr);
  await expect(cluster, `jobs ${kept} and ${next} completed`, async () => {
    const states = await Promise.all([kept, next].map((id) => jobState(s, id)));
    return states.every((x) => x === 'COMPLETED') ? true : undefined;
  }, 90_000);
  assert.equal(await readFile(join(s.jobsDir, `kept-${kept}.out`), 'utf8'), 'kept done\n');
  t.diagnostic(`job ${kept} ("kept") was accepted by n1, listed by n2 after the failover and completed there; the next job got id ${next}`);
});
