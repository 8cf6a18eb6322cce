/**
 * A replicated PostgreSQL (issue 12 item 3): Debian's PostgreSQL 15 as a `postgresql` resource
 * of the group (src/drivers/postgresql.ts). n1 is initdb'd by the test; n2 starts with an empty
 * data directory and becomes a hot standby by itself (its agent's stop makes a base backup from
 * the primary through the VIP). A client in the client namespace inserts rows through the VIP,
 * one per psql run, and keeps those whose COMMIT was acknowledged (psql exited 0 within its
 * time; a psql killed while it waited got no acknowledgement). Replication is held up for 1.5 s
 * (n2 drops n1's replication packets), then the owner host is killed; after
 * the failover every acknowledged row must be on the new primary (synchronous replication), or
 * the number lost is reported (asynchronous: it may be 0, nothing is asserted). The old owner's
 * host comes back, its agent starts, and it rejoins as a standby with pg_rewind.
 *
 * Each host's data directory is its own (the lab's per-host data, bound at the same path in its
 * agent's mount namespace), so both servers use the same configuration file; the servers run in
 * the hosts' network namespaces and die with them (killHost, the lab's teardown).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { appendFile, chmod, chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { NetLab } from './netlab.js';
import { LabCluster } from './cluster.js';
import { LONG_LEASE, TIMING, expect } from './failover-setup.js';

const BIN = '/usr/lib/postgresql/15/bin';
const PORT = 5432;
const PASSWORD = 'lab-secret';
/** n2's nftables table that holds up replication from n1 (in n2's namespace: gone with it). */
const HOLD = 'haoscar_pg_hold';
const skip = !process.env.CI && !existsSync(join(BIN, 'pg_rewind')) && `${BIN}/pg_rewind is missing: apt-get install postgresql (15)`;

test('PostgreSQL failover with synchronous replication: no acknowledged row is lost, the old primary rejoins as a standby', { skip }, (t) => failover(t, true));
test('PostgreSQL failover with asynchronous replication: the rows lost are counted, the old primary rejoins', { skip }, (t) => failover(t, false));

