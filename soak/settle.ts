import { setTimeout as delay } from 'node:timers/promises';

/**
 * Waits until `done()` holds, for as long as `progress()` keeps moving:
 * resolves `true` when done, `false` once nothing moved for `stallMs` (what
 * is missing then is reported as lost, by the caller).
 */
export async function settle(done: () => boolean | Promise<boolean>, progress: () => number, stallMs: number): Promise<boolean> {
  let last = progress();
  let movedAt = Date.now();
  for (;;) {
    if (await done()) return true;
    const now = progress();
    if (now !== last) {
      last = now;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > stallMs) return false;
    await delay(100);
  }
}
