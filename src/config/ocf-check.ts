/**
 * The configured OCF resources checked against their agents, on a node that runs them: each
 * agent must be installed, every parameter must be one the agent declares in its meta-data,
 * every parameter it declares required must be given, and then the agent's own `validate-all`
 * must accept them here (an interface that exists, a binary that is installed). agent-check.ts
 * makes them configuration errors with their path and line, like every other.
 *
 * Not part of parseConfig: it runs the agents, and the witness (which runs only the workflow
 * worker) needs no resource-agents installed.
 */
import type { Exec } from '../exec.js';
import type { Config, OcfResource } from './types.js';
import type { AgentIssue } from './agent-check.js';
import { readOcfMetadata, runOcfValidateAll, type OcfMetadata } from '../drivers/ocf.js';

/** The problems of one resource's parameters against its agent's meta-data. Pure. */
export function ocfParamProblems(resource: Pick<OcfResource, 'agent' | 'params'>, metadata: OcfMetadata): { param?: string; message: string }[] {
  const declared = new Map(metadata.parameters.map((p) => [p.name, p]));
  const known = metadata.parameters.map((p) => p.name).join(', ') || 'none';
  const problems: { param?: string; message: string }[] = [];
  for (const name of Object.keys(resource.params)) {
    if (!declared.has(name)) problems.push({ param: name, message: `${resource.agent} has no parameter '${name}' (its parameters: ${known})` });
  }
  for (const p of metadata.parameters) {
    if (p.required && resource.params[p.name] === undefined) problems.push({ message: `${resource.agent} requires the parameter '${p.name}': add it under params` });
  }
  return problems;
}

/**
 * Every problem of the OCF resources `node` may run (all of them without `node`), against the
 * agents installed here.
 */
export async function ocfAgentIssues(config: Pick<Config, 'groups'>, exec: Exec, node?: string): Promise<AgentIssue[]> {
  const issues: AgentIssue[] = [];
  const metadata = new Map<string, Promise<OcfMetadata>>();
  for (const [g, group] of config.groups.entries()) {
    if (node !== undefined && !group.nodes.includes(node)) continue;
    for (const [r, resource] of group.resources.entries()) {
      if (resource.type !== 'ocf') continue;
      const at = ['groups', g, 'resources', r];
      const key = `${resource.ocfRoot}\0${resource.agent}`;
      if (!metadata.has(key)) metadata.set(key, readOcfMetadata(exec, resource));
      try {
        const md = await metadata.get(key)!;
        const problems = ocfParamProblems(resource, md);
        for (const p of problems) issues.push({ pathParts: p.param !== undefined ? [...at, 'params', p.param] : [...at, 'params'], message: p.message });
        // The agent's own check of its parameters on this node, once they are ones it takes.
        const refused = problems.length === 0 ? await runOcfValidateAll(exec, resource, md) : undefined;
        if (refused) issues.push({ pathParts: [...at, 'params'], message: `${resource.agent} validate-all refused these parameters on this node: ${refused}` });
      } catch (err) {
        issues.push({ pathParts: [...at, 'agent'], message: err instanceof Error ? err.message : String(err) });
      }
    }
  }
  return issues;
}
