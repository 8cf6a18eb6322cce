/**
 * The configuration checked against the programs it names, on the node that will run them:
 * its OCF resource agents (ocf-check.ts) and the fence agents it may run against its peers
 * (fence-check.ts). Problems are configuration errors with their path and line, like every
 * other, all at once (`haoscar validate`, `haoscar agent` at start).
 *
 * Not part of parseConfig: it runs the agents, and the witness (which runs only the workflow
 * worker) needs neither resource-agents nor fence-agents installed.
 */
import { readFile } from 'node:fs/promises';
import type { Exec } from '../exec.js';
import type { Config } from './types.js';
import { ConfigError, formatPath, lineFinder } from './load.js';
import { ocfAgentIssues } from './ocf-check.js';
import { fenceAgentIssues } from './fence-check.js';

/** A problem of an agent the configuration names, with its path parts under the configuration's root. */
export interface AgentIssue {
  pathParts: (string | number)[];
  message: string;
}

/**
 * @param file the configuration file, re-read for the lines of the problems.
 * @param node only what this node may run: its groups' OCF resources, the fence agents of the
 *   nodes it may take a group over from. Everything without it.
 * @throws ConfigError listing every problem.
 */
export async function checkAgents(config: Config, file: string, exec: Exec, node?: string): Promise<void> {
  const issues = [...(await ocfAgentIssues(config, exec, node)), ...(await fenceAgentIssues(config, exec, node))];
  if (issues.length === 0) return;
  const line = lineFinder(await readFile(file, 'utf8').catch(() => ''));
  throw new ConfigError(
    file,
    issues.map(({ pathParts, message }) => {
      const at = line(pathParts);
      return { path: formatPath(pathParts), message, ...(at !== undefined ? { line: at } : {}) };
    }),
  );
}
