/**
 * A throw-away sshd on 127.0.0.1 (or on a lab host's address, inside its network namespace) for
 * tests of the ssh transport: its own host key, one client key allowed only read-only rsync
 * (`restrict,command="rrsync -ro /"`, as docs/sync.md sets the nodes up), and a known-hosts file
 * that trusts its host key and nothing else.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { waitFor } from './wait.js';
import { freePort } from './lab.js';

export interface TestSshd {
  port: number;
  identityFile: string;
  knownHostsFile: string;
  /** How a node reaches it: the `ssh` settings of the clone's and image's activities (sync.ssh with clone.sshPort). */
  client: { user: string; identityFile: string; knownHostsFile: string; port: number };
  stop(): Promise<void>;
  restart(): Promise<void>;
}

export interface TestSshdOptions {
  /** The address it listens on (default 127.0.0.1); the known-hosts entry names it. */
  address?: string;
  /** A network namespace (`ip netns exec NS`) that sshd and its readiness probe run in. */
  netns?: string;
}

export async function startTestSshd(dir: string, opts: TestSshdOptions = {}): Promise<TestSshd> {
  const address = opts.address ?? '127.0.0.1';
  const inNs = (argv: string[]) => (opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // sshd's privilege separation directory (a package's tmpfiles.d entry creates it at boot).
  await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
  const hostKey = join(dir, 'host_ed25519');
  const identityFile = join(dir, 'id_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', hostKey]);
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'haoscar-test', '-f', identityFile]);
  const pub = (await readFile(`${identityFile}.pub`, 'utf8')).trim();
  await writeFile(join(dir, 'authorized_keys'), `restrict,command="/usr/bin/rrsync -ro /" ${pub}\n`, { mode: 0o600 });
  const port = await freePort();
  const knownHostsFile = join(dir, 'known_hosts');
  await writeFile(knownHostsFile, `[${address}]:${port} ${(await readFile(`${hostKey}.pub`, 'utf8')).trim()}\n`);
  const config = join(dir, 'sshd_config');
  await writeFile(config, [
    `Port ${port}`, `ListenAddress ${address}`, `HostKey ${hostKey}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PermitRootLogin forced-commands-only', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no',
    'StrictModes no', `PidFile ${join(dir, 'sshd.pid')}`, 'LogLevel ERROR', '',
  ].join('\n'));
  let child: ResultPromise | undefined;
  const spawn = async () => {
    const [file, ...args] = inNs(['/usr/sbin/sshd', '-D', '-e', '-f', config]);
    const proc: ResultPromise = execa(file!, args, { reject: false, stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
    await waitFor(`sshd listening on ${address}:${port}`, async () => {
      if (proc.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
      const [scan, ...scanArgs] = inNs(['ssh-keyscan', '-p', String(port), '-t', 'ed25519', address]);
      const r = await execa(scan!, scanArgs, { reject: false, timeout: 5000 });
      return r.stdout.includes('ssh-ed25519') ? true : undefined;
    }, 15_000, 100);
  };
  // sshd forks a process per connection, in its own process group: killing the listener alone
  // would leave a transfer running. pkill by the listener's parent pid reaches exactly those.
  const stop = async () => {
    const proc = child;
    if (!proc?.pid) return;
    await execa('pkill', ['-KILL', '-P', String(proc.pid)], { reject: false });
    proc.kill('SIGKILL');
    await proc;
  };
  await spawn();
  return {
    port, identityFile, knownHostsFile,
    client: { user: 'root', identityFile, knownHostsFile, port },
    stop,
    /** Kills sshd and every connection it serves (a dropped link mid-transfer), then starts it again. */
    async restart() {
      await stop();
      await spawn();
    },
  };
}
