/**
 * The `ocf` driver: a resource managed by an OCF resource agent as the `resource-agents`
 * package ships it (`heartbeat:IPaddr2`, `heartbeat:Filesystem`, `heartbeat:pgsql`, …), run
 * unchanged, the way Pacemaker runs it: the agent is `<OCF_ROOT>/resource.d/<provider>/<type>`,
 * called with the action as its only argument, its parameters in `OCF_RESKEY_<name>`, and the
 * OCF environment (the Open Cluster Framework resource agent API, 1.1).
 *
 * Exit codes (the API's table): 0 success / running; 7 not running (a clean "stopped"); 8 running
 * promoted and 9 failed promoted (agents of promotable resources); 1 generic error, 2 invalid
 * arguments, 3 unimplemented action, 4 insufficient privileges, 5 not installed, 6 not configured.
 * For `monitor`, 0 and 8 are running, everything else is not (with the code's meaning in the
 * detail); `start` and `stop` succeed only with 0, so a failed stop is a failed stop (the group
 * waits: docs/failover.md, "a failed stop is not a stop").
 */
import { ExecError, lastLine, type Exec } from '../exec.js';
import type { Logger } from '../log.js';
import type { OcfResource } from '../config/types.js';
import type { ServiceDriver, ServiceStatus } from './service-driver.js';
import type { GuardAction } from '../guard/protocol.js';
import { OCF_ROOT } from '../distro/families.js';
import { installHintAllFamilies } from '../distro/packages.js';

/** Where resource-agents installs the agents on every distribution HA-OSCAR supports. */
export const DEFAULT_OCF_ROOT = OCF_ROOT;

/** Timeouts when neither the configuration nor the agent's meta-data gives one (Pacemaker's default). */
const FALLBACK_TIMEOUT_MS = 20_000;

export const OCF_EXIT = {
  success: 0,
  errGeneric: 1,
  errArgs: 2,
  errUnimplemented: 3,
  errPerm: 4,
  errInstalled: 5,
  errConfigured: 6,
  notRunning: 7,
  runningPromoted: 8,
  failedPromoted: 9,
} as const;

const MEANINGS: Record<number, string> = {
  0: 'success',
  1: 'generic error (OCF_ERR_GENERIC)',
  2: 'invalid arguments (OCF_ERR_ARGS)',
  3: 'action not implemented (OCF_ERR_UNIMPLEMENTED)',
  4: 'insufficient privileges (OCF_ERR_PERM)',
  5: 'a program it needs is not installed (OCF_ERR_INSTALLED)',
  6: 'not configured correctly (OCF_ERR_CONFIGURED)',
  7: 'not running (OCF_NOT_RUNNING)',
  8: 'running, promoted (OCF_RUNNING_PROMOTED)',
  9: 'failed while promoted (OCF_FAILED_PROMOTED)',
};

/** An OCF exit code in words, e.g. `exit 5: a program it needs is not installed (OCF_ERR_INSTALLED)`. */
export function ocfExitMeaning(code: number): string {
  return `exit ${code}: ${MEANINGS[code] ?? 'not an OCF exit code'}`;
}

/**
 * What the agent gave as the reason for its exit: the OCF 1.1 exit reason (a stderr line
 * `ocf-exit-reason:<text>`, from ocf_exit_reason), else its last line of stderr, else of stdout. Pure.
 */
export function ocfSaid(stdout: string, stderr: string): string {
  const reasons = stderr.split('\n').filter((l) => l.startsWith('ocf-exit-reason:'));
  const reason = reasons.at(-1)?.slice('ocf-exit-reason:'.length).trim();
  return reason || lastLine(stderr) || lastLine(stdout);
}

/** What a monitor's exit code says about the resource. Pure. */
export function monitorVerdict(code: number): { running: boolean; promoted?: boolean; failed: boolean } {
  if (code === OCF_EXIT.success) return { running: true, failed: false };
  if (code === OCF_EXIT.runningPromoted) return { running: true, promoted: true, failed: false };
  if (code === OCF_EXIT.notRunning) return { running: false, failed: false };
  return { running: false, failed: true };
}

