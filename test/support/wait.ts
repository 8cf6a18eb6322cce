/**
 * The tests' one way to wait: poll a described condition with a deadline, never a bare sleep.
 */

/**
 * Polls `condition` every `everyMs` until it returns a value other than undefined/false.
 * @throws Error naming `what` after `timeoutMs`.
 */
export async function waitFor<T>(
  what: string,
  condition: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  everyMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs}ms waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
