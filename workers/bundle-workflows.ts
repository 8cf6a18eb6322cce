/**
 * Bundles the workflow code into one file: `bundle-workflows OUT_FILE`. The agent runs this in
 * a short-lived child process, so that webpack's memory is given back when it ends (it cost
 * the agent about 110 MB of RSS when bundling in-process).
 */
import { writeFile, rename } from 'node:fs/promises';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { workflowsPath } from './workflow-bundle.js';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: bundle-workflows OUT_FILE\n');
  process.exit(2);
}
const { code } = await bundleWorkflowCode({ workflowsPath: workflowsPath(), logger: new DefaultLogger('WARN') });
// Written beside and renamed: an agent never loads a half-written bundle.
await writeFile(`${out}.tmp`, code);
await rename(`${out}.tmp`, out);