/** `heartbeat:IPaddr2` (or `ocf:heartbeat:IPaddr2`, Pacemaker's spelling) as provider and type. */
export function parseAgentName(agent: string): { provider: string; type: string } {
  const parts = agent.split(':');
  const [provider, type] = parts.length === 3 && parts[0] === 'ocf' ? parts.slice(1) : parts;
  if (parts.length > 3 || provider === undefined || type === undefined || (parts.length === 3 && parts[0] !== 'ocf')) throw new Error(`not an OCF agent name: ${agent}`);
  return { provider, type };
}

export function agentPath(resource: Pick<OcfResource, 'agent' | 'ocfRoot'>): string {
  const { provider, type } = parseAgentName(resource.agent);
  return `${resource.ocfRoot}/resource.d/${provider}/${type}`;
}

export type OcfAction = 'start' | 'stop' | 'monitor' | 'meta-data' | 'validate-all';

/**
 * The environment an agent is run with: the OCF variables, and nothing of the agent's own
 * (PATH and the like come from the agent process's environment). Pure.
 */
export function ocfEnvironment(resource: OcfResource, action: OcfAction, timeoutMs: number): Record<string, string> {
  const { provider, type } = parseAgentName(resource.agent);
  const env: Record<string, string> = {
    OCF_ROOT: resource.ocfRoot,
    OCF_FUNCTIONS_DIR: `${resource.ocfRoot}/lib/heartbeat`,
    OCF_RA_VERSION_MAJOR: '1',
    OCF_RA_VERSION_MINOR: '1',
    OCF_RESOURCE_INSTANCE: resource.name,
    OCF_RESOURCE_PROVIDER: provider,
    OCF_RESOURCE_TYPE: type,
    OCF_CHECK_LEVEL: '0',
    OCF_RESKEY_CRM_meta_timeout: String(timeoutMs),
    // A one-shot monitor (interval 0 is a probe in Pacemaker's words); the agent decides nothing on it here.
    ...(action === 'monitor' ? { OCF_RESKEY_CRM_meta_interval: String(resource.check.intervalMs) } : {}),
  };
  for (const [name, value] of Object.entries(resource.params)) env[`OCF_RESKEY_${name}`] = value;
  return env;
}

/**
 * The parts of an agent's meta-data HA-OSCAR uses: its parameters, its actions and their default
 * timeouts. fence-agents describe themselves (`-o metadata`) in the same format.
 */
export interface OcfMetadata {
  parameters: {
    name: string;
    required: boolean;
    default?: string;
    /** The `<content type>`: `string`, `integer`, `boolean`, `select`, fence-agents' `second`... */
    type?: string;
    /** The values a `select` parameter takes. */
    options?: string[];
    /** Kept for old configurations only (fence-agents mark e.g. `login` so, for `username`). */
    deprecated?: boolean;
  }[];
  /** The actions it declares, in its order. */
  actions: string[];
  /** Default timeouts in ms by action, e.g. { start: 20000, stop: 20000, monitor: 20000 }. */
  timeouts: Partial<Record<string, number>>;
}

/** Reads an OCF duration attribute: `20s`, `20`, `1m`, `500ms`. */
function ocfDurationMs(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|msec|s|sec|m|min|h|hr)?\s*$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2] ?? 's';
  const factor = unit.startsWith('ms') ? 1 : unit.startsWith('s') ? 1000 : unit.startsWith('m') ? 60_000 : 3_600_000;
  return Math.round(n * factor);
}

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([A-Za-z_:-]+)\s*=\s*("([^"]*)"|'([^']*)')/g)) out[m[1]!] = m[3] ?? m[4] ?? '';
  return out;
}

/**
 * The parameters and action timeouts of an agent's `meta-data` XML (the resource-agent API's DTD).
 * The format is small and fixed, so a reader of its elements is enough; no XML library. Pure.
 * @throws Error when the text has no `<resource-agent>` element.
 */
