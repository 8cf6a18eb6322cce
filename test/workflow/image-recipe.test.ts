/**
 * `haoscar image recipe` (the Kickstart role, docs/clone.md#unattended-install-recipes) on a real
 * minimal Debian root: the inventory collected from the cached debootstrap tree
 * (test/support/debootstrap.ts) against what apt-mark and dpkg-query say of it, then the
 * imageRecipe workflow on a real Temporal dev server with the real recipe activity on n1's queue,
 * and the CLI through bin/haoscar.js (a preseed written to a file and checked by
 * debconf-set-selections, a kickstart on standard output, usage errors, a root that is no system).
 *
 * The recipes are not installed here: no installer runs (that needs a virtual machine and the
 * distributions' installation media), so a recipe's effect on a real installation is not tested.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closeTemporal, temporalAddress } from '../support/temporal.js';
import { haoscarCli } from '../support/lab.js';
import { twoNodeWeb, WorkflowCluster, type ExtraActivities } from '../support/workflow-cluster.js';
import { debootstrapTree, linkedRoot } from '../support/debootstrap.js';
import { createRecipeActivities } from '../../activities/recipe.js';
import { collectInventory } from '../../src/recipe/collect.js';
import { createExec } from '../../src/exec.js';
import { silentLogger } from '../../src/log.js';
import { parseLsblk } from '../../workflows/recipe/inventory.js';
import { clusterTaskQueue, recipeWorkflowId } from '../../workflows/shared.js';
import type { ImageRecipeResult } from '../../workflows/image-recipe.js';
import type { ImageRecipeInput } from '../../workflows/inputs.js';

let cluster: WorkflowCluster | undefined;
let dir = '';
let root = '';
let key = '';
after(async () => {
  await cluster?.close().catch(() => undefined);
  await closeTemporal();
  if (dir) await rm(dir, { recursive: true, force: true });
});

before(async () => {
  const tree = await debootstrapTree();
  dir = await mkdtemp(join(tmpdir(), 'haoscar-recipe-test-'));
  root = join(dir, 'root');
  await linkedRoot(tree, root, {
    'etc/fstab': 'UUID=0b6e2e63 / ext4 errors=remount-ro 0 1\nUUID=1c7f /boot ext4 defaults 0 2\n/dev/mapper/vg0-swap none swap sw 0 0\n10.213.0.5:/export /srv/nfs nfs defaults 0 0\ntmpfs /tmp tmpfs defaults 0 0\n',
    'etc/apt/sources.list.d/extra.sources': 'Types: deb\nURIs: https://repo.example.org/apt\nSuites: stable\nComponents: main\nSigned-By: /usr/share/keyrings/example.gpg\n',
  });
  key = join(dir, 'sync_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'root@n1', '-f', key]);
});

test("the inventory of a debootstrapped root: its release, architecture, repositories, fstab, and apt-mark showmanual's packages", async () => {
  const inv = await collectInventory(root, { node: 'n1', exec: createExec(silentLogger) });
  assert.equal(inv.family, 'debian');
  assert.equal(inv.os.codename, 'bookworm');
  assert.equal(inv.architecture, (await execa('dpkg', ['--print-architecture'])).stdout.trim(), 'debootstrap built the tree for this machine');
  // What apt itself says in the tree, less the priority-required and essential packages every installer lays down.
  const showmanual = (await execa('chroot', [root, 'apt-mark', 'showmanual'])).stdout.split('\n').filter(Boolean);
  const base = new Set((await execa('dpkg-query', [`--admindir=${join(root, 'var/lib/dpkg')}`, '-W', '-f', '${Package} ${Priority} ${Essential}\\n'])).stdout.split('\n')
    .map((l) => l.split(' ')).filter(([, priority, essential]) => priority === 'required' || essential === 'yes').map(([name]) => name!));
  assert.deepEqual(inv.packages.manual, showmanual.filter((p) => !base.has(p)).sort());
  assert.ok(inv.packages.manual.includes('openssh-server'), 'the package debootstrap was asked to include');
  assert.ok(inv.packages.manual.length > 10 && base.size > 10, `${inv.packages.manual.length} manual, ${base.size} base`);
  assert.deepEqual(inv.repositories.map((r) => [r.file, r.uri, r.suites.join(' '), r.key]), [
    ['/etc/apt/sources.list', (await execa('sh', ['-c', `sed -n 's/^deb \\([^ ]*\\) .*/\\1/p' ${join(root, 'etc/apt/sources.list')} | head -1`])).stdout.trim(), 'bookworm', undefined],
    ['/etc/apt/sources.list.d/extra.sources', 'https://repo.example.org/apt', 'stable', '/usr/share/keyrings/example.gpg'],
  ]);
  assert.deepEqual(inv.filesystems.map((f) => [f.mountpoint, f.fstype, f.sizeBytes]), [['/', 'ext4', undefined], ['/boot', 'ext4', undefined], ['swap', 'swap', undefined]]);
  assert.deepEqual(inv.leftOut, ['10.213.0.5:/export /srv/nfs nfs defaults', 'tmpfs /tmp tmpfs defaults']);
  assert.match(inv.notes[0]!, /is a directory, not the running system: its disks, sizes, LVM and RAID are not known/);

  // This machine's own lsblk output parses (the live root's path).
  const lsblk = await execa('lsblk', ['--json', '--bytes', '--output', 'NAME,TYPE,SIZE,MOUNTPOINT'], { reject: false });
  if (lsblk.exitCode === 0) assert.ok(parseLsblk(lsblk.stdout).every((d) => Number.isInteger(d.sizeBytes) && d.name.length > 0));
});

