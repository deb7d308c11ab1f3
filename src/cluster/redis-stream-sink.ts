import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { lsnHex, type Lsn } from '../replication/lsn.js';
import type { Change, Transaction, TransactionSink } from '../replication/transaction.js';
import { signEntry } from './entry-signature.js';
import { keyOnlyChange, wireChange, wireTransaction, type StreamEntry, type StreamRecord, type WireRelation, type WireTransaction } from './stream-records.js';

export interface RedisStreamSinkOptions {
  readonly redis: Redis;
  /** The stream's key. */
  readonly key: string;
  /** `CLUSTER_SECRET`: entries are signed with it (unset: unsigned, Redis is trusted). */
  readonly secret?: string;
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
  /** The records of the entry being filled, each serialized as it came (one that cannot be is caught there). */
  #records: string[] = [];
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

  /**
   * A change goes into the stream; one whose rows cannot be serialized (a
   * `jsonb` value nested too deep) goes as a `dropped` record with its key
   * columns only, so the leader's stream is never stopped by one value.
   */
  change(tx: Transaction, change: Change): void {
    const wireTx = this.#wire(tx);
    let record: string;
    try {
      record = JSON.stringify({ t: 'change', tx: wireTx, change: wireChange(change, this.#relations) } satisfies StreamRecord);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const table = change.tag === 'truncate' ? null : `${change.relation.schema}.${change.relation.name}`;
      this.#options.logger.error({ err: error, table, commitLsn: wireTx.commitLsnHex, index: change.index }, 'a change cannot be serialized: the cluster stream carries its key only');
      record = JSON.stringify({ t: 'dropped', tx: wireTx, change: wireChange(keyOnlyChange(change), this.#relations), reason } satisfies StreamRecord);
    }
    this.#records.push(record);
    if (++this.#changes >= this.#perEntry) this.#flush(null);
  }

  commit(tx: Transaction, endLsn: Lsn): void {
    this.#records.push(JSON.stringify({ t: 'commit', tx: this.#wire(tx), end: lsnHex(endLsn) } satisfies StreamRecord));
    this.#flush(tx.commitLsn);
  }

  /** Tells followers the leader has handed off everything before `lsn` (when it moved without a commit). */
  position(lsn: Lsn): void {
    this.#records.push(JSON.stringify({ t: 'position', lsn: lsnHex(lsn) } satisfies StreamRecord));
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
    // The StreamEntry JSON, from records serialized one by one.
    const entry = `{"relations":${JSON.stringify([...this.#relations.values()])},"records":[${this.#records.join(',')}]}`;
    this.#records = [];
    this.#relations = new Map();
    this.#changes = 0;
    if (commitLsn !== null) this.#inFlight.push(commitLsn);
    const { redis, key, maxLength, secret } = this.#options;
    appendEntry(redis, key, maxLength, entry, secret).then(
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
export async function appendEphemeral(
  redis: Redis,
  key: string,
  maxLength: number,
  record: Omit<Extract<StreamRecord, { t: 'ephemeral' }>, 't'>,
  secret: string | undefined,
): Promise<void> {
  await appendEntry(redis, key, maxLength, JSON.stringify({ relations: [], records: [{ t: 'ephemeral', ...record }] } satisfies StreamEntry), secret);
}

/**
 * XADD with a number: each entry carries `n`, one more than the entry before
 * it (a counter beside the stream, incremented in the same script, so
 * appends from several nodes still number consecutively), its data `d`, and
 * `s`, the data's signature with `CLUSTER_SECRET` (empty without one). A
 * reader that sees `n` jump knows entries were trimmed before it read them.
 */
const APPEND = `
local n = redis.call('INCR', KEYS[2])
return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'n', n, 'd', ARGV[2], 's', ARGV[3])`;

/** Appends one entry (the JSON of a {@link StreamEntry}). */
function appendEntry(redis: Redis, key: string, maxLength: number, data: string, secret: string | undefined): Promise<unknown> {
  return redis.eval(APPEND, 2, key, `${key}:n`, maxLength, data, secret === undefined ? '' : signEntry(secret, key, data));
}