export function parseOcfMetadata(xml: string): OcfMetadata {
  if (!/<resource-agent[\s>]/.test(xml)) throw new Error('its meta-data is not a <resource-agent> document');
  const body = xml.replace(/<!--[\s\S]*?-->/g, '');
  const parameters: OcfMetadata['parameters'] = [];
  for (const m of body.matchAll(/<parameter\b([^>]*?)(\/>|>([\s\S]*?)<\/parameter>)/g)) {
    const attrs = attributes(m[1]!);
    if (!attrs.name) continue;
    const content = /<content\b([^>]*?)\/?>([\s\S]*?<\/content>)?/.exec(m[3] ?? '');
    const contentAttrs = content ? attributes(content[1]!) : {};
    const options = [...(content?.[2] ?? '').matchAll(/<option\b([^>]*?)\/?>/g)].map((o) => attributes(o[1]!).value).filter((v): v is string => v !== undefined);
    parameters.push({
      name: attrs.name,
      required: attrs.required === '1' || attrs.required === 'true',
      ...(contentAttrs.default !== undefined ? { default: contentAttrs.default } : {}),
      ...(contentAttrs.type ? { type: contentAttrs.type } : {}),
      ...(options.length > 0 ? { options } : {}),
      ...(attrs.deprecated === '1' || attrs.deprecated === 'true' ? { deprecated: true } : {}),
    });
  }
  const actions: string[] = [];
  const timeouts: OcfMetadata['timeouts'] = {};
  for (const m of body.matchAll(/<action\b([^>]*)\/?>/g)) {
    const attrs = attributes(m[1]!);
    if (attrs.name && !actions.includes(attrs.name)) actions.push(attrs.name);
    const ms = attrs.timeout ? ocfDurationMs(attrs.timeout) : undefined;
    // An action listed twice (monitor per role): the first, the unpromoted one, is the plain monitor.
    if (attrs.name && ms !== undefined && timeouts[attrs.name] === undefined) timeouts[attrs.name] = ms;
  }
  return { parameters, actions, timeouts };
}

