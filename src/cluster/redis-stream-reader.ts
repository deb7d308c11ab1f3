import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Lsn } from '../replication/lsn.js';
import type { Change, Relation, Transaction, TransactionSink } from '../replication/transaction.js';
import { verifyEntry } from './entry-signature.js';
import { fromWireChange, fromWireRelation, fromWireTransaction, type StreamEntry, type StreamRecord, type WireTransaction } from './stream-records.js';

/** An ephemeral message as it travels through the stream. */
export type EphemeralRecord = Extract<StreamRecord, { t: 'ephemeral' }>;

/** What a node does with the cluster stream: the decoded changes (its EventBuilder), and the rest. */
export interface StreamConsumer extends TransactionSink {
  /** A change the leader could not serialize, with its key columns only: to be reported, not delivered. */
  dropped(tx: Transaction, change: Change, reason: string): void;
  ephemeral(record: EphemeralRecord): void;
  /** The stream has passed `lsn` (a commit's end, or the leader's idle position). */
  position(lsn: Lsn): void;
  /**
   * Entries this node had not read are gone (trimmed, or Redis lost its
   * data): events were missed. Reading goes on from the oldest entry left.
   */
  gap(reason: string): void;
}

export interface RedisStreamReaderOptions {
  /** A connection of the reader's own: XREAD blocks it. */
  readonly redis: Redis;
  readonly key: string;
  readonly consumer: StreamConsumer;
  readonly logger: Logger;
  /** Entries per XREAD (default 200). */
  readonly count?: number;
  /** `CLUSTER_SECRET`: entries without its signature are gaps, never data (unset: every entry is trusted). */
  readonly secret?: string;
  /** While it reports congestion (this node's sockets are behind), reading waits. */
  readonly pacer?: { congested(): boolean };
}

const fromHex = (hex: string): Lsn => BigInt(`0x${hex}`);

/** Ephemeral message ids a reader remembers. */
const RECENT_EPHEMERAL = 10_000;

/**
 * Every node's side of the cluster stream: reads it from the start (which
 * fills the replay window) and hands each record to the node's consumer,
 * in order, dropping what it has seen — a new leader re-appends from the
 * slot's confirmed position, so the tail of the old leader's transactions
 * comes twice (dropped by commit LSN and change index).
 *
 * Gaps are reported, never skipped silently: the stream's epoch key (made
 * when the stream is first used) changes when Redis loses its data, and
 * entries are numbered consecutively, so a jump means entries were trimmed
 * before this node read them. A signed entry appended again (by someone
 * with write access to Redis) changes nothing: changes are dropped by
 * position, ephemeral messages by id (the last 10,000).
 */
export class RedisStreamReader {
  readonly #options: RedisStreamReaderOptions;
  #lastId = '0';
  /** The number (`n`) of the last entry read: the next must be one more. */
  #lastN: number | null = null;
  #epoch: string | null = null;
  #running = false;
  #loop: Promise<void> | null = null;
  /** The last transaction committed to the consumer, as hex. */
  #committed = '';
  /** The transaction whose changes are being handed on: its commit LSN (hex) and the next change index. */
  #open: { hex: string; next: number } | null = null;
  #tx: Transaction | null = null;
  /** After a gap: skip changes until a transaction starts. */
  #resyncing = false;
  #entries = 0;
  /** When the last XREAD returned (ms): it blocks at most a second, so an older one means Redis is not answering. */
  #lastReadAt = 0;
  #pacing = false;
  /** Ids of the last ephemeral messages handed on (oldest first), to drop one appended again. */
  readonly #recentEphemeral = new Set<string>();
  #markReady!: () => void;
  /** Resolves after the first successful read. */
  readonly ready = new Promise<void>((resolve) => {
    this.#markReady = resolve;
  });

  constructor(options: RedisStreamReaderOptions) {
    this.#options = options;
  }

  /** The id of the last entry read. */
  get lastId(): string {
    return this.#lastId;
  }

  /** Entries read since start. */
  get entries(): number {
    return this.#entries;
  }

  /**
   * Whether Redis answered a read within the last 3 s (a stopped Redis keeps
   * its connections open but answers nothing). While this node holds reading
   * back itself (its sockets are congested) it counts as healthy.
   */
  get healthy(): boolean {
    return this.#pacing || Date.now() - this.#lastReadAt < 3000;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  async stop(): Promise<void> {
    this.#running = false;
    this.#options.redis.disconnect();
    await this.#loop?.catch(() => {});
  }

