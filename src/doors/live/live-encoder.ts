import { DEFAULT_ENCODER_SLOT, type Event, type FrameEncoder } from '../../events/event.js';
import { INBOX_TOPIC, type DirectFrame, type DroppedEventFrame, type EventFrame, type FrameKind } from '../../protocol/index.js';
import { droppedId, eventData } from '../event-data.js';

/**
 * `/live`'s event frames (docs/protocol.md, "Events"): the event's data (see
 * {@link eventData}) with its topic, kind, `seq`, `ts`, and `part` on the two
 * frames of a row that moved between audience partitions. Messages of the
 * inbox `@me` are `direct` frames.
 */
export const liveEncoder: FrameEncoder = {
  slot: DEFAULT_ENCODER_SLOT,
  encode(event: Event, kind: FrameKind): string {
    if (kind === 'new-message' && event.topic === INBOX_TOPIC) return directFrame(event);
    const data = eventData(event, kind);
    const part = event.part(kind);
    const frame: EventFrame =
      part > 0
        ? { type: 'event', topic: event.topic, event: kind, seq: event.seq, part: part as 1 | 2, ts: event.ts, data }
        : { type: 'event', topic: event.topic, event: kind, seq: event.seq, ts: event.ts, data };
    return JSON.stringify(frame);
  },
  encodeDropped(event: Event): string {
    const id = droppedId(event);
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
  encodePresence(topic: string, event: 'state' | 'diff', payload: string): string {
    return `{"type":"presence","topic":${JSON.stringify(topic)},"event":"${event}","data":${payload}}`;
  },
  encodeAggregate(topic: string, event: 'state' | 'diff', payload: string): string {
    return `{"type":"aggregate","topic":${JSON.stringify(topic)},"event":"${event}","data":${payload}}`;
  },
  encodeSnapshot(topic: string, rows: string, seq: string | null): string {
    const end = seq === null ? '"done":false' : `"done":true,"seq":${JSON.stringify(seq)}`;
    return `{"type":"snapshot","topic":${JSON.stringify(topic)},"data":${rows},${end}}`;
  },
};


/** A message of the inbox `@me` as `/live` sends it: a `direct` frame. */
function directFrame(event: Event): string {
  const { message, sender, createdAt } = event.row as { message: unknown; sender: string | null; createdAt: string };
  const frame: DirectFrame = { type: 'direct', from: sender, id: event.id!, seq: event.seq, message, createdAt };
  return JSON.stringify(frame);
}
