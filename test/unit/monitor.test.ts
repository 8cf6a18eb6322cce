import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor as waitUntil } from '../support/wait.js';
import type { CheckResult } from '../../src/checks/check.js';
import { silentLogger } from '../../src/log.js';
import { ResourceMonitor, type HealthEdgeEvent } from '../../src/monitor/monitor.js';

const waitFor = (what: string, condition: () => boolean, timeoutMs = 3000) => waitUntil(what, condition, timeoutMs, 5);

/**
 * A check that plays a script ('+' pass, '-' fail), then repeats its last step. Records how
 * many runs happened and the most that ran at the same time.
 */
function scriptedCheck(script: string, options: { delayMs?: number } = {}) {
  const stats = { runs: 0, active: 0, maxActive: 0 };
  const check = async (): Promise<CheckResult> => {
    const step = script[Math.min(stats.runs, script.length - 1)];
    stats.runs++;
    stats.active++;
    stats.maxActive = Math.max(stats.maxActive, stats.active);
    try {
      if (options.delayMs) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
      return { ok: step === '+', detail: `run ${stats.runs}: ${step === '+' ? 'pass' : 'fail'}`, durationMs: 0 };
    } finally {
      stats.active--;
    }
  };
  return { check, stats };
}


function monitorWith(check: () => Promise<CheckResult>, timing: { rise: number; fall: number; intervalMs?: number }, onEdge?: (e: HealthEdgeEvent) => void | Promise<void>) {
  const edges: HealthEdgeEvent[] = [];
  const monitor = new ResourceMonitor({
    name: 'web',
    check,
    timing: { intervalMs: timing.intervalMs ?? 5, rise: timing.rise, fall: timing.fall },
    logger: silentLogger,
    onEdge: async (edge) => {
      edges.push(edge);
      await onEdge?.(edge);
    },
  });
  return { monitor, edges };
}

const summary = (edges: HealthEdgeEvent[]) => edges.map((e) => `${e.to}@${e.detail}`);

