/**
 * Workflow inputs, signals and updates under fuzzing (issue 9, item 11): anyone who can reach
 * Temporal can type any JSON into the UI. Whatever the value, a schema's parse through
 * parseWorkflowInput returns data that passed it, or throws the non-retryable
 * `InvalidWorkflowInput` failure whose message names the problems (bounded in length); nothing
 * else (a TypeError would fail the workflow task and be retried for ever). Seeded: a failure replays.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import {
  confirmDownSchema,
  controllerInputSchema,
  failoverInputSchema,
  groupLostSchema,
  healGaveUpSchema,
  healServiceInputSchema,
  imageRecipeInputSchema,
  nodeEdgeSchema,
  parseWorkflowInput,
  resyncInputSchema,
  serviceFailureSchema,
  switchoverInputSchema,
} from '../../workflows/inputs.js';
import { ERROR_TYPES } from '../../workflows/shared.js';

/** A valid value of each schema, the seed of its mutations. */
const SAMPLES: [string, z.ZodType, Record<string, unknown>][] = [
  ['healService', healServiceInputSchema, { cluster: 'c1', node: 'n1', group: 'web', resource: 'httpd', reason: 'check failed', restarts: [1, 2] }],
  ['failover', failoverInputSchema, { cluster: 'c1', group: 'web', to: 'n2', reason: 'maintenance', kind: 'operator' }],
  ['switchover', switchoverInputSchema, { cluster: 'c1', group: 'web', to: 'n2', trigger: 'operator' }],
  ['resync', resyncInputSchema, { cluster: 'c1', group: 'web', node: 'n2' }],
  ['controller', controllerInputSchema, { cluster: 'c1' }],
  ['controller-carried', controllerInputSchema, { cluster: 'c1', carried: { cluster: 'c1', groups: { web: { owner: 'n1', epoch: 3, state: 'running', since: 1, renewable: true, operation: { workflowId: 'failover/c1/web', kind: 'node-lost', startedAt: 1 } } }, nodes: { n1: { state: 'up', since: 1, reportedBy: 'n1' } }, falseAlarms: [], reverify: {}, confirmedDown: [], applied: [{ id: 'w/r/1/claimGroup', update: 'claimGroup', at: 1, result: { epoch: 3 } }] } }],
  ['nodeEdge', nodeEdgeSchema, { node: 'n1', to: 'suspect', reporter: 'n2', at: 1, detail: 'silent' }],
  ['groupLost', groupLostSchema, { group: 'web', node: 'n1', epoch: 3, at: 1, detail: 'lease lost' }],
  ['healGaveUp', healGaveUpSchema, { group: 'web', resource: 'httpd', node: 'n1', at: 1, detail: 'gave up' }],
  ['confirmDown', confirmDownSchema, { node: 'n1', operator: 'alice', detail: 'powered off' }],
  ['serviceFailed', serviceFailureSchema, { at: 1, detail: 'exited', source: 'monitor' }],
  ['imageRecipe', imageRecipeInputSchema, { cluster: 'c1', node: 'n1', format: 'autoyast', root: '/', hostname: 'n3', packageUrl: 'http://10.0.0.1/ha-oscar.tgz', rootPasswordHash: '$6$salt$hash' }],
];

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Any JSON value a UI user could type, and a few that JSON cannot hold but a client library can send. */
function randomValue(next: () => number, depth = 0): unknown {
  const pick = Math.floor(next() * (depth > 3 ? 9 : 12));
  switch (pick) {
    case 0: return null;
    case 1: return next() < 0.5;
    case 2: return [0, -1, 1.5, 2 ** 53, -(2 ** 63), Number.MAX_VALUE, 1e-320][Math.floor(next() * 7)];
    case 3: return '';
    case 4: return 'x'.repeat(Math.floor(next() * 5000));
    case 5: return ['n1', 'N1', 'web', '-a', 'a-', '../etc', 'a\u0000b', '\u202eweb', 'recover', 'switchover', '__proto__', 'constructor'][Math.floor(next() * 12)];
    case 6: return undefined;
    case 7: return Number.NaN;
    case 8: return String(Math.floor(next() * 1e6));
    case 9: return Array.from({ length: Math.floor(next() * 4) }, () => randomValue(next, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(next() * 4); i > 0; i--) o[['a', 'to', 'kind', 'group', '__proto__', 'constructor'][Math.floor(next() * 6)]!] = randomValue(next, depth + 1);
      return o;
    }
  }
}

function mutate(sample: Record<string, unknown>, next: () => number): unknown {
  const r = next();
  if (r < 0.1) return randomValue(next);
  const v: Record<string, unknown> = JSON.parse(JSON.stringify(sample)) as Record<string, unknown>;
  const keys = Object.keys(v);
  for (let i = 1 + Math.floor(next() * 3); i > 0; i--) {
    const key = keys[Math.floor(next() * keys.length)]!;
    const what = next();
    if (what < 0.5) v[key] = randomValue(next);
    else if (what < 0.7) delete v[key];
    else v[['extra', '__proto__', 'constructor', 'toString'][Math.floor(next() * 4)]!] = randomValue(next);
  }
  return v;
}

test('5,000 seeded mutations of valid workflow inputs, signals and updates: each parses or is an InvalidWorkflowInput failure', () => {
  const seed = Number(process.env.HAOSCAR_FUZZ_SEED ?? 20261206);
  const next = rng(seed);
  const outcomes = { parsed: 0, refused: 0 };
  for (const [what, schema, sample] of SAMPLES) assert.deepEqual(parseWorkflowInput(schema, sample, what) !== undefined, true, `the ${what} sample is valid`);
  for (let i = 0; i < 5000; i++) {
    const [what, schema, sample] = SAMPLES[i % SAMPLES.length]!;
    const input = mutate(sample, next);
    try {
      parseWorkflowInput(schema, input, what);
      outcomes.parsed++;
    } catch (err) {
      const shown = `mutation #${i} of ${what} (seed ${seed}): ${JSON.stringify(input)?.slice(0, 300)}`;
      assert.ok(err instanceof ApplicationFailure, `${shown} threw ${String(err)}`);
      assert.equal(err.type, ERROR_TYPES.InvalidWorkflowInput, shown);
      assert.equal(err.nonRetryable, true, shown);
      assert.match(err.message, new RegExp(`^invalid input for ${what}: `), shown);
      assert.ok(err.message.length < 20_000, `${shown}: a message of ${err.message.length} characters`);
      outcomes.refused++;
    }
  }
  assert.ok(outcomes.refused > 1000 && outcomes.parsed > 100, JSON.stringify(outcomes));
});
