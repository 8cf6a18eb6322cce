/**
 * The configured fence agents checked against what they say of themselves, on a node that may
 * run them (the node taking over a group fences its old owner): the agent must be installed,
 * every parameter must be one it declares in its `-o metadata` and hold a value of the declared
 * kind (fencing.py skips, with a warning nobody reads at 3 a.m., an unknown key or a boolean it
 * cannot read, so `lanplus: "yes please"` would fence without lanplus or not at all), every
 * parameter it declares required must be given, the configured action must be one it has, and
 * then its own `validate-all` must accept them (a fence address given, a valid choice).
 *
 * Whether the fence device answers and the credentials are right is not checked here
 * (validate-all does not connect): the agent's `status` action tells that, and docs/fencing.md
 * says to run it on every node before trusting the cluster to fence.
 */
import type { Exec } from '../exec.js';
import { ExecError } from '../exec.js';
import { agentSaid, fenceAgentInput, FENCE_RESERVED_PARAMS } from '../fence.js';
import { parseOcfMetadata, type OcfMetadata } from '../drivers/ocf.js';
import { installHintAllFamilies } from '../distro/packages.js';
import type { Config, FenceSpec } from './types.js';
import type { AgentIssue } from './agent-check.js';

/** A problem of one fence spec, at `param` under its params when it is about one. */
export interface FenceProblem {
  param?: string;
  /** `command` or `action` when the problem is there rather than in params. */
  field?: 'command' | 'action';
  message: string;
}

/** Values fencing.py reads as a boolean (fencing.py `_parse_input_stdin`); any other is ignored. */
const BOOLEAN_VALUES = new Set(['1', 'yes', 'on', 'true', '0', 'no', 'off', 'false']);
/** Parameters HA-OSCAR gives the agent itself: declared required by some agents, never configured. */
const SET_BY_HAOSCAR = new Set([...FENCE_RESERVED_PARAMS, 'port', 'plug']);

/** The problems of one fence spec against its agent's metadata. Pure. */
export function fenceParamProblems(spec: Pick<FenceSpec, 'command' | 'params' | 'action'>, metadata: OcfMetadata): FenceProblem[] {
  const agent = agentName(spec);
  const declared = new Map(metadata.parameters.map((p) => [p.name, p]));
  const known = metadata.parameters.filter((p) => !p.deprecated && !SET_BY_HAOSCAR.has(p.name)).map((p) => p.name).join(', ') || 'none';
  const problems: FenceProblem[] = [];
  for (const [name, value] of Object.entries(spec.params)) {
    if (FENCE_RESERVED_PARAMS.includes(name)) {
      problems.push({ param: name, message: `'${name}' is set by HA-OSCAR (${name === 'action' ? 'use fence.action' : 'it is the victim\'s node name'}); remove it from params` });
      continue;
    }
    const p = declared.get(name);
    if (!p) {
      problems.push({ param: name, message: `${agent} has no parameter '${name}' (its parameters: ${known})` });
      continue;
    }
    if (p.type === 'boolean' && !BOOLEAN_VALUES.has(value.toLowerCase())) {
      problems.push({ param: name, message: `${agent}'s '${name}' is a boolean: expected "1" or "0" (or yes/no, on/off, true/false), got "${value}"` });
    } else if (p.type === 'integer' && !/^-?\d+$/.test(value)) {
      problems.push({ param: name, message: `${agent}'s '${name}' is an integer, got "${value}"` });
    } else if (p.type === 'second' && !/^\d+(\.\d+)?$/.test(value)) {
      problems.push({ param: name, message: `${agent}'s '${name}' is a number of seconds, got "${value}"` });
    } else if (p.type === 'select' && p.options && !p.options.includes(value)) {
      problems.push({ param: name, message: `${agent}'s '${name}' takes one of ${p.options.join(', ')}, got "${value}"` });
    }
  }
  for (const p of metadata.parameters) {
    if (p.required && !SET_BY_HAOSCAR.has(p.name) && spec.params[p.name] === undefined) {
      problems.push({ message: `${agent} requires the parameter '${p.name}': add it under params` });
    }
  }
  if (metadata.actions.length > 0 && !metadata.actions.includes(spec.action)) {
    problems.push({ field: 'action', message: `${agent} has no action '${spec.action}' (its actions: ${metadata.actions.join(', ')})` });
  }
  return problems;
}

