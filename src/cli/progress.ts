/**
 * A resync's progress as a bar on stderr, read from the heartbeat details of its running
 * activity (DescribeWorkflowExecution: nothing is written to the history by watching).
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import type { ResyncProgress } from '../../workflows/shared.js';

export function renderBar(p: ResyncProgress, width = 30): string {
  const pct = Math.max(0, Math.min(100, p.percent));
  const filled = Math.round((pct / 100) * width);
  const eta = p.etaSeconds === undefined ? '' : `  ETA ${Math.floor(p.etaSeconds / 60)}:${String(Math.round(p.etaSeconds % 60)).padStart(2, '0')}`;
  const attempt = p.attempt > 1 ? `  (attempt ${p.attempt}, resumed)` : '';
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${pct.toFixed(0).padStart(3)}%  ${formatBytes(p.bytes)}${eta}  ${p.phase}${attempt}`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i += 1;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** The heartbeat details of the workflow's first pending activity, if it has sent any. */
export async function currentProgress(client: Client, workflowId: string): Promise<ResyncProgress | undefined> {
  const desc = await client.workflow.getHandle(workflowId).describe();
  for (const a of desc.raw.pendingActivities ?? []) {
    const payload = a.heartbeatDetails?.payloads?.[0];
    if (payload) return defaultPayloadConverter.fromPayload(payload as Parameters<typeof defaultPayloadConverter.fromPayload>[0]) as ResyncProgress;
  }
  return undefined;
}

/**
 * Draws the progress of `workflowId` until `done` settles: redrawn in place on a terminal,
 * a line per 10% (or new phase) otherwise. A workflow not started yet is waited for.
 */
export async function showProgress(client: Client, workflowId: string, done: Promise<unknown>, out: NodeJS.WriteStream = process.stderr): Promise<void> {
  let finished = false;
  void done.finally(() => { finished = true; }).catch(() => undefined);
  let lastLine = '';
  let lastStep = -1;
  let lastPhase = '';
  while (!finished) {
    const p = await currentProgress(client, workflowId).catch(() => undefined);
    if (p) {
      const line = renderBar(p);
      if (out.isTTY) {
        if (line !== lastLine) out.write(`\r${line}\x1b[K`);
      } else if (Math.floor(p.percent / 10) !== lastStep || p.phase !== lastPhase) {
        out.write(`${line}\n`);
        lastStep = Math.floor(p.percent / 10);
        lastPhase = p.phase;
      }
      lastLine = line;
    }
    await Promise.race([done.catch(() => undefined), new Promise((r) => setTimeout(r, 500))]);
  }
  if (out.isTTY && lastLine) out.write('\n');
}
