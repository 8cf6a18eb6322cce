/** TCP check: a connection to host:port is accepted. The socket is closed at once. */
import { connect } from 'node:net';
import type { ProbeOutcome } from './check.js';

/** Rejects with the socket error (e.g. ECONNREFUSED) or, on abort, the signal's reason. */
export function probeTcp(host: string, port: number, signal: AbortSignal): Promise<ProbeOutcome> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const started = performance.now();
    const socket = connect({ host, port });
    const finish = (settle: () => void): void => {
      signal.removeEventListener('abort', onAbort);
      // destroy(), not end(): we have nothing to say and must not leave a socket behind.
      socket.destroy();
      settle();
    };
    const onAbort = (): void => finish(() => reject(signal.reason));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () =>
      finish(() => resolve({ ok: true, detail: `connected in ${Math.round(performance.now() - started)}ms` })),
    );
    socket.once('error', (err) => finish(() => reject(err)));
  });
}
