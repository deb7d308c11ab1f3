import { sql, type RawBuilder } from 'kysely';
import { messageEvent } from '../events/message-event.js';
import type { Event } from '../events/event.js';

/** A row of `rowcast.messages` as {@link STORED_MESSAGE_COLUMNS} selects it. */
export interface StoredMessageRow {
  readonly id: string;
  readonly sender: string | null;
  readonly message: unknown;
  /** `YYYY-MM-DD HH24:MI:SS.US` in UTC. */
  readonly created_at: string;
  /** `null` until the stream has delivered the message and its position is written back. */
  readonly seq: string | null;
  /** The commit time as the stream reported it (`ts`), ISO-8601; `null` like `seq`. */
  readonly ts: string | null;
  /** Whose inbox holds a direct message; `null` for a topic's message. */
  readonly recipient: string | null;
}

/**
 * The columns of a stored message, formatted so that a message read from
 * the table is the same JSON as the one the stream delivered.
 */
export const STORED_MESSAGE_COLUMNS: RawBuilder<unknown> = sql`
  id::text AS id, sender, message, seq, recipient,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') AS created_at,
  to_char(committed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts`;

/**
 * `created_at` as the stream delivers it: ISO-8601 in UTC with Postgres's
 * own precision (trailing zeros of the fraction dropped, no fraction when it
 * is zero).
 *
 * @example
 * isoCreatedAt('2026-11-22 10:00:00.120000') // '2026-11-22T10:00:00.12Z'
 */
export function isoCreatedAt(text: string): string {
  const [seconds, fraction = ''] = text.split('.');
  const kept = fraction.replace(/0+$/, '');
  return `${seconds!.replace(' ', 'T')}${kept === '' ? '' : `.${kept}`}Z`;
}

/** The `new-message` event of a stored message whose position is known. */
export function storedMessageEvent(topic: string, row: StoredMessageRow & { seq: string; ts: string }): Event {
  return messageEvent(topic, row.seq, row.ts, row.id, { message: row.message, sender: row.sender, createdAt: isoCreatedAt(row.created_at) }, null, row.recipient);
}
