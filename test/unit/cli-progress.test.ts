/** The resync progress bar and the `haoscar sync status` table: what an operator reads. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, renderBar } from '../../src/cli/progress.js';
import { formatSyncState } from '../../src/cli/sync.js';

test('the progress bar shows percent, bytes, ETA, phase, and a resumed attempt', () => {
  assert.equal(
    renderBar({ phase: 'file set www (/srv/www)', done: [], steps: 2, percent: 50, bytes: 3 * 1024 * 1024, etaSeconds: 75, attempt: 1 }, 10),
    '[#####.....]  50%  3.0 MiB  ETA 1:15  file set www (/srv/www)',
  );
  assert.equal(
    renderBar({ phase: 'drbd disk', done: ['fileset:www:/srv/www'], steps: 2, percent: 100, bytes: 512, attempt: 2 }, 4),
    '[####] 100%  512 B  drbd disk  (attempt 2, resumed)',
  );
  // Out-of-range percentages from a confused source are clamped, not drawn past the bar.
  assert.match(renderBar({ phase: 'x', done: [], steps: 1, percent: 140, bytes: 0, attempt: 1 }, 4), /^\[####\] 100%/);
});

test('bytes are shown in binary units', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB');
});

test('sync status: the owner serving, a standby with lag and bytes, and a standby whose last pull failed', () => {
  const now = 1_000_000;
  const text = formatSyncState({
    node: 'n2',
    at: now - 1000,
    sets: [
      { group: 'web', set: 'www', role: 'standby', source: 'n1', generation: 7, lastSuccessAt: now - 2500, lagMs: 412, bytes: 2048, totalBytes: 10 * 1024 * 1024, errors: 0, running: false },
      { group: 'db', set: 'dumps', role: 'standby', source: 'n1', generation: 0, totalBytes: 0, errors: 3, lastError: 'rsync failed (exit 11): no space left', running: true },
      { group: 'mail', set: 'spool', role: 'source', source: 'n2', generation: 4, lastChangeAt: now - 100, totalBytes: 0, errors: 0, running: false },
    ],
  }, now);
  assert.equal(text, [
    'node n2 (state written 1s ago)',
    '  web/www                  standby of n1',
    '    last success 2.5s ago, lag 412 ms, last 2.0 KiB, total 10.0 MiB, errors 0',
    '  db/dumps                 standby of n1, pulling now',
    '    last success never, last 0 B, total 0 B, errors 3',
    '    LAST ERROR: rsync failed (exit 11): no space left',
    '  mail/spool               owner, serving (generation 4)',
    '    last change 0.1s ago',
    '',
  ].join('\n'));
});
