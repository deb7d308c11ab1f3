import type { Pgoutput } from 'pg-logical-replication';
import type { Lsn } from './lsn.js';

/** A table as pgoutput describes it (its Relation message). */
export type Relation = Pgoutput.MessageRelation;

/** A row as decoded: column name to converted value. */
export type Row = Record<string, unknown>;

/**
 * The transaction a change belongs to. pgoutput (protocol 1) sends a
 * transaction only once it has committed, and its BEGIN already carries the
 * commit LSN and time, so changes are handed on as they arrive.
 */
export interface Transaction {
  readonly xid: number;
  /** LSN of the commit record; the first half of every `seq` in it. */
  readonly commitLsn: Lsn;
  /** `commitLsn` as 16 hex digits. */
  readonly commitLsnHex: string;
  /** Commit time as ISO-8601 (`ts` of its events). */
  readonly commitTime: string;
}

/**
 * One change of a transaction, numbered from 0 in transaction order, as a
 * union on `tag`. `update.unchanged` lists TOAST columns whose value Postgres
 * did not send and that the old row could not supply; they are absent from
 * `new`, never given a wrong value.
 */
export type Change =
  | { readonly tag: 'insert'; readonly index: number; readonly relation: Relation; readonly new: Row }
  | {
      readonly tag: 'update';
      readonly index: number;
      readonly relation: Relation;
      readonly old: Row | null;
      readonly new: Row;
      readonly unchanged: readonly string[];
    }
  | { readonly tag: 'delete'; readonly index: number; readonly relation: Relation; readonly old: Row }
  | { readonly tag: 'truncate'; readonly index: number; readonly relations: readonly Relation[] };

/** Receives the decoded stream, in commit order. Both calls are synchronous. */
export interface TransactionSink {
  /** One change, as soon as it is decoded. */
  change(tx: Transaction, change: Change): void;
  /** The transaction is complete; every change of it has been passed to `change`. */
  commit(tx: Transaction, endLsn: Lsn): void;
}
