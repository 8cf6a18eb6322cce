/**
 * One-node lab on the loopback: a real agent process (the `haoscar agent` command) and real
 * services, for the end-to-end tests and the heal benchmark. Everything it starts is stopped
 * by `close()`.
 */
import { mkdir, mkdtemp, rm, writeFile, readFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import type { Client } from '@temporalio/client';
import { queryOwnership } from '../../src/agent/controller-link.js';
import { waitFor } from './wait.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `haoscar ARGS…` as an operator runs it (bin/haoscar.js), never rejecting: the test reads the exit code. */
export function haoscarCli(...args: string[]) {
  return execa(process.execPath, [join(ROOT, 'bin/haoscar.js'), ...args], { reject: false, timeout: 120_000 });
}
export const HTTP_SERVICE = join(ROOT, 'test/fixtures/http-service.mjs');

/**
 * A TCP port free now, for a test's service, **below the kernel's ephemeral range**
 * (net.ipv4.ip_local_port_range, 32768-60999 by default). A port from that range (what
 * `listen(0)` hands out) can be taken at any moment as the local port of an outgoing connection
 * (a worker's or agent's gRPC connection lives for minutes): then a service restarted on it
 * fails with EADDRINUSE. All three heal tests of agent-heal.test.ts failed so in a CI preview
 * while another test's cluster ran beside them (the likely cause; not reproduced).
 */
export async function freePort(): Promise<number> {
  const low = ephemeralLow();
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = FIRST_TEST_PORT + Math.floor(Math.random() * (low - FIRST_TEST_PORT));
    if (await canListen(port)) return port;
  }
  throw new Error(`no free TCP port between ${FIRST_TEST_PORT} and ${low - 1} after 100 tries`);
}

/** Test services' ports start here (above well-known and registered services' usual ports). */
const FIRST_TEST_PORT = 20000;

function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > FIRST_TEST_PORT + 1000 ? low : 32768;
  } catch {
    return 32768;
  }
}

/** Whether a TCP server can listen on `port` on every address now (then it is closed again). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '0.0.0.0', () => srv.close(() => resolve(true)));
  });
}

/** GET http://127.0.0.1:port/ → the service's pid, or undefined if it does not answer. */
export async function probe(port: number, timeoutMs = 200): Promise<number | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    return res.ok ? Number(text.split(' ')[1]) : undefined;
  } catch {
    return undefined;
  }
}

export { waitFor } from './wait.js';

/**
 * Waits until the controller reports the group running (placed, its resources started and
 * verified): before that, a fault injected by a test hits the placement, not the running group.
 */
export async function groupRunning(client: Client, cluster: string, group: string, timeoutMs = 60_000): Promise<string> {
  return waitFor(`group ${group} running`, async () => {
    const state = await queryOwnership(client, cluster).catch(() => undefined);
    const g = state?.groups[group];
    return g?.state === 'running' && g.owner ? g.owner : undefined;
  }, timeoutMs, 100);
}

/**
 * A `process` service running the HTTP fixture on `port`, checked over HTTP, as one line of
 * flow-style YAML. `check` and `healing` are the inner fields (e.g. `interval: 1s, rise: 1`).
 */
export function httpServiceYaml(name: string, port: number, opts: { args?: string[]; check?: string; healing?: string } = {}): string {
  const command = [process.execPath, HTTP_SERVICE, `"${port}"`, ...(opts.args ?? [])].join(', ');
  const check = `{ type: http, url: "http://127.0.0.1:${port}/", ${opts.check ?? 'interval: 500ms, timeout: 300ms, rise: 1, fall: 2'} }`;
  return `{ type: service, name: ${name}, driver: process, command: [${command}], check: ${check}${opts.healing ? `, healing: { ${opts.healing} }` : ''} }`;
}

export interface OneNodeCluster {
  cluster: string;
  /** The Temporal frontend, host:port. */
  address: string;
  node?: string;
  logLevel?: string;
  /** More `agent:` fields, flow-style (e.g. `localHealAfter: 1s`). */
  agentExtra?: string;
  /** Group name → its resources, each one line of flow-style YAML (see httpServiceYaml). */
  groups: Record<string, string[]>;
}

export class Lab {
  private agents: ResultPromise[] = [];
  private constructor(
    readonly dir: string,
    private readonly keepDir: boolean,
  ) {}

  /** A lab in a new temporary directory, or in `dir` (which close() then keeps). */
  static async create(dir?: string): Promise<Lab> {
    if (dir) {
      await mkdir(dir, { recursive: true });
      return new Lab(dir, true);
    }
    return new Lab(await mkdtemp(join(tmpdir(), 'haoscar-lab-')), false);
  }

  async writeConfig(name: string, yaml: string): Promise<string> {
    const file = join(this.dir, name);
    await writeFile(file, yaml);
    return file;
  }

  /**
   * Starts `haoscar agent` (bin/haoscar.js, as users run it) as a child process; its output goes
   * to `<dir>/agent-<node>.log`. These agents run the workflow worker too, so they bundle the
   * workflow code as an agent started by a user does. `haoscar`: another command to start instead
   * (the installed package's), run as a program (its `#!` line included).
   */
  startAgent(config: string, node: string, opts: { env?: Record<string, string>; haoscar?: string } = {}): ResultPromise {
    const [file, ...args] = opts.haoscar ? [opts.haoscar] : [process.execPath, join(ROOT, 'bin/haoscar.js')];
    const child = execa(file!, [...args, 'agent', '--config', config, '--node', node], {
      cwd: opts.haoscar ? this.dir : ROOT,
      ...(opts.env ? { env: opts.env } : {}),
      reject: false,
      stdin: 'ignore',
      stdout: { file: join(this.dir, `agent-${node}.log`), append: true },
      stderr: { file: join(this.dir, `agent-${node}.log`), append: true },
    });
    this.agents.push(child);
    return child;
  }

  /** Writes the config of a one-node cluster whose state lives in this lab. @returns its path. */
  async writeOneNodeConfig(name: string, c: OneNodeCluster): Promise<string> {
    const node = c.node ?? 'n1';
    const groups = Object.entries(c.groups)
      .map(([group, resources]) => `  - name: ${group}\n    resources:\n${resources.map((r) => `      - ${r}\n`).join('')}`)
      .join('');
    return this.writeConfig(
      name,
      `cluster: ${c.cluster}
temporal: { address: "${c.address}" }
agent: { stateDir: ${join(this.dir, `state-${name.replace(/\.ya?ml$/, '')}`)}, logLevel: ${c.logLevel ?? 'info'}${c.agentExtra ? `, ${c.agentExtra}` : ''} }
nodes: [{ name: ${node}, addresses: [127.0.0.1] }]
groups:
${groups}`,
    );
  }

  async agentLog(node: string): Promise<string> {
    return readFile(join(this.dir, `agent-${node}.log`), 'utf8').catch(() => '');
  }

  async countLines(file: string): Promise<number> {
    return (await readFile(file, 'utf8').catch(() => '')).split('\n').filter(Boolean).length;
  }

  /** SIGTERM every agent (they stop their services), SIGKILL what is left, remove a temporary dir. */
  async close(): Promise<void> {
    for (const a of this.agents) a.kill('SIGTERM');
    await Promise.all(
      this.agents.map(async (a) => {
        const t = setTimeout(() => a.kill('SIGKILL'), 15_000);
        await a;
        clearTimeout(t);
      }),
    );
    if (!this.keepDir) await rm(this.dir, { recursive: true, force: true });
  }
}
