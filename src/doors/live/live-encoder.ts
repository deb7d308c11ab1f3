import { DEFAULT_ENCODER_SLOT, encoderSlot, type Event, type FrameEncoder } from '../../events/event.js';
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

/**
 * The frames of subscriptions named `as` (a connection's second
 * subscription to a topic, with other options): `/live`'s own, with
 * `"as":"<name>"` after their `type`. Spliced into the frame every `/live`
 * subscriber shares, so a name costs a string copy per frame, not a
 * serialization. Subscriptions with one name and one filter share a group
 * (the encoder is the same object for the name).
 */
export function namedEncoder(as: string): FrameEncoder {
  let encoder = NAMED.get(as);
  if (encoder) return encoder;
  // Names are the client's: a bounded memo (a name made again after a clear gets a new encoder, and groups of its own).
  if (NAMED.size >= MAX_NAMED_ENCODERS) NAMED.clear();
  const tag = `,"as":${JSON.stringify(as)}`;
  const named = (frame: string): string => {
    const afterType = frame.indexOf(',');
    return frame.slice(0, afterType) + tag + frame.slice(afterType);
  };
  encoder = {
    slot: encoderSlot(),
    encode: (event, kind) => named(event.frameFor(liveEncoder, kind)),
    encodeDropped: (event) => named(liveEncoder.encodeDropped(event)),
    encodeSnapshot: (topic, rows, seq) => named(liveEncoder.encodeSnapshot!(topic, rows, seq)),
    encodeAggregate: (topic, event, payload) => named(liveEncoder.encodeAggregate!(topic, event, payload)),
  };
  NAMED.set(as, encoder);
  return encoder;
}

const NAMED = new Map<string, FrameEncoder>();
const MAX_NAMED_ENCODERS = 10_000;
