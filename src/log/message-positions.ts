import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import type { Event } from '../events/event.js';
import type { Lsn } from '../replication/lsn.js';

/** What the recorder needs. */
export interface MessagePositionsOptions {
  readonly db: Database;
  readonly logger: Logger;
  /** Most rows per UPDATE. Default 5,000. */
  readonly maxBatch?: number;
}

interface Unrecorded {
  readonly event: Event;
  readonly commitLsn: Lsn;
  /** When it was first found missing (`0`: not yet). */
  missingSince: number;
}

/**
 * Writes each stored message's place in the stream (`seq`, commit time) back
 * into its row of `rowcast.messages`, many rows per UPDATE, so that a client
 * resuming a custom topic with `since` can be served from the table after any
 * restart.
 *
 * Postgres never tells the inserting session its commit LSN, so the position
 * is known only once the replication stream has delivered the insert. Until
 * it is written, the slot must not be acknowledged past that transaction
 * ({@link holdBack}): after a crash the stream then reads it again and the
 * position is written then. Meanwhile the messages are held here, in stream
 * order, for replays ({@link unrecorded}) and `history` ({@link seqOf}).
 *
 * Postgres writes a commit to the WAL, where the stream can read it, a moment
 * before other sessions can see its rows. An UPDATE that finds no row is
 * therefore tried again; a row still missing after {@link MISSING_GIVE_UP_MS}
 * was deleted (pruned, or its topic destroyed) and is let go.
 */
export class MessagePositions {
  readonly #options: MessagePositionsOptions;
  /** Message id → delivered message whose position is not in its row yet, in stream order. */
  readonly #unrecorded = new Map<string, Unrecorded>();
  #queue: Unrecorded[] = [];
  #flushing = false;
  #closed = false;

  constructor(options: MessagePositionsOptions) {
    this.#options = options;
  }

  /** A stored message was delivered as `event` by the transaction committed at `commitLsn`. */
  record(event: Event, commitLsn: Lsn): void {
    const entry = { event, commitLsn, missingSince: 0 };
    this.#unrecorded.set(event.id!, entry);
    this.#queue.push(entry);
    if (!this.#flushing) void this.#flush();
  }

  /**
   * The slot may be acknowledged up to, not past, this position: the commit
   * LSN of the oldest message whose position is not written yet (`null`:
   * nothing holds it back).
   */
  holdBack(): Lsn | null {
    for (const entry of this.#unrecorded.values()) return entry.commitLsn;
    return null;
  }

  /** Delivered messages of `topic` whose rows lack their position, in stream order (a copy). */
  unrecorded(topic: string): Event[] {
    const events: Event[] = [];
    for (const { event } of this.#unrecorded.values()) if (event.topic === topic) events.push(event);
    return events;
  }

  /** The `seq` of message `id` if it was delivered but its row does not say so yet. */
  seqOf(id: string): string | undefined {
    return this.#unrecorded.get(id)?.event.seq;
  }

  /** Stops writing (what is left is written after the restart, when the stream reads it again). */
  close(): void {
    this.#closed = true;
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    let delayMs = RETRY_INITIAL_MS;
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const batch = this.#queue.splice(0, this.#options.maxBatch ?? 5000);
        let written: Set<string>;
        try {
          written = await this.#write(batch);
          delayMs = RETRY_INITIAL_MS;
        } catch (error) {
          this.#queue.unshift(...batch);
          if (this.#closed) return;
          this.#options.logger.warn({ err: error, retryInMs: delayMs }, 'writing message positions failed');
          await new Promise((resolve) => setTimeout(resolve, delayMs));
          delayMs = Math.min(RETRY_MAX_MS, delayMs * 2);
          continue;
        }
        const now = Date.now();
        for (const entry of batch) {
          const id = entry.event.id!;
          if (written.has(id)) this.#unrecorded.delete(id);
          else if (entry.missingSince === 0 || now - entry.missingSince < MISSING_GIVE_UP_MS) {
            entry.missingSince ||= now;
            this.#retryLater(entry);
          } else this.#unrecorded.delete(id);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** Tries a row that was not visible yet again a little later. */
  #retryLater(entry: Unrecorded): void {
    setTimeout(() => {
      if (this.#closed) return;
      this.#queue.push(entry);
      if (!this.#flushing) void this.#flush();
    }, MISSING_RETRY_MS).unref();
  }

  /** Writes the positions; returns the ids of the rows it found. */
  async #write(batch: readonly Unrecorded[]): Promise<Set<string>> {
    const { rows } = await sql<{ id: string }>`
      UPDATE rowcast.messages m SET seq = v.seq, committed_at = v.ts
        FROM unnest(${batch.map((u) => u.event.id)}::bigint[], ${batch.map((u) => u.event.seq)}::text[],
                    ${batch.map((u) => u.event.ts)}::timestamptz[]) AS v(id, seq, ts)
       WHERE m.id = v.id
      RETURNING m.id::text AS id`.execute(this.#options.db);
    return new Set(rows.map((r) => r.id));
  }
}

const RETRY_INITIAL_MS = 100;
const RETRY_MAX_MS = 5000;
/** How soon a row not visible yet is tried again. */
const MISSING_RETRY_MS = 10;
/** How long a row may stay missing before it counts as deleted. */
const MISSING_GIVE_UP_MS = 5000;
