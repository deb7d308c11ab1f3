import { sql } from 'kysely';
import type { Database } from '../db/database.js';
import { parseLsn, type Lsn } from './lsn.js';

/**
 * Reads `pg_current_wal_flush_lsn()`, the position every commit made so far
 * has reached, sharing one query among concurrent callers: a call is served
 * by the first query that *starts* after it (a query already in flight may
 * predate the call), so at most two run at once however many subscribe
 * requests arrive together.
 *
 * @example
 * const flush = new WalFlushPosition(db);
 * await stream.waitFor(await flush.current(), 5000); // every commit before now is routed
 */
export class WalFlushPosition {
  readonly #db: Database;
  #inFlight: Promise<Lsn> | null = null;
  #next: Promise<Lsn> | null = null;

  constructor(db: Database) {
    this.#db = db;
  }

  /** The flush position as of some moment after this call. */
  current(): Promise<Lsn> {
    if (this.#inFlight === null) return this.#start();
    // The query in flight may have started before this call: share the one after it.
    return (this.#next ??= this.#inFlight
      .catch(() => 0n)
      .then(() => {
        this.#next = null;
        return this.#start();
      }));
  }

  #start(): Promise<Lsn> {
    const query = this.#read();
    this.#inFlight = query;
    const clear = () => {
      if (this.#inFlight === query) this.#inFlight = null;
    };
    query.then(clear, clear);
    return query;
  }

  async #read(): Promise<Lsn> {
    const { rows } = await sql<{ lsn: string }>`SELECT pg_current_wal_flush_lsn()::text AS lsn`.execute(this.#db);
    return parseLsn(rows[0]!.lsn);
  }
}
