/**
 * The lint rule that keeps workflow code deterministic is part of the test command; this
 * proves it fires (a rule that never fires protects nothing).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ESLint } from 'eslint';
import { ROOT } from '../support/lab.js';

// The import rules need no type information: lint the probes without the TypeScript project.
const eslint = new ESLint({
  cwd: ROOT,
  overrideConfig: {
    languageOptions: { parserOptions: { projectService: false, project: null } },
    rules: { '@typescript-eslint/no-floating-promises': 'off', '@typescript-eslint/no-misused-promises': 'off' },
  },
});

async function restrictedImports(code: string, filePath: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports' || m.ruleId === 'no-restricted-globals').map((m) => m.message);
}

test('workflow code may not import Node built-ins, side-effect packages or runtime code of src/', async () => {
  const cases = [
    "import { readFile } from 'node:fs';",
    "import { spawn } from 'child_process';",
    "import { execa } from 'execa';",
    "import { Context } from '@temporalio/activity';",
    "import { Client } from '@temporalio/client';",
    "import { createExec } from '../src/exec.js';",
    "import { createServiceActivities } from '../activities/service.js';",
  ];
  for (const line of cases) {
    const messages = await restrictedImports(`${line}\nexport const x = 1;\n`, 'workflows/probe.ts');
    assert.equal(messages.length, 1, `${line} → ${JSON.stringify(messages)}`);
  }
  assert.equal((await restrictedImports('export const t = setTimeout;\n', 'workflows/probe.ts')).length, 1);
});

test('workflow code may import @temporalio/workflow, zod, and types of anything', async () => {
  const ok = [
    "import { sleep } from '@temporalio/workflow';",
    "import { z } from 'zod';",
    "import type { Config } from '../src/config/types.js';",
    "import type { ServiceActivities } from '../activities/service.js';",
  ];
  for (const line of ok) assert.deepEqual(await restrictedImports(`${line}\nexport const x = 1;\n`, 'workflows/probe.ts'), [], line);
});

test('the same imports are fine outside workflows/', async () => {
  assert.deepEqual(await restrictedImports("import { readFile } from 'node:fs';\nexport const x = readFile;\n", 'activities/probe.ts'), []);
});
