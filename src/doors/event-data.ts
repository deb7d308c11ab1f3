import type { Event } from '../events/event.js';
import type { EventData, FrameKind } from '../protocol/index.js';
import type { Row } from '../replication/transaction.js';

/**
 * An event's `data` as `/live` has it (docs/protocol.md, "Events"): the row
 * as `attributes` (a delete's old row), `old` on updates that carry it, and
 * `unchanged` for TOAST columns Postgres did not resend. Doors whose frames
 * carry the same data (Phoenix) share it.
 */
export function eventData(event: Event, kind: FrameKind): EventData {
  switch (kind) {
    case 'new-message':
    case 'create':
      return data(event, kind, event.row!, null);
    case 'update':
      return data(event, kind, event.row!, event.old);
    case 'delete':
      return data(event, kind, event.old ?? event.row!, null);
  }
}

function data(event: Event, kind: FrameKind, attributes: Row, old: Row | null): EventData {
  if (kind === 'update' && event.unchanged.length > 0) {
    return { type: event.type, id: event.idOf(attributes), attributes, ...(old !== null ? { old } : {}), unchanged: event.unchanged };
  }
  return old !== null ? { type: event.type, id: event.idOf(attributes), attributes, old } : { type: event.type, id: event.idOf(attributes), attributes };
}

/** `data.id` of an event that could not be serialized, or `''`: for the admins' EVENT_DROPPED. */
export function droppedId(event: Event): string {
  try {
    return event.idOf(event.row ?? event.old ?? {});
  } catch {
    return '';
  }
}
