/**
 * Running a fence agent the way Pacemaker's fencer runs the ClusterLabs fence-agents: no
 * arguments, options as `key=value` lines on standard input, exit 0 when the victim is off
 * (or rebooted). fence-agents' `fencing.py` reads stdin only when it is given no command-line
 * arguments, takes the last value of a repeated key, skips `#` comments, ignores `nodename`
 * unless the agent declares it and warns about (but ignores) keys it does not know.
 */
import { ExecError, lastLine, type Exec } from './exec.js';
import type { Logger } from './log.js';
import type { FenceSpec } from './config/types.js';

export interface FenceResult {
  /** The agent exited 0: the victim is powered off (or was rebooted). */
  fenced: boolean;
  /** What the agent said (its last line) or why it failed, secrets masked. */
  detail: string;
}

export interface FenceDeps {
  exec: Exec;
  logger: Logger;
}

/** Keys set from the spec and the victim, never from `params` (the configuration check refuses them there). */
export const FENCE_RESERVED_PARAMS: readonly string[] = ['action', 'nodename'];
/** Keys fence-agents read as "which outlet, VM or machine": `port` (all versions) and `plug` (newer ones). */
const PLUG_KEYS = ['port', 'plug'];

/** Whether a parameter holds a secret that must not be logged (passwd, password, snmp_priv_passwd, api_key, ...). */
export function isSecretParam(key: string): boolean {
  return /pass|secret|key/i.test(key);
}

/** `params` with secret values replaced by `***`, for logs. Pure. */
export function maskFenceParams(params: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(params).map(([key, value]) => [key, isSecretParam(key) ? '***' : value]));
}

/**
 * The agent's standard input: the configured params in their order, then `action=` and
 * `nodename=<victim>`, and `port=<victim>` unless params name the plug themselves (`port` or
 * `plug`). Like Pacemaker's default `pcmk_host_argument`, `port` is used because every
 * fencing.py version accepts it, while only newer ones accept `plug`; agents without plugs
 * (IPMI, most BMCs) accept it and ignore it. Pure.
 * @throws Error when a value or the victim contains a line break (it would inject a line,
 *   e.g. `action=on`; the config schema already forbids it).
 */
export function fenceAgentInput(spec: Pick<FenceSpec, 'params'> & { action: FenceSpec['action'] | 'validate-all' | 'status' }, victim: string): string {
  const lines: string[] = [];
  const add = (key: string, value: string) => {
    if (/[\r\n]/.test(value)) throw new Error(`fence parameter ${key} contains a line break`);
    lines.push(`${key}=${value}`);
  };
  for (const [key, value] of Object.entries(spec.params)) {
    if (!FENCE_RESERVED_PARAMS.includes(key)) add(key, value);
  }
  add('action', spec.action);
  add('nodename', victim);
  if (!PLUG_KEYS.some((key) => key in spec.params)) add('port', victim);
  return `${lines.join('\n')}\n`;
}

/** What one run of a fence agent came to, secrets masked. */
type AgentRun = { ok: true; said: string } | { ok: false; exitCode?: number; detail: string };

/**
 * Runs `spec.command` (without a shell) for `action` with {@link fenceAgentInput} on stdin,
 * bounded by `spec.timeoutMs`. Secret params are masked in what it returns (an agent in verbose
 * mode may echo them). Never throws.
 */
async function runAgentAction(spec: FenceSpec, action: FenceSpec['action'] | 'status', victim: string, deps: FenceDeps, logger: Logger): Promise<AgentRun> {
  const secrets = Object.entries(spec.params)
    .filter(([key, value]) => isSecretParam(key) && value.length >= 3)
    .map(([, value]) => value);
  const mask = (text: string) => secrets.reduce((masked, secret) => masked.split(secret).join('***'), text);

  const [file, ...args] = spec.command;
  if (!file) return { ok: false, detail: 'no fence agent command configured' };
  if (args.length > 0) {
    // fencing.py parses the command line instead of stdin when it has any argument.
    logger.warn({ args }, 'the fence agent command has arguments: fence-agents then ignore the key=value lines on stdin');
  }
  let input: string;
  try {
    input = fenceAgentInput({ params: spec.params, action }, victim);
  } catch (error) {
    return { ok: false, detail: error instanceof Error ? error.message : String(error) };
  }
  try {
    const { stdout, stderr } = await deps.exec(file, args, { input, timeoutMs: spec.timeoutMs });
    return { ok: true, said: mask(lastLine(stdout) || agentSaid(stderr).at(-1) || '') };
  } catch (error) {
    const exitCode = error instanceof ExecError && !error.timedOut && !error.signal ? error.exitCode : undefined;
    return { ok: false, ...(exitCode !== undefined ? { exitCode } : {}), detail: mask(describeFailure(error, spec.timeoutMs)) };
  }
}

