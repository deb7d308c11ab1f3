/**
 * Closes connections whose token has expired, with one timer for all of
 * them: connections sit in one-second buckets by expiry time, and a tick
 * each second closes the due buckets. Adding, moving (`refresh-token`) and
 * removing a connection are O(1).
 */
export class ExpirySweep<T> {
  /** Second (since the epoch) → connections expiring in it. */
  readonly #buckets = new Map<number, Set<T>>();
  readonly #bucketOf = new Map<T, number>();
  readonly #expire: (item: T) => void;
  #timer: NodeJS.Timeout | null = null;
  #lastSwept: number;

  /** `expire` is called once for each connection whose time has come. */
  constructor(expire: (item: T) => void) {
    this.#expire = expire;
    this.#lastSwept = Math.floor(Date.now() / 1000);
  }

  /** Watches `item` until `expiresAt` (ms since the epoch); `null` removes it. */
  set(item: T, expiresAt: number | null): void {
    this.delete(item);
    if (expiresAt === null) return;
    // A time already swept (it cannot be earlier than now by more than the tick) goes into the next sweep.
    const second = Math.max(Math.ceil(expiresAt / 1000), this.#lastSwept);
    let bucket = this.#buckets.get(second);
    if (!bucket) this.#buckets.set(second, (bucket = new Set()));
    bucket.add(item);
    this.#bucketOf.set(item, second);
    this.#timer ??= setInterval(() => this.#sweep(), 1000).unref();
  }

  delete(item: T): void {
    const second = this.#bucketOf.get(item);
    if (second === undefined) return;
    this.#bucketOf.delete(item);
    // The bucket is gone while a sweep runs through it (expiring one item may remove another of the same second).
    const bucket = this.#buckets.get(second);
    if (!bucket) return;
    bucket.delete(item);
    if (bucket.size === 0) this.#buckets.delete(second);
  }

  /** Connections watched. */
  get size(): number {
    return this.#bucketOf.size;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  #sweep(): void {
    const now = Math.floor(Date.now() / 1000);
    for (let second = this.#lastSwept; second <= now; second++) {
      const bucket = this.#buckets.get(second);
      if (!bucket) continue;
      this.#buckets.delete(second);
      for (const item of bucket) {
        this.#bucketOf.delete(item);
        this.#expire(item);
      }
    }
    this.#lastSwept = now;
  }
}
