import { RowcastError } from '../errors.js';

/** The bounds of a {@link RequestQueue}. */
export interface RequestQueueLimits {
  /** Requests that may wait (`MAX_PENDING_REQUESTS`). */
  readonly maxRequests: number;
  /** Bytes of their frames that may wait (`MAX_BACKPRESSURE_BYTES`). */
  readonly maxBytes: number;
}

/** Pipelined requests of one connection running at once, at most (each holds one message and its hook's promise). */
export const PIPELINE_DEPTH = 32;

/**
 * One connection's requests, run in the order they came: while an
 * asynchronous one runs, later ones wait, first in first out (so a subscribe
 * waiting to catch up cannot be overtaken by an unsubscribe).
 *
 * Requests the door marks `pipelined` (messages: `new-message`,
 * `direct-message`) are the exception among themselves: consecutive ones run
 * together, up to {@link PIPELINE_DEPTH}, so a slow `onMessage` hook or a
 * storage round trip does not hold the connection's next message. (The core
 * still hands them on in the order they came: see `topic-operations.ts`.)
 * Any other request waits for every one before it, and every request after
 * it waits for it.
 *
 * The queue is bounded: past it a request is refused at once with
 * `LIMIT_EXCEEDED`, without running. Doors share it; what running a request
 * means is theirs.
 */
export class RequestQueue<R> {
  readonly #limits: RequestQueueLimits;
  /** Runs a request: returns a promise while it is not answered yet. */
  readonly #run: (request: R) => Promise<unknown> | undefined;
  readonly #pipelined: (request: R) => boolean;
  readonly #waiting: Array<{ readonly request: R; readonly bytes: number }> = [];
  #bytes = 0;
  /** Requests started and not answered yet. */
  #running = 0;
  /** Whether the one running is a request that runs alone. */
  #alone = false;
  #stopped = false;

  constructor(limits: RequestQueueLimits, run: (request: R) => Promise<unknown> | undefined, pipelined: (request: R) => boolean = () => false) {
    this.#limits = limits;
    this.#run = run;
    this.#pipelined = pipelined;
  }

  /** Runs `request` now, or after the ones before it; throws `LIMIT_EXCEEDED` when the queue is full. */
  push(request: R, bytes: number): void {
    if (this.#stopped) return;
    if (this.#waiting.length === 0 && this.#mayStart(request)) {
      this.#start(request);
      return;
    }
    const { maxRequests, maxBytes } = this.#limits;
    if (this.#waiting.length >= maxRequests || this.#bytes + bytes > maxBytes) {
      throw new RowcastError('LIMIT_EXCEEDED', `${this.#waiting.length} requests are waiting for earlier ones to finish; at most ${maxRequests} (MAX_PENDING_REQUESTS) and ${maxBytes} bytes`);
    }
    this.#waiting.push({ request, bytes });
    this.#bytes += bytes;
  }

  /** The connection closed: nothing more runs. */
  stop(): void {
    this.#stopped = true;
    this.#waiting.length = 0;
  }

  #mayStart(request: R): boolean {
    if (this.#running === 0) return true;
    return !this.#alone && this.#running < PIPELINE_DEPTH && this.#pipelined(request);
  }

  #start(request: R): void {
    const alone = !this.#pipelined(request);
    const done = this.#run(request);
    if (!done) return;
    this.#running++;
    this.#alone = alone;
    const next = () => {
      this.#running--;
      if (this.#running === 0) this.#alone = false;
      this.#drain();
    };
    void done.then(next, next);
  }

  /** Starts the waiting requests in order while the first of them may start (or none is left, or the connection closed). */
  #drain(): void {
    while (!this.#stopped && this.#waiting.length > 0 && this.#mayStart(this.#waiting[0]!.request)) {
      const next = this.#waiting.shift()!;
      this.#bytes -= next.bytes;
      this.#start(next.request);
    }
  }
}
