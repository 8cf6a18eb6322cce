/**
 * For temporal-pg-cleanup.test.ts: a process that starts a TemporalPg on 127.0.0.1 (two Temporal
 * server processes on PostgreSQL, started by scripts/temporal-postgres.sh in sessions of their
 * own), prints one JSON line `{ dir, db, pids }`, and then waits to be killed, as a test would
 * be killed in the middle of its run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TemporalPg } from './temporal-pg.js';

const pg = await TemporalPg.start('127.0.0.1');
const pids = [1, 2].map((n) => Number(readFileSync(join(pg.dir, `server-${n}.pid`), 'utf8').trim()));
process.stdout.write(`${JSON.stringify({ dir: pg.dir, db: pg.db, pids })}\n`);
setInterval(() => undefined, 60_000);
