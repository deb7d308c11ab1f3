import { encoderSlot, type Event, type FrameEncoder } from '../../events/event.js';
import type { FrameKind } from '../../protocol/index.js';
import { droppedId, eventData } from '../event-data.js';
import { encodeMessage, envelope, type Vsn } from './phoenix-wire.js';

/** The Phoenix topic of a rowcast topic: `topic:<name>` for custom topics (whose events are messages), else `table:<name>`. */
export function phoenixTopic(event: Event): string {
  return event.kind === 'new-message' ? `topic:${event.topic}` : `table:${event.topic}`;
}

/**
 * The Phoenix door's events (docs/phoenix.md): pushes with no `join_ref`, so
 * one frame serves every member of the topic, whatever its join. The event
 * name is the kind (`create`, `update`, `delete`) or `message`; the payload
 * is `/live`'s `data` with `seq` (and `part` where `/live` has it).
 */
function phoenixEncoder(vsn: Vsn): FrameEncoder {
  return {
    slot: encoderSlot(),
    encode(event: Event, kind: FrameKind): string {
      const part = event.part(kind);
      const payload = { ...eventData(event, kind), seq: event.seq, ...(part > 0 ? { part } : {}) };
      return encodeMessage(vsn, { joinRef: null, ref: null, topic: phoenixTopic(event), event: kind === 'new-message' ? 'message' : kind, payload });
    },
    encodeDropped(event: Event): string {
      const id = droppedId(event);
      const payload = { code: 'EVENT_DROPPED', message: `${event.type} ${id}: the change was not delivered (${event.dropped ?? 'it cannot be serialized'})`, seq: event.seq, type: event.type, id };
      return encodeMessage(vsn, { joinRef: null, ref: null, topic: phoenixTopic(event), event: 'error', payload });
    },
    // Phoenix.Presence's pushes, which phoenix.js's Presence class reads.
    encodePresence(topic: string, event: 'state' | 'diff', payload: string): string {
      const [head, tail] = envelope(vsn, `topic:${topic}`, event === 'state' ? 'presence_state' : 'presence_diff', '', '');
      return head + payload + tail;
    },
    // An aggregate's counts: `/live`'s aggregate data, pushed as `aggregate_state` or `aggregate_diff`.
    encodeAggregate(topic: string, event: 'state' | 'diff', payload: string): string {
      const [head, tail] = envelope(vsn, `table:${topic}`, `aggregate_${event}`, '', '');
      return head + payload + tail;
    },
    // A page of a snapshot: `/live`'s snapshot frame without type and topic.
    encodeSnapshot(topic: string, rows: string, seq: string | null): string {
      const end = seq === null ? ',"done":false}' : `,"done":true,"seq":${JSON.stringify(seq)}}`;
      const [head, tail] = envelope(vsn, `table:${topic}`, 'snapshot', '{"data":', end);
      return head + rows + tail;
    },
  };
}

/** One encoder per serializer version: frames are made once per version per event. */
export const PHOENIX_ENCODERS: Readonly<Record<Vsn, FrameEncoder>> = { '1.0.0': phoenixEncoder('1.0.0'), '2.0.0': phoenixEncoder('2.0.0') };
