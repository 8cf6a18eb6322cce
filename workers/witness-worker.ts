/**
 * The witness's worker: `haoscar worker`'s second queue, with the golden images' activities
 * (activities/image.ts, docs/clone.md#golden-images). Agents never poll it, so an image is
 * always written on, and read from, the machine that runs `haoscar worker`.
 */
import { Worker, type NativeConnection } from '@temporalio/worker';
import { createImageActivities } from '../activities/image.js';
import { createExec } from '../src/exec.js';
import type { MessageKey } from '../src/auth/messages.js';
import type { Config } from '../src/config/types.js';
import type { Logger } from '../src/log.js';
import { witnessTaskQueue } from '../workflows/shared.js';

export function createWitnessWorker(opts: { connection: NativeConnection; config: Config; key: MessageKey | undefined; logger: Logger }): Promise<Worker> {
  const { config, logger } = opts;
  return Worker.create({
    connection: opts.connection,
    namespace: config.temporal.namespace,
    taskQueue: witnessTaskQueue(config.cluster),
    // The witness reaches the nodes as they reach each other for a clone: sync.ssh's user, key
    // and known hosts (the witness's own files at those paths) and clone.sshPort.
    activities: createImageActivities({
      cluster: config.cluster, key: opts.key, logger: logger.child({ image: true }), exec: createExec(logger), rsync: config.sync.rsync,
      ssh: { ...config.sync.ssh, port: config.clone.sshPort },
    }),
    // Copies are long and few: one at a time per witness is plenty.
    maxConcurrentActivityTaskExecutions: 4,
    shutdownGraceTime: '5s',
  });
}
