import { RowcastError } from '../errors.js';

/** The bounds of a {@link RequestQueue}. */
export interface RequestQueueLimits {
  /** Requests that may wait (`MAX_PENDING_REQUESTS`). */
  readonly maxRequests: number;
  /** Bytes of their frames that may wait (`MAX_BACKPRESSURE_BYTES`). */
  readonly maxBytes: number;
}

/**
 * One connection's requests, run in the order they came: while an
 * asynchronous one runs, later ones wait, first in first out (so a subscribe
 * waiting to catch up cannot be overtaken by an unsubscribe). The queue is
 * bounded: past it a request is refused at once with `LIMIT_EXCEEDED`,
 * without running. Doors share it; what running a request means is theirs.
 */
export class RequestQueue<R> {
  readonly #limits: RequestQueueLimits;
  /** Runs a request: returns a promise while it is not answered yet. */
  readonly #run: (request: R) => Promise<unknown> | undefined;
  readonly #waiting: Array<{ readonly request: R; readonly bytes: number }> = [];
  #bytes = 0;
  #busy = false;
  #stopped = false;

  constructor(limits: RequestQueueLimits, run: (request: R) => Promise<unknown> | undefined) {
    this.#limits = limits;
    this.#run = run;
  }

  /** Runs `request` now, or after the ones before it; throws `LIMIT_EXCEEDED` when the queue is full. */
  push(request: R, bytes: number): void {
    if (this.#stopped) return;
    if (!this.#busy) {
      this.#start(request);
      return;
    }
    const { maxRequests, maxBytes } = this.#limits;
    if (this.#waiting.length >= maxRequests || this.#bytes + bytes > maxBytes) {
      throw new RowcastError('LIMIT_EXCEEDED', `${this.#waiting.length} requests are waiting for an earlier one to finish; at most ${maxRequests} (MAX_PENDING_REQUESTS) and ${maxBytes} bytes`);
    }
    this.#waiting.push({ request, bytes });
    this.#bytes += bytes;
  }

  /** The connection closed: nothing more runs. */
  stop(): void {
    this.#stopped = true;
    this.#waiting.length = 0;
  }

  #start(request: R): void {
    const done = this.#run(request);
    if (!done) return;
    this.#busy = true;
    const next = () => {
      this.#busy = false;
      this.#drain();
    };
    void done.then(next, next);
  }

  /** Runs the waiting requests in order until one is asynchronous (or none is left, or the connection closed). */
  #drain(): void {
    while (!this.#busy && !this.#stopped) {
      const next = this.#waiting.shift();
      if (!next) return;
      this.#bytes -= next.bytes;
      this.#start(next.request);
    }
  }
}
