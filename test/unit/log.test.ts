import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isJournalStream, syslogPriority, withSyslogPriority } from '../../src/log.js';

test('pino levels map to syslog priorities', () => {
  const table: [number, number][] = [
    [10, 7], // trace → debug
    [20, 7], // debug
    [30, 6], // info
    [40, 4], // warn → warning
    [50, 3], // error → err
    [60, 2], // fatal → crit
  ];
  for (const [level, priority] of table) assert.equal(syslogPriority(level), priority, `level ${level}`);
});

test('a JSON line gets its priority in front; anything else is left as it is', () => {
  assert.equal(withSyslogPriority('{"level":50,"msg":"x"}\n'), '<3>{"level":50,"msg":"x"}\n');
  assert.equal(withSyslogPriority('{"level":30,"msg":"x"}\n'), '<6>{"level":30,"msg":"x"}\n');
  assert.equal(withSyslogPriority('not json\n'), 'not json\n');
});

test('JOURNAL_STREAM counts only for the stream it names', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'haoscar-log-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const a = await open(join(dir, 'a'), 'w');
  const b = await open(join(dir, 'b'), 'w');
  t.after(async () => {
    await a.close();
    await b.close();
  });
  const { dev, ino } = await a.stat({ bigint: true });
  assert.equal(isJournalStream(a.fd, `${dev}:${ino}`), true);
  assert.equal(isJournalStream(b.fd, `${dev}:${ino}`), false, 'another file: redirected since systemd set the variable');
  assert.equal(isJournalStream(a.fd, undefined), false, 'no variable: not under systemd');
  assert.equal(isJournalStream(a.fd, 'garbage'), false);
  assert.equal(isJournalStream(9999, `${dev}:${ino}`), false, 'a closed descriptor');
});
