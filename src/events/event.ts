import type { Row } from '../replication/transaction.js';

/** What happened to a row, as clients see it. */
export type EventKind = 'create' | 'update' | 'delete';

/**
 * One row change on its way to subscribers. Built once per change, with its
 * wire frame already serialized; nothing downstream copies or re-encodes it.
 */
export interface Event {
  /** `<16 hex commit LSN>-<8 hex index in transaction>`: sorts in stream order. */
  readonly seq: string;
  /** Table topic name, e.g. `order` or `app.items`. */
  readonly topic: string;
  readonly kind: EventKind;
  /** Primary key as a string (composite keys joined with `/`). */
  readonly id: string;
  /** The row: new values for create/update, the old row for delete. */
  readonly attributes: Row;
  /** Previous values of an update, when the table's identity gives them. */
  readonly old: Row | null;
  /** The row's audience partitions (DESIGN.md §4), admins' `t|all` excluded. */
  readonly partitions: readonly string[];
  /** The `{"type":"event",…}` frame, exactly as sent. */
  readonly frame: string;
}