function startCluster() {
  const acts = createRecipeActivities({ node: 'n1', exec: createExec(silentLogger), logger: silentLogger, identityFile: key, joinFiles: ['/etc/haoscar/haoscar.yaml', '/etc/haoscar/authkey', key] });
  return WorkflowCluster.start('recipe', twoNodeWeb({ lease: '{ ttl: 3000ms, margin: 300ms }' }), {
    extra: (node): ReturnType<ExtraActivities> => (node.name !== 'n1' ? {} : { collectRecipeFacts: (r: Parameters<typeof acts.collectRecipeFacts>[0]) => acts.collectRecipeFacts(r) }),
  });
}

test('the imageRecipe workflow: n1 describes its root on its own queue; the preseed passes debconf-set-selections and authorizes n1\'s public key only', async () => {
  cluster = await startCluster();
  const c = cluster;
  const input: ImageRecipeInput = { cluster: c.name, node: 'n1', format: 'preseed', root, hostname: 'n3', packageUrl: 'http://127.0.0.1/ha-oscar.tgz' };
  const handle = await c.client.workflow.start('imageRecipe', { workflowId: recipeWorkflowId(c.name, 'n1', Date.now()), taskQueue: clusterTaskQueue(c.name), args: [input] });
  const r = (await handle.result()) as ImageRecipeResult;
  assert.equal(r.inventory.os.codename, 'bookworm');
  const file = join(dir, 'preseed.cfg');
  await writeFile(file, r.recipe!.text);
  const check = await execa('debconf-set-selections', ['--checkonly', file], { reject: false });
  assert.equal(check.exitCode, 0, check.stderr);
  const late = /^d-i preseed\/late_command string in-target sh -c 'echo ([A-Za-z0-9+/=]+) \| base64 -d \| sh -e'$/m.exec(r.recipe!.text);
  const script = Buffer.from(late![1]!, 'base64').toString('utf8');
  const pub = (await readFile(`${key}.pub`, 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  assert.ok(script.includes(`from="127.0.0.1",no-agent-forwarding,no-port-forwarding,no-X11-forwarding ${pub} haoscar-join`), script);
  assert.ok(!r.recipe!.text.includes((await readFile(key, 'utf8')).split('\n')[1]!), 'the private key is not in the recipe');
  assert.match(r.joinCommand, new RegExp(`^rsync -a --relative --ignore-missing-args -e 'ssh -i ${key}' /etc/haoscar/haoscar.yaml /etc/haoscar/authkey ${key} root@NEW:/ && `));
  assert.ok(r.recipe!.unexpressed.some((u) => u.startsWith('repository https://repo.example.org/apt is signed by /usr/share/keyrings/example.gpg')), r.recipe!.unexpressed.join('\n'));
});

test('haoscar image recipe through bin/haoscar.js: a preseed to a file, a kickstart to standard output, usage errors, a root that is no system', async () => {
  const c = cluster ?? (cluster = await startCluster());
  const configFile = join(dir, 'haoscar.yaml');
  await writeFile(configFile, `cluster: ${c.name}\ntemporal: { address: "${await temporalAddress()}" }\n${twoNodeWeb({ lease: '{ ttl: 3000ms, margin: 300ms }' })}`);
  const out = join(dir, 'n3.preseed');
  const written = await haoscarCli('image', 'recipe', 'n1', '--format', 'preseed', '--output', out, '--root', root, '-c', configFile, '--hostname', 'n3');
  assert.equal(written.exitCode, 0, written.stderr);
  assert.match(written.stdout, new RegExp(`^wrote ${out}: preseed for Debian GNU/Linux 12 \\(bookworm\\) \\(\\w+\\) as on n1, \\d+ packages, 3 file systems$`, 'm'));
  assert.match(written.stdout, /^ {2}sizes not known for \/, \/boot, swap: defaults used/m);
  assert.match(written.stdout, /^ {2}rsync -a --relative .* root@NEW:\/ && ssh .*systemctl enable --now haoscar-guard haoscar-agent/m);
  assert.equal((await execa('debconf-set-selections', ['--checkonly', out], { reject: false })).exitCode, 0);

  const ks = await haoscarCli('image', 'recipe', 'n1', '--format', 'kickstart', '--root', root, '-c', configFile);
  assert.equal(ks.exitCode, 0, ks.stderr);
  assert.match(ks.stdout, /^%packages\n@core\n/m);
  assert.match(ks.stderr, /^ {2}Debian GNU\/Linux 12 \(bookworm\) is not in the RHEL family/m, 'the report goes to stderr when the recipe goes to stdout');

  const badFormat = await haoscarCli('image', 'recipe', 'n1', '--format', 'ignition', '-c', configFile);
  assert.equal(badFormat.exitCode, 2, badFormat.stderr);
  assert.match(badFormat.stderr, /--format: expected one of preseed, kickstart, autoyast, not 'ignition'/);
  const unknown = await haoscarCli('image', 'recipe', 'n9', '--format', 'preseed', '-c', configFile);
  assert.equal(unknown.exitCode, 2, unknown.stderr);
  assert.match(unknown.stderr, /unknown node 'n9' \(known: n1, n2\)/);

  const empty = join(dir, 'empty');
  await mkdir(empty);
  const nothing = await haoscarCli('image', 'recipe', 'n1', '--format', 'preseed', '--root', empty, '-c', configFile);
  assert.equal(nothing.exitCode, 1, nothing.stderr);
  assert.match(nothing.stderr, /the image recipe failed: n1: \S+ has no etc\/os-release or usr\/lib\/os-release: is it a system's root\?/);
});
