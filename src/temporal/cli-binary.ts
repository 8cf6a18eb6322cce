/**
 * Finding (and, where it is missing, building) the Temporal CLI, whose `server start-dev`
 * is HA-OSCAR's embedded Temporal server. Newer tags of the CLI cannot be built with a plain
 * `go install` (their go.mod has `replace` directives), so the version is pinned.
 */
import { accessSync, constants, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import { execa } from 'execa';
import { CliError, EXIT } from '../cli/errors.js';
import type { Logger } from '../log.js';

/** The Temporal CLI tag HA-OSCAR builds; the newest one `go install` can build. */
export const TEMPORAL_CLI_VERSION = 'v1.5.1';
/** The Go package path of the `temporal` command. */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal';

type Env = Readonly<Record<string, string | undefined>>;

/** `${XDG_CACHE_HOME:-$HOME/.cache}/haoscar/bin`: where the project keeps the CLI it built. */
export function temporalCliCacheDir(env: Env = process.env): string {
  const cache = env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache');
  return join(cache, 'haoscar', 'bin');
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The first executable `name` in the directories of `PATH`, or undefined. */
export function findOnPath(name: string, env: Env = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/**
 * The Temporal CLI to use: `$TEMPORAL_CLI`, else `temporal` on `PATH`, else the one the
 * project built into its cache; undefined when there is none.
 *
 * @throws {CliError} when `TEMPORAL_CLI` is set but does not name an executable file — an
 *   explicit choice that is wrong must not silently fall back to another binary.
 */
export function findTemporalCli(env: Env = process.env): string | undefined {
  const explicit = env.TEMPORAL_CLI;
  if (explicit) {
    if (!isExecutableFile(explicit)) {
      throw new CliError(
        `TEMPORAL_CLI is set to ${JSON.stringify(explicit)}, which is not an executable file; ` +
          'point it at a Temporal CLI binary or unset it',
        EXIT.unavailable,
      );
    }
    return explicit;
  }
  const onPath = findOnPath('temporal', env);
  if (onPath) return onPath;
  const cached = join(temporalCliCacheDir(env), 'temporal');
  return isExecutableFile(cached) ? cached : undefined;
}

/** How to get a Temporal CLI by hand; part of every "cannot get the CLI" error. */
const INSTALL_HINT =
  `install Go (https://go.dev/dl/, 1.24 or newer) and rerun, or build it yourself with ` +
  `\`go install ${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}\`, or put a Temporal CLI on PATH, ` +
  'or set TEMPORAL_CLI to its path';

export interface EnsureTemporalCliOptions {
  logger: Logger;
  /** Human-readable progress of a build (it takes minutes the first time). */
  onProgress?: (message: string) => void;
  env?: Env;
}

/** Report every this many compiled packages (a build compiles about a thousand). */
const PROGRESS_EVERY = 50;

/**
 * The Temporal CLI, built with `go install` into the project cache when it is not found.
 *
 * @throws {CliError} (exit code `unavailable`) when it is not found and cannot be built:
 *   no `go` on PATH, or the build fails; the message says how to install it.
 */
export async function ensureTemporalCli(options: EnsureTemporalCliOptions): Promise<string> {
  const { logger, onProgress = () => {} } = options;
  const env = options.env ?? process.env;
  const found = findTemporalCli(env);
  if (found) {
    logger.debug({ cli: found }, 'using Temporal CLI');
    return found;
  }

  const go = findOnPath('go', env);
  if (!go) {
    throw new CliError(`the Temporal CLI was not found and Go is not on PATH to build it: ${INSTALL_HINT}`, EXIT.unavailable);
  }
  const gobin = temporalCliCacheDir(env);
  await mkdir(gobin, { recursive: true });
  const args = ['install', '-v', `${TEMPORAL_CLI_MODULE}@${TEMPORAL_CLI_VERSION}`];
  logger.info({ command: [go, ...args], GOBIN: gobin }, 'building the Temporal CLI');
  onProgress(`building the Temporal CLI ${TEMPORAL_CLI_VERSION} into ${gobin} with \`go install\`; the first build takes several minutes`);

  const child = execa(go, args, {
    env: { ...env, GOBIN: gobin },
    extendEnv: false,
    stdin: 'ignore',
    stdout: 'ignore',
    reject: false,
    buffer: false,
  });
  // `go install -v` prints one line per package it compiles; "go: downloading ..." lines
  // are module downloads. Keep a tail of everything for the error message.
  const tail: string[] = [];
  let packages = 0;
  try {
    for await (const line of child.iterable({ from: 'stderr' })) {
      tail.push(line);
      if (tail.length > 20) tail.shift();
      // Anything that is not a bare package path: downloads, "# pkg" headers, compiler errors.
      if (line.startsWith('go: ') || line.startsWith('#') || line.includes(': ') || line.includes(' ')) continue;
      packages += 1;
      if (packages % PROGRESS_EVERY === 0) onProgress(`Temporal CLI build: ${packages} packages compiled`);
    }
  } catch {
    // The stream ended with the process (e.g. it could not be spawned); `result` says how.
  }
  const result = await child;
  if (result.exitCode !== 0) {
    const how = result.exitCode === undefined ? `could not run (${result.shortMessage ?? 'unknown error'})` : `failed with exit code ${result.exitCode}`;
    throw new CliError(
      `building the Temporal CLI with \`${go} ${args.join(' ')}\` ${how}:\n${tail.slice(-10).join('\n')}\n` +
        `To fix it: ${INSTALL_HINT}`,
      EXIT.unavailable,
    );
  }
  const built = join(gobin, 'temporal');
  if (!isExecutableFile(built)) {
    throw new CliError(`\`go install\` succeeded but ${built} is not there: ${INSTALL_HINT}`, EXIT.unavailable);
  }
  onProgress(`Temporal CLI built (${packages} packages): ${built}`);
  logger.info({ cli: built, packages }, 'built the Temporal CLI');
  return built;
}
