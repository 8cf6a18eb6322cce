/**
 * Replays recorded histories (test/histories, recorded from real runs with
 * HAOSCAR_RECORD_HISTORIES=1: healService, the controller and failovers, `-vN` ones by the code
 * of an earlier release) against today's workflow code: a change that would break running
 * workflows fails here. Such a change needs patched() or a new workflow type.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { DeterminismViolationError } from '@temporalio/workflow';
import { Worker } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils.js';
import { testWorkflowBundle } from '../support/temporal.js';

const dir = fileURLToPath(new URL('../histories/', import.meta.url));
const histories = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();

test('there are recorded histories to replay', () => {
  assert.ok(histories.length >= 2, `found ${histories.join(', ')}`);
});

for (const file of histories) {
  test(`replay ${file} against the current workflow code`, async () => {
    const history = historyFromJSON(JSON.parse(await readFile(dir + file, 'utf8')));
    // One bundle of today's code for every history (bundling per history took most of the file's time).
    await Worker.runReplayHistory({ workflowBundle: await testWorkflowBundle() }, history, file);
  });
}

test('an incompatible change to healService is caught by replay', async () => {
  const history = historyFromJSON(JSON.parse(await readFile(dir + 'heal-service-healed.json', 'utf8')));
  const changed = fileURLToPath(new URL('../fixtures/changed-workflows/index.ts', import.meta.url));
  await assert.rejects(Worker.runReplayHistory({ workflowsPath: changed }, history, 'changed'), DeterminismViolationError);
});
