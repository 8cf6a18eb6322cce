/**
 * Hostile or broken haoscar.yaml: whatever the text, the parser answers with a Config or a
 * ConfigError (problems with their lines), never anything else (issue 9, item 11: an unresolved
 * alias or an alias bomb made `haoscar validate` and the agent die with "unexpected error" and a
 * stack trace). The YAML cases are checked through bin/haoscar.js, as an administrator runs it;
 * the fuzz loop mutates examples/haoscar.yaml with a seeded generator so that a failure replays.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { ConfigError, parseConfig } from '../../src/config/load.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const EXAMPLE = join(ROOT, 'examples', 'haoscar.yaml');

const BOMB = [
  'cluster: c1',
  'a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]',
  'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]',
  'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]',
  'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]',
  'e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]',
  'f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]',
  'g: [*f, *f, *f, *f, *f, *f, *f, *f, *f]',
  '',
].join('\n');

describe('haoscar validate on YAML that cannot be turned into data', () => {
  const cases: { name: string; text: string; line: number; message: RegExp }[] = [
    { name: 'an unresolved alias', text: 'cluster: c1\nnodes:\n  - name: *nope\n', line: 3, message: /alias \*nope .*no anchor &nope before it/ },
    { name: 'an alias bomb', text: BOMB, line: 3, message: /too many aliases/ },
  ];
  for (const c of cases) {
    it(`${c.name}: a config error with its line, exit code 3, no stack trace`, async () => {
      const dir = await mkdtemp(join(tmpdir(), 'haoscar-fuzz-'));
      try {
        const file = join(dir, 'haoscar.yaml');
        await writeFile(file, c.text);
        const run = await execa(process.execPath, [join(ROOT, 'bin', 'haoscar.js'), 'validate', file], { reject: false, cwd: ROOT, timeout: 60_000 });
        const out = `${run.stdout}\n${run.stderr}`;
        assert.equal(run.exitCode, 3, out);
        assert.match(out, c.message);
        assert.match(out, new RegExp(`\\(line ${c.line}\\)`), out);
        assert.doesNotMatch(out, /unexpected error|\n\s+at /, out);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  }
});

/** mulberry32: small, seeded, good enough to pick mutations. */
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

/** Bits of YAML that exercise the parser's odd corners: anchors, aliases, tags, flow, merges. */
const PIECES = ['&a ', '*a', '*b', '&b [*a, *a]', '<<: *a', '!!str ', '!!binary ', '{', '}', '[', ']', ': ', '- ', '"', "'", '#', '\t', '\n', '~', 'null', '0x1F', '1e309', '-.inf', '..', '//', '\u0000', '\u202e', '%YAML 1.1\n---\n', '? ', '|', '>', '---\n', '...\n'];

function mutate(text: string, next: () => number): string {
  let t = text;
  const edits = 1 + Math.floor(next() * 4);
  for (let i = 0; i < edits; i++) {
    const at = Math.floor(next() * (t.length + 1));
    const r = next();
    if (r < 0.4) t = t.slice(0, at) + PIECES[Math.floor(next() * PIECES.length)] + t.slice(at);
    else if (r < 0.7) t = t.slice(0, at) + t.slice(at + 1 + Math.floor(next() * 20));
    else {
      // Copy a slice elsewhere: duplicate keys, anchors defined twice, aliases before anchors.
      const from = Math.floor(next() * t.length);
      t = t.slice(0, at) + t.slice(from, from + 1 + Math.floor(next() * 60)) + t.slice(at);
    }
  }
  return t;
}

describe('the config parser under mutation fuzzing', () => {
  it('2,000 seeded mutations of examples/haoscar.yaml: each parses or is a ConfigError', async () => {
    const example = await readFile(EXAMPLE, 'utf8');
    const seed = Number(process.env.HAOSCAR_FUZZ_SEED ?? 20261206);
    const next = rng(seed);
    const outcomes = { parsed: 0, refused: 0 };
    for (let i = 0; i < 2000; i++) {
      const text = mutate(example, next);
      try {
        parseConfig(text);
        outcomes.parsed++;
      } catch (err) {
        if (!(err instanceof ConfigError)) {
          assert.fail(`mutation #${i} (seed ${seed}) threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} instead of a ConfigError; the text:\n${text}`);
        }
        assert.ok(err.issues.length > 0, `mutation #${i}: a ConfigError with no problem in it`);
        outcomes.refused++;
      }
    }
    // Not a fuzz that only ever feeds garbage, nor one that never breaks anything.
    assert.ok(outcomes.refused > 100 && outcomes.parsed > 20, JSON.stringify(outcomes));
  });
});
