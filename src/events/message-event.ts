import { customTopicAudience, inboxPartition } from '../policies/audience-partitions.js';
import { Event } from './event.js';

/** What a custom topic's message carries (`data.attributes`, in this key order). */
export interface MessageAttributes {
  readonly message: unknown;
  readonly sender: string | null;
  /** When the message was stored (or published, for an ephemeral topic), ISO-8601. */
  readonly createdAt: string;
}

/**
 * The `new-message` event of a custom topic's message: the same frame
 * whether it comes live from the stream, from an ephemeral publish, or from
 * a replay out of `rowcast.messages`. A direct message (`recipient`, a
 * `sub`) is one on the inbox topic that only its recipient reads.
 *
 * @example
 * messageEvent('chat', '00000000016B3A28-00000000', ts, '981', { message: 'hi', sender: '42', createdAt: ts })
 */
export function messageEvent(topic: string, seq: string, ts: string, id: string, attributes: MessageAttributes, origin: string | null = null, recipient: string | null = null): Event {
  return new Event({
    seq,
    topic,
    type: 'message',
    ts,
    kind: 'new-message',
    key: NONE,
    id,
    row: { message: attributes.message, sender: attributes.sender, createdAt: attributes.createdAt },
    old: null,
    // A direct message reaches its recipient's partition of the inbox only.
    partitions: recipient === null ? customTopicAudience(topic) : [inboxPartition(topic, recipient)],
    oldPartitions: null,
    unchanged: NONE,
    oldComplete: false,
    origin,
  });
}

const NONE: readonly string[] = Object.freeze([]);
