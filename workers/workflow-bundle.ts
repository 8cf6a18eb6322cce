/**
 * Where the workflow code is, and the bundle of it that the workflow worker loads: in the
 * package, the bundle built at pack time (`npm pack` runs `prepack`) when it is the bundle of the
 * installed code; otherwise (a checkout, or a package whose bundle does not match) a bundle made
 * at start in a child process.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { z } from 'zod';
import type { Logger } from '../src/log.js';
import { packageVersion } from '../src/package-info.js';

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

/** The bundle built at pack time, at the top of dist/ (dist/workflows/index.js's grandparent). */
export function prebuiltBundlePaths(entry: string = workflowsPath()): { code: string; manifest: string } {
  const dist = dirname(dirname(entry));
  return { code: join(dist, 'workflow-bundle.js'), manifest: join(dist, 'workflow-bundle.json') };
}

/** What a bundle was built from, written beside the prebuilt bundle and compared at start. */
export const bundleManifestSchema = z.object({
  version: z.string(),
  /** sha256 of the compiled workflow sources: every file workflows/index.js imports, transitively. */
  sources: z.string(),
  /** The @temporalio/workflow inside the bundle; the worker's must be the same. */
  temporalWorkflow: z.string(),
});
export type BundleManifest = z.infer<typeof bundleManifestSchema>;

/** Why a bundle built as `built` is not the bundle of the code described by `installed`, or undefined if it is. */
export function manifestMismatch(built: BundleManifest, installed: BundleManifest): string | undefined {
  const why: string[] = [];
  if (built.version !== installed.version) why.push(`it was built for version ${built.version}, this is ${installed.version}`);
  if (built.sources !== installed.sources) why.push(`it was built from other workflow code (sources ${built.sources.slice(0, 12)}, installed ${installed.sources.slice(0, 12)})`);
  if (built.temporalWorkflow !== installed.temporalWorkflow) why.push(`it holds @temporalio/workflow ${built.temporalWorkflow}, ${installed.temporalWorkflow} is installed`);
  return why.length > 0 ? why.join('; ') : undefined;
}

/**
 * The relative imports of a compiled ES module (`import … from './x.js'`, `export … from`,
 * `import './x.js'`, `import('./x.js')`). Type-only imports are gone after tsc, as they are for
 * the bundler.
 */
export function relativeImports(code: string): string[] {
  const found = new Set<string>();
  for (const re of [/\b(?:import|export)\b[^'";]*?\bfrom\s*['"](\.{1,2}\/[^'"]+)['"]/g, /\bimport\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g]) {
    for (const m of code.matchAll(re)) found.add(m[1]!);
  }
  return [...found];
}

/**
 * The manifest of the code installed here: the package version, a sha256 over every compiled file
 * the workflow entry point reaches through relative imports (path and content), and the version
 * of @temporalio/workflow. @throws Error when an imported file is missing (an incomplete installation).
 */
export async function installedManifest(entry: string = workflowsPath()): Promise<BundleManifest> {
  const root = dirname(dirname(entry));
  const seen = new Set<string>();
  const hash = createHash('sha256');
  const queue = [resolve(entry)];
  const contents = new Map<string, string>();
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const code = await readFile(file, 'utf8');
    contents.set(file, code);
    for (const spec of relativeImports(code)) queue.push(resolve(dirname(file), spec));
  }
  for (const file of [...seen].sort()) hash.update(`${relative(root, file)}\0${contents.get(file)!}\0`);
  const require = createRequire(import.meta.url);
  const temporal = JSON.parse(readFileSync(require.resolve('@temporalio/workflow/package.json'), 'utf8')) as { version: string };
  return { version: packageVersion(), sources: hash.digest('hex'), temporalWorkflow: temporal.version };
}

/**
 * The workflow bundle for this process. Compiled code (the package) uses the bundle built at
 * pack time when its manifest matches the installed code; a missing or mismatching one is
 * logged with the reason and replaced by a bundle made now into `bundleFile` — never loaded. The
 * TypeScript sources (a checkout) are always bundled now. @throws Error when bundling fails.
 */
export async function workflowBundle(opts: { bundleFile: string; logger?: Logger }): Promise<{ codePath: string }> {
  const entry = workflowsPath();
  if (entry.endsWith('.js')) {
    const prebuilt = prebuiltBundlePaths(entry);
    const why = await prebuiltMismatch(prebuilt, entry);
    if (why === undefined) {
      opts.logger?.info({ bundle: prebuilt.code }, 'using the workflow bundle built with the package');
      return { codePath: prebuilt.code };
    }
    opts.logger?.warn({ bundle: prebuilt.code, bundleFile: opts.bundleFile }, `the workflow bundle of the package is not used: ${why}; bundling the installed workflow code now instead (a reinstall of the package brings a matching bundle)`);
  }
  return bundleWorkflowsToFile(opts.bundleFile);
}

async function prebuiltMismatch(prebuilt: { code: string; manifest: string }, entry: string): Promise<string | undefined> {
  if (!existsSync(prebuilt.code) || !existsSync(prebuilt.manifest)) return `${prebuilt.code} or its manifest ${prebuilt.manifest} is missing`;
  const parsed = bundleManifestSchema.safeParse(await readFile(prebuilt.manifest, 'utf8').then(JSON.parse).catch(() => undefined));
  if (!parsed.success) return `its manifest ${prebuilt.manifest} is unreadable`;
  const why = manifestMismatch(parsed.data, await installedManifest(entry));
  return why === undefined ? undefined : `${prebuilt.code} is not the bundle of the installed code: ${why}`;
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
 * child finds it whatever its working directory. The package's compiled script needs none (and
 * has no tsx).
 */
function tsLoaderFor(script: string): string[] {
  if (!script.endsWith('.ts') || process.execArgv.some((arg) => arg.includes('tsx'))) return [];
  return ['--import', import.meta.resolve('tsx')];
}