async function failover(t: TestContext, synchronous: boolean): Promise<void> {
  const lab = await NetLab.create({ hosts: ['n1', 'n2'], client: true });
  const pgpass = join(lab.dir, 'pgpass');
  const cluster = new LabCluster(lab, {
    // The longer lease: the servers and their checks add load, and a lease lost under load
    // would move the group before the test's own failover.
    ...TIMING,
    ...LONG_LEASE,
    resources: [(l) => `{ type: postgresql, name: db, dataDir: ${join(l.dir, 'data', 'pg')}, bin: ${BIN}, port: ${PORT}, socketDir: ${join(l.dir, 'data', 'run')}, logFile: ${join(l.dir, 'data', 'postgresql.log')}, primaryHost: "${l.vipIp}", passFile: ${pgpass}, synchronous: ${synchronous}, timeout: 30s, rejoinTimeout: 60s, rejoinInterval: 1s, check: { type: status, interval: 2s, timeout: 2s } }`],
  }, { noFileSet: true });
  const db = new LabDatabases(lab, cluster, pgpass);
  t.after(async () => {
    // The servers first, so that the cluster's close finds their cgroups empty and removes them.
    await db.stopServers();
    await cluster.close();
    await lab.close();
  });
  await db.prepare();
  await cluster.start();
  // The primary runs in the resource's own cgroup, outside the agent's (whose unit systemd
  // empties when the agent stops): an agent restart must not kill it.
  const postmaster = Number((await readFile(join(db.dataOf('n1'), 'postmaster.pid'), 'utf8')).split('\n')[0]);
  assert.match(await readFile(`/proc/${postmaster}/cgroup`, 'utf8'), new RegExp(`/haoscar/${cluster.cluster}/n1/web/db\n`), "n1's server runs in the resource's cgroup");

  await expect(cluster, `n2 streams from n1 ${synchronous ? 'as the synchronous standby' : '(asynchronously)'}`, async () => {
    const r = await db.local('n1', "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'n2' AND state = 'streaming'").catch(() => '');
    return r === (synchronous ? 'sync' : 'async') ? true : undefined;
  }, 90_000);

  const writer = db.writer();
  await expect(cluster, 'the client has 40 acknowledged rows', async () => (writer.acked.length >= 40 ? true : undefined), 60_000);
  // Replication held up, as by a congested link: n2 drops what n1's server sends it (its
  // heartbeats still pass) while the client goes on writing for 1.5 s, and n1 dies. Synchronous:
  // the commits of that time are not acknowledged. Asynchronous: they are, and are lost.
  await lab.run('n2', ['nft', '-f', '-'], { input: `table inet ${HOLD} {\n  chain input { type filter hook input priority 0; policy accept; tcp sport ${PORT} drop; }\n}\n` });
  const before = await cluster.group();
  const heldAt = Date.now();
  await expect(cluster, 'the client tried to write for 1.5 s with replication held up', async () => (writer.attemptsAfter(heldAt) > 0 && Date.now() - heldAt >= 1_500 ? true : undefined), 30_000);
  const killedAt = Date.now();
  await lab.killHost('n1');
  await lab.run('n2', ['nft', 'delete', 'table', 'inet', HOLD]);
  const g = await cluster.waitForGroup((x) => x.owner === 'n2' && x.state === 'running', 'n2 owns the group, running', 60_000);
  const runningAfterMs = Date.now() - killedAt;
  assert.equal(g.epoch, before!.epoch + 1);
  assert.equal(await db.local('n2', 'SELECT pg_is_in_recovery()'), 'f', 'n2 was promoted');
  if (!synchronous) await expect(cluster, 'the client writes again, to n2', async () => (writer.firstAckAfter(killedAt) !== undefined ? true : undefined), 30_000);
  const acked = await writer.stop();
  const onN2 = new Set((await db.local('n2', 'SELECT id FROM acked')).split('\n').filter(Boolean).map(Number));
  const lost = acked.filter((id) => !onN2.has(id));
  const firstAck = writer.firstAckAfter(killedAt);
  t.diagnostic(
    `${synchronous ? 'synchronous' : 'asynchronous'}: ${acked.length} rows acknowledged, ${lost.length} of them missing on the new primary${lost.length > 0 ? ` (${lost.slice(0, 10).join(', ')}${lost.length > 10 ? ', ...' : ''})` : ''}; ` +
      `group running on n2 ${runningAfterMs} ms after the kill; ${firstAck === undefined ? 'no write acknowledged after the kill (commits wait for a standby)' : `first write acknowledged ${firstAck - killedAt} ms after the kill`}`,
  );
  if (synchronous) assert.deepEqual(lost, [], 'every row whose COMMIT was acknowledged is on the new primary');

  // The old owner comes back: its agent's clean slate stops nothing (its server died with the
  // host), and the rejoin rewinds it from n2 and starts it as n2's standby.
  const revivedAt = Date.now();
  await lab.reviveHost('n1');
  cluster.startAgent('n1');
  await expect(cluster, 'n1 streams from n2 again', async () => {
    const r = await db.local('n2', "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'n1' AND state = 'streaming'").catch(() => '');
    return r === (synchronous ? 'sync' : 'async') ? true : undefined;
  }, 90_000);
  const rejoinedMs = Date.now() - revivedAt;
  assert.equal(await db.local('n1', 'SELECT pg_is_in_recovery()'), 't', 'n1 is a standby');
  const log = await cluster.agentLog('n1');
  assert.match(log, /rejoining as a standby[^\n]*"step":"rewind"|"step":"rewind"[^\n]*rejoining as a standby/, 'n1 rejoined through pg_rewind');
  // With a standby back, a commit through the VIP is acknowledged again (synchronous: it waited for one).
  // Generous: the client may have learnt the VIP's address from n1, back with its old addresses
  // until its guard deleted the VIP, and then needs its ARP entry to time out (up to a minute).
  const after = db.writer(1_000_000);
  await expect(cluster, 'a write through the VIP is acknowledged with n1 back as the standby', async () => (after.acked.length > 0 ? true : undefined), 90_000)
    .catch((err: Error) => Promise.reject(new Error(`${err.message}\nthe client's last psql said: ${after.lastError}`)));
  const [id] = await after.stop();
  await expect(cluster, 'the row written last is on n1 too', async () => ((await db.local('n1', `SELECT count(*) FROM acked WHERE id = ${id}`)) === '1' ? true : undefined), 30_000);
  t.diagnostic(`n1 streamed from n2 again ${rejoinedMs} ms after its host came back (agent start, pg_rewind, standby start)`);
}

/** The two hosts' servers, seen from the test: their directories, n1's initdb, queries, a writer through the VIP. */
class LabDatabases {
  constructor(readonly lab: NetLab, readonly cluster: LabCluster, readonly pgpass: string) {}

  dataOf(host: string): string {
    return join(this.cluster.hostData(host), 'pg');
  }

