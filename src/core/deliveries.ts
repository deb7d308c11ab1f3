/**
 * Stored messages waiting for the stream to deliver them (so `new-message`
 * can answer with the `seq`). The stream may deliver a message before its
 * INSERT's result reaches the writer, so recent deliveries are remembered
 * (a bounded number) for a waiter that comes late.
 */
export class Deliveries {
  readonly #waiting = new Map<string, (seq: string) => void>();
  readonly #recent = new Map<string, string>();

  /** Resolves with the seq, or `null` if the stream has not delivered the message within `timeoutMs`. */
  wait(id: string, timeoutMs = DELIVERY_TIMEOUT_MS): Promise<string | null> {
    const seq = this.#recent.get(id);
    if (seq !== undefined) {
      this.#recent.delete(id);
      return Promise.resolve(seq);
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(id);
        resolve(null);
      }, timeoutMs);
      this.#waiting.set(id, (seq) => {
        clearTimeout(timer);
        resolve(seq);
      });
    });
  }

  /** The stream delivered stored message `id` at `seq`. */
  delivered(id: string, seq: string): void {
    const waiter = this.#waiting.get(id);
    if (waiter) {
      this.#waiting.delete(id);
      waiter(seq);
      return;
    }
    this.#recent.set(id, seq);
    if (this.#recent.size > RECENT_DELIVERIES) this.#recent.delete(this.#recent.keys().next().value!);
  }
}

const RECENT_DELIVERIES = 10_000;
/** A stored message not delivered by then (stream down) is answered without its seq. */
const DELIVERY_TIMEOUT_MS = 10_000;
