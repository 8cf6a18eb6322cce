/**
 * `npm run chaos -- [--faults N] [--seed S] [--kinds a,b,...] [--profile lab|default] [--pace X] [--keep] [--json FILE [--checkpoint N]]`
 *
 * A seeded, randomized schedule of real faults against a two-node cluster in the network lab,
 * then the checker's verdict (test/lab/chaos/README.md). Prints the seed first (replay a
 * failure with `--seed`), a line per fault, then: faults per kind, violations (must be 0), the
 * longest client outage, and the median recovery time per kind. Exit code: 0 when there is no
 * violation and no harness error, 1 otherwise, 2 for bad arguments. Needs root. With --json, the
 * verdict on the faults so far is written there every N (25) faults, then the whole run's at the end.
 */
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { FAULT_KINDS, parseSeed, randomSeed, type FaultKind } from './schedule.js';
import { formatReport, PROFILES, runChaos } from './runner.js';

function usage(message: string): never {
  process.stderr.write(`${message}\nusage: npm run chaos -- [--faults N] [--seed S] [--kinds ${FAULT_KINDS.join(',')}] [--profile ${Object.keys(PROFILES).join('|')}] [--pace X] [--keep] [--json FILE [--checkpoint N]]\n`);
  process.exit(2);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      faults: { type: 'string', default: '30' },
      seed: { type: 'string' },
      kinds: { type: 'string' },
      profile: { type: 'string', default: 'lab' },
      pace: { type: 'string', default: '1' },
      keep: { type: 'boolean', default: false },
      json: { type: 'string' },
      checkpoint: { type: 'string', default: '25' },
    },
    strict: true,
  }));
} catch (e) {
  usage((e as Error).message);
}
const faults = Number(values.faults);
if (!Number.isInteger(faults) || faults < 1) usage(`--faults must be a positive integer, not '${values.faults}'`);
let seed: number;
try {
  seed = values.seed === undefined ? randomSeed() : parseSeed(values.seed);
} catch (e) {
  usage((e as Error).message);
}
const kinds = values.kinds?.split(',').map((k) => k.trim()).filter(Boolean);
const unknown = kinds?.filter((k) => !(FAULT_KINDS as readonly string[]).includes(k)) ?? [];
if (unknown.length > 0) usage(`unknown fault kind(s): ${unknown.join(', ')}`);
if (!(values.profile! in PROFILES)) usage(`--profile must be one of ${Object.keys(PROFILES).join(', ')}`);
const checkpointEvery = Number(values.checkpoint);
if (!Number.isInteger(checkpointEvery) || checkpointEvery < 1) usage(`--checkpoint must be a positive integer, not '${values.checkpoint}'`);
const pace = Number(values.pace);
if (!(pace > 0)) usage(`--pace must be a positive number, not '${values.pace}'`);

process.stderr.write(`chaos seed: ${seed}\n`);
const result = await runChaos({
  seed,
  faults,
  ...(kinds ? { kinds: kinds as FaultKind[] } : {}),
  profile: values.profile!,
  pace,
  keepDir: values.keep!,
  // A run cut short still leaves the checker's verdict on what it did.
  ...(values.json
    ? { checkpointEvery, onCheckpoint: (verdict, done) => writeFile(values.json!, JSON.stringify({ seed, partial: true, faultsDone: done, verdict }, null, 2)) }
    : {}),
});
process.stdout.write(`\n${formatReport(result)}\n`);
if (values.json) {
  await writeFile(values.json, JSON.stringify({ seed: result.seed, profile: result.profile, durationMs: result.durationMs, schedule: result.schedule, verdict: result.verdict, agentExits: result.agentExits, faults: result.record.faults }, null, 2));
}
process.exit(result.verdict.violations.length > 0 || result.verdict.harnessErrors.length > 0 ? 1 : 0);