/**
 * Runs the agent's `-o metadata` (on the command line, which every fencing.py version reads).
 * @throws Error saying what to install when the agent is missing, or why its metadata is unusable.
 */
export async function readFenceMetadata(exec: Exec, spec: Pick<FenceSpec, 'command'>): Promise<OcfMetadata> {
  const file = spec.command[0];
  if (!file) throw new Error('no fence agent command configured');
  try {
    const { stdout } = await exec(file, ['-o', 'metadata'], { timeoutMs: 15_000 });
    return parseOcfMetadata(stdout);
  } catch (err) {
    if (err instanceof ExecError && err.exitCode === undefined && !err.timedOut) {
      throw new Error(`fence agent ${file} is not installed on this node (${err.message}); install it (${installHintAllFamilies('fence-agent')})`, { cause: err });
    }
    throw new Error(`fence agent ${file}: -o metadata failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/**
 * Runs the agent's `validate-all` with the configured params on stdin, as a fence would get
 * them (victim `victim`). It checks them without contacting the fence device.
 * @returns why it refused them, or undefined when it accepted them.
 */
export async function runFenceValidateAll(exec: Exec, spec: Pick<FenceSpec, 'command' | 'params'>, victim: string): Promise<string | undefined> {
  const [file, ...args] = spec.command;
  if (!file) return 'no fence agent command configured';
  try {
    await exec(file, args, { input: fenceAgentInput({ params: spec.params, action: 'validate-all' }, victim), timeoutMs: 15_000 });
    return undefined;
  } catch (err) {
    if (!(err instanceof ExecError)) return err instanceof Error ? err.message : String(err);
    // fencing.py logs "ERROR: Failed: <why>", then "validate-all failed" and a usage hint.
    const said = agentSaid(err.stderr);
    const why = said.map((l) => /^ERROR: Failed: (.*)$/.exec(l)?.[1]).find((l) => l !== undefined) ?? said.at(-1);
    return why ?? (err.timedOut ? 'timed out after 15 s' : `exited ${err.exitCode ?? err.signal}`);
  }
}

/** The nodes whose fence agent `node` may run: those it may take a group over from (every fenced node without `node`). */
export function fencedFrom(config: Pick<Config, 'nodes' | 'groups'>, node?: string): string[] {
  return config.nodes
    .filter((n) => n.fence !== undefined && n.name !== node)
    .filter((n) => node === undefined || config.groups.some((g) => g.nodes.includes(node) && g.nodes.includes(n.name)))
    .map((n) => n.name);
}

/** Every problem of the fence specs `node` may run (all of them without `node`), against the agents installed here. */
export async function fenceAgentIssues(config: Pick<Config, 'nodes' | 'groups'>, exec: Exec, node?: string): Promise<AgentIssue[]> {
  const issues: AgentIssue[] = [];
  const metadata = new Map<string, Promise<OcfMetadata>>();
  for (const victim of fencedFrom(config, node)) {
    const index = config.nodes.findIndex((n) => n.name === victim);
    const spec = config.nodes[index]!.fence!;
    const at = ['nodes', index, 'fence'];
    const key = spec.command[0] ?? '';
    if (!metadata.has(key)) metadata.set(key, readFenceMetadata(exec, spec));
    try {
      const problems = fenceParamProblems(spec, await metadata.get(key)!);
      for (const p of problems) issues.push({ pathParts: p.param !== undefined ? [...at, 'params', p.param] : p.field ? [...at, p.field] : [...at, 'params'], message: p.message });
      const refused = problems.length === 0 ? await runFenceValidateAll(exec, spec, victim) : undefined;
      if (refused) issues.push({ pathParts: [...at, 'params'], message: `${agentName(spec)} validate-all refused these parameters on this node: ${refused}` });
    } catch (err) {
      issues.push({ pathParts: [...at, 'command'], message: err instanceof Error ? err.message : String(err) });
    }
  }
  return issues;
}

const agentName = (spec: Pick<FenceSpec, 'command'>) => {
  const file = spec.command[0] ?? '';
  return file.slice(file.lastIndexOf('/') + 1) || 'the fence agent';
};
