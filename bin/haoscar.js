#!/usr/bin/env node
// The `haoscar` command. Runs the compiled build (npm run build) when there is one, else the
// TypeScript sources through tsx, so a checkout works without a build step.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
let mod;
if (existsSync(built)) {
  mod = await import(built);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import('../src/cli/main.ts');
}
// Exit explicitly: the Temporal SDK's native runtime would keep a finished command alive.
process.exit(await mod.main(process.argv));
