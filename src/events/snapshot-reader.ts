import pg from 'pg';
import type { Principal } from '../auth/principal.js';
import { RowcastError } from '../errors.js';
import { filterWhere, policyWhere, quoteIdent } from '../policies/policy-sql.js';
import type { FilterSpec } from '../protocol/index.js';
import { parseLsn, type Lsn } from '../replication/lsn.js';
import type { ValueParser } from '../replication/replication-stream.js';
import type { Row } from '../replication/transaction.js';
import type { TableTopic } from '../topics/topic-registry.js';
import { valueParser } from './value-parser.js';

/**
 * Where a snapshot was cut (docs/snapshots.md): the transaction snapshot its
 * rows were read in (`pg_current_snapshot()`, in full 64-bit xids) and the
 * WAL insert position read right after it was taken.
 */
export interface SnapshotCut {
  readonly xmin: bigint;
  readonly xmax: bigint;
  /** Transactions in progress when the snapshot was taken. */
  readonly xip: ReadonlySet<bigint>;
  /** Every transaction visible in the snapshot committed before this position. */
  readonly lsn: Lsn;
}

/** `pg_current_snapshot()`'s text (`xmin:xmax:xip,…`) and the WAL position, as a cut. */
export function parseCut(snapshot: string, lsn: string): SnapshotCut {
  const [xmin, xmax, xip] = snapshot.split(':');
  return {
    xmin: BigInt(xmin!),
    xmax: BigInt(xmax!),
    xip: new Set(xip ? xip.split(',').map((x) => BigInt(x)) : []),
    lsn: parseLsn(lsn),
  };
}

const XID_SPAN = 1n << 32n;

/**
 * Whether the transaction `xid` (pgoutput's 32-bit id) is visible in the
 * cut's snapshot: committed before it was taken. The 32-bit id is widened
 * to the 64-bit one nearest the snapshot's `xmax` (the transactions asked
 * about committed around the cut, far less than 2^31 ids away).
 */
export function visibleAtCut(cut: SnapshotCut, xid: number): boolean {
  let delta = (BigInt(xid) - (cut.xmax % XID_SPAN)) % XID_SPAN;
  if (delta < 0n) delta += XID_SPAN;
  if (delta >= XID_SPAN / 2n) delta -= XID_SPAN;
  const full = cut.xmax + delta;
  if (full < cut.xmin) return true;
  return full < cut.xmax && !cut.xip.has(full);
}

/** What one snapshot reads: a table's rows `principal` may read, at most `maxRows` of them. */
export interface SnapshotQuery {
  readonly topic: TableTopic;
  readonly principal: Principal;
  /** The subscription's filter: what SQL can decide of it narrows the read (the caller still runs the filter). */
  readonly filter?: FilterSpec;
  readonly maxRows: number;
}

/** A snapshot being read: its cut, how many rows the policy selects, and its rows in pages. */
export interface OpenSnapshot {
  readonly cut: SnapshotCut;
  /** Rows the policy's `WHERE` selects (at most the query's `maxRows`). */
  readonly count: number;
  /** The next page of rows, converted as the stream converts them; `null` once all were read (the transaction is then over). */
  next(): Promise<Row[] | null>;
  /** Ends the transaction early (a no-op once `next` returned `null`). */
  close(): Promise<void>;
}

/** How the reader connects and pages. */
export interface SnapshotReaderOptions {
  readonly url: string;
  /** Connections at most (one per snapshot being read). */
  readonly connections: number;
  /** Rows per `FETCH`. */
  readonly pageRows: number;
}

/**
 * The walsender's output settings (see the replication stream), so that a
 * snapshot's values are the text the stream decodes and convert the same.
 */
const STREAM_SETTINGS = [
  `SET LOCAL DateStyle = 'ISO, YMD'`,
  `SET LOCAL TimeZone = 'UTC'`,
  `SET LOCAL IntervalStyle = 'iso_8601'`,
  `SET LOCAL bytea_output = 'hex'`,
  `SET LOCAL extra_float_digits = 1`,
  // A safety net: no statement of a snapshot (its count, a page) should come near it.
  `SET LOCAL statement_timeout = '60s'`,
];

/** A refused snapshot's rows are counted up to this many times `SNAPSHOT_MAX_ROWS`. */
const COUNT_CAP = 10;

/** Values come back as Postgres's text, converted here per column type. */
const RAW_TEXT = { getTypeParser: () => (text: string) => text };

