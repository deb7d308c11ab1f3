import type { Row } from '../replication/transaction.js';

/** What happened to a row, as clients see it. */
export type EventKind = 'create' | 'update' | 'delete';

/** Every kind of event frame: row changes and custom-topic messages. */
export type FrameKind = EventKind | 'new-message';

/** The fields of an {@link Event} fixed by the change itself. */
export interface EventInit {
  /** `<16 hex commit LSN>-<8 hex index in transaction>`: sorts in stream order. */
  readonly seq: string;
  /** Table topic name, e.g. `order` or `app.items`. */
  readonly topic: string;
  /** Table name (`data.type`). */
  readonly type: string;
  /** Commit time, ISO-8601. */
  readonly ts: string;
  /** What happened in the table, or `new-message` for a custom topic's message. */
  readonly kind: FrameKind;
  /** Primary key columns (for `data.id`). */
  readonly key: readonly string[];
  /** `data.id` when it is not taken from the row (custom-topic messages). */
  readonly id?: string;
  /** The new row; `null` for a delete. */
  readonly row: Row | null;
  /** The old row: a delete's row, an update's previous values when the table's identity gives them, else `null`. */
  readonly old: Row | null;
  /** Audience partitions of `row` (of `old` for a delete), admins' `t|all` excluded. */
  readonly partitions: readonly string[];
  /** Partitions of `old` for an update that has it; `null` otherwise. */
  readonly oldPartitions: readonly string[] | null;
  /** TOAST columns Postgres did not resend and the old row could not supply (left out of `row`). */
  readonly unchanged: readonly string[];
  /** Whether `old` is the whole old row (`REPLICA IDENTITY FULL`) rather than its key only. */
  readonly oldComplete: boolean;
}

/**
 * One row change on its way to subscribers. A change is seen as `create`,
 * `update` or `delete` depending on the audience (a row moving into a user's
 * view is a `create` for them); each of those frames is serialized at most
 * once, on first use, and shared by every recipient.
 */
export class Event implements EventInit {
  readonly seq: string;
  readonly topic: string;
  readonly type: string;
  readonly ts: string;
  readonly kind: FrameKind;
  readonly key: readonly string[];
  readonly id: string | undefined;
  readonly row: Row | null;
  readonly old: Row | null;
  readonly partitions: readonly string[];
  readonly oldPartitions: readonly string[] | null;
  readonly unchanged: readonly string[];
  readonly oldComplete: boolean;
  #create: string | null = null;
  #update: string | null = null;
  #delete: string | null = null;
  #message: string | null = null;
  #dropped: string | null = null;

  constructor(init: EventInit) {
    this.seq = init.seq;
    this.topic = init.topic;
    this.type = init.type;
    this.ts = init.ts;
    this.kind = init.kind;
    this.key = init.key;
    this.id = init.id;
    this.row = init.row;
    this.old = init.old;
    this.partitions = init.partitions;
    this.oldPartitions = init.oldPartitions;
    this.unchanged = init.unchanged;
    this.oldComplete = init.oldComplete;
  }

  /**
   * 1 for the `delete` and 2 for the `create` of a row that moved from one
   * partition to another (owner or group changed), else 0. A subscription
   * that reads both partitions gets both frames, with one seq; the part lets
   * a client resume between them (`since: "<seq>/1"`).
   */
  part(kind: FrameKind): number {
    if (!this.#moved) return 0;
    return kind === 'delete' ? 1 : kind === 'create' ? 2 : 0;
  }

  get #moved(): boolean {
    const before = this.oldPartitions;
    if (this.kind !== 'update' || before === null || before.length === 0 || this.partitions.length === 0) return false;
    return before.some((partition) => !this.partitions.includes(partition));
  }

  /**
   * Why this change cannot be delivered (its row could not be serialized),
   * or `null`. A dropped event reaches no subscriber; admins of its topic get
   * {@link droppedFrame} instead.
   */
  get dropped(): string | null {
    return this.#dropped;
  }

  /** Marks the event as undeliverable (see {@link dropped}). */
  markDropped(reason: string): void {
    this.#dropped ??= reason;
  }

  /**
   * What admins of the topic are told of a dropped event: an `error` frame
   * with code `EVENT_DROPPED`, the topic, the `seq`, and the row's type and
   * id, so they can look at the row.
   */
  droppedFrame(): string {
    let id: string;
    try {
      id = this.id ?? rowId(this.row ?? this.old ?? {}, this.key);
    } catch {
      id = '';
    }
    return JSON.stringify({
      type: 'error',
      topic: this.topic,
      seq: this.seq,
      ts: this.ts,
      error: { code: 'EVENT_DROPPED', message: `${this.type} ${id}: the change was not delivered (${this.#dropped ?? 'it cannot be serialized'})` },
      data: { type: this.type, id },
    });
  }

  /** The `{"type":"event",…}` frame of this change seen as `kind`; throws when the row cannot be serialized. */
  frame(kind: FrameKind): string {
    switch (kind) {
      case 'new-message':
        return (this.#message ??= this.#encode('new-message', this.row!, null));
      case 'create':
        return (this.#create ??= this.#encode('create', this.row!, null));
      case 'update':
        return (this.#update ??= this.#encode('update', this.row!, this.old));
      case 'delete':
        return (this.#delete ??= this.#encode('delete', this.old ?? this.row!, null));
    }
  }

  #encode(kind: FrameKind, attributes: Row, old: Row | null): string {
    const data: Record<string, unknown> = { type: this.type, id: this.id ?? rowId(attributes, this.key), attributes };
    if (old !== null) data['old'] = old;
    if (kind === 'update' && this.unchanged.length > 0) data['unchanged'] = this.unchanged;
    const part = this.part(kind);
    if (part > 0) return JSON.stringify({ type: 'event', topic: this.topic, event: kind, seq: this.seq, part, ts: this.ts, data });
    return JSON.stringify({ type: 'event', topic: this.topic, event: kind, seq: this.seq, ts: this.ts, data });
  }
}

/** The primary key of `row` as `data.id`: values joined with `/`. */
export function rowId(row: Row, key: readonly string[]): string {
  if (key.length === 1) return String(row[key[0]!]);
  let id = '';
  for (let i = 0; i < key.length; i++) id += (i === 0 ? '' : '/') + String(row[key[i]!]);
  return id;
}
