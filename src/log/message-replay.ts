import { sql, type RawBuilder } from 'kysely';
import type { Database } from '../db/database.js';
import { inboxPartition } from '../policies/audience-partitions.js';
import type { Event } from '../events/event.js';
import type { EventLog } from './event-log.js';
import type { MessagePositions } from './message-positions.js';
import { STORED_MESSAGE_COLUMNS, storedMessageEvent, type StoredMessageRow } from './stored-message.js';
import type { CustomTopic } from '../topics/topic-registry.js';

/** What replays read from. */
export interface MessageReplayOptions {
  readonly db: Database;
  readonly log: EventLog;
  readonly positions: MessagePositions;
  /** Most messages one replay sends; a client further behind is told to refetch. */
  readonly maxMessages: number;
}

/**
 * A replay being prepared. {@link finish} must run in the same synchronous
 * step as the live subscription it precedes: until then every message the
 * log hands on is collected, so nothing falls between the two and nothing
 * is sent twice.
 */
export interface ReplaySeam {
  /** Whether every message after `since` can be replayed (else the client must refetch). */
  readonly resumed: boolean;
  /** The messages to send before going live, in `seq` order (none unless `resumed`); stops collecting. */
  finish(): Event[];
  /** Stops collecting without a replay. */
  cancel(): void;
}

/**
 * Replays a custom topic's stored messages after a `since` position, from
 * three sources that together hold every message after it: rows of
 * `rowcast.messages` whose position is written, messages delivered but not
 * yet written ({@link MessagePositions.unrecorded}), and messages the log
 * hands on while the rows are read. A later message arrives live.
 *
 * Resuming is possible when the topic still holds a message at or before
 * `since` (pruning removes the oldest first, so none after it is gone), or
 * when it has never been pruned (fewer messages than its `history`).
 */
export class MessageReplay {
  readonly #options: MessageReplayOptions;
  /** Topic → collectors of messages handed on during a replay's read. */
  readonly #collectors = new Map<string, Set<(event: Event) => void>>();

  constructor(options: MessageReplayOptions) {
    this.#options = options;
    options.log.subscribe((event) => {
      if (event.kind !== 'new-message' || this.#collectors.size === 0) return;
      const collectors = this.#collectors.get(event.topic);
      if (collectors) for (const collect of collectors) collect(event);
    });
  }

  /**
   * Reads what `topic` holds after `since`.
   *
   * @example
   * const seam = await replay.open(topic, since);
   * for (const event of seam.finish()) ws.send(event.frame('new-message')); // and subscribe, in the same step
   */
  async open(topic: CustomTopic, since: string, inbox: Inbox | null = null): Promise<ReplaySeam> {
    const collected: Event[] = [];
    const collect = (event: Event) => collected.push(event);
    let collectors = this.#collectors.get(topic.name);
    if (!collectors) this.#collectors.set(topic.name, (collectors = new Set()));
    collectors.add(collect);
    const stop = () => {
      collectors.delete(collect);
      if (collectors.size === 0 && this.#collectors.get(topic.name) === collectors) this.#collectors.delete(topic.name);
    };
    const unrecorded = this.#options.positions.unrecorded(topic.name);
    let rows: StoredMessageRow[];
    let reaches: boolean;
    try {
      // A message at or before `since` whose position is not written yet counts only while its row is kept: pruned, it
      // proves nothing (the messages after it may be pruned too).
      const unwritten = unrecorded.filter((e) => e.seq <= since && e.id !== undefined).map((e) => e.id!);
      [rows, reaches] = await Promise.all([this.#after(topic.name, since, inbox), this.#reaches(topic, since, unwritten, inbox)]);
    } catch (error) {
      stop();
      throw error;
    }
    const resumed = reaches && rows.length <= this.#options.maxMessages;
    return {
      resumed,
      cancel: stop,
      finish: () => {
        stop();
        if (!resumed) return [];
        const missed = new Map<string, Event>();
        for (const row of rows) missed.set(row.seq!, storedMessageEvent(topic.name, row as StoredMessageRow & { seq: string; ts: string }));
        // An inbox's log holds every user's messages: the recipient's only.
        const mine = inbox === null ? null : inboxPartition(topic.name, inbox.recipient);
        for (const event of [...unrecorded, ...collected]) if (event.seq > since && (mine === null || event.partitions.includes(mine))) missed.set(event.seq, event);
        return [...missed.values()].sort((a, b) => (a.seq < b.seq ? -1 : 1));
      },
    };
  }

  /** Messages of `topic` (of one `inbox`) whose written position is after `since`, at most one more than a replay sends. */
  async #after(topic: string, since: string, inbox: Inbox | null): Promise<StoredMessageRow[]> {
    const { rows } = await sql<StoredMessageRow>`
      SELECT ${STORED_MESSAGE_COLUMNS}
        FROM rowcast.messages
       WHERE topic = ${topic} AND ${recipientIs(inbox)} AND seq > ${since}
       ORDER BY seq
       LIMIT ${this.#options.maxMessages + 1}`.execute(this.#options.db);
    return rows;
  }

  /**
   * Whether the topic still reaches back to `since`: it keeps a message at or
   * before it (by its written position, or by id among `unwritten`, the
   * messages at or before `since` whose position is not written yet), or it
   * was never pruned (fewer messages than `history`). The
   * count runs only when no such message is kept (a CASE branch's subquery
   * is evaluated only when taken), so the usual reconnect costs one index probe.
   */
  async #reaches(topic: CustomTopic, since: string, unwritten: readonly string[], inbox: Inbox | null): Promise<boolean> {
    const history = inbox?.history ?? topic.history;
    const mine = recipientIs(inbox);
    const { rows } = await sql<{ reaches: boolean }>`
      SELECT CASE
               WHEN EXISTS (SELECT 1 FROM rowcast.messages WHERE topic = ${topic.name} AND ${mine} AND seq <= ${since}) THEN true
               WHEN EXISTS (SELECT 1 FROM rowcast.messages WHERE topic = ${topic.name} AND ${mine} AND id::text = ANY(${[...unwritten]}::text[])) THEN true
               ELSE (SELECT count(*) FROM (SELECT 1 FROM rowcast.messages WHERE topic = ${topic.name} AND ${mine} LIMIT ${history}) k) < ${history}
             END AS reaches`.execute(this.#options.db);
    return rows[0]!.reaches;
  }
}

/** One user's part of the inbox topic: whose messages, and how many their inbox keeps. */
export interface Inbox {
  readonly recipient: string;
  readonly history: number;
}

/** The rows of `inbox` (all rows of a topic when `null`). */
function recipientIs(inbox: Inbox | null): RawBuilder<unknown> {
  return inbox === null ? sql`true` : sql`recipient = ${inbox.recipient}`;
}
