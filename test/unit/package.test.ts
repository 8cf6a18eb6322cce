/**
 * The package's pieces that run without Temporal: which code bin/haoscar.js runs (the sources in
 * a checkout, whatever dist/ holds; dist/ when installed), and how the workflow bundle built at
 * pack time is matched with the installed code.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { installedManifest, manifestMismatch, relativeImports, type BundleManifest } from '../../workers/workflow-bundle.js';
import { ROOT } from '../support/lab.js';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let tmp: string;
before(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'haoscar-package-'));
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A copy of bin/haoscar.js in `dir`/bin, with a compiled main in dist/ that only says it ran. */
async function layout(dir: string, opts: { sources: boolean }): Promise<string> {
  await mkdir(join(dir, 'bin'), { recursive: true });
  await mkdir(join(dir, 'dist', 'src', 'cli'), { recursive: true });
  await copyFile(join(ROOT, 'bin', 'haoscar.js'), join(dir, 'bin', 'haoscar.js'));
  await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'));
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  await writeFile(join(dir, 'dist', 'src', 'cli', 'main.js'), "export async function main() { process.stdout.write('the compiled dist/ ran\\n'); return 0; }\n");
  if (opts.sources) await symlink(join(ROOT, 'src'), join(dir, 'src'));
  return join(dir, 'bin', 'haoscar.js');
}

describe('bin/haoscar.js', () => {
  test('in a checkout it runs the TypeScript sources, not a dist/ left by an earlier build', async () => {
    const bin = await layout(join(tmp, 'checkout'), { sources: true });
    const r = await execa(process.execPath, [bin, '--version'], { reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), VERSION);
  });

  test('installed (no src/) it runs the compiled dist/', async () => {
    const bin = await layout(join(tmp, 'installed'), { sources: false });
    const r = await execa(process.execPath, [bin, '--version'], { reject: false });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'the compiled dist/ ran');
  });
});

describe('relativeImports', () => {
  const cases: [string, string, string[]][] = [
    ['named', "import { a } from './a.js';", ['./a.js']],
    ['multi-line, parent dir', "import {\n  a,\n  b,\n} from '../src/x.js';", ['../src/x.js']],
    ['re-export', "export { healService } from './heal-service.js';\nexport * from \"./shared.js\";", ['./heal-service.js', './shared.js']],
    ['side effect and dynamic', "import './side.js';\nconst m = await import('./lazy.js');", ['./side.js', './lazy.js']],
    ['packages are not followed', "import { z } from 'zod';\nimport * as wf from '@temporalio/workflow';", []],
    ['no import at all', 'export const x = 1;', []],
  ];
  for (const [name, code, expected] of cases) {
    test(name, () => assert.deepEqual(relativeImports(code).sort(), expected.sort()));
  }
});

describe('manifestMismatch', () => {
  const built: BundleManifest = { version: '1.0.0', sources: 'a'.repeat(64), temporalWorkflow: '1.24.0' };
  test('the same manifest: the bundle is used', () => assert.equal(manifestMismatch(built, { ...built }), undefined));
  test('another version', () => assert.match(manifestMismatch(built, { ...built, version: '1.0.1' })!, /built for version 1\.0\.0, this is 1\.0\.1/));
  test('other workflow code', () => assert.match(manifestMismatch(built, { ...built, sources: 'b'.repeat(64) })!, /other workflow code \(sources aaaaaaaaaaaa, installed bbbbbbbbbbbb\)/));
  test('another @temporalio/workflow', () => assert.match(manifestMismatch(built, { ...built, temporalWorkflow: '1.25.0' })!, /@temporalio\/workflow 1\.24\.0, 1\.25\.0 is installed/));
});

describe('installedManifest', () => {
  test('hashes what the workflow entry point reaches, and only that', async () => {
    const dist = join(tmp, 'dist-hash');
    await mkdir(join(dist, 'workflows'), { recursive: true });
    await mkdir(join(dist, 'src'), { recursive: true });
    await writeFile(join(dist, 'workflows', 'index.js'), "export { a } from './a.js';\n");
    await writeFile(join(dist, 'workflows', 'a.js'), "import { x } from '../src/x.js';\nexport const a = x;\n");
    await writeFile(join(dist, 'src', 'x.js'), 'export const x = 1;\n');
    await writeFile(join(dist, 'src', 'unrelated.js'), 'export const u = 1;\n');
    const entry = join(dist, 'workflows', 'index.js');
    const first = await installedManifest(entry);
    assert.equal(first.version, VERSION);
    assert.match(first.sources, /^[0-9a-f]{64}$/);
    await writeFile(join(dist, 'src', 'unrelated.js'), 'export const u = 2;\n');
    assert.equal((await installedManifest(entry)).sources, first.sources, 'a file the workflows do not import does not count');
    await writeFile(join(dist, 'src', 'x.js'), 'export const x = 2;\n');
    assert.notEqual((await installedManifest(entry)).sources, first.sources, 'a file they import does');
  });

  test('a missing imported file: an error naming it', async () => {
    const dist = join(tmp, 'dist-missing');
    await mkdir(join(dist, 'workflows'), { recursive: true });
    await writeFile(join(dist, 'workflows', 'index.js'), "export { a } from './gone.js';\n");
    await assert.rejects(installedManifest(join(dist, 'workflows', 'index.js')), /gone\.js/);
  });
});
