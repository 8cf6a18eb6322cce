/**
 * Bundles the workflow code into one file.
 *
 *   bundle-workflows OUT_FILE    the agent and the worker run this in a short-lived child process,
 *                                so that webpack's memory is given back when it ends (it cost the
 *                                agent about 110 MB of RSS when bundling in-process)
 *   bundle-workflows --package   at pack time (`prepack`, on the compiled dist/): the bundle the
 *                                installed package loads, dist/workflow-bundle.js, and its manifest
 *                                (version, hash of the compiled workflow sources) beside it
 */
import { writeFile, rename } from 'node:fs/promises';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';
import { installedManifest, prebuiltBundlePaths, workflowsPath } from './workflow-bundle.js';

const arg = process.argv[2];
if (!arg) {
  process.stderr.write('usage: bundle-workflows OUT_FILE | --package\n');
  process.exit(2);
}
const entry = workflowsPath();
if (arg === '--package' && !entry.endsWith('.js')) {
  process.stderr.write(`bundle-workflows --package bundles the compiled code (dist/, after \`npm run build\`), not ${entry}\n`);
  process.exit(2);
}
const out = arg === '--package' ? prebuiltBundlePaths(entry).code : arg;
const { code } = await bundleWorkflowCode({ workflowsPath: entry, logger: new DefaultLogger('WARN') });
// Written beside and renamed: an agent never loads a half-written bundle.
await writeFile(`${out}.tmp`, code);
await rename(`${out}.tmp`, out);
if (arg === '--package') {
  const { manifest } = prebuiltBundlePaths(entry);
  await writeFile(manifest, `${JSON.stringify(await installedManifest(entry), null, 2)}\n`);
  process.stdout.write(`workflow bundle ${out} (${Math.round(code.length / 1024)} KiB), manifest ${manifest}\n`);
}
