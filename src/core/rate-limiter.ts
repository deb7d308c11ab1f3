/** A token bucket: a door keeps one per connection for its frames (`/live` in its LiveConnection); presence one per connection for its tracks. */
export interface Bucket {
  tokens: number;
  /** When `tokens` was last refilled (ms, `performance.now()`). */
  refilledAt: number;
  /** Frames refused in a row since the last one accepted. */
  refusedInARow: number;
}

/** What to do with a frame: run it, refuse it (`retryAfter` ms), or close the connection (1008). */
export type RateDecision = { readonly verdict: 'run' } | { readonly verdict: 'refuse'; readonly retryAfter: number } | { readonly verdict: 'close' };

const RUN: RateDecision = Object.freeze({ verdict: 'run' });
const CLOSE: RateDecision = Object.freeze({ verdict: 'close' });

/**
 * Per-connection rate limiting (`RATE_LIMIT_PER_SECOND`, `RATE_LIMIT_BURST`):
 * a token bucket that holds up to `burst` frames and refills at `perSecond`.
 * Every text frame costs one. A frame that finds the bucket empty is refused
 * with `retryAfter` (ms until the next token). A client that ignores that and
 * sends a further second's worth of frames (`perSecond`, at least 10) while
 * limited is closed with 1008.
 */
export class RateLimiter {
  readonly #perMs: number;
  readonly #burst: number;
  readonly #closeAfter: number;

  constructor(perSecond: number, burst: number) {
    this.#perMs = perSecond / 1000;
    this.#burst = Math.max(1, burst);
    this.#closeAfter = Math.max(10, perSecond);
  }

  /** A full bucket for a new connection. */
  bucket(now = performance.now()): Bucket {
    return { tokens: this.#burst, refilledAt: now, refusedInARow: 0 };
  }

  take(bucket: Bucket, now = performance.now()): RateDecision {
    bucket.tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.refilledAt) * this.#perMs);
    bucket.refilledAt = now;
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      bucket.refusedInARow = 0;
      return RUN;
    }
    if (++bucket.refusedInARow > this.#closeAfter) return CLOSE;
    return { verdict: 'refuse', retryAfter: Math.ceil((1 - bucket.tokens) / this.#perMs) };
  }
}
