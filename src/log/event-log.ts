import type { Event } from '../events/event.js';
import type { EventSink } from '../events/event-builder.js';

/**
 * The seam between decoding and delivery (docs/architecture.md). The replication
 * side appends events in stream order; the router reads them. In a single
 * node the log is in-process; in a cluster a Redis stream fills the same role.
 * Events whose `seq` is not above the last one appended are dropped, so a
 * transaction read twice (after a reconnect) is delivered once.
 */
export interface EventLog extends EventSink {
  /** Calls `listener` for every event appended from now on; returns an unsubscribe function. */
  subscribe(listener: (event: Event) => void): () => void;
  /** The `seq` of the last event appended, or `''`. */
  readonly lastSeq: string;
}
