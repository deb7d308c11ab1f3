import type { TableShape } from '../../core/rowcast-core.js';
import { encoderSlot, type Event, type FrameEncoder } from '../../events/event.js';
import type { FrameKind } from '../../protocol/index.js';
import type { Row } from '../../replication/transaction.js';
import { droppedId, eventData } from '../event-data.js';
import { encodeMessage, envelope, type Vsn } from '../phoenix/phoenix-wire.js';

/** What each rowcast kind is called in a `postgres_changes` event. */
const CHANGE_TYPE: Readonly<Record<Exclude<FrameKind, 'new-message'>, 'INSERT' | 'UPDATE' | 'DELETE'>> = { create: 'INSERT', update: 'UPDATE', delete: 'DELETE' };

/**
 * Encoders of the Supabase door. A frame names its channel (`realtime:<name>`)
 * and, for a change, the binding it answers (`ids`), so an encoder is made
 * per channel name and binding, and shared by every socket that joined a
 * channel of that name with that binding: their frames are made once per
 * event. Encoders are counted; the last user's release forgets one.
 */
export class SupabaseEncoders {
  readonly #shape: (topic: string) => TableShape | undefined;
  readonly #encoders = new Map<string, { readonly encoder: FrameEncoder; users: number }>();
  readonly #keys = new WeakMap<FrameEncoder, string>();
  // The `data` of the event being routed, as JSON per kind (create, update, delete): every channel's frame of it
  // wraps the same text. Reset by assignment, not by clearing a collection: nothing is allocated per event.
  #event: Event | null = null;
  #create: string | undefined = undefined;
  #update: string | undefined = undefined;
  #delete: string | undefined = undefined;

  /** `shape` describes a table topic (its schema and column types) for the change events. */
  constructor(shape: (topic: string) => TableShape | undefined) {
    this.#shape = shape;
  }

  /** The encoder of binding `id`'s change events on channel `topic` (`realtime:<name>`). */
  changes(vsn: Vsn, topic: string, id: number): FrameEncoder {
    return this.#take(`${vsn} ${id} ${topic}`, () => changeEncoder(vsn, topic, id, (event, kind) => this.#changeData(event, kind)));
  }

  /** The encoder of a custom topic's messages as broadcasts on channel `topic`; without `self`, not to the socket that sent them. */
  broadcasts(vsn: Vsn, topic: string, self: boolean): FrameEncoder {
    return this.#take(`${vsn} ${self ? 'b' : 'B'} ${topic}`, () => broadcastEncoder(vsn, topic, self));
  }

  /** A user of `encoder` is gone. */
  release(encoder: FrameEncoder): void {
    const key = this.#keys.get(encoder);
    const entry = key === undefined ? undefined : this.#encoders.get(key);
    if (entry && --entry.users === 0) this.#encoders.delete(key!);
  }