  async #run(): Promise<void> {
    const { redis, key } = this.#options;
    let failing = false;
    while (this.#running) {
      try {
        while (this.#options.pacer?.congested() && this.#running) {
          this.#pacing = true;
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
        this.#pacing = false;
        const reply = (await redis.xread('COUNT', this.#options.count ?? 200, 'BLOCK', 1000, 'STREAMS', key, this.#lastId)) as
          | Array<[string, Array<[string, string[]]>]>
          | null;
        if (failing) this.#options.logger.warn('cluster stream readable again');
        failing = false;
        this.#lastReadAt = Date.now();
        this.#markReady();
        // Before anything read is handed on: is this still the stream this node was reading, and is nothing missing before it?
        if (!(await this.#sameEpoch())) continue;
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) this.#read(id, fields);
        }
      } catch (error) {
        if (!this.#running) return;
        if (!failing) this.#options.logger.error({ err: error }, 'reading the cluster stream failed; retrying');
        failing = true;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  /**
   * The stream's epoch, a key made with the stream: when Redis loses the
   * stream it loses the key too, and the next one differs. False (after
   * reporting the gap, and rewinding to read the new stream from its start)
   * when it changed since the last read.
   */
  async #sameEpoch(): Promise<boolean> {
    const { redis, key } = this.#options;
    const epochKey = `${key}:epoch`;
    let epoch = await redis.get(epochKey);
    if (epoch === null) {
      await redis.set(epochKey, randomUUID(), 'NX');
      epoch = await redis.get(epochKey);
    }
    const same = this.#epoch === null || epoch === this.#epoch;
    this.#epoch = epoch;
    if (!same) this.#lostFrom('0', 'the cluster stream was lost (Redis restarted without its data, or the stream was deleted)');
    return same;
  }

  #lostFrom(id: string, reason: string): void {
    this.#options.logger.error({ lastId: this.#lastId }, reason);
    this.#lastId = id;
    if (id === '0') this.#lastN = null;
    this.#resyncing = true;
    this.#open = null;
    this.#options.consumer.gap(reason);
  }

  /** The transaction of a record: one object per transaction, not per change (a large one has hundreds of thousands). */
  #transaction(tx: WireTransaction): Transaction {
    if (this.#tx?.commitLsnHex !== tx.commitLsnHex) this.#tx = fromWireTransaction(tx);
    return this.#tx;
  }

  /**
   * One entry of the stream. Whatever it holds, it cannot stop the reader:
   * a jump in its number, a missing or wrong signature (with
   * `CLUSTER_SECRET`), data that is not an entry, or a record that cannot be
   * handed on are each reported as a gap (clients resume and are told
   * `resumed: false` where they cannot be vouched for), never taken as data.
   */
  #read(id: string, fields: readonly string[]): void {
    const field = (name: string): string | undefined => {
      for (let i = 0; i + 1 < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
      return undefined;
    };
    const n = Number(field('n'));
    const data = field('d');
    const previous = this.#lastId;
    this.#lastId = id;
    this.#entries++;
    if (!Number.isSafeInteger(n) || data === undefined) return this.#lostFrom(id, `cluster stream entry ${id} is not one rowcast wrote: skipped`);
    if (this.#lastN !== null && n !== this.#lastN + 1) {
      this.#lostFrom(id, `cluster stream entries ${this.#lastN + 1}–${n - 1} were trimmed before this node read them`);
    }
    this.#lastN = n;
    const { secret, key } = this.#options;
    if (secret !== undefined && !verifyEntry(secret, key, data, field('s'))) {
      return this.#lostFrom(id, `cluster stream entry ${id} has no valid signature (CLUSTER_SECRET): skipped, not trusted`);
    }
    try {
      this.#entry(JSON.parse(data) as StreamEntry);
    } catch (error) {
      this.#options.logger.error({ err: error, id, after: previous }, 'a cluster stream entry could not be handed on');
      this.#lostFrom(id, `cluster stream entry ${id} could not be read: skipped`);
    }
  }

  #entry(entry: StreamEntry): void {
    const relations = new Map<number, Relation>(entry.relations.map((r) => [r.relationOid, fromWireRelation(r)]));
    for (const record of entry.records) this.#record(record, relations);
  }

  #record(record: StreamRecord, relations: ReadonlyMap<number, Relation>): void {
    const consumer = this.#options.consumer;
    switch (record.t) {
      case 'change':
      case 'dropped': {
        const hex = record.tx.commitLsnHex;
        const index = record.change.index;
        if (hex <= this.#committed) return; // a re-appended transaction this node has finished
        if (this.#open === null || this.#open.hex !== hex) {
          if (this.#open !== null && !this.#resyncing) {
            this.#lostFrom(this.#lastId, `transaction ${this.#open.hex} never committed in the cluster stream before ${hex} began`);
          }
          if (index !== 0) {
            // The start of this transaction is not in the stream (trimmed, or lost): wait for the next one.
            this.#resyncing = true;
            return;
          }
          this.#open = { hex, next: 0 };
          this.#resyncing = false;
        }
        if (index < this.#open.next) return; // the new leader re-sends what the old one had appended
        if (index > this.#open.next) {
          this.#lostFrom(this.#lastId, `changes ${this.#open.next}–${index - 1} of transaction ${hex} are missing from the cluster stream`);
          return;
        }
        this.#open.next++;
        if (record.t === 'dropped') consumer.dropped(this.#transaction(record.tx), fromWireChange(record.change, relations), record.reason);
        else consumer.change(this.#transaction(record.tx), fromWireChange(record.change, relations));
        return;
      }
      case 'commit': {
        const hex = record.tx.commitLsnHex;
        if (hex <= this.#committed) return;
        // (A transaction whose start was skipped after a gap commits with what was handed on: the gap was reported.)
        this.#committed = hex;
        this.#open = null;
        this.#resyncing = false;
        const end = fromHex(record.end);
        consumer.commit(this.#transaction(record.tx), end);
        consumer.position(end);
        return;
      }
      case 'ephemeral':
        // Each message is appended once: its id again is an entry replayed by someone who can write to Redis.
        if (this.#recentEphemeral.has(record.id)) return;
        this.#recentEphemeral.add(record.id);
        if (this.#recentEphemeral.size > RECENT_EPHEMERAL) this.#recentEphemeral.delete(this.#recentEphemeral.values().next().value!);
        consumer.ephemeral(record);
        return;
      case 'position':
        consumer.position(fromHex(record.lsn));
        return;
    }
  }
}
