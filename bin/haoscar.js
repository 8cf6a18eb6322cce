#!/usr/bin/env -S node --max-semi-space-size=1
// The `haoscar` command.
//
// In a checkout (src/ is here) it runs the TypeScript sources through tsx, always: a dist/ left
// by an earlier build would be older code, run silently. Installed from the package (no src/), it
// runs the compiled dist/, with no tsx or other dev tool.
//
// --max-semi-space-size=1 (MB, V8's young generation; default 16): an idle agent's RSS was
// about 30 MB higher with the default, young-generation pages that a mostly idle process kept
// (test/e2e/installed-package.test.ts checks the agent's idle RSS). It is a start-up flag of V8
// (it cannot be set from inside), hence on the `#!` line, which `env -S` splits (coreutils >= 8.30).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const sources = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
let mod;
if (existsSync(sources)) {
  let register;
  try {
    ({ register } = await import('tsx/esm/api'));
  } catch {
    process.stderr.write('haoscar: this is a checkout (src/ is here) and tsx, which runs its TypeScript sources, is not installed: run `npm ci` here, or install the package (`npm pack`, then `npm install -g ./ha-oscar-<version>.tgz`)\n');
    process.exit(1);
  }
  register();
  mod = await import('../src/cli/main.ts');
} else {
  mod = await import('../dist/src/cli/main.js');
}
// Exit explicitly: the Temporal SDK's native runtime would keep a finished command alive.
process.exit(await mod.main(process.argv));
