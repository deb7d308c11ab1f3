import type pg from 'pg';
import { pace, type Pacer } from '../bench/lib/measure.js';
import { ChangeLog, type Change } from './change-log.js';

/** The soak's table: `owner` policy on `owner_id`; `written_at` (epoch ms, set by Postgres) gives delivery latency. */
export const SOAK_TABLE = 'soak_orders';

/** Creates {@link SOAK_TABLE} and its read policy (rowcast's migrations must have run). */
export const SOAK_SCHEMA = `
  CREATE TABLE ${SOAK_TABLE} (id int PRIMARY KEY, owner_id text NOT NULL, v int NOT NULL, note text NOT NULL, written_at double precision NOT NULL);
  INSERT INTO rowcast.table_policies (table_name, read, owner_column) VALUES ('${SOAK_TABLE}', 'owner', 'owner_id');`;

export interface WriterOptions {
  /** Changes per second. */
  readonly rate: number;
  /** Fleet users `u0 … u<users-1>` own most rows (owner indexes `0 … users-1`). */
  readonly users: number;
  /** Witness owners `witness-0 …` (owner indexes `users …`) own `witnessShare` of the new rows, so owner witnesses see a steady stream. */
  readonly witnessOwners: number;
  readonly witnessShare: number;
  /** The table hovers around this many rows: below it, more inserts than deletes; above, as many. */
  readonly tableTarget: number;
  /** The writer failed (a query error): the run cannot go on. */
  readonly onError: (error: Error) => void;
}

/** Now, in Postgres, as epoch ms: the row's `written_at`. */
const NOW_MS = `extract(epoch FROM clock_timestamp()) * 1000`;

/**
 * The paced writer: `rate` changes/s into {@link SOAK_TABLE} on one
 * connection, in up to 100 transactions a second (one statement per change,
 * so each transaction's events come in the order written here), spread over
 * the owners. Inserts, version bumps and deletes; rows never change owner.
 * Every committed change goes into {@link log}, in commit order.
 */
export class SoakWriter {
  readonly log = new ChangeLog();
  /** The rows the writer believes the table holds: id → owner index and version. */
  readonly rows = new Map<number, { owner: number; v: number }>();
  readonly #ids: number[] = [];
  readonly #slot = new Map<number, number>();
  readonly #client: pg.Client;
  readonly #options: WriterOptions;
  #nextId = 1;
  #pacer: Pacer | null = null;
  #failed = false;
  #transactions = 0;

  constructor(client: pg.Client, options: WriterOptions) {
    this.#client = client;
    this.#options = options;
  }

  /** The name of owner index `owner` (what `owner_id` holds). */
  ownerName(owner: number): string {
    return owner < this.#options.users ? `u${owner}` : `witness-${owner - this.#options.users}`;
  }

  /** The owner index of witness owner `k`. */
  witnessOwner(k: number): number {
    return this.#options.users + k;
  }

  get transactions(): number {
    return this.#transactions;
  }

  start(): void {
    const ticks = Math.min(100, this.#options.rate);
    const rate = this.#options.rate;
    this.#pacer = pace(ticks, async (i) => {
      if (this.#failed) return;
      const size = Math.floor(((i + 1) * rate) / ticks) - Math.floor((i * rate) / ticks);
      if (size > 0) await this.#commit(this.#transaction(size));
    });
  }

  /** Stops and waits for the transaction in flight. */
  async stop(): Promise<void> {
    await this.#pacer?.stop();
  }

  async #commit(changes: Change[]): Promise<void> {
    const sql = changes.map((c) => this.#sql(c)).join('; ');
    try {
      await this.#client.query(`BEGIN; ${sql}; COMMIT`);
    } catch (error) {
      this.#failed = true;
      this.#options.onError(error as Error);
      return;
    }
    this.#transactions++;
    for (const change of changes) {
      this.log.push(change);
      if (change.kind === 'delete') this.#remove(change.id);
      else if (change.kind === 'create') this.#add(change.id, change.owner, change.v);
      else this.rows.get(change.id)!.v = change.v;
    }
  }

  /** `size` changes against the current rows, each row touched at most once. */
  #transaction(size: number): Change[] {
    const { tableTarget } = this.#options;
    const touched = new Set<number>();
    const changes: Change[] = [];
    const [insert, update] = this.rows.size < tableTarget ? [0.6, 0.9] : [0.3, 0.7];
    for (let attempts = 0; changes.length < size && attempts < size * 4; attempts++) {
      const dice = Math.random();
      if (this.#ids.length < 10 || dice < insert) {
        changes.push({ id: this.#nextId++, kind: 'create', v: 0, owner: this.#pickOwner() });
        continue;
      }
      const id = this.#ids[Math.floor(Math.random() * this.#ids.length)]!;
      if (touched.has(id)) continue;
      touched.add(id);
      const row = this.rows.get(id)!;
      changes.push(dice < update ? { id, kind: 'update', v: row.v + 1, owner: row.owner } : { id, kind: 'delete', v: row.v, owner: row.owner });
    }
    return changes;
  }

  #pickOwner(): number {
    const { users, witnessOwners, witnessShare } = this.#options;
    if (witnessOwners > 0 && Math.random() < witnessShare) return users + Math.floor(Math.random() * witnessOwners);
    return Math.floor(Math.random() * users);
  }

  #sql(change: Change): string {
    const note = `'order ${change.id} version ${change.v} ${'·'.repeat(24)}'`;
    if (change.kind === 'create') {
      return `INSERT INTO ${SOAK_TABLE} (id, owner_id, v, note, written_at) VALUES (${change.id}, '${this.ownerName(change.owner)}', 0, ${note}, ${NOW_MS})`;
    }
    if (change.kind === 'update') return `UPDATE ${SOAK_TABLE} SET v = ${change.v}, note = ${note}, written_at = ${NOW_MS} WHERE id = ${change.id}`;
    return `DELETE FROM ${SOAK_TABLE} WHERE id = ${change.id}`;
  }

  #add(id: number, owner: number, v: number): void {
    this.rows.set(id, { owner, v });
    this.#slot.set(id, this.#ids.length);
    this.#ids.push(id);
  }

  #remove(id: number): void {
    this.rows.delete(id);
    const slot = this.#slot.get(id)!;
    const last = this.#ids.pop()!;
    if (last !== id) {
      this.#ids[slot] = last;
      this.#slot.set(last, slot);
    }
    this.#slot.delete(id);
  }
}
