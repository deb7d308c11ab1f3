import { DEFAULT_ENCODER_SLOT, type Event, type FrameEncoder } from '../../events/event.js';
import type { DroppedEventFrame, EventData, EventFrame, FrameKind } from '../../protocol/index.js';
import type { Row } from '../../replication/transaction.js';

/**
 * `/live`'s event frames (docs/protocol.md, "Events"): the row as
 * `data.attributes` (a delete's old row), `data.old` on updates that carry
 * it, `data.unchanged` for TOAST columns Postgres did not resend, and `part`
 * on the two frames of a row that moved between audience partitions.
 */
export const liveEncoder: FrameEncoder = {
  slot: DEFAULT_ENCODER_SLOT,
  encode(event: Event, kind: FrameKind): string {
    switch (kind) {
      case 'new-message':
      case 'create':
        return encode(event, kind, event.row!, null);
      case 'update':
        return encode(event, kind, event.row!, event.old);
      case 'delete':
        return encode(event, kind, event.old ?? event.row!, null);
    }
  },
  encodeDropped(event: Event): string {
    let id: string;
    try {
      id = event.idOf(event.row ?? event.old ?? {});
    } catch {
      id = '';
    }
    const frame: DroppedEventFrame = {
      type: 'error',
      topic: event.topic,
      seq: event.seq,
      ts: event.ts,
      error: { code: 'EVENT_DROPPED', message: `${event.type} ${id}: the change was not delivered (${event.dropped ?? 'it cannot be serialized'})` },
      data: { type: event.type, id },
    };
    return JSON.stringify(frame);
  },
};

function encode(event: Event, kind: FrameKind, attributes: Row, old: Row | null): string {
  const data: EventData =
    kind === 'update' && event.unchanged.length > 0
      ? { type: event.type, id: event.idOf(attributes), attributes, ...(old !== null ? { old } : {}), unchanged: event.unchanged }
      : old !== null
        ? { type: event.type, id: event.idOf(attributes), attributes, old }
        : { type: event.type, id: event.idOf(attributes), attributes };
  const part = event.part(kind);
  const frame: EventFrame =
    part > 0
      ? { type: 'event', topic: event.topic, event: kind, seq: event.seq, part: part as 1 | 2, ts: event.ts, data }
      : { type: 'event', topic: event.topic, event: kind, seq: event.seq, ts: event.ts, data };
  return JSON.stringify(frame);
}
