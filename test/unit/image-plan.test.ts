import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CloneFacts } from '../../workflows/clone-plan.js';
import { captureDirProblem, IMAGE_FORMAT, parseImageManifest, planImageCapture, planImageDeploy, type ImageManifest } from '../../workflows/image-plan.js';
import { witnessHostOf } from '../../src/cli/image.js';
import { readOsReleaseUnder } from '../../src/clone/image.js';

const facts: CloneFacts = {
  nodes: [
    { name: 'alpha', addresses: ['10.213.0.11', 'fd00:213::11'] },
    { name: 'beta', addresses: ['10.213.0.12', 'fd00:213::12'] },
    { name: 'gamma', addresses: ['10.213.0.13'] },
  ],
  stateDir: '/var/lib/haoscar',
  groupMountpoints: ['/srv/data'],
  clone: { include: ['/'], exclude: ['/var/cache/apt/archives/*.deb'] },
};

test('a capture leaves out what a clone leaves out and records the node\'s addresses', () => {
  const plan = planImageCapture(facts, 'alpha');
  for (const p of ['/proc/*', '/etc/machine-id', '/var/lib/dbus/machine-id', '/etc/ssh/ssh_host_*', '/var/lib/haoscar/*', '/srv/data/*', '/var/cache/apt/archives/*.deb']) {
    assert.ok(plan.filters.includes(`- ${p}`), `${p} is excluded`);
  }
  assert.equal(plan.filters.at(-1), '+ /**');
  assert.deepEqual(plan.addresses, ['10.213.0.11', 'fd00:213::11']);
  assert.throws(() => planImageCapture(facts, 'omega'), /unknown source node 'omega' \(known: alpha, beta, gamma\)/);
  assert.throws(() => planImageCapture({ ...facts, clone: { include: ['/'], exclude: ['var/tmp'] } }, 'alpha'), /clone pattern 'var\/tmp' is not absolute/);
});

const manifestOf = (filters: string[], addresses = ['10.213.0.11', 'fd00:213::11'], node = 'alpha'): Pick<ImageManifest, 'source' | 'filters' | 'excluded'> => ({
  source: { node, addresses, root: '/' }, filters, excluded: filters.filter((f) => f.startsWith('- ')).map((f) => f.slice(2)),
});

test('a deploy: the target\'s exclusions first, then the capture\'s rules; the image\'s node\'s addresses become the target\'s', () => {
  const captured = planImageCapture({ ...facts, stateDir: '/var/lib/haoscar-old' }, 'alpha');
  // The configuration now has another state directory and another exclusion: the target's own are kept.
  const plan = planImageDeploy({ ...facts, clone: { include: ['/etc'], exclude: ['/home/*/.cache'] } }, manifestOf(captured.filters), { to: 'beta' });
  const firstInclude = plan.filters.findIndex((f) => f.startsWith('+'));
  for (const p of ['/var/lib/haoscar/*', '/var/lib/haoscar-old/*', '/home/*/.cache', '/etc/machine-id', '/etc/ssh/ssh_host_*']) {
    const at = plan.filters.indexOf(`- ${p}`);
    assert.ok(at >= 0 && at < firstInclude, `${p} is excluded before any include`);
  }
  // The configuration's include now does not matter: the image is whole, and deployed whole.
  assert.deepEqual(plan.filters.slice(firstInclude), ['+ /**']);
  assert.equal(new Set(plan.filters).size, plan.filters.length, 'no rule twice');
  assert.equal(plan.from, 'alpha');
  assert.equal(plan.hostname, 'beta');
  assert.deepEqual(plan.addresses, [{ from: '10.213.0.11', to: '10.213.0.12' }, { from: 'fd00:213::11', to: 'fd00:213::12' }]);
  assert.deepEqual(plan.warnings, []);
});

test('a deploy of a partial image keeps its "everything else out": the rest of the target is not deleted', () => {
  const captured = planImageCapture({ ...facts, clone: { include: ['/etc', '/usr/local'], exclude: [] } }, 'alpha');
  const plan = planImageDeploy(facts, manifestOf(captured.filters), { to: 'gamma', hostname: 'gamma.example.org' });
  assert.deepEqual(plan.filters.slice(plan.filters.findIndex((f) => f.startsWith('+'))), ['+ /usr/', '+ /etc', '+ /etc/**', '+ /usr/local', '+ /usr/local/**', '- *']);
  assert.equal(plan.hostname, 'gamma.example.org');
  assert.deepEqual(plan.addresses, [{ from: '10.213.0.11', to: '10.213.0.13' }]);
  assert.match(plan.warnings.join('\n'), /alpha has 2 IP address\(es\) in nodes: and gamma has 1/);
});

