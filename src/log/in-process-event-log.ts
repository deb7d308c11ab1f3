import type { Event } from '../events/event.js';
import type { EventLog } from './event-log.js';

/**
 * The single-node {@link EventLog}: appending calls the listeners at once,
 * synchronously, so an event has reached the uWS topics by the time
 * `append` returns (and the replication stream may acknowledge it).
 */
export class InProcessEventLog implements EventLog {
  #listeners: Array<(event: Event) => void> = [];
  #lastSeq = '';

  get lastSeq(): string {
    return this.#lastSeq;
  }

  append(event: Event): boolean {
    if (event.seq <= this.#lastSeq) return false;
    this.#lastSeq = event.seq;
    for (const listener of this.#listeners) listener(event);
    return true;
  }

  subscribe(listener: (event: Event) => void): () => void {
    this.#listeners.push(listener);
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }
}