/**
 * Reads permission-filtered snapshots of table topics (docs/snapshots.md):
 * each in a `REPEATABLE READ` transaction of its own, from a cursor, a page
 * at a time, so memory is bounded whatever the table's size. The policy is
 * applied in SQL; the caller checks each row's partitions and filter again.
 */
export class SnapshotReader {
  readonly #pool: pg.Pool;
  readonly #pageRows: number;

  constructor(options: SnapshotReaderOptions) {
    this.#pool = new pg.Pool({ connectionString: options.url, max: options.connections, application_name: 'rowcast snapshot' });
    this.#pool.on('error', () => {}); // an idle client's error surfaces on its next query
    this.#pageRows = options.pageRows;
  }

  /**
   * Opens a snapshot of `query`, or throws `LIMIT_EXCEEDED` (with the row
   * count) when the policy selects more than `maxRows` rows: the client
   * gets all rows or none.
   */
  async open(query: SnapshotQuery): Promise<OpenSnapshot> {
    const { topic, principal, maxRows } = query;
    const params: unknown[] = [];
    const policy = policyWhere(topic.policy, topic.columns, principal, params);
    const where = query.filter === undefined ? policy : `${policy} AND ${filterWhere(query.filter, topic.columns, params)}`;
    const from = `${quoteIdent(topic.schema)}.${quoteIdent(topic.table)} WHERE ${where}`;
    const client = await this.#pool.connect();
    let done = false;
    /** Ends the transaction and gives the connection back; after an error it is dropped instead (it may be mid-query). */
    const finish = async (how: 'COMMIT' | 'ROLLBACK' | 'failed'): Promise<void> => {
      if (done) return;
      done = true;
      if (how === 'failed') {
        client.release(true);
        return;
      }
      try {
        await client.query(how);
        client.release();
      } catch {
        client.release(true);
      }
    };
    try {
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      for (const setting of STREAM_SETTINGS) await client.query(setting);
      const cutRow = await client.query<{ snapshot: string; lsn: string }>(
        'SELECT pg_current_snapshot()::text AS snapshot, pg_current_wal_insert_lsn()::text AS lsn',
      );
      const cut = parseCut(cutRow.rows[0]!.snapshot, cutRow.rows[0]!.lsn);
      // Counted up to ten times the limit, so that a refusal costs a bounded scan whatever the table's size.
      const cap = maxRows * COUNT_CAP;
      const counted = await client.query<{ n: string }>(`SELECT count(*) AS n FROM (SELECT 1 FROM ${from} LIMIT ${cap + 1}) AS rows`, params);
      const count = Number(counted.rows[0]!.n);
      if (count > maxRows) {
        const rows = count > cap ? `more than ${cap}` : String(count);
        throw new RowcastError('LIMIT_EXCEEDED', `${topic.name}: ${rows} rows to snapshot; at most ${maxRows} (SNAPSHOT_MAX_ROWS): narrow it with a filter`);
      }
      const columns = topic.columns.map((column) => quoteIdent(column.name)).join(', ');
      await client.query(`DECLARE rowcast_snapshot NO SCROLL CURSOR FOR SELECT ${columns} FROM ${from}`, params);
      let parsers: ValueParser[] | null = null;
      return {
        cut,
        count,
        next: async () => {
          if (done) return null;
          try {
            const page = await client.query({ text: `FETCH ${this.#pageRows} FROM rowcast_snapshot`, types: RAW_TEXT });
            if (page.rows.length === 0) {
              await finish('COMMIT');
              return null;
            }
            parsers ??= page.fields.map((field) => valueParser(field.dataTypeID));
            return page.rows.map((raw: Record<string, string | null>) => convert(raw, page.fields, parsers!));
          } catch (error) {
            await finish('failed');
            throw error;
          }
        },
        close: () => finish('ROLLBACK'),
      };
    } catch (error) {
      await finish(error instanceof RowcastError ? 'ROLLBACK' : 'failed');
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

function convert(raw: Record<string, string | null>, fields: readonly pg.FieldDef[], parsers: readonly ValueParser[]): Row {
  const row: Row = {};
  for (let i = 0; i < fields.length; i++) {
    const name = fields[i]!.name;
    const text = raw[name];
    row[name] = text === null || text === undefined ? null : parsers[i]!(text);
  }
  return row;
}
