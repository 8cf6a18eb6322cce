/**
 * A throw-away sshd on 127.0.0.1 for tests of the ssh transport: its own host key, one client
 * key allowed only read-only rsync (`restrict,command="rrsync -ro /"`, as docs/sync.md sets
 * the nodes up), and a known-hosts file that trusts its host key and nothing else.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { waitFor } from './wait.js';

export interface TestSshd {
  port: number;
  identityFile: string;
  knownHostsFile: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export async function startTestSshd(dir: string): Promise<TestSshd> {
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
  await writeFile(knownHostsFile, `[127.0.0.1]:${port} ${(await readFile(`${hostKey}.pub`, 'utf8')).trim()}\n`);
  const config = join(dir, 'sshd_config');
  await writeFile(config, [
    `Port ${port}`, 'ListenAddress 127.0.0.1', `HostKey ${hostKey}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PermitRootLogin forced-commands-only', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no',
    'StrictModes no', `PidFile ${join(dir, 'sshd.pid')}`, 'LogLevel ERROR', '',
  ].join('\n'));
  const child: ResultPromise = execa('/usr/sbin/sshd', ['-D', '-e', '-f', config], { reject: false, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString(); });
  await waitFor(`sshd listening on 127.0.0.1:${port}`, async () => {
    if (child.exitCode !== null) throw new Error(`sshd exited: ${stderr}`);
    const r = await execa('ssh-keyscan', ['-p', String(port), '-t', 'ed25519', '127.0.0.1'], { reject: false, timeout: 5000 });
    return r.stdout.includes('ssh-ed25519') ? true : undefined;
  }, 15_000, 100);
  return {
    port, identityFile, knownHostsFile,
    async stop() {
      child.kill('SIGTERM');
      await child;
    },
  };
}
