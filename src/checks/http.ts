/**
 * HTTP check: a request to the URL answers with an expected status — one of
 * `expectStatus`, or else any 2xx/3xx. Redirects are not followed (a 302 to a login page is
 * an answer from a live server, and following it could leave the host we check).
 */
import type { ProbeOutcome } from './check.js';

/**
 * Rejects when no response arrives (network error, or the signal — which the check wrapper
 * builds with its deadline — aborts).
 */
export async function probeHttp(url: string, expectStatus: readonly number[] | undefined, signal: AbortSignal): Promise<ProbeOutcome> {
  const response = await fetch(url, {
    method: 'GET',
    redirect: 'manual',
    signal,
    headers: { 'user-agent': 'ha-oscar-check' },
  });
  // Release the connection: an unread body keeps the socket (and undici's pool slot) busy.
  await response.body?.cancel().catch(() => undefined);
  const ok = expectStatus ? expectStatus.includes(response.status) : response.status >= 200 && response.status < 400;
  const expected = expectStatus ? expectStatus.join(', ') : '2xx/3xx';
  return { ok, detail: ok ? `status ${response.status}` : `status ${response.status} (expected ${expected})` };
}