/**
 * Runs the fence agent against `victim` with the configured action. Exit 0 is fenced; any other
 * exit, a kill, a timeout or a command that cannot be run is not fenced, with the reason in
 * `detail`. Secret params are masked in logs and in `detail`.
 *
 * Never throws: a fence that cannot be confirmed is `fenced: false`, and the caller decides.
 */
export async function runFenceAgent(spec: FenceSpec, victim: string, deps: FenceDeps): Promise<FenceResult> {
  const logger = deps.logger.child({ victim, fenceAgent: spec.command[0], action: spec.action });
  logger.warn({ params: maskFenceParams(spec.params), timeoutMs: spec.timeoutMs }, 'fencing node');
  const started = Date.now();
  const run = await runAgentAction(spec, spec.action, victim, deps, logger);
  if (run.ok) {
    logger.warn({ ms: Date.now() - started, said: run.said }, 'node fenced');
    return { fenced: true, detail: run.said || 'fence agent exited 0' };
  }
  logger.error({ ms: Date.now() - started, detail: run.detail }, 'fencing failed');
  return { fenced: false, detail: run.detail };
}

/** What a fence device says of a node's power, asked with the agent's `status` action. */
export interface FenceDeviceStatus {
  /** `on`/`off`: the device answered (fence-agents exit 0 with "Status: ON", 2 with "Status: OFF"); `failed`: it did not, or the agent failed. */
  power: 'on' | 'off' | 'failed';
  detail: string;
}

/**
 * Asks the fence device for the victim's power state (`action=status`), which changes nothing:
 * whether this node could fence it now (`haoscar doctor`). Never throws.
 */
export async function fenceDeviceStatus(spec: FenceSpec, victim: string, deps: FenceDeps): Promise<FenceDeviceStatus> {
  const run = await runAgentAction(spec, 'status', victim, deps, deps.logger.child({ victim, fenceAgent: spec.command[0], action: 'status' }));
  if (run.ok) return { power: 'on', detail: run.said || 'fence agent exited 0' };
  // fencing.py prints "Status: OFF" and exits 2 for a node that is off.
  if (run.exitCode === 2) return { power: 'off', detail: 'Status: OFF (the fence agent exited 2)' };
  return { power: 'failed', detail: run.detail };
}

/**
 * The lines of an agent's stderr that say something about the fence: without blank lines,
 * execa's own words on a timeout or kill ("Command timed out after ..."), and Python's warnings
 * (`FILE:LINE: DeprecationWarning: ...` and the source line it quotes, which Debian 12's
 * fence-agents print before anything else), and with fencing.py's log timestamp taken off. Pure.
 */
export function agentSaid(stderr: string): string[] {
  const lines = stderr.split('\n');
  const said: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\S+:\d+: \w*Warning: /.test(line)) {
      if (/^\s/.test(lines[i + 1] ?? '')) i++;
      continue;
    }
    if (line.trim() === '' || /^Command (timed out|was killed)/.test(line)) continue;
    said.push(line.replace(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ /, '').trim());
  }
  return said;
}

function describeFailure(error: unknown, timeoutMs: number): string {
  if (!(error instanceof ExecError)) return `fence agent failed: ${error instanceof Error ? error.message : String(error)}`;
  const tail = agentSaid(error.stderr).slice(-3).join(' | ');
  const how = error.timedOut
    ? `timed out after ${timeoutMs} ms`
    : error.signal
      ? `was killed by ${error.signal}`
      : error.exitCode === undefined
        ? 'could not be run'
        : `exited ${error.exitCode}`;
  return `fence agent ${how}${tail ? `: ${tail}` : ''}`;
}

