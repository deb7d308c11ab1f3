/**
 * Polls `condition` until it returns a truthy value and returns it; throws
 * with `what` when `timeoutMs` runs out. For state that has no event to
 * await (a position in /status, a row in a catalog).
 */
export async function waitFor<T>(what: string, condition: () => Promise<T> | T, timeoutMs = 20_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}