/** Runs the agent's `meta-data` action. @throws Error saying what to install when the agent is missing. */
export async function readOcfMetadata(exec: Exec, resource: OcfResource): Promise<OcfMetadata> {
  const path = agentPath(resource);
  try {
    const { stdout } = await exec(path, ['meta-data'], { timeoutMs: 10_000, env: ocfEnvironment(resource, 'meta-data', 10_000) });
    return parseOcfMetadata(stdout);
  } catch (err) {
    if (err instanceof ExecError && err.exitCode === undefined && !err.timedOut) {
      throw new Error(`OCF agent ${resource.agent} is not installed on this node (${path} cannot be run: ${err.message}); install the resource-agents package (${installHintAllFamilies('ocf-agent')})`, { cause: err });
    }
    throw new Error(`OCF agent ${resource.agent}: meta-data failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/**
 * Runs the agent's `validate-all` (does this configuration make sense on this node: the
 * interface exists, the binaries are installed…). @returns undefined when it passed or the agent
 * has none (exit 3), else what it said, with the exit code's meaning.
 */
export async function runOcfValidateAll(exec: Exec, resource: OcfResource, metadata: OcfMetadata): Promise<string | undefined> {
  const timeoutMs = metadata.timeouts['validate-all'] ?? FALLBACK_TIMEOUT_MS;
  try {
    await exec(agentPath(resource), ['validate-all'], { timeoutMs, env: ocfEnvironment(resource, 'validate-all', timeoutMs) });
    return undefined;
  } catch (err) {
    if (!(err instanceof ExecError)) throw err;
    if (err.exitCode === OCF_EXIT.errUnimplemented) return undefined;
    const said = ocfSaid('', err.stderr);
    const why = err.timedOut ? `timed out after ${timeoutMs} ms` : err.exitCode !== undefined ? ocfExitMeaning(err.exitCode) : err.message;
    return `${why}${said ? `: ${said}` : ''}`;
  }
}

export interface OcfDriverDeps {
  exec: Exec;
  logger: Logger;
}

export class OcfDriver implements ServiceDriver {
  readonly kind = 'ocf' as const;
  readonly #resource: OcfResource;
  readonly #exec: Exec;
  readonly #logger: Logger;
  #metadata: Promise<OcfMetadata | undefined> | undefined;

  constructor(resource: OcfResource, deps: OcfDriverDeps) {
    this.#resource = resource;
    this.#exec = deps.exec;
    this.#logger = deps.logger.child({ driver: 'ocf', agent: resource.agent });
  }

  /** @throws Error with the agent's exit code in words and its last line, unless it exits 0. */
  async start(): Promise<void> {
    this.#logger.info('starting resource');
    await this.#runOrThrow('start');
  }

  /** @throws Error as start does: a stop that does not exit 0 is a failed stop. */
  async stop(): Promise<void> {
    this.#logger.info('stopping resource');
    await this.#runOrThrow('stop');
  }

  async status(): Promise<ServiceStatus> {
    const timeoutMs = await this.#timeout('monitor');
    const { exitCode, said, timedOut, signal } = await this.#run('monitor', timeoutMs);
    if (timedOut) return { running: false, detail: `monitor timed out after ${timeoutMs} ms` };
    if (signal) return { running: false, detail: `monitor was killed by ${signal}` };
    const verdict = monitorVerdict(exitCode!);
    const words = verdict.running ? (verdict.promoted ? 'running (promoted)' : 'running') : ocfExitMeaning(exitCode!);
    return { running: verdict.running, detail: `${this.#resource.agent} monitor: ${words}${said ? `: ${said}` : ''}` };
  }

  /** The agent's stop with its environment (through env(1): the guard runs argv only), bounded by the stop timeout. */
  guardActions(): GuardAction[] {
    const timeoutMs = this.#resource.timeouts.stop ?? FALLBACK_TIMEOUT_MS;
    const env = Object.entries(ocfEnvironment(this.#resource, 'stop', timeoutMs)).map(([k, v]) => `${k}=${v}`);
    return [{ kind: 'run', timeoutMs, argv: ['env', ...env, agentPath(this.#resource), 'stop'] }];
  }

  /** The configured timeout, else the agent's meta-data default, else 20 s. */
  async #timeout(action: 'start' | 'stop' | 'monitor'): Promise<number> {
    const configured = this.#resource.timeouts[action];
    if (configured !== undefined) return configured;
    this.#metadata ??= readOcfMetadata(this.#exec, this.#resource).catch((err: unknown) => {
      this.#logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'cannot read the agent\'s meta-data for its default timeouts; using 20s');
      return undefined;
    });
    return (await this.#metadata)?.timeouts[action] ?? FALLBACK_TIMEOUT_MS;
  }

  async #run(action: 'start' | 'stop' | 'monitor', timeoutMs: number): Promise<{ exitCode?: number; said: string; timedOut: boolean; signal?: string }> {
    try {
      const { stdout, stderr } = await this.#exec(agentPath(this.#resource), [action], { timeoutMs, env: ocfEnvironment(this.#resource, action, timeoutMs) });
      return { exitCode: 0, said: ocfSaid(stdout, stderr), timedOut: false };
    } catch (error) {
      if (!(error instanceof ExecError)) throw error;
      if (error.exitCode === undefined && !error.timedOut && !error.signal) {
        throw new Error(`OCF agent ${this.#resource.agent} could not be run (${agentPath(this.#resource)}): ${error.message}; is resource-agents installed?`, { cause: error });
      }
      return { ...(error.exitCode !== undefined ? { exitCode: error.exitCode } : {}), said: ocfSaid('', error.stderr), timedOut: error.timedOut, ...(error.signal ? { signal: error.signal } : {}) };
    }
  }

  async #runOrThrow(action: 'start' | 'stop'): Promise<void> {
    const timeoutMs = await this.#timeout(action);
    const r = await this.#run(action, timeoutMs);
    if (r.exitCode === OCF_EXIT.success) {
      if (r.said) this.#logger.debug({ said: r.said }, `${action} done`);
      return;
    }
    const why = r.timedOut ? `timed out after ${timeoutMs} ms` : r.signal ? `killed by ${r.signal}` : ocfExitMeaning(r.exitCode!);
    throw new Error(`${action} of OCF resource ${this.#resource.name} (${this.#resource.agent}) failed: ${why}${r.said ? `: ${r.said}` : ''}`);
  }
}
