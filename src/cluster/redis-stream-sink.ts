import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { lsnHex, type Lsn } from '../replication/lsn.js';
import type { Change, Transaction, TransactionSink } from '../replication/transaction.js';
import { wireChange, wireTransaction, type StreamEntry, type StreamRecord, type WireRelation, type WireTransaction } from './stream-records.js';

export interface RedisStreamSinkOptions {
  readonly redis: Redis;
  /** The stream's key. */
  readonly key: string;
  /** The stream is trimmed to about this many entries (`MAXLEN ~`). */
  readonly maxLength: number;
  /** Changes per entry at most: a large transaction goes out in several entries while it is decoded. */
  readonly changesPerEntry?: number;
  /** An append failed: the leader must stop reading the slot (it restarts from the slot's confirmed position). */
  readonly onFailure: (error: Error) => void;
  readonly logger: Logger;
}

/**
 * The leader's side of the cluster stream: a `TransactionSink` that appends
 * the decoded replication stream to Redis, in order (one connection, so
 * Redis applies the XADDs in the order they were sent), in entries of up to
 * `changesPerEntry` changes. `unconfirmed()` is the first commit Redis has
 * not acknowledged yet: the slot must not be acknowledged past it, so a
 * leader that dies (or loses Redis) leaves nothing behind that only it had.
 */
export class RedisStreamSink implements TransactionSink {
  readonly #options: RedisStreamSinkOptions;
  readonly #perEntry: number;
  #records: StreamRecord[] = [];
  #relations = new Map<number, WireRelation>();
  #changes = 0;
  /** Commit LSNs sent and not yet acknowledged by Redis, oldest first. */
  readonly #inFlight: Lsn[] = [];
  #failed = false;
  #wireTx: WireTransaction | null = null;

  constructor(options: RedisStreamSinkOptions) {
    this.#options = options;
    this.#perEntry = options.changesPerEntry ?? 500;
  }

  change(tx: Transaction, change: Change): void {
    this.#records.push({ t: 'change', tx: this.#wire(tx), change: wireChange(change, this.#relations) });
    if (++this.#changes >= this.#perEntry) this.#flush(null);
  }

  commit(tx: Transaction, endLsn: Lsn): void {
    this.#records.push({ t: 'commit', tx: this.#wire(tx), end: lsnHex(endLsn) });
    this.#flush(tx.commitLsn);
  }

  /** Tells followers the leader has handed off everything before `lsn` (when it moved without a commit). */
  position(lsn: Lsn): void {
    this.#records.push({ t: 'position', lsn: lsnHex(lsn) });
    this.#flush(null);
  }

  /** The wire form of `tx`, made once per transaction rather than per change. */
  #wire(tx: Transaction): WireTransaction {
    if (this.#wireTx?.commitLsnHex !== tx.commitLsnHex) this.#wireTx = wireTransaction(tx);
    return this.#wireTx;
  }

  /** The commit LSN of the oldest transaction Redis has not confirmed, or null. */
  unconfirmed(): Lsn | null {
    return this.#inFlight[0] ?? null;
  }

  #flush(commitLsn: Lsn | null): void {
    if (this.#records.length === 0) return;
    const entry: StreamEntry = { relations: [...this.#relations.values()], records: this.#records };
    this.#records = [];
    this.#relations = new Map();
    this.#changes = 0;
    if (commitLsn !== null) this.#inFlight.push(commitLsn);
    const { redis, key, maxLength } = this.#options;
    appendEntry(redis, key, maxLength, entry).then(
      () => {
        if (commitLsn !== null) this.#inFlight.shift();
      },
      (error: Error) => {
        if (this.#failed) return;
        this.#failed = true;
        this.#options.logger.error({ err: error }, 'appending to the cluster stream failed');
        this.#options.onFailure(error);
      },
    );
  }
}

/**
 * Appends an ephemeral message (a `history: 0` topic) to the cluster stream,
 * from whichever node received it; every node, this one included, delivers
 * it when it reads it back, so all agree on its place (and `seq`).
 */
export async function appendEphemeral(redis: Redis, key: string, maxLength: number, record: Omit<Extract<StreamRecord, { t: 'ephemeral' }>, 't'>): Promise<void> {
  await appendEntry(redis, key, maxLength, { relations: [], records: [{ t: 'ephemeral', ...record }] });
}

/**
 * XADD with a number: each entry carries `n`, one more than the entry before
 * it (a counter beside the stream, incremented in the same script, so
 * appends from several nodes still number consecutively). A reader that
 * sees `n` jump knows entries were trimmed before it read them.
 */
const APPEND = `
local n = redis.call('INCR', KEYS[2])
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'n', n, 'd', ARGV[2])`;

function appendEntry(redis: Redis, key: string, maxLength: number, entry: StreamEntry): Promise<unknown> {
  return redis.eval(APPEND, 2, key, `${key}:n`, maxLength, JSON.stringify(entry));
}
