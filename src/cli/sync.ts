/**
 * `haoscar sync status`: the state of this node's file sets (role, source, last success,
 * lag, bytes, errors), read from the agent's `<stateDir>/sync-state.json`, so it answers
 * even while Temporal is down.
 */
import { Command } from 'commander';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import type { FileSetState } from '../agent/file-sync.js';
import { CliError, EXIT } from './errors.js';
import { printJson } from './output.js';
import { formatBytes } from './progress.js';

export interface SyncStateFile {
  node: string;
  at: number;
  sets: FileSetState[];
}

export function syncCommand(): Command {
  const sync = new Command('sync').description("file sets replicated from each group's owner to its standbys");
  sync
    .command('status')
    .description("show this node's file sets: role, source, last success, lag, bytes, errors (from the running agent)")
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('--state-dir <dir>', "the agent's state directory (default: agent.stateDir of the configuration)")
    .option('--json', 'print the state as JSON')
    .action(async (opts: { config: string; stateDir?: string; json?: boolean }) => {
      const config = await loadConfig(opts.config);
      const file = join(opts.stateDir ?? config.agent.stateDir, 'sync-state.json');
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          throw new CliError(`no sync state in ${file}: is the agent running on this node, and does it run a group with fileSets?`, EXIT.unavailable);
        }
        throw err;
      }
      const state = JSON.parse(text) as SyncStateFile;
      if (opts.json) return printJson(state);
      process.stdout.write(formatSyncState(state));
    });
  return sync;
}

export function formatSyncState(state: SyncStateFile, now = Date.now()): string {
  const ago = (t: number | undefined) => (t === undefined ? 'never' : `${Math.max(0, Math.round((now - t) / 100) / 10)}s ago`);
  const lines = [`node ${state.node} (state written ${ago(state.at)})`];
  for (const s of state.sets) {
    const what = s.role === 'source' ? `owner, serving (generation ${s.generation})` : s.role === 'standby' ? `standby of ${s.source}` : 'idle (no owner heard)';
    lines.push(`  ${`${s.group}/${s.set}`.padEnd(24)} ${what}${s.running ? ', pulling now' : ''}`);
    if (s.role !== 'source') {
      lines.push(`    last success ${ago(s.lastSuccessAt)}${s.lagMs !== undefined ? `, lag ${s.lagMs} ms` : ''}, last ${formatBytes(s.bytes ?? 0)}, total ${formatBytes(s.totalBytes)}, errors ${s.errors}`);
    } else if (s.lastChangeAt !== undefined) {
      lines.push(`    last change ${ago(s.lastChangeAt)}`);
    }
    if (s.lastError) lines.push(`    LAST ERROR: ${s.lastError}`);
  }
  return `${lines.join('\n')}\n`;
}
