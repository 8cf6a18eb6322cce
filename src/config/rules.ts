/**
 * Cross-field rules: what the schema cannot say about one field alone. All problems are
 * collected so that `haoscar validate` reports them together.
 */
import type { RawConfig } from './schema.js';
import type { Config } from './types.js';
import { formatPath } from './load.js';

export interface RuleProblem {
  path: string;
  pathParts: PropertyKey[];
  message: string;
}

export function checkRules(config: Config, raw: RawConfig): RuleProblem[] {
  const problems: RuleProblem[] = [];
  const add = (pathParts: PropertyKey[], message: string) => problems.push({ path: formatPath(pathParts), pathParts, message });

  duplicates(raw.nodes.map((n) => n.name)).forEach((i) => add(['nodes', i, 'name'], `duplicate node name '${raw.nodes[i]!.name}'`));
  duplicates(raw.groups.map((g) => g.name)).forEach((i) => add(['groups', i, 'name'], `duplicate group name '${raw.groups[i]!.name}'`));

  const nodeNames = new Set(raw.nodes.map((n) => n.name));
  raw.groups.forEach((g, gi) => {
    (g.nodes ?? []).forEach((n, ni) => {
      if (!nodeNames.has(n)) add(['groups', gi, 'nodes', ni], `unknown node '${n}' (known: ${[...nodeNames].join(', ')})`);
    });
    duplicates(g.nodes ?? []).forEach((ni) => add(['groups', gi, 'nodes', ni], `node '${g.nodes![ni]}' is listed twice`));
    duplicates(g.resources.map((r) => r.name)).forEach((ri) =>
      add(['groups', gi, 'resources', ri, 'name'], `duplicate resource name '${g.resources[ri]!.name}' in group '${g.name}'`),
    );
  });

  config.groups.forEach((g, gi) =>
    g.resources.forEach((r, ri) => {
      const at = ['groups', gi, 'resources', ri];
      const check = r.check;
      if (check.timeoutMs > check.intervalMs) {
        add([...at, 'check', 'timeout'], `the check timeout (${check.timeoutMs}ms) is longer than its interval (${check.intervalMs}ms)`);
      }
      if (check.type === 'process' && r.driver !== 'process' && !check.name && !check.pidFile) {
        // Without this, a systemd/sysv service's process check would have nothing to look at.
        add([...at, 'check'], `a process check of a '${r.driver}' service needs 'name' or 'pidFile'; only 'process' services are watched directly`);
      }
      if (check.type === 'process' && check.name && check.pidFile) {
        add([...at, 'check'], "a process check takes 'name' or 'pidFile', not both");
      }
      if (r.healing.backoff.maxMs < r.healing.backoff.initialMs) {
        add([...at, 'healing', 'backoff', 'max'], 'the backoff maximum is shorter than its initial delay');
      }
    }),
  );
  return problems;
}

/** Indices of the second and later occurrences of each repeated value. */
function duplicates(values: readonly string[]): number[] {
  const seen = new Set<string>();
  const out: number[] = [];
  values.forEach((v, i) => (seen.has(v) ? out.push(i) : seen.add(v)));
  return out;
}
