import type { FrameKind } from '../protocol/index.js';
import type { Row } from '../replication/transaction.js';

export type { EventKind, FrameKind } from '../protocol/index.js';

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
  /** The connection (session id) that published this message, when it is known on some node; `null` otherwise. */
  readonly origin?: string | null;
  /** The id of the transaction that made the change (pgoutput's 32-bit xid), for snapshots' cut; absent for custom-topic messages. */
  readonly xid?: number | null;
  /** Columns of the table non-admins never see (its policy's hidden columns); none when absent. */
  readonly hidden?: readonly string[];
}

/**
 * One row change (or custom-topic message) on its way to subscribers. A
 * change is seen as `create`, `update` or `delete` depending on the audience
 * (a row moving into a user's view is a `create` for them). Each door's
 * {@link FrameEncoder} turns it into that door's frame; each frame is
 * serialized at most once, on first use, and shared by every recipient.
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
  readonly origin: string | null;
  readonly xid: number | null;
  readonly hidden: readonly string[];
  /** The columns this event lacks: the hidden ones in {@link visible}'s event, none in the whole one. */
  readonly withheld: readonly string[];
  #visible: Event | undefined = undefined;
  // Frames made of this event (see frameFor): the default encoder's (/live's) in fields, any other's in a map made
  // when first needed, so that an event nobody else encodes carries nothing more than it did before doors.
  #create: string | undefined = undefined;
  #update: string | undefined = undefined;
  #delete: string | undefined = undefined;
  #message: string | undefined = undefined;
  #others: Map<number, string> | null = null;
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
    this.origin = init.origin ?? null;
    this.xid = init.xid ?? null;
    this.hidden = init.hidden ?? NONE;
    this.withheld = NONE;
  }

  /**
   * This change as non-admins see it: without the table's hidden columns
   * (in `row`, `old` and `unchanged`). It is this event when nothing is
   * hidden; otherwise one made on first use, with frames of its own, so
   * each encoder strips and serializes a change once for every non-admin
   * partition, never per subscriber.
   */
  get visible(): Event {
    if (this.hidden.length === 0) return this;
    if (this.#visible === undefined) {
      const hidden = this.hidden;
      const view = new Event({
        ...this,
        row: this.row === null ? null : without(this.row, hidden),
        old: this.old === null ? null : without(this.old, hidden),
        unchanged: this.unchanged.filter((column) => !hidden.includes(column)),
        hidden: NONE,
      });
      (view as { withheld: readonly string[] }).withheld = hidden;
      if (this.#dropped !== null) view.markDropped(this.#dropped);
      this.#visible = view;
    }
    return this.#visible;
  }

  /** {@link visible} for every partition but the admins' (`admin`), which sees the whole change. */
  seenFrom(partition: string, admin: string): Event {
    return partition === admin ? this : this.visible;
  }

  /**
   * 1 for the `delete` and 2 for the `create` of a row that moved from one
   * partition to another (owner or group changed), else 0. A subscription
   * that reads both partitions gets both frames, with one seq; the part lets
   * a client resume between them (`since: "<seq>/1"`).
   */
  part(kind: FrameKind): 0 | 1 | 2 {
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
   * the encoders' dropped frame instead.
   */
  get dropped(): string | null {
    return this.#dropped;
  }

  /** Marks the event as undeliverable (see {@link dropped}). */
  markDropped(reason: string): void {
    this.#dropped ??= reason;
  }

  /**
   * The frame `encoder` makes of this change seen as `kind`: made on first
   * use and shared by every recipient (of every group using that encoder).
   * Throws when the row cannot be serialized.
   */
  frameFor(encoder: FrameEncoder, kind: FrameKind): string {
    if (encoder.slot === DEFAULT_ENCODER_SLOT) {
      switch (kind) {
        case 'create':
          return (this.#create ??= encoder.encode(this, kind));
        case 'update':
          return (this.#update ??= encoder.encode(this, kind));
        case 'delete':
          return (this.#delete ??= encoder.encode(this, kind));
        case 'new-message':
          return (this.#message ??= encoder.encode(this, kind));
      }
    }
    const key = encoder.slot * 4 + KIND_SLOT[kind];
    const others = (this.#others ??= new Map());
    let frame = others.get(key);
    if (frame === undefined) others.set(key, (frame = encoder.encode(this, kind)));
    return frame;
  }

  /** `data.id` of this event: the message id, or the row's primary key (values joined with `/`). */
  idOf(row: Row): string {
    return this.id ?? rowId(row, this.key);
  }
}

const NONE: readonly string[] = Object.freeze([]);

/** `row` without the `hidden` columns (a table's hidden columns, for non-admins). */
export function without(row: Row, hidden: readonly string[]): Row {
  const copy: Row = {};
  for (const column in row) if (!hidden.includes(column)) copy[column] = row[column];
  return copy;
}

const KIND_SLOT: Readonly<Record<FrameKind, number>> = { create: 0, update: 1, delete: 2, 'new-message': 3 };

/** The primary key of `row` as `data.id`: values joined with `/`. */
export function rowId(row: Row, key: readonly string[]): string {
  if (key.length === 1) return String(row[key[0]!]);
  let id = '';
  for (let i = 0; i < key.length; i++) id += (i === 0 ? '' : '/') + String(row[key[i]!]);
  return id;
}

/**
 * How a door turns events into its frames. The router publishes, for each
 * subscription group, `event.frameFor(group.encoder, kind)`: each encoder's
 * frame of an event is made once and shared by every recipient of that
 * door, whatever the number of groups. `/live` has one encoder; a door whose
 * frames differ per subscription (a channel's binding ids) has one per
 * rendering.
 */
export interface FrameEncoder {
  /** Where an event keeps this encoder's frames: unique per encoder, from {@link encoderSlot}. */
  readonly slot: number;
  /** The frame of `event` seen as `kind`. Throws when the row cannot be serialized (the router then drops the event). */
  encode(event: Event, kind: FrameKind): string;
  /** What a table topic's admins get instead of an event that could not be serialized. */
  encodeDropped(event: Event): string;
  /** Whether a message goes to every subscriber but the connection that published it (its {@link Event.origin}): Supabase's `self: false`. */
  readonly skipsOrigin?: boolean;
  /**
   * The door's presence frame on custom topic `topic`: its `state` (sent to
   * one joiner) or a `diff` (published to every subscriber), `payload` being
   * the state or `{"joins":…,"leaves":…}` as JSON. Without it, the door's
   * subscribers get no presence.
   */
  encodePresence?(topic: string, event: 'state' | 'diff', payload: string): string;
  /**
   * The door's frame of one page of table topic `topic`'s snapshot, `rows`
   * being the JSON array of the rows' `data`; `seq` on the last page only
   * (where the events continue). Without it, the door's subscriptions cannot
   * ask for snapshots.
   */
  encodeSnapshot?(topic: string, rows: string, seq: string | null): string;
  /** The door's frame of an aggregate subscription's counts (`payload`: `{"groups":…,"total":…}` as JSON). */
  encodeAggregate?(topic: string, event: 'state' | 'diff', payload: string): string;
}

/** The slot of the default encoder (`/live`'s): events keep its frames in fields, not in a map. */
export const DEFAULT_ENCODER_SLOT = 0;

let nextSlot = DEFAULT_ENCODER_SLOT + 1;

/** A slot for a new {@link FrameEncoder} (other than the default one). */
export function encoderSlot(): number {
  return nextSlot++;
}
