/**
 * The agent's ControllerLink sends every report under the link's stop signal. The Temporal client
 * adds an abort listener to the signal of every call it makes and never removes it, so each report
 * left one on the link's life-long signal (found by the scale bench: MaxListenersExceededWarning
 * after ten reports): an agent that runs for months collects one per report. Each call now has a
 * signal of its own, aborted with the link's. Against a real dev server: 30 reports (the controller
 * is started by the first one; nothing runs it), then the listeners left on the link's signal. Seen
 * failing before the fix: 30 listeners.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { closeTemporal, testClient, uniqueName } from '../support/temporal.js';
import { testLink } from '../support/cluster-key.js';
import { controllerWorkflowId } from '../../workflows/shared.js';

after(() => closeTemporal());

test('reports leave no listener behind on the link\'s stop signal', async () => {
  const client = await testClient();
  const cluster = uniqueName('link-listeners');
  const link = testLink(client, cluster);
  link.identify(1);
  try {
    for (let i = 0; i < 30; i++) await link.report({ node: 'n2', to: i % 2 ? 'up' : 'suspect', reporter: 'n1', at: Date.now(), detail: `report ${i}` });
    const stop = (link as unknown as { stopped: AbortController }).stopped.signal;
    assert.ok(getEventListeners(stop, 'abort').length <= 1, `listeners left on the link's signal after 30 reports: ${getEventListeners(stop, 'abort').length}`);
  } finally {
    link.close();
    await client.workflow.getHandle(controllerWorkflowId(cluster)).terminate('test over').catch(() => undefined);
  }
});
