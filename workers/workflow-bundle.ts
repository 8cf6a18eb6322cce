/**
 * Where the workflow code is. Under tsx (development, tests) it is workflows/index.ts; in a
 * build (dist/) it is the compiled index.js beside this file's own directory.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export function workflowsPath(): string {
  for (const name of ['index.ts', 'index.js']) {
    const path = fileURLToPath(new URL(`../workflows/${name}`, import.meta.url));
    if (existsSync(path)) return path;
  }
  throw new Error('workflow code not found beside workers/ (expected workflows/index.ts or .js): is the installation complete?');
}
