/**
 * scripts/temporal-postgres.sh starts the Temporal server processes with setsid (an administrator's
 * `start` leaves them running after the script, untouched by the terminal's Ctrl-C). So a test
 * killed by a signal must stop them itself, and drop its role and databases (temporal-pg.ts): on
 * SIGTERM/SIGINT/SIGHUP at once; after a SIGKILL, which nothing survives to handle, the next
 * TemporalPg of any process removes what the dead one left.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { ROOT } from './cluster.js';
import { TemporalPg, temporalPgSkipReason } from './temporal-pg.js';
import { waitFor } from '../support/wait.js';

const skip = temporalPgSkipReason();

interface Held {
  dir: string;
  db: string;
  pids: number[];
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function databases(db: string): Promise<string[]> {
  const r = await execa('runuser', ['-u', 'postgres', '--', 'psql', '-qAtc', `SELECT datname FROM pg_database WHERE datname LIKE '${db}%' UNION ALL SELECT rolname FROM pg_roles WHERE rolname = '${db}'`]);
  return r.stdout.split('\n').filter(Boolean);
}

/** Starts the holder (temporal-pg-holder.ts) and waits until its two server processes serve. */
async function hold() {
  // forceKillAfterDelay: false: execa would SIGKILL it 5 s after a SIGTERM, before its clean-up ends.
  const child = execa(process.execPath, ['--import', 'tsx', join(ROOT, 'test/lab/temporal-pg-holder.ts')], { cwd: ROOT, reject: false, all: true, stdin: 'ignore', forceKillAfterDelay: false });
  let out = '';
  child.all!.on('data', (d: Buffer) => (out += d.toString()));
  const line = await waitFor('the holder\'s Temporal on PostgreSQL serving', () => {
    if (child.exitCode !== null) throw new Error(`the holder exited (${child.exitCode}):\n${out}`);
    return out.split('\n').find((l) => l.startsWith('{"dir"'));
  }, 240_000, 200);
  const held = JSON.parse(line) as Held;
  assert.equal(held.pids.filter(alive).length, 2, 'both server processes run');
  assert.equal((await databases(held.db)).length, 3, 'its two databases and its role exist');
  return { child, held, output: () => out };
}

async function gone(held: Held, what: string, output: () => string) {
  await waitFor(`${what}: the server processes gone`, () => held.pids.every((p) => !alive(p)), 30_000, 100).catch((err: Error) => {
    throw new Error(`${err.message}; still running: ${held.pids.filter(alive).join(' ')}\n${output()}`);
  });
  assert.deepEqual(await databases(held.db), [], `${what}: its databases and role dropped`);
  assert.equal(existsSync(held.dir), false, `${what}: its directory removed`);
}

test('a test process ended by SIGTERM stops its Temporal server processes and drops its databases', { skip }, async (t) => {
  const { child, held, output } = await hold();
  t.after(() => held.pids.filter(alive).forEach((p) => process.kill(p, 'SIGKILL')));
  child.kill('SIGTERM');
  const r = await child;
  assert.equal(r.signal, 'SIGTERM', 'it still dies of the signal');
  await gone(held, 'after SIGTERM', output);
});

test('after a SIGKILL, the next TemporalPg removes what the killed process left', { skip }, async (t) => {
  const { child, held, output } = await hold();
  t.after(() => held.pids.filter(alive).forEach((p) => process.kill(p, 'SIGKILL')));
  child.kill('SIGKILL');
  await child;
  assert.ok(held.pids.every(alive), 'nothing handles a SIGKILL: the server processes are left (setsid)');
  const removed = await TemporalPg.cleanupStale();
  assert.ok(removed.includes(held.db), `cleanupStale() removed ${held.db} (it says: ${removed.join(', ')})`);
  await gone(held, 'after cleanupStale()', output);
});
