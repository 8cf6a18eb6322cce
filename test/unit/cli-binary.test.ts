import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CliError, EXIT } from '../../src/cli/errors.js';
import {
  TEMPORAL_CLI_MODULE,
  TEMPORAL_CLI_VERSION,
  ensureTemporalCli,
  findTemporalCli,
  temporalCliCacheDir,
} from '../../src/temporal/cli-binary.js';
import { silentLogger } from '../../src/log.js';

let root: string;
/** A directory standing in for PATH, holding an executable `temporal`. */
let pathDir: string;
/** A fake HOME whose cache holds an executable `temporal`. */
let home: string;
let explicit: string;

async function fakeExecutable(file: string, mode = 0o755): Promise<string> {
  await writeFile(file, '#!/bin/sh\necho fake temporal\n');
  await chmod(file, mode);
  return file;
}

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'haoscar-cli-binary-'));
  pathDir = join(root, 'path-bin');
  home = join(root, 'home');
  await mkdir(pathDir, { recursive: true });
  await mkdir(join(home, '.cache', 'haoscar', 'bin'), { recursive: true });
  await fakeExecutable(join(pathDir, 'temporal'));
  await fakeExecutable(join(home, '.cache', 'haoscar', 'bin', 'temporal'));
  explicit = await fakeExecutable(join(root, 'my-temporal'));
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

void describe('temporalCliCacheDir', () => {
  void test('uses XDG_CACHE_HOME when set, else HOME/.cache', () => {
    assert.equal(temporalCliCacheDir({ XDG_CACHE_HOME: '/x/cache', HOME: '/h' }), '/x/cache/haoscar/bin');
    assert.equal(temporalCliCacheDir({ HOME: '/h' }), '/h/.cache/haoscar/bin');
    assert.equal(temporalCliCacheDir({ XDG_CACHE_HOME: '', HOME: '/h' }), '/h/.cache/haoscar/bin');
  });
});

void describe('findTemporalCli', () => {
  void test('TEMPORAL_CLI comes first', () => {
    assert.equal(findTemporalCli({ TEMPORAL_CLI: explicit, PATH: pathDir, HOME: home }), explicit);
  });

  void test('then temporal on PATH (skipping directories without one)', () => {
    assert.equal(findTemporalCli({ PATH: `${root}/nope:${home}:${pathDir}`, HOME: home }), join(pathDir, 'temporal'));
  });

  void test('then the project cache under HOME', () => {
    assert.equal(findTemporalCli({ PATH: join(root, 'nope'), HOME: home }), join(home, '.cache', 'haoscar', 'bin', 'temporal'));
  });

  void test('then the project cache under XDG_CACHE_HOME', () => {
    assert.equal(
      findTemporalCli({ PATH: '', HOME: join(root, 'nohome'), XDG_CACHE_HOME: join(home, '.cache') }),
      join(home, '.cache', 'haoscar', 'bin', 'temporal'),
    );
  });

  void test('undefined when there is none', () => {
    assert.equal(findTemporalCli({ PATH: join(root, 'nope'), HOME: join(root, 'nohome') }), undefined);
  });

  void test('a non-executable temporal on PATH is skipped', async () => {
    const dir = join(root, 'noexec');
    await mkdir(dir, { recursive: true });
    await fakeExecutable(join(dir, 'temporal'), 0o644);
    // root bypasses permission checks for reading, but X_OK still needs an execute bit.
    assert.equal(findTemporalCli({ PATH: dir, HOME: home }), join(home, '.cache', 'haoscar', 'bin', 'temporal'));
  });

  void test('TEMPORAL_CLI pointing at a missing file is a clear error, not a fallback', () => {
    const missing = join(root, 'does-not-exist');
    assert.throws(
      () => findTemporalCli({ TEMPORAL_CLI: missing, PATH: pathDir, HOME: home }),
      (err: unknown) =>
        err instanceof CliError &&
        err.exitCode === EXIT.unavailable &&
        err.message.includes('TEMPORAL_CLI') &&
        err.message.includes(missing),
    );
  });

  void test('TEMPORAL_CLI pointing at a directory is an error', () => {
    assert.throws(() => findTemporalCli({ TEMPORAL_CLI: pathDir, PATH: pathDir, HOME: home }), CliError);
  });
});

void describe('ensureTemporalCli', () => {
  void test('returns a found CLI without building', async () => {
    const progress: string[] = [];
    const cli = await ensureTemporalCli({
      logger: silentLogger,
      onProgress: (m) => progress.push(m),
      env: { PATH: pathDir, HOME: home },
    });
    assert.equal(cli, join(pathDir, 'temporal'));
    assert.deepEqual(progress, []);
  });

  void test('without go on PATH: a CliError that says how to install it', async () => {
    await assert.rejects(
      ensureTemporalCli({ logger: silentLogger, env: { PATH: join(root, 'nope'), HOME: join(root, 'nohome') } }),
      (err: unknown) =>
        err instanceof CliError &&
        err.exitCode === EXIT.unavailable &&
        err.message.includes('install Go') &&
        err.message.includes('TEMPORAL_CLI') &&
        err.message.includes(`${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`),
    );
  });

  void test('a failing build: a CliError with the output tail and the install hint, progress announced', async () => {
    const dir = join(root, 'fake-go');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'go'), '#!/bin/sh\necho "go: downloading example.com/x v1.0.0" >&2\necho "example.com/x" >&2\necho "build broke: no space left" >&2\nexit 1\n');
    await chmod(join(dir, 'go'), 0o755);
    const progress: string[] = [];
    const cacheHome = join(root, 'cache-for-failing-build');
    await assert.rejects(
      ensureTemporalCli({
        logger: silentLogger,
        onProgress: (m) => progress.push(m),
        env: { PATH: dir, HOME: join(root, 'nohome'), XDG_CACHE_HOME: cacheHome },
      }),
      (err: unknown) =>
        err instanceof CliError &&
        err.exitCode === EXIT.unavailable &&
        err.message.includes('exit code 1') &&
        err.message.includes('build broke') &&
        err.message.includes('TEMPORAL_CLI'),
    );
    assert.match(progress[0] ?? '', /several minutes/);
  });

  void test('a successful build lands in the cache and counts packages', async () => {
    const dir = join(root, 'fake-go-ok');
    await mkdir(dir, { recursive: true });
    // A stand-in for `go install -v`: package names on stderr, the binary into $GOBIN.
    await writeFile(
      join(dir, 'go'),
      '#!/bin/sh\n[ "$1 $2 $3" = "install -v github.com/temporalio/cli/cmd/temporal@v1.5.1" ] || exit 9\n' +
        'i=0; while [ $i -lt 120 ]; do echo "example.com/pkg$i" >&2; i=$((i+1)); done\n' +
        'printf "#!/bin/sh\\n" > "$GOBIN/temporal"; /bin/chmod +x "$GOBIN/temporal"\n',
    );
    await chmod(join(dir, 'go'), 0o755);
    const progress: string[] = [];
    const cacheHome = join(root, 'cache-for-good-build');
    const cli = await ensureTemporalCli({
      logger: silentLogger,
      onProgress: (m) => progress.push(m),
      env: { PATH: dir, HOME: join(root, 'nohome'), XDG_CACHE_HOME: cacheHome },
    });
    assert.equal(cli, join(cacheHome, 'haoscar', 'bin', 'temporal'));
    assert.ok(progress.some((m) => m.includes('100 packages compiled')), progress.join('\n'));
    assert.match(progress.at(-1) ?? '', /120 packages/);
  });
});