test('a deploy of an image whose node left the configuration, and onto the image\'s own node', () => {
  const filters = planImageCapture(facts, 'alpha').filters;
  const gone = planImageDeploy(facts, manifestOf(filters, ['10.213.0.99'], 'retired'), { to: 'beta' });
  assert.deepEqual(gone.addresses[0], { from: '10.213.0.99', to: '10.213.0.12' });
  const own = planImageDeploy(facts, manifestOf(filters), { to: 'alpha' });
  assert.deepEqual(own.addresses.filter((a) => a.from !== a.to), [], 'restored onto itself: nothing to map');
  assert.throws(() => planImageDeploy(facts, manifestOf(filters), { to: 'delta' }), /unknown target node 'delta'/);
});

test('which directories a capture may write into', () => {
  const cases: [string[], RegExp | undefined][] = [
    [[], undefined],
    [['haoscar-image.json', 'root'], undefined],
    [['haoscar-image.capturing.json', 'root'], undefined],
    [['haoscar-image.capturing.json'], undefined],
    [['root'], /holds a root\/ directory but no haoscar-image\.json/],
    [['etc', 'usr', 'haoscar-image.json'], /is not empty and is not an image \(it holds etc, usr\)/],
    [['a', 'b', 'c', 'd', 'e', 'f'], /it holds a, b, c, d, e, \.\.\./],
  ];
  for (const [entries, expected] of cases) {
    const problem = captureDirProblem('/srv/img', entries);
    if (expected) assert.match(problem ?? '', expected, entries.join(','));
    else assert.equal(problem, undefined, entries.join(','));
  }
});

test('a manifest is checked: not JSON, another format, a bad filter rule', () => {
  const good: ImageManifest = {
    format: IMAGE_FORMAT, cluster: 'prod', source: { node: 'alpha', addresses: ['10.213.0.11'], root: '/' },
    startedAt: '2026-12-07T17:00:00.000Z', capturedAt: '2026-12-07T17:01:00.000Z', haoscarVersion: '0.1.0',
    osRelease: { id: 'debian', idLike: [], name: 'Debian GNU/Linux 12 (bookworm)', versionId: '12' },
    filters: ['- /proc/*', '+ /**'], excluded: ['/proc/*'],
  };
  assert.deepEqual(parseImageManifest(JSON.stringify(good)), good);
  assert.throws(() => parseImageManifest('{'), /haoscar-image\.json is not JSON/);
  assert.throws(() => parseImageManifest(JSON.stringify({ ...good, format: 'haoscar-image/9' })), /format: expected format "haoscar-image\/1"/);
  assert.throws(() => parseImageManifest(JSON.stringify({ ...good, filters: ['--rsync-path=evil'] })), /filters\.0: expected an rsync filter rule/);
  assert.throws(() => parseImageManifest(JSON.stringify({ ...good, source: { node: 'alpha' } })), /source\.addresses/);
});

test('the witness host defaults to the host of temporal.address', () => {
  assert.equal(witnessHostOf('10.0.0.5:7233'), '10.0.0.5');
  assert.equal(witnessHostOf('witness.example.org:7233'), 'witness.example.org');
  assert.equal(witnessHostOf('[fd00::5]:7233'), 'fd00::5');
  assert.equal(witnessHostOf('witness'), 'witness');
});

test("an image's os-release is read inside the image, through Debian's relative link and an absolute one", async () => {
  const root = await mkdtemp(join(tmpdir(), 'haoscar-image-osr-'));
  try {
    await mkdir(join(root, 'etc'));
    await mkdir(join(root, 'usr/lib'), { recursive: true });
    await writeFile(join(root, 'usr/lib/os-release'), 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n');
    assert.equal((await readOsReleaseUnder(root))?.id, 'debian', 'no etc/os-release: usr/lib/os-release');
    await symlink('../usr/lib/os-release', join(root, 'etc/os-release'));
    assert.deepEqual(await readOsReleaseUnder(root), { id: 'debian', idLike: [], name: 'Debian GNU/Linux 12 (bookworm)', versionId: '12' });
    // An absolute link names the image's file, never the witness's own /usr/lib/os-release.
    await rm(join(root, 'etc/os-release'));
    await writeFile(join(root, 'usr/lib/os-release'), 'ID=imaged\n');
    await symlink('/usr/lib/os-release', join(root, 'etc/os-release'));
    assert.equal((await readOsReleaseUnder(root))?.id, 'imaged');
    await rm(join(root, 'usr/lib/os-release'));
    assert.equal(await readOsReleaseUnder(root), undefined);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