  /**
   * Each host's data, socket and log directory (owned by postgres; the lab's directory made
   * passable), the password file, and n1's cluster: initdb, the lab's network in pg_hba.conf,
   * the replication role with pg_rewind's grants, the client's role and table.
   */
  async prepare(): Promise<void> {
    await chmod(this.lab.dir, 0o755);
    const { uid, gid } = await ids('postgres');
    for (const h of this.lab.hosts) {
      const data = this.cluster.hostData(h);
      await mkdir(join(data, 'pg'), { recursive: true, mode: 0o700 });
      await mkdir(join(data, 'run'), { recursive: true });
      for (const d of [join(this.lab.dir, 'hosts'), join(this.lab.dir, 'hosts', h)]) await chmod(d, 0o755);
      for (const d of [data, join(data, 'pg'), join(data, 'run')]) await chown(d, uid, gid);
    }
    await writeFile(this.pgpass, `*:*:*:*:${PASSWORD}\n`, { mode: 0o600 });
    await chown(this.pgpass, uid, gid);
    const n1 = this.dataOf('n1');
    await asPostgres([join(BIN, 'initdb'), '-D', n1, '-U', 'postgres', '--auth-local=trust', '--auth-host=scram-sha-256']);
    await appendFile(join(n1, 'pg_hba.conf'), `host replication replicator 10.213.0.0/16 scram-sha-256\nhost all all 10.213.0.0/16 scram-sha-256\n`);
    await appendFile(join(n1, 'postgresql.conf'), `listen_addresses = '*'\nwal_keep_size = '256MB'\nshared_buffers = '16MB'\n`);
    const sql = [
      `CREATE ROLE replicator WITH LOGIN REPLICATION PASSWORD '${PASSWORD}'`,
      'GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO replicator',
      'GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO replicator',
      'GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO replicator',
      'GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO replicator',
      `CREATE ROLE writer WITH LOGIN PASSWORD '${PASSWORD}'`,
      'CREATE TABLE acked (id integer PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())',
      'GRANT SELECT, INSERT ON acked TO writer',
    ];
    // Single-user mode: no server listening anywhere before the agent starts one in n1's namespace.
    await asPostgres([join(BIN, 'postgres'), '--single', '-D', n1, 'postgres'], `${sql.join(';\n')};\n`);
  }

  /** Both servers stopped at once (the end of the test), whatever state they are in. */
  async stopServers(): Promise<void> {
    for (const h of this.lab.hosts) await asPostgres([join(BIN, 'pg_ctl'), 'stop', '-D', this.dataOf(h), '-m', 'immediate']).catch(() => undefined);
  }

  /** One value (rows on lines) from a host's server through its socket, as postgres. */
  async local(host: string, sql: string): Promise<string> {
    const r = await asPostgres([join(BIN, 'psql'), '-X', '-A', '-t', '-q', '-h', join(this.cluster.hostData(host), 'run'), '-p', String(PORT), '-d', 'postgres', '-c', sql]);
    return r.trim();
  }

  /** Inserts rows through the VIP from the client namespace, one psql each, from `firstId` on. */
  writer(firstId = 1): Writer {
    return new Writer(this.lab, `host=${this.lab.vipIp} port=${PORT} user=writer dbname=postgres connect_timeout=1 passfile=${this.pgpass}`, firstId);
  }
}

class Writer {
  readonly acked: number[] = [];
  readonly ackedAt: number[] = [];
  /** When each attempt ended, acknowledged or not. */
  readonly endedAt: number[] = [];
  lastError = '';
  #stopped = false;
  readonly #done: Promise<void>;

  constructor(lab: NetLab, conninfo: string, firstId: number) {
    this.#done = (async () => {
      for (let id = firstId; !this.#stopped; id++) {
        // Killed after 2 s (a commit waiting for a synchronous standby): no acknowledgement.
        const r = await lab.run(lab.client!, ['psql', '-X', '-q', '-d', conninfo, '-c', `INSERT INTO acked (id) VALUES (${id})`], { reject: false, timeoutMs: 2_000 });
        this.endedAt.push(Date.now());
        if (r.exitCode === 0) {
          this.acked.push(id);
          this.ackedAt.push(Date.now());
        } else {
          this.lastError = r.stderr.trim().split('\n').slice(-2).join(' | ') || `exit ${r.exitCode}`;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    })();
  }

  attemptsAfter(t: number): number {
    return this.endedAt.filter((at) => at > t).length;
  }

  firstAckAfter(t: number): number | undefined {
    return this.ackedAt.find((at) => at > t);
  }

  async stop(): Promise<number[]> {
    this.#stopped = true;
    await this.#done;
    return [...this.acked];
  }
}

async function asPostgres(argv: string[], input?: string): Promise<string> {
  const r = await execa('runuser', ['-u', 'postgres', '--', ...argv], { ...(input === undefined ? { stdin: 'ignore' as const } : { input }), env: { LC_ALL: 'C' }, timeout: 60_000, reject: false, cwd: '/' });
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode}): ${String(r.stderr).trim().split('\n').slice(-5).join(' | ')}`);
  return String(r.stdout);
}

async function ids(user: string): Promise<{ uid: number; gid: number }> {
  const uid = Number((await execa('id', ['-u', user])).stdout);
  const gid = Number((await execa('id', ['-g', user])).stdout);
  return { uid, gid };
}
