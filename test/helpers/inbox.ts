/** Collects what a callback receives (a client library's events), and waits for a number of items. */
export class Inbox<T = any> {
  readonly items: T[] = [];
  #waiters: Array<() => void> = [];

  /** The callback to give to `channel.on(…)`. */
  readonly add = (item: T): void => {
    this.items.push(item);
    for (const wake of this.#waiters.splice(0)) wake();
  };

  /** Resolves once `count` items arrived; fails loudly after `timeoutMs`. */
  async atLeast(count: number, timeoutMs = 10_000): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.items.length < count) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`expected ${count} items, got ${this.items.length}: ${JSON.stringify(this.items)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.items;
  }
}
