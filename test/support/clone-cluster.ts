/**
 * A test cluster (workflow-cluster.ts) whose n2 runs the clone's steps as its agent would, reaching
 * the source over `ssh` (the test's sshd): for the clone and image workflow tests.
 */
import { createCloneActivities, type CloneActivityDeps } from '../../activities/clone.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { TEST_KEY } from './cluster-key.js';
import { WorkflowCluster, type ExtraActivities } from './workflow-cluster.js';

type CloneSteps = ReturnType<typeof createCloneActivities>;

export async function startCloneCluster(prefix: string, body: string, opts: { ssh: CloneActivityDeps['ssh']; heldGroups?: () => string[] }): Promise<WorkflowCluster> {
  // The orders' MACs name the cluster, which is named only once start() returns: the activities
  // are made at their first call (they are called only after that).
  const made: { c?: WorkflowCluster; steps?: CloneSteps } = {};
  const steps = () => (made.steps ??= createCloneActivities({
    node: 'n2', cluster: made.c!.name, key: TEST_KEY, logger: silentLogger, exec: createExec(silentLogger), rsync: '/usr/bin/rsync',
    ssh: opts.ssh, heldGroups: opts.heldGroups ?? (() => []),
  }));
  made.c = await WorkflowCluster.start(prefix, body, {
    extra: (node): ReturnType<ExtraActivities> => (node.name !== 'n2' ? {} : {
      clonePreflight: (r: Parameters<CloneSteps['clonePreflight']>[0]) => steps().clonePreflight(r),
      cloneCopy: (r: Parameters<CloneSteps['cloneCopy']>[0]) => steps().cloneCopy(r),
      cloneFixups: (r: Parameters<CloneSteps['cloneFixups']>[0]) => steps().cloneFixups(r),
      cloneVerify: (r: Parameters<CloneSteps['cloneVerify']>[0]) => steps().cloneVerify(r),
    }),
  });
  return made.c;
}
