import type { Lsn } from './lsn.js';

/**
 * Callers waiting for a stream to reach a position: `wait` resolves true
 * once `advance` passes its position, false after its timeout or `cancelAll`.
 * Shared by the replication stream and a cluster node's reader.
 */
export class PositionWaiters {
  #waiters: Array<{ lsn: Lsn; resolve: (reached: boolean) => void }> = [];

  /** Waiting now. */
  get size(): number {
    return this.#waiters.length;
  }

  /** `onTimeout` runs after this waiter gave up (to stop work done only while someone waits). */
  wait(lsn: Lsn, timeoutMs: number, onTimeout?: () => void): Promise<boolean> {
    return new Promise((resolve) => {
      const waiter = {
        lsn,
        resolve: (reached: boolean) => {
          clearTimeout(timer);
          resolve(reached);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        resolve(false);
        onTimeout?.();
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** The stream is at `lsn`: everyone waiting for it or less is done. */
  advance(lsn: Lsn): void {
    if (this.#waiters.length === 0) return;
    const reached = this.#waiters.filter((w) => w.lsn <= lsn);
    if (reached.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => w.lsn > lsn);
    for (const waiter of reached) waiter.resolve(true);
  }

  cancelAll(): void {
    for (const waiter of this.#waiters.splice(0)) waiter.resolve(false);
  }
}