  /** An event's change `data` as JSON, made once per event and kind whatever the number of channels (events are routed one at a time). */
  #changeData(event: Event, kind: Exclude<FrameKind, 'new-message'>): string {
    if (this.#event !== event) {
      this.#event = event;
      this.#create = this.#update = this.#delete = undefined;
    }
    switch (kind) {
      case 'create':
        return (this.#create ??= this.#serialize(event, kind));
      case 'update':
        return (this.#update ??= this.#serialize(event, kind));
      case 'delete':
        return (this.#delete ??= this.#serialize(event, kind));
    }
  }

  #serialize(event: Event, kind: Exclude<FrameKind, 'new-message'>): string {
    return JSON.stringify(changeData(event, kind, this.#shape(event.topic)));
  }

  #take(key: string, make: () => FrameEncoder): FrameEncoder {
    let entry = this.#encoders.get(key);
    if (!entry) {
      this.#encoders.set(key, (entry = { encoder: make(), users: 0 }));
      this.#keys.set(entry.encoder, key);
    }
    entry.users++;
    return entry.encoder;
  }
}

/**
 * `postgres_changes` frames of one channel and binding: the shared `data`
 * (see {@link changeData}) wrapped in the channel's envelope by
 * concatenation, so a channel costs a copy of the text, not a serialization.
 */
function changeEncoder(vsn: Vsn, topic: string, id: number, dataOf: (event: Event, kind: Exclude<FrameKind, 'new-message'>) => string): FrameEncoder {
  const [head, tail] = envelope(vsn, topic, 'postgres_changes', `{"ids":[${id}],"data":`, '}');
  return {
    slot: encoderSlot(),
    encode(event: Event, kind: FrameKind): string {
      if (kind === 'new-message') throw new Error('a message is not a row change');
      return head + dataOf(event, kind) + tail;
    },
    encodeDropped(event: Event): string {
      const message = `${event.type} ${droppedId(event)}: the change was not delivered (${event.dropped ?? 'it cannot be serialized'})`;
      return systemFrame(vsn, topic, 'postgres_changes', 'error', `EVENT_DROPPED: ${message}`);
    },
  };
}

/**
 * A change as `@supabase/realtime-js` reads it (docs/supabase.md, "Database
 * changes"): `record` for INSERT and UPDATE, `old_record` for UPDATE (the old
 * row, or its key) and DELETE, the columns with their `pg_type` names, the
 * commit time.
 */
function changeData(event: Event, kind: Exclude<FrameKind, 'new-message'>, shape: TableShape | undefined): Record<string, unknown> {
  const data = eventData(event, kind);
  const old = kind === 'delete' ? data.attributes : kind === 'update' ? (data.old ?? keyOf(data.attributes as Row, shape?.primaryKey ?? event.key)) : null;
  return {
    schema: shape?.schema ?? 'public',
    table: shape?.table ?? event.type,
    commit_timestamp: event.ts,
    type: CHANGE_TYPE[kind],
    columns: shape ? columnsOf(shape, event.withheld) : [],
    ...(kind === 'delete' ? {} : { record: data.attributes }),
    ...(old === null ? {} : { old_record: old }),
    errors: null,
  };
}

/**
 * A custom topic's messages as broadcasts: a message `{event, payload}` (what
 * a Supabase client broadcasts) is the broadcast `event` with that payload;
 * any other message is the broadcast `message` whose payload is the message.
 */
function broadcastEncoder(vsn: Vsn, topic: string, self: boolean): FrameEncoder {
  const state = envelope(vsn, topic, 'presence_state', '', '');
  const diff = envelope(vsn, topic, 'presence_diff', '', '');
  return {
    slot: encoderSlot(),
    skipsOrigin: !self,
    encode(event: Event): string {
      const message = event.row?.['message'];
      const shaped = isBroadcast(message);
      const payload = { type: 'broadcast', event: shaped ? message.event : 'message', payload: shaped ? message.payload : message };
      return encodeMessage(vsn, { joinRef: null, ref: null, topic, event: 'broadcast', payload });
    },
    encodeDropped(event: Event): string {
      return systemFrame(vsn, topic, 'broadcast', 'error', `EVENT_DROPPED: message ${droppedId(event)} was not delivered`);
    },
    // The channel's presence: `presence_state` after each join, then `presence_diff`s (realtime-js's RealtimePresence reads them).
    encodePresence(_topic: string, event: 'state' | 'diff', payload: string): string {
      const [head, tail] = event === 'state' ? state : diff;
      return head + payload + tail;
    },
  };
}

/** A message that is a Supabase broadcast: `{event: string, payload}`. */
export function isBroadcast(message: unknown): message is { event: string; payload: unknown } {
  return message !== null && typeof message === 'object' && !Array.isArray(message) && typeof (message as Record<string, unknown>)['event'] === 'string' && 'payload' in message;
}

/** A `system` message on channel `topic` (`message` says what happened to which part of it). */
export function systemFrame(vsn: Vsn, topic: string, extension: string, status: 'ok' | 'error', message: string): string {
  return encodeMessage(vsn, { joinRef: null, ref: null, topic, event: 'system', payload: { extension, status, message, channel: topic.slice('realtime:'.length) } });
}

/**
 * A table's `columns` as change events list them, made once per shape (the
 * registry replaces a shape when the table changes); without the columns
 * `withheld` from the event (hidden from non-admins).
 */
function columnsOf(shape: TableShape, withheld: readonly string[]): ReadonlyArray<{ name: string; type: string }> {
  let columns = COLUMNS.get(shape);
  if (!columns) COLUMNS.set(shape, (columns = shape.columns.map((column) => ({ name: column.name, type: column.typname }))));
  return withheld.length === 0 ? columns : columns.filter((column) => !withheld.includes(column.name));
}
const COLUMNS = new WeakMap<TableShape, ReadonlyArray<{ name: string; type: string }>>();

function keyOf(row: Row, key: readonly string[]): Row {
  const old: Record<string, unknown> = {};
  for (const column of key) if (column in row) old[column] = row[column];
  return old as Row;
}
