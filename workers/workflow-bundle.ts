/**
 * Where the workflow code is, and how the agent bundles it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

/** Under tsx (development, tests) workflows/index.ts; in a build (dist/) the compiled index.js. */
export function workflowsPath(): string {
  return beside('../workflows/index');
}

function beside(stem: string): string {
  for (const ext of ['.ts', '.js']) {
    const path = fileURLToPath(new URL(`${stem}${ext}`, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error(`${stem}.ts or .js not found beside workers/: is the installation complete?`);
}

/**
 * Bundles the workflow code into `outFile` in a child process (same Node, same loader flags,
 * so it bundles exactly the code this agent runs). @throws Error with the child's stderr.
 */
export async function bundleWorkflowsToFile(outFile: string): Promise<{ codePath: string }> {
  const script = beside('./bundle-workflows');
  const result = await execa(process.execPath, [...process.execArgv, ...tsLoaderFor(script), script, outFile], { reject: false, stdin: 'ignore' });
  if (result.exitCode !== 0) {
    throw new Error(`bundling the workflow code failed (exit ${result.exitCode ?? result.signal}): ${String(result.stderr).trim().split('\n').slice(-5).join(' | ')}`);
  }
  return { codePath: outFile };
}

/**
 * The loader flags a TypeScript `script` needs in the child. `node --import tsx` (tests) passes
 * tsx on in execArgv; bin/haoscar.js registers tsx in-process (tsx/esm/api), which a child does not
 * inherit: without this it failed with ERR_UNKNOWN_FILE_EXTENSION. tsx by absolute URL, so the
 * child finds it whatever its working directory.
 */
function tsLoaderFor(script: string): string[] {
  if (!script.endsWith('.ts') || process.execArgv.some((arg) => arg.includes('tsx'))) return [];
  return ['--import', import.meta.resolve('tsx')];
}