void describe('ResourceMonitor', () => {
  void test('retime (a reload): a run waiting out the old interval is rescheduled with the new one; never two runs at once', async (t) => {
    const { check, stats } = scriptedCheck('+');
    const timing = { intervalMs: 60_000, rise: 1, fall: 1 };
    const monitor = new ResourceMonitor({ name: 'web', check, timing, logger: silentLogger, onEdge: () => undefined });
    t.after(() => monitor.stop());
    monitor.retime(); // not started: nothing to reschedule, nothing runs
    assert.equal(stats.runs, 0);
    monitor.start();
    await waitFor('the first run (at once)', () => stats.runs === 1);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(stats.runs, 1, 'the next run waits a minute');
    timing.intervalMs = 10; // what applyLiveSettings does to the check object the monitor holds
    monitor.retime();
    await waitFor('runs every 10 ms now', () => stats.runs >= 10);
    assert.equal(stats.maxActive, 1);
  });

  void test('reports transitions only, each with the detail of the run that caused it', async (t) => {
    const { check, stats } = scriptedCheck('+++---++++');
    const { monitor, edges } = monitorWith(check, { rise: 2, fall: 3 });
    t.after(() => monitor.stop());
    monitor.start();
    await waitFor('15 runs', () => stats.runs >= 15);
    await monitor.stop();
    assert.deepEqual(summary(edges), ['healthy@run 2: pass', 'failing@run 6: fail', 'healthy@run 8: pass']);
    assert.equal(stats.maxActive, 1, 'runs never overlap');
    const status = monitor.status();
    assert.equal(status.status, 'healthy');
    assert.equal(status.failures, 0);
    assert.ok(status.passes >= 7);
  });

  void test('a steady level after the first edge emits nothing more', async (t) => {
    const { check, stats } = scriptedCheck('-');
    const { monitor, edges } = monitorWith(check, { rise: 1, fall: 2 });
    t.after(() => monitor.stop());
    monitor.start();
    await waitFor('20 runs', () => stats.runs >= 20);
    await monitor.stop();
    assert.deepEqual(summary(edges), ['failing@run 2: fail']);
  });

  void test('reportExit emits failing at once, then polling goes on and sees recovery', async (t) => {
    const { check, stats } = scriptedCheck('+');
    // A long interval: the failing edge must not wait for a poll.
    const { monitor, edges } = monitorWith(check, { rise: 2, fall: 3, intervalMs: 60_000 });
    t.after(() => monitor.stop());
    monitor.start();
    await waitFor('the first run', () => stats.runs >= 1);
    assert.deepEqual(summary(edges), []);

    monitor.reportExit('process exited with code 1');
    await waitFor('the failing edge', () => edges.length >= 1, 500);
    assert.deepEqual(summary(edges), ['failing@process exited with code 1']);
    assert.deepEqual({ ...monitor.status(), at: undefined }, { status: 'failing', passes: 0, failures: 1, detail: 'process exited with code 1', at: undefined });

    // Already failing: a second exit is no new edge.
    monitor.reportExit('process exited again');
    await monitor.stop();
    assert.equal(edges.length, 1);

    // Polling continues after an exit (here: restarted with a short interval).
    const fast = monitorWith(scriptedCheck('-++').check, { rise: 2, fall: 3 });
    t.after(() => fast.monitor.stop());
    fast.monitor.start();
    await waitFor('first run', () => fast.monitor.status().detail !== 'not checked yet');
    fast.monitor.reportExit('exited');
    await waitFor('healthy after the exit', () => fast.edges.length >= 2);
    await fast.monitor.stop();
    assert.deepEqual(summary(fast.edges), ['failing@exited', 'healthy@run 3: pass']);
  });

  void test('a check in flight when the process exits does not count', async (t) => {
    // The check passes, but slowly: it started before the exit and its pass is stale.
    const { check, stats } = scriptedCheck('+', { delayMs: 100 });
    const { monitor, edges } = monitorWith(check, { rise: 1, fall: 1, intervalMs: 60_000 });
    t.after(() => monitor.stop());
    monitor.start();
    await waitFor('the check to start', () => stats.active === 1);
    monitor.reportExit('killed by SIGKILL');
    await waitFor('the stale check to finish', () => stats.active === 0 && stats.runs === 1);
    await monitor.stop();
    assert.deepEqual(summary(edges), ['failing@killed by SIGKILL']);
    assert.equal(monitor.status().status, 'failing');
  });

  void test('an onEdge that throws is logged and polling continues', async (t) => {
    const { check, stats } = scriptedCheck('+-');
    let calls = 0;
    const { monitor, edges } = monitorWith(check, { rise: 1, fall: 1 }, () => {
      calls++;
      throw new Error('temporal unavailable');
    });
    t.after(() => monitor.stop());
    monitor.start();
    await waitFor('5 runs', () => stats.runs >= 5);
    await monitor.stop();
    assert.deepEqual(summary(edges), ['healthy@run 1: pass', 'failing@run 2: fail']);
    assert.equal(calls, 2);
  });

  void test('a check that throws counts as a failure', async (t) => {
    const { monitor, edges } = monitorWith(() => Promise.reject(new Error('boom')), { rise: 1, fall: 1 });
    t.after(() => monitor.stop());
    monitor.start();
    await waitFor('the failing edge', () => edges.length >= 1);
    await monitor.stop();
    assert.deepEqual(summary(edges), ['failing@check threw: boom']);
  });

  void test('stop() waits for the check in flight, drops its result and leaves no timer', async () => {
    const { check, stats } = scriptedCheck('+', { delayMs: 100 });
    const { monitor, edges } = monitorWith(check, { rise: 1, fall: 1, intervalMs: 1 });
    monitor.start();
    await waitFor('the check to start', () => stats.active === 1);
    await monitor.stop();
    assert.equal(stats.active, 0, 'stop() resolved before the check finished');
    assert.deepEqual(edges, [], 'no edge after stop()');
    const runs = stats.runs;
    // Would a timer survive, it would run the 1ms-interval check again within this window.
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(stats.runs, runs);
    assert.deepEqual(
      process.getActiveResourcesInfo().filter((r) => r === 'Timeout'),
      [],
      'no timers left',
    );
  });

  void test('stop() waits for a slow onEdge and start() after stop() resumes polling', async () => {
    const { check, stats } = scriptedCheck('+');
    let delivered = false;
    const { monitor, edges } = monitorWith(check, { rise: 1, fall: 1 }, async () => {
      await new Promise((resolve) => setTimeout(resolve, 50));
      delivered = true;
    });
    monitor.start();
    await waitFor('the edge to be emitted', () => edges.length === 1);
    await monitor.stop();
    assert.equal(delivered, true);
    const runs = stats.runs;
    monitor.start();
    await waitFor('polling again', () => stats.runs >= runs + 3);
    await monitor.stop();
    assert.equal(stats.maxActive, 1);
    assert.equal(edges.length, 1, 'still healthy: no new edge');
  });
});
