/**
 * Recording workflow histories for the replay test (test/workflow/replay.test.ts): with
 * HAOSCAR_RECORD_HISTORIES=1, a test saves a workflow's history as the Temporal CLI prints it
 * (`temporal workflow show --output json`, the format every SDK's replayer reads).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { findTemporalCli } from '../../src/temporal/cli-binary.js';
import { temporalAddress } from './temporal.js';

/** `runId`: that run of the workflow (default: its latest). */
export async function recordHistory(workflowId: string, name: string, runId?: string): Promise<void> {
  if (!process.env.HAOSCAR_RECORD_HISTORIES) return;
  const cli = findTemporalCli();
  assert.ok(cli, 'the Temporal CLI is needed to record histories');
  const { stdout } = await execa(cli, ['workflow', 'show', '--address', await temporalAddress(), '--workflow-id', workflowId, ...(runId ? ['--run-id', runId] : []), '--output', 'json']);
  await mkdir('test/histories', { recursive: true });
  await writeFile(`test/histories/${name}.json`, stdout);
}
