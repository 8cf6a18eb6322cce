/**
 * The chaos suite's short schedule for CI (test/lab/chaos/README.md): every kind of fault of the
 * default menu once, in a seeded order, at a faster pace, against a real two-node cluster in the
 * network lab; then the checker's verdict for the whole run must have no violation. The seed is
 * fixed (so that CI is reproducible) unless HAOSCAR_CHAOS_SEED says otherwise, and printed in
 * every failure with the command that replays the run. A longer run: `npm run chaos -- --faults 200`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_KINDS, parseSeed, type FaultKind } from './chaos/schedule.js';
import { formatReport, runChaos } from './chaos/runner.js';

const SEED = parseSeed(process.env.HAOSCAR_CHAOS_SEED ?? '20261206');
/** HAOSCAR_CHAOS_KINDS: a comma-separated list of kinds instead of every kind of the default menu (checked by makeSchedule). */
const KINDS = process.env.HAOSCAR_CHAOS_KINDS ? (process.env.HAOSCAR_CHAOS_KINDS.split(',') as FaultKind[]) : DEFAULT_KINDS;
const FAULTS = Number(process.env.HAOSCAR_CHAOS_FAULTS ?? KINDS.length);

test(`chaos, short schedule: ${FAULTS} faults (seed ${SEED}): never two holders or instances, the group back after each fault, the controller's view true`, { timeout: 420_000 }, async (t) => {
  const lines: string[] = [];
  const result = await runChaos({
    seed: SEED,
    faults: FAULTS,
    kinds: KINDS,
    pace: 0.6,
    log: (line) => {
      lines.push(line);
      t.diagnostic(line);
    },
  });
  const report = formatReport(result);
  for (const line of report.split('\n')) t.diagnostic(line);
  const v = result.verdict;
  const replay = `seed ${SEED} — replay: HAOSCAR_CHAOS_SEED=${SEED} node --import tsx --test test/lab/chaos.test.ts, or npm run chaos -- --seed ${SEED} --faults ${FAULTS} --pace 0.6 --kinds ${KINDS.join(',')}`;
  assert.deepEqual(v.harnessErrors, [], `the harness could not apply or heal a fault (${replay})\n${report}`);
  const describe = (x: (typeof v.violations)[number]) => `${x.rule}${x.fault ? ` during ${x.fault}` : ''}: ${x.detail}`;
  // Safety (never two holders, instances or ARP answers) and liveness (the group back and the
  // controller's view true within 60 s) both fail the run.
  assert.deepEqual(v.violations.map(describe), [], `violations (${replay})\n${report}\n${result.labDir ? `logs: ${result.labDir}` : ''}`);
  assert.equal(v.faults, FAULTS);
  t.diagnostic(`chaos CI schedule: ${Math.round(result.durationMs / 1000)} s`);
});
