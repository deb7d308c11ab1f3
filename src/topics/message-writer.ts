import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../db/database.js';

/** A message to store: its topic (with its history size), sender and JSON text. */
export interface PendingMessage {
  readonly topic: string;
  readonly history: number;
  readonly sender: string | null;
  /** The message as JSON text (already size-checked). */
  readonly json: string;
  /** The connection that sent it (so that a `self: false` subscriber on it is skipped). */
  readonly origin: string | null;
  /** A direct message's recipient (`sub`): the topic is the inbox, pruned per recipient to `history`. */
  readonly recipient?: string | null;
}

/** What the writer needs. */
export interface MessageWriterOptions {
  readonly db: Database;
  readonly logger: Logger;
  /** Most messages per INSERT statement. Default 1,000. */
  readonly maxBatch?: number;
}

interface Queued extends PendingMessage {
  resolve(id: string): void;
  reject(error: unknown): void;
}

/**
 * Stores messages of history topics in `rowcast.messages`, many per
 * statement: while one INSERT is in flight, new messages queue and go
 * together in the next, so throughput is not one round trip per message.
 * One statement at a time also keeps ids in commit order. After each batch,
 * and before its messages are answered, every topic in it is pruned to its
 * `history` newest messages through the `(topic, id desc)` index, and every
 * inbox of a direct message in it through `(recipient, id desc)`, never a
 * scan.
 *
 * The message then reaches subscribers through the replication stream like
 * any row (docs/architecture.md).
 */
export class MessageWriter {
  readonly #options: MessageWriterOptions;
  #queue: Queued[] = [];
  #flushing = false;

  constructor(options: MessageWriterOptions) {
    this.#options = options;
  }

  /** Resolves with the stored message's id once its INSERT has committed. */
  write(message: PendingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ ...message, resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    try {
      while (this.#queue.length > 0) {
        let batch = this.#queue.splice(0, this.#options.maxBatch ?? 1000);
        try {
          let ids: string[];
          try {
            ids = await this.#insert(batch);
          } catch (error) {
            if ((error as { code?: string }).code !== '23503') throw error;
            batch = await this.#withoutDestroyedTopics(batch);
            ids = await this.#insert(batch);
          }
          // Answered once the topic is pruned too: a client that reads `history` after its answer sees at most `history` messages.
          await this.#prune(batch).catch((error: unknown) => this.#options.logger.warn({ err: error }, 'pruning messages failed'));
          batch.forEach((message, i) => message.resolve(ids[i]!));
        } catch (error) {
          for (const message of batch) message.reject(error);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }

  /**
   * A topic destroyed while its messages waited fails the whole batch
   * (foreign key): then those messages are rejected alone and the others are
   * inserted again.
   */
  async #withoutDestroyedTopics(batch: Queued[]): Promise<Queued[]> {
    const topics = [...new Set(batch.map((m) => m.topic))];
    const rows = await this.#options.db.selectFrom('rowcast.topics').select('name').where('name', 'in', topics).execute();
    const existing = new Set(rows.map((r) => r.name));
    if (existing.size === topics.length) return batch;
    const kept: Queued[] = [];
    for (const message of batch) {
      if (existing.has(message.topic)) kept.push(message);
      else message.reject(Object.assign(new Error(`topic ${message.topic} no longer exists`), { code: '23503' }));
    }
    return kept;
  }

  async #insert(batch: Queued[]): Promise<string[]> {
    if (batch.length === 0) return [];
    const { rows } = await sql<{ id: string }>`
      INSERT INTO rowcast.messages (topic, sender, message, origin, recipient)
      SELECT topic, sender, message, origin, recipient
        FROM unnest(${batch.map((m) => m.topic)}::text[], ${batch.map((m) => m.sender)}::text[], ${batch.map((m) => m.json)}::jsonb[],
                    ${batch.map((m) => m.origin)}::text[], ${batch.map((m) => m.recipient ?? null)}::text[])
             WITH ORDINALITY AS m(topic, sender, message, origin, recipient, position)
       ORDER BY position
      RETURNING id::text`.execute(this.#options.db);
    // Ids are drawn in insertion order, which is the batch's order.
    return rows.map((r) => r.id).sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
  }

  async #prune(batch: Queued[]): Promise<void> {
    // A topic's messages by topic; an inbox's (direct messages) by recipient, whose own index serves it.
    const scopes = new Map<string, { readonly column: 'topic' | 'recipient'; readonly value: string; readonly history: number }>();
    for (const m of batch) {
      const scope = m.recipient != null ? ({ column: 'recipient', value: m.recipient, history: m.history } as const) : ({ column: 'topic', value: m.topic, history: m.history } as const);
      scopes.set(`${scope.column}:${scope.value}`, scope);
    }
    for (const { column, value, history } of scopes.values()) {
      const of = sql.ref(column);
      await sql`
        DELETE FROM rowcast.messages
         WHERE ${of} = ${value}
           AND id < (SELECT id FROM rowcast.messages WHERE ${of} = ${value} ORDER BY id DESC OFFSET ${history - 1} LIMIT 1)`.execute(this.#options.db);
    }
  }
}
